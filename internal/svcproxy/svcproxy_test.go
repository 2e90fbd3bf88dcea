package svcproxy_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
	"github.com/fjord-net/fjord/internal/svcproxy"
	"github.com/fjord-net/fjord/internal/testutil/backendtest"
	"github.com/fjord-net/fjord/internal/testutil/kubetest"
)

// dataplane is a fake kernel: it keeps every map it was handed.
type dataplane struct {
	mu    sync.Mutex
	syncs []servicemap.Map
}

func (d *dataplane) Sync(m servicemap.Map, _ bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.syncs = append(d.syncs, m)
	return nil
}

func (d *dataplane) all() []servicemap.Map {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.syncs)
}

// endpoints returns what the last sync programs for a service port: "ip:port" of each
// ready endpoint, or "absent".
func (d *dataplane) endpoints(key string) string {
	syncs := d.all()
	if len(syncs) == 0 {
		return "no sync yet"
	}
	sp, ok := syncs[len(syncs)-1].Ports[key]
	if !ok {
		return "absent"
	}
	var out []string
	for _, ep := range sp.ClusterEndpoints() {
		out = append(out, ep.AddrPort().String())
	}
	return strings.Join(out, " ")
}

func service(name, clusterIP string, labels map[string]string) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: labels},
		Spec: corev1.ServiceSpec{ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
}

// slice is an EndpointSlice of service name: one endpoint per address ("!" in front:
// not ready), on node n2.
func slice(name, service string, addrs ...string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		TypeMeta:    metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ref("http"), Port: ref[int32](8080), Protocol: ref(corev1.ProtocolTCP)}},
	}
	for _, a := range addrs {
		ready := !strings.HasPrefix(a, "!")
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{strings.TrimPrefix(a, "!")},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &ready}, NodeName: ref("n2")})
	}
	return es
}

const web = "default/web:http/TCP"

// startProxy runs an agent's service proxy on its own source, with a fake dataplane.
func startProxy(t *testing.T, env *backendtest.Env) *dataplane {
	t.Helper()
	proc := env.Process(kubetest.AgentUser)
	dp := &dataplane{}
	p, err := svcproxy.New(svcproxy.Config{NodeName: "n1", SyncPeriod: time.Hour},
		svcproxy.Deps{Services: proc.Source.Services(), EndpointSlices: proc.Source.EndpointSlices(), Dataplane: dp,
			Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	proc.Source.Start(ctx)
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return dp
}

// The proxy programs what the Services and EndpointSlices say, follows their
// changes, and leaves out what kube-proxy leaves out: headless Services and those
// another proxy serves (service.kubernetes.io/service-proxy-name).
func TestProxyFollowsServicesAndSlices(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) {
		env.Apply(service("web", "10.96.10.10", nil), slice("web-a", "web", "10.244.1.5", "10.244.2.5"),
			service("headless", "None", nil), slice("headless-a", "headless", "10.244.1.6"),
			service("other", "10.96.10.12", map[string]string{servicemap.ServiceProxyNameLabel: "someone-else"}),
			slice("other-a", "other", "10.244.1.7"))
		dp := startProxy(t, env)
		eventually(t, "web programmed with both endpoints", func() bool {
			return dp.endpoints(web) == "10.244.1.5:8080 10.244.2.5:8080"
		})
		for _, key := range []string{"default/headless:http/TCP", "default/other:http/TCP"} {
			if got := dp.endpoints(key); got != "absent" {
				t.Errorf("%s programmed (%s); kube-proxy leaves it out", key, got)
			}
		}
		if sp := dp.all()[len(dp.all())-1].Ports[web]; !slices.Equal(sp.ClusterIPs, []netip.Addr{netip.MustParseAddr("10.96.10.10")}) || sp.Port != 80 {
			t.Fatalf("web programmed as %+v", sp)
		}

		// An endpoint stops being ready, one is replaced, a second slice adds one.
		env.Apply(slice("web-a", "web", "!10.244.1.5", "10.244.3.5"), slice("web-b", "web", "10.244.4.5"))
		eventually(t, "web's endpoints follow the slices", func() bool {
			return dp.endpoints(web) == "10.244.3.5:8080 10.244.4.5:8080"
		})
		env.Delete(slice("web-a", "web"))
		eventually(t, "a deleted slice's endpoints go", func() bool { return dp.endpoints(web) == "10.244.4.5:8080" })
		env.Delete(service("web", "10.96.10.10", nil))
		eventually(t, "a deleted Service goes", func() bool { return dp.endpoints(web) == "absent" })
	})
}

// While the store or API server is down, the proxy never hands the dataplane a map
// without a Service it had; after the restart it follows changes again.
func TestProxyKeepsServicesThroughAnOutage(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *backendtest.Env) {
		for i := range 5 {
			name := fmt.Sprintf("s%d", i)
			env.Apply(service(name, fmt.Sprintf("10.96.20.%d", 10+i), nil), slice(name+"-a", name, fmt.Sprintf("10.244.1.%d", 10+i)))
		}
		dp := startProxy(t, env)
		eventually(t, "five services programmed", func() bool { return dp.endpoints("default/s4:http/TCP") == "10.244.1.14:8080" })
		env.Stop()
		time.Sleep(time.Second) // long enough for the informers to notice
		env.Restart()
		env.Apply(slice("s0-a", "s0", "10.244.9.9"))
		eventually(t, "a change after the restart is programmed", func() bool { return dp.endpoints("default/s0:http/TCP") == "10.244.9.9:8080" })
		started := false
		for i, m := range dp.all() {
			if _, ok := m.Ports["default/s4:http/TCP"]; ok {
				started = true
			}
			if !started {
				continue
			}
			for s := range 5 {
				if _, ok := m.Ports[fmt.Sprintf("default/s%d:http/TCP", s)]; !ok {
					t.Fatalf("sync %d dropped service s%d: %v", i, s, m.Keys())
				}
			}
		}
	})
}

var eventually = backendtest.Eventually

func ref[T any](v T) *T { return &v }
