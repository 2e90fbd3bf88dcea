package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fjord-net/fjord/bench/benchkit"
	"github.com/fjord-net/fjord/internal/store"
)

// bench is the run's state.
type bench struct {
	fjord string
	env   []string
	up    bool
	st    *store.Store
	stop  func()

	nodes     []string              // n1, n2, n3
	nodeAddr  map[string]netip.Addr // underlay address
	podCIDR   map[string]string     // node → its pod CIDR
	podIP     map[string]string     // node → its echo pod's address
	podNS     map[string]string     // node → its echo pod's namespace
	clusterIP string

	tr    *traffic
	watch *sliceWatcher
}

const (
	runRoot     = "/run/fjord"
	nodePort    = 30080
	chaosHost   = "chaos.lab"
	labStateDir = runRoot + "/" + labName
)

// extraObjects: a NodePort Service in front of the echo pods, and an Ingress for the
// Host chaos.lab (the one the change storm rewrites).
const extraObjects = `apiVersion: v1
kind: Service
metadata: {name: chaos-np, namespace: default}
spec:
  type: NodePort
  selector: {app: echo}
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080, protocol: TCP}
---
` + chaosIngressHead + `        backend: {service: {name: echo, port: {name: http}}}
`

const chaosIngressHead = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: chaos, namespace: default}
spec:
  ingressClassName: nginx
  rules:
  - host: chaos.lab
    http:
      paths:
      - path: /
        pathType: Prefix
`

func (b *bench) fj(ctx context.Context, limit time.Duration, args ...string) ([]byte, error) {
	return benchkit.RunCmd(ctx, limit, b.env, b.fjord, args...)
}

func (b *bench) down() {
	if b.tr != nil {
		b.tr.stop()
	}
	if b.watch != nil {
		b.watch.stop()
	}
	if b.stop != nil {
		b.stop()
	}
	if b.up && *flagKeep {
		resumeEtcd()
		fmt.Fprintf(os.Stderr, "bench-chaos: -keep: lab %s left up\n", labName)
		return
	}
	if b.up {
		resumeEtcd() // a stopped etcd would not hear lab down's SIGTERM
		if _, err := benchkit.RunCmd(context.Background(), 2*time.Minute, b.env, b.fjord, "lab", "down", "--name", labName); err != nil {
			fmt.Fprintln(os.Stderr, "bench-chaos: lab down:", err)
		}
	}
}

// setUp brings the lab up with the extra objects and learns its addresses.
func (b *bench) setUp(ctx context.Context) error {
	_, _ = b.fj(ctx, time.Minute, "lab", "down", "--name", labName)
	logf("lab up %s on %s", labName, labSubnet)
	if _, err := b.fj(ctx, 3*time.Minute, "lab", "up", "--name", labName, "--subnet", labSubnet); err != nil {
		return err
	}
	b.up = true
	f, err := os.CreateTemp("", "fjord-chaos-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(extraObjects); err != nil {
		return err
	}
	f.Close()
	if _, err := b.fj(ctx, time.Minute, "apply", "-f", f.Name()); err != nil {
		return err
	}
	cli, err := store.Connect(ctx, store.ClientConfig{Endpoints: []string{"unix://" + labStateDir + "/etcd.sock"}, DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	b.stop = func() { cli.Close() }
	b.st = store.New(cli, "")

	sub := netip.MustParsePrefix(labSubnet).Addr()
	b.nodeAddr, b.podCIDR, b.podIP, b.podNS = map[string]netip.Addr{}, map[string]string{}, map[string]string{}, map[string]string{}
	for i := 1; i <= 3; i++ {
		n := fmt.Sprintf("n%d", i)
		b.nodes = append(b.nodes, n)
		a := sub.As4()
		a[3] += byte(10 + i)
		b.nodeAddr[n] = netip.AddrFrom4(a)
		ip, ns, err := benchkit.WaitLabPod(ctx, b.fjord, b.env, "echo-"+n)
		if err != nil {
			return err
		}
		b.podIP[n], b.podNS[n] = ip, filepath.Base(ns)
		nk, _ := b.st.Kinds().ByName("Node")
		o, err := b.st.Get(ctx, nk, "", n)
		if err != nil {
			return err
		}
		b.podCIDR[n] = o.(*corev1.Node).Spec.PodCIDR
	}
	sk, _ := b.st.Kinds().ByName("Service")
	o, err := b.st.Get(ctx, sk, "default", "echo")
	if err != nil {
		return err
	}
	b.clusterIP = o.(*corev1.Service).Spec.ClusterIP
	return b.waitServing(ctx)
}

// waitServing waits until every path the traffic takes answers once.
func (b *bench) waitServing(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	checks := map[string]func(context.Context, int) error{}
	h := hostDialer()
	for _, n := range b.nodes {
		checks["NodePort "+n] = httpGet(h, fmt.Sprintf("%v:%d", b.nodeAddr[n], nodePort), "x", "")
	}
	checks["ingress "+chaosHost] = httpGet(h, b.nodeAddr["n1"].String()+":80", chaosHost, "")
	for name, f := range checks {
		var err error
		for time.Now().Before(deadline) && ctx.Err() == nil {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err = f(cctx, 0)
			cancel()
			if err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("%s does not answer: %w", name, err)
		}
	}
	return nil
}

// streams builds the traffic: pod to pod around the ring, ClusterIP TCP and UDP from
// every node's pod, NodePort on every node and the ingress (two Hosts) from the host.
func (b *bench) streams() ([]*stream, error) {
	var out []*stream
	h := hostDialer()
	for i, n := range b.nodes {
		d, err := nsDialer(b.podNS[n])
		if err != nil {
			return nil, err
		}
		next := b.nodes[(i+1)%len(b.nodes)]
		out = append(out,
			&stream{Class: classPod, Name: fmt.Sprintf("%s → echo-%s", n, next), From: n, Via: next, Target: next,
				attempt: httpGet(d, b.podIP[next]+":8080", "pod", "echo-"+next)},
			&stream{Class: classClusterIP, Name: n + " → echo:80", From: n,
				attempt: httpGet(d, b.clusterIP+":80", "echo", "")},
			&stream{Class: classUDP, Name: n + " → echo:9000/udp", From: n,
				attempt: udpEcho(d, b.clusterIP+":9000")},
			&stream{Class: classNodePort, Name: fmt.Sprintf("host → %s:%d", n, nodePort), From: "host", Via: n,
				attempt: httpGet(h, fmt.Sprintf("%v:%d", b.nodeAddr[n], nodePort), "np", "")})
	}
	for _, host := range []string{"echo.lab", chaosHost} {
		out = append(out, &stream{Class: classIngress, Name: "host → ingress (Host " + host + ")", From: "host", Via: "n1",
			attempt: httpGet(h, b.nodeAddr["n1"].String()+":80", host, "")})
	}
	return out, nil
}

// labProcess finds the pid of the lab process named name (FJORD_LAB_PROC).
func labProcess(name string) (int, error) {
	entries, _ := os.ReadDir("/proc")
	want := []string{"FJORD_LAB=" + labName, "FJORD_LAB_PROC=" + name}
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		vars := strings.Split(string(env), "\x00")
		ok := true
		for _, w := range want {
			found := false
			for _, v := range vars {
				if v == w {
					found = true
					break
				}
			}
			ok = ok && found
		}
		if ok {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process %s of lab %s", name, labName)
}
