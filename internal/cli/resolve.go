package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fjord-net/fjord/internal/lab"
	"github.com/fjord-net/fjord/internal/nodestate"
	"github.com/fjord-net/fjord/internal/resolve"
	"github.com/fjord-net/fjord/internal/store"
)

// labOfEndpoints returns the lab whose embedded store the endpoints point at (its
// state directory holds lab.json next to etcd.sock).
func (g *globals) labOfEndpoints() (lab.Config, bool) {
	eps := g.resolvedEndpoints()
	if len(eps) != 1 {
		return lab.Config{}, false
	}
	sock, ok := strings.CutPrefix(eps[0], "unix://")
	if !ok {
		return lab.Config{}, false
	}
	dir := filepath.Dir(sock)
	c, err := lab.Load(filepath.Dir(dir), filepath.Base(dir))
	if err != nil {
		return lab.Config{}, false
	}
	return c, true
}

// localConfig is what this machine knows without the store: every node of the lab
// the endpoints point at, or this machine as a node (its node.json and the CNI cache
// containerd keeps).
func (g *globals) localConfig() resolve.LocalConfig {
	if c, ok := g.labOfEndpoints(); ok {
		return labLocalConfig(c)
	}
	name, _ := os.Hostname()
	if nn, err := nodestate.Read(nodestate.DefaultRunDir); err == nil {
		name = nn.Node
	}
	return resolve.LocalConfig{
		Nodes:        []resolve.Node{{Name: name, RunDir: nodestate.DefaultRunDir}},
		CNICacheDirs: map[string]string{name: resolve.DefaultCNICacheDir},
	}
}

// labLocalConfig lists a lab's nodes with their namespaces, addresses and the
// directories where their agents and runtimes keep records.
func labLocalConfig(c lab.Config) resolve.LocalConfig {
	lc := resolve.LocalConfig{CNICacheDirs: map[string]string{}}
	for i := 1; i <= c.Nodes; i++ {
		name := c.NodeName(i)
		lc.Nodes = append(lc.Nodes, resolve.Node{Name: name, IP: c.NodeAddr(i), Netns: filepath.Join("/run/netns", c.NodeNS(i)),
			RunDir: filepath.Join(c.NodeDir(i), "run")})
		lc.CNICacheDirs[name] = filepath.Join(c.NodeDir(i), "kubelet", "cni-cache")
	}
	return lc
}

// sources are the resolvers a troubleshooting command uses.
type sources struct {
	*resolve.Merged
	store    *store.Store // nil when the store did not answer
	storeErr error
	close    func()
}

// openSources combines local records with the store when it answers within timeout.
// A store that does not answer is not an error: the tools work on what is known
// locally and say so.
func (g *globals) openSources(ctx context.Context, timeout time.Duration) *sources {
	if c, kc, ok := g.kubernetesLab(); ok || kc != "" {
		return g.openKubeSources(ctx, c, kc)
	}
	s := &sources{Merged: &resolve.Merged{Local: resolve.NewLocal(g.localConfig())}, close: func() {}}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, closeStore, err := g.connectTimeout(cctx, timeout)
	if err != nil {
		s.storeErr = err
		return s
	}
	s.store, s.close = st, closeStore
	s.Remote = resolve.FromStore(st)
	return s
}

// connectTimeout is connect with a bounded dial.
func (g *globals) connectTimeout(ctx context.Context, timeout time.Duration) (*store.Store, func(), error) {
	saved := g.etcd.DialTimeout
	g.etcd.DialTimeout = timeout
	defer func() { g.etcd.DialTimeout = saved }()
	return g.connect(ctx)
}

// nodesAndPods lists both, from the merged sources.
func (s *sources) nodesAndPods(ctx context.Context) ([]resolve.Node, []resolve.Pod, error) {
	nodes, err := s.Nodes(ctx)
	if err != nil {
		return nil, nil, err
	}
	pods, err := s.Pods(ctx)
	return nodes, pods, err
}

// emit prints v as indented JSON (output "json") or with print, after saying whether
// the store answered.
func (g *globals) emit(output string, v any, src *sources, print func(io.Writer)) error {
	if output == "json" {
		enc := json.NewEncoder(g.streams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	g.noteStore(src)
	print(g.streams.Out)
	return nil
}

// findings is a report whose failures make the command exit 1.
type findings interface {
	Print(io.Writer)
	Failed() bool
}

// emitFindings prints a report (emit) and returns errFindings when it failed.
func (g *globals) emitFindings(output string, rep findings, src *sources) error {
	if err := g.emit(output, rep, src, rep.Print); err != nil {
		return err
	}
	if rep.Failed() {
		return errFindings
	}
	return nil
}

// noteStore tells the user when the tools work without the store.
func (g *globals) noteStore(src *sources) {
	if src.storeErr != nil && src.Remote == nil {
		fmt.Fprintf(g.streams.Err, "note: the store did not answer (%v); using this machine's records only\n", src.storeErr)
	} else if err := src.RemoteErr(); err != nil {
		fmt.Fprintf(g.streams.Err, "note: reading the store failed (%v); using this machine's records only\n", err)
	}
}

// kubernetesLab says whether the tools read a Kubernetes API: --kubeconfig (or
// $KUBECONFIG), or a Kubernetes lab (the one named by FJORD_LAB, else the default).
// kc is the kubeconfig to use; ok reports a known lab (c) whose nodes are local.
func (g *globals) kubernetesLab() (c lab.Config, kc string, ok bool) {
	if g.endpoints != "" || os.Getenv("FJORD_ETCD_ENDPOINTS") != "" {
		return c, "", false
	}
	name := os.Getenv("FJORD_LAB")
	if name == "" {
		name = "lab"
	}
	if lc, err := lab.Load("/run/fjord", name); err == nil && lc.Kubernetes {
		c, ok = lc, true
		kc = lc.Kubeconfig("admin")
	}
	if g.kubeconfig != "" {
		kc = g.kubeconfig
	} else if env := os.Getenv("KUBECONFIG"); env != "" && !ok {
		kc = env
	}
	return c, kc, ok
}

// openKubeSources reads the Kubernetes API, with a Kubernetes lab's nodes and pod
// namespaces known locally.
func (g *globals) openKubeSources(ctx context.Context, c lab.Config, kc string) *sources {
	local := g.localConfig()
	if c.Name != "" {
		local = labLocalConfig(c)
	}
	s := &sources{Merged: &resolve.Merged{Local: resolve.NewLocal(local)}, close: func() {}}
	saved := g.kubeconfig
	g.kubeconfig = kc
	r, done, err := g.reader(ctx)
	g.kubeconfig = saved
	if err != nil {
		s.storeErr = err
		return s
	}
	remote := resolve.FromLister(r)
	if c.Name != "" {
		remote.NetnsOf = func(p *corev1.Pod) string {
			if c.Runtime == lab.RuntimeContainerd {
				ns, _ := c.RealPodNetns(p)
				return ns
			}
			return "/run/netns/" + c.PodNetns(p.Namespace, p.Name)
		}
	}
	s.Remote, s.close = remote, done
	return s
}
