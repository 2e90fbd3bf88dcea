package resolve

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/fjord-net/fjord/internal/nodestate"
	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

func TestParseCNICache(t *testing.T) {
	recorded, err := os.ReadFile("testdata/cni-cache-lab.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   string
		want Pod
		ok   bool
	}{
		{"recorded lab ADD", string(recorded), Pod{Namespace: "default", Name: "echo-n1", IP: netip.MustParseAddr("10.244.0.2"),
			Netns: "/run/netns/fjord-tsx-pod-default-echo-n1", HostVeth: "fj14b8a450cbb", MTU: 1450}, true},
		{"containerd style, host veth listed second", `{"kind":"cniCacheV1","ifName":"eth0","netns":"/var/run/netns/cni-1",
			"cniArgs":[["K8S_POD_NAME","web"],["K8S_POD_NAMESPACE","shop"]],
			"result":{"interfaces":[{"name":"eth0","mtu":1400,"sandbox":"/var/run/netns/cni-1"},{"name":"veth12","mtu":1400}],
			"ips":[{"address":"10.1.2.3/24"}]}}`,
			Pod{Namespace: "shop", Name: "web", IP: netip.MustParseAddr("10.1.2.3"), Netns: "/var/run/netns/cni-1", HostVeth: "veth12", MTU: 1400}, true},
		{"not a pod (no K8S args)", `{"kind":"cniCacheV1","netns":"/x","cniArgs":[]}`, Pod{}, false},
		{"no netns", `{"kind":"cniCacheV1","cniArgs":[["K8S_POD_NAME","a"],["K8S_POD_NAMESPACE","b"]]}`, Pod{}, false},
		{"other kind", `{"kind":"other","netns":"/x","cniArgs":[["K8S_POD_NAME","a"],["K8S_POD_NAMESPACE","b"]]}`, Pod{}, false},
		{"garbage", `{"kind":`, Pod{}, false},
		{"hostile veth name dropped", `{"kind":"cniCacheV1","netns":"/x","cniArgs":[["K8S_POD_NAME","a"],["K8S_POD_NAMESPACE","b"]],
			"result":{"interfaces":[{"name":"../../etc"}]}}`, Pod{Namespace: "b", Name: "a", Netns: "/x"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseCNICache([]byte(tc.in))
			if ok != tc.ok || ok && (got.Key() != tc.want.Key() || got.IP != tc.want.IP || got.Netns != tc.want.Netns || got.HostVeth != tc.want.HostVeth || got.MTU != tc.want.MTU) {
				t.Fatalf("got %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestLocalReadsCachesAndNodeJSON lays out a lab's files and reads them back.
func TestLocalReadsCachesAndNodeJSON(t *testing.T) {
	dir := t.TempDir()
	netnsFile := filepath.Join(dir, "netns-echo")
	if err := os.WriteFile(netnsFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "n1", "cni-cache")
	if err := os.MkdirAll(filepath.Join(cache, "results"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, netns, pod string) {
		b := []byte(`{"kind":"cniCacheV1","ifName":"eth0","netns":"` + netns + `","cniArgs":[["K8S_POD_NAMESPACE","default"],["K8S_POD_NAME","` + pod + `"]],"result":{"ips":[{"address":"10.244.0.2/32"}]}}`)
		if err := os.WriteFile(filepath.Join(cache, "results", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("fjord-a-eth0", netnsFile, "echo")
	write("fjord-b-eth0", filepath.Join(dir, "gone"), "deleted") // its namespace no longer exists
	run := filepath.Join(dir, "n1", "run")
	if err := nodestate.Write(run, nodestate.NodeNetwork{Node: "n1", Mode: "vxlan", PodCIDR: netip.MustParsePrefix("10.244.0.0/24"),
		Gateway: netip.MustParseAddr("10.244.0.1"), MTU: 1450, ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	l := NewLocal(LocalConfig{
		Nodes:        []Node{{Name: "n1", IP: netip.MustParseAddr("198.18.0.11"), Netns: "/run/netns/x-n1", RunDir: run}},
		CNICacheDirs: map[string]string{"n1": cache},
	})
	pods, _ := l.Pods(t.Context())
	if len(pods) != 1 || pods[0].Name != "echo" || pods[0].Node != "n1" || pods[0].Netns != netnsFile {
		t.Fatalf("pods = %+v; want only default/echo on n1", pods)
	}
	nodes, _ := l.Nodes(t.Context())
	if len(nodes) != 1 || nodes[0].PodCIDR.String() != "10.244.0.0/24" || nodes[0].PodMTU != 1450 || nodes[0].Mode != "vxlan" || !nodes[0].Ready {
		t.Fatalf("nodes = %+v", nodes)
	}
	if _, err := l.ServicePorts(t.Context()); !errors.Is(err, ErrNeedsStore) {
		t.Fatalf("ServicePorts from Local: %v, want ErrNeedsStore", err)
	}
}

// fake is a Source answering from fixed lists (or failing).
type fake struct {
	nodes []Node
	pods  []Pod
	sps   []servicemap.ServicePort
	err   error
}

func (f *fake) Nodes(context.Context) ([]Node, error) { return f.nodes, f.err }
func (f *fake) Pods(context.Context) ([]Pod, error)   { return f.pods, f.err }
func (f *fake) ServicePorts(context.Context) ([]servicemap.ServicePort, error) {
	return f.sps, f.err
}
func (f *fake) IngressBackend(context.Context, string, string) (Backend, error) {
	return Backend{}, f.err
}

func TestMergedFillsLocalFactsAndSurvivesAStoreOutage(t *testing.T) {
	local := &fake{pods: []Pod{{Namespace: "default", Name: "a", Netns: "/run/netns/a", HostVeth: "fjX", MTU: 1450, Node: "n1"},
		{Namespace: "default", Name: "local-only", Netns: "/run/netns/b"}}}
	remote := &fake{pods: []Pod{{Namespace: "default", Name: "a", Node: "n1", IP: netip.MustParseAddr("10.244.0.2"), Labels: map[string]string{"app": "x"}},
		{Namespace: "default", Name: "pending"}}}
	m := &Merged{Local: local, Remote: remote}
	pods, err := m.Pods(t.Context())
	if err != nil || len(pods) != 3 {
		t.Fatalf("pods %+v, %v", pods, err)
	}
	a := pods[0]
	if a.Name != "a" || a.Netns != "/run/netns/a" || a.HostVeth != "fjX" || a.Labels["app"] != "x" || !a.IP.IsValid() {
		t.Fatalf("merged pod a = %+v", a)
	}
	remote.err = errors.New("etcd down")
	pods, err = m.Pods(t.Context())
	if err != nil || len(pods) != 2 || m.RemoteErr() == nil {
		t.Fatalf("with the store down: pods %+v, err %v, remote err %v; want the local pods and the outage noted", pods, err, m.RemoteErr())
	}
}

func TestFind(t *testing.T) {
	src := &fake{
		nodes: []Node{{Name: "n1", IP: netip.MustParseAddr("198.18.0.11"), PodCIDR: netip.MustParsePrefix("10.244.0.0/24")}},
		pods:  []Pod{{Namespace: "default", Name: "echo", IP: netip.MustParseAddr("10.244.0.2")}, {Namespace: "shop", Name: "echo"}},
		sps: []servicemap.ServicePort{
			{Namespace: "default", Name: "echo", PortName: "http", Protocol: "TCP", Port: 80, NodePort: 30080, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")}},
			{Namespace: "default", Name: "echo", PortName: "udp", Protocol: "UDP", Port: 9000, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")}},
		},
	}
	ctx := t.Context()
	for _, tc := range []struct{ ns, ref, want string }{
		{"default", "echo", "default/echo"}, {"default", "shop/echo", "shop/echo"}, {"x", "10.244.0.2", "default/echo"},
	} {
		if p, err := FindPod(ctx, src, tc.ns, tc.ref); err != nil || p.Key() != tc.want {
			t.Errorf("FindPod(%s, %s) = %s, %v; want %s", tc.ns, tc.ref, p.Key(), err, tc.want)
		}
	}
	if _, err := FindPod(ctx, src, "default", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindPod(nope): %v, want ErrNotFound", err)
	}
	if n, err := FindNode(ctx, src, "198.18.0.11"); err != nil || n.Name != "n1" {
		t.Errorf("FindNode by IP: %+v %v", n, err)
	}
	if n, ok := NodeOfAddr(src.nodes, netip.MustParseAddr("10.244.0.9")); !ok || n.Name != "n1" {
		t.Errorf("NodeOfAddr: %+v %v", n, ok)
	}
	for _, tc := range []struct {
		ref  string
		want int
	}{{"echo", 2}, {"default/echo", 2}, {"echo:80", 1}, {"10.96.0.10", 2}, {"10.96.0.10:9000", 1}} {
		if sps, err := FindServicePorts(ctx, src, "default", tc.ref); err != nil || len(sps) != tc.want {
			t.Errorf("FindServicePorts(%s) = %d ports, %v; want %d", tc.ref, len(sps), err, tc.want)
		}
	}
	if _, err := FindServicePorts(ctx, src, "default", "echo:http"); err == nil {
		t.Errorf("a non-numeric port must be refused")
	}
	if sp, err := FindNodePort(ctx, src, 30080, "tcp"); err != nil || sp.Name != "echo" {
		t.Errorf("FindNodePort: %+v %v", sp, err)
	}
}
