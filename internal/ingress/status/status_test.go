package status_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/ingress/status"
	"github.com/fjord-net/fjord/internal/leader"
	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/store"
	"github.com/fjord-net/fjord/internal/store/storetest"
)

func TestLoadBalancer(t *testing.T) {
	got := status.LoadBalancer([]string{"198.18.0.12", "lb.example", "198.18.0.11", "198.18.0.12", "", "::ffff:198.18.0.13"})
	want := []networkingv1.IngressLoadBalancerIngress{{IP: "198.18.0.11"}, {IP: "198.18.0.12"}, {IP: "198.18.0.13"}, {Hostname: "lb.example"}}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func ingress(name, class string) *networkingv1.Ingress {
	return &networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: networkingv1.IngressSpec{IngressClassName: &class, DefaultBackend: &networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
	}
}

type writer struct {
	id    string
	inner status.Writer
	wrote chan string
}

func (w writer) UpdateIngressStatus(ctx context.Context, ing *networkingv1.Ingress) error {
	w.wrote <- w.id + ":" + ing.Name
	return w.inner.UpdateIngressStatus(ctx, ing)
}

// start runs one ingress process's status writer, as `fjord ingress` does.
func start(t *testing.T, st *store.Store, id, addr string) (wrote chan string, stop func()) {
	src := source.New(source.NewStore(st), 0)
	wrote = make(chan string, 100)
	s, err := status.New(status.Config{
		Lock:      leader.StoreLock(st, "ingress-nginx", "fjord-ingress-leader", id),
		Writer:    writer{id: id, inner: status.StoreWriter{Store: st}, wrote: wrote},
		Addresses: status.Static([]string{addr}),
		Timing:    leader.Timing{LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 100 * time.Millisecond},
	}, src.Ingresses(), func(ing *networkingv1.Ingress) bool { return *ing.Spec.IngressClassName == "nginx" },
		slog.New(slog.NewTextHandler(t.Output(), nil)).With("id", id))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	src.Start(ctx)
	go func() { s.Run(ctx); close(done) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return wrote, stop
}

func lbOf(t *testing.T, st *store.Store, name string) string {
	k, _ := st.Kinds().ByName("Ingress")
	o, err := st.Get(context.Background(), k, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	lb := o.(*networkingv1.Ingress).Status.LoadBalancer.Ingress
	if len(lb) != 1 {
		return ""
	}
	return lb[0].IP
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("never happened: %s", what)
}

// One of two ingress processes writes the status of the Ingresses it serves, once;
// the other writes nothing; when the leader stops, the other takes over.
func TestStatusWrittenOnceByTheLeaderAndHandedOver(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded etcd")
	}
	st := storetest.New(t)
	if _, err := st.Apply(context.Background(), []objects.Object{ingress("ours", "nginx"), ingress("theirs", "other")}); err != nil {
		t.Fatal(err)
	}
	aWrote, stopA := start(t, st, "a", "198.18.0.11")
	eventually(t, "a leads and writes", func() bool { return lbOf(t, st, "ours") == "198.18.0.11" })
	bWrote, _ := start(t, st, "b", "198.18.0.12")
	time.Sleep(500 * time.Millisecond) // b would have written by now if it led
	if len(bWrote) != 0 || len(aWrote) != 1 {
		t.Fatalf("writes: a %d, b %d; want exactly one, by the leader", len(aWrote), len(bWrote))
	}
	if lbOf(t, st, "theirs") != "" {
		t.Fatal("status written on an Ingress of another class")
	}
	stopA() // releases the Lease
	eventually(t, "b takes over and writes its address", func() bool { return lbOf(t, st, "ours") == "198.18.0.12" })
	if got := <-bWrote; got != "b:ours" {
		t.Fatalf("b wrote %s", got)
	}
}
