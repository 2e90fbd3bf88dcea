package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	corev1 "k8s.io/api/core/v1"

	"github.com/fjord-net/fjord/internal/kubelet"
	"github.com/fjord-net/fjord/internal/store"
)

// Probe is one pod-to-pod HTTP request and what it saw.
type Probe struct {
	From, To     string // pod names
	FromNode     string
	ToNode       string
	Answer       string // the echo's reply line
	ClientSeen   string // the client address the server saw
	Err          error
	SourceIsPod  bool // no NAT: the server saw the client pod's own IP
	fromIP, toIP string
}

// EchoTarget is one echo pod of a connectivity check.
type EchoTarget struct {
	Name, Node, IP string
	Netns          string // path of the pod's network namespace
}

// StoreEchoPods lists the running echo pods (app=echo) in fjord's store.
func StoreEchoPods(ctx context.Context, st *store.Store) ([]EchoTarget, error) {
	pk, _ := st.Kinds().ByName("Pod")
	list, _, err := st.List(ctx, pk, "")
	if err != nil {
		return nil, err
	}
	var out []EchoTarget
	for _, o := range list {
		p := o.(*corev1.Pod)
		if p.Labels["app"] == "echo" && p.Status.PodIP != "" && p.Annotations[kubelet.AnnotationNetns] != "" {
			out = append(out, EchoTarget{Name: p.Name, Node: p.Spec.NodeName, IP: p.Status.PodIP, Netns: p.Annotations[kubelet.AnnotationNetns]})
		}
	}
	return out, nil
}

// CheckPods has every echo pod fetch from every other one over HTTP and reports each
// result. It fails if any pair cannot talk or was NATed.
func CheckPods(ctx context.Context, pods []EchoTarget) ([]Probe, error) {
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	var out []Probe
	var failed int
	for _, from := range pods {
		for _, to := range pods {
			if from == to {
				continue
			}
			pr := Probe{From: from.Name, To: to.Name, FromNode: from.Node, ToNode: to.Node, fromIP: from.IP, toIP: to.IP}
			// A pod is Running once its process started, which can be a moment before
			// it listens: retry a refused connection a bounded number of times.
			for try := 0; try < 30; try++ {
				pr.Answer, pr.Err = HTTPGetIn(from.Netns, net.JoinHostPort(to.IP, "8080"), "/")
				if pr.Err == nil || !errors.Is(pr.Err, syscall.ECONNREFUSED) || ctx.Err() != nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if pr.Err == nil {
				pr.ClientSeen = field(pr.Answer, "client")
				host, _, _ := net.SplitHostPort(pr.ClientSeen)
				pr.SourceIsPod = host == from.IP
				if !pr.SourceIsPod {
					pr.Err = fmt.Errorf("server saw %s, not the client pod's %s (NAT?)", host, from.IP)
				}
			}
			if pr.Err != nil {
				failed++
			}
			out = append(out, pr)
		}
	}
	if len(pods) < 2 {
		return out, errors.New("fewer than two running echo pods to check")
	}
	if failed > 0 {
		return out, fmt.Errorf("%d of %d pod-to-pod requests failed", failed, len(out))
	}
	return out, nil
}

// HTTPGetIn sends one HTTP/1.0 GET from inside a network namespace and returns the
// first line of the body. The socket is created on a thread pinned in that namespace.
func HTTPGetIn(nsPath, addr, path string) (string, error) {
	conn, err := DialIn(nsPath, "tcp", addr, 3*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr)
	r := bufio.NewReader(conn)
	status, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.Contains(status, " 200 ") {
		return "", fmt.Errorf("HTTP status %q", strings.TrimSpace(status))
	}
	for { // skip headers
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if line == "\r\n" {
			break
		}
	}
	body, err := r.ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	return strings.TrimSpace(body), nil
}

func field(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// PrintMatrix prints the connectivity check as a table.
func PrintMatrix(w io.Writer, probes []Probe) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM\tTO\tRESULT\tSERVER SAW")
	for _, p := range probes {
		res := "ok"
		if p.Err != nil {
			res = "FAIL: " + p.Err.Error()
		}
		fmt.Fprintf(tw, "%s (%s, %s)\t%s (%s, %s)\t%s\t%s\n", p.From, p.FromNode, p.fromIP, p.To, p.ToNode, p.toIP, res, p.ClientSeen)
	}
	tw.Flush()
}

// DialIn opens a connection from inside a network namespace (for example a pod's): the
// socket is created on a thread pinned in that namespace, then used from anywhere.
func DialIn(nsPath, network, addr string, timeout time.Duration) (net.Conn, error) {
	netns, err := ns.GetNS(nsPath)
	if err != nil {
		return nil, err
	}
	defer netns.Close()
	var conn net.Conn
	err = netns.Do(func(ns.NetNS) error {
		d := net.Dialer{Timeout: timeout}
		conn, err = d.Dial(network, addr)
		return err
	})
	return conn, err
}
