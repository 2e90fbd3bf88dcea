package endpoints

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/fjord-net/fjord/internal/objects"
)

func testService(name string, selector map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: "svc-uid"},
		Spec:       corev1.ServiceSpec{Selector: selector, Ports: ports, ClusterIP: "10.96.0.10"},
	}
}

func port(name string, p int32, target intstr.IntOrString) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: p, TargetPort: target, Protocol: corev1.ProtocolTCP}
}

type podOpt func(*corev1.Pod)

func testPod(name, ip, node string, ready bool, opts ...podOpt) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "x"}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: ip,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func containerPort(name string, n int32) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{Name: name, ContainerPort: n})
	}
}

func labelled(k, v string) podOpt { return func(p *corev1.Pod) { p.Labels = map[string]string{k: v} } }

// render prints slices as text: one line per slice, one indented line per endpoint.
func render(slices []*discoveryv1.EndpointSlice) string {
	var b strings.Builder
	for _, es := range slices {
		var ports []string
		for _, p := range es.Ports {
			ports = append(ports, fmt.Sprintf("%s/%s/%d", *p.Name, *p.Protocol, *p.Port))
		}
		fmt.Fprintf(&b, "%s %s ports=[%s]\n", es.Name, es.AddressType, strings.Join(ports, " "))
		for _, ep := range es.Endpoints {
			node := "-"
			if ep.NodeName != nil {
				node = *ep.NodeName
			}
			fmt.Fprintf(&b, "  %s %s node=%s ready=%v serving=%v terminating=%v", ep.Addresses[0], ep.TargetRef.Name, node,
				*ep.Conditions.Ready, *ep.Conditions.Serving, *ep.Conditions.Terminating)
			if ep.Hostname != nil {
				fmt.Fprintf(&b, " hostname=%s", *ep.Hostname)
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func TestDesired(t *testing.T) {
	web := map[string]string{"app": "web"}
	live := map[string]bool{"n1": true, "n2": true}
	now := metav1.Now()
	tests := []struct {
		name string
		svc  *corev1.Service
		pods []*corev1.Pod
		want string
	}{
		{
			name: "selector matches, int targetPort",
			svc:  testService("web", web, port("http", 80, intstr.FromInt32(8080))),
			pods: []*corev1.Pod{
				testPod("b", "10.244.1.3", "n2", true),
				testPod("a", "10.244.1.2", "n1", true),
				testPod("other", "10.244.1.9", "n1", true, labelled("app", "db")),
			},
			want: `web-fjord IPv4 ports=[http/TCP/8080]
  10.244.1.2 a node=n1 ready=true serving=true terminating=false
  10.244.1.3 b node=n2 ready=true serving=true terminating=false
`,
		},
		{
			name: "unset targetPort means the service port",
			svc:  testService("web", web, port("", 80, intstr.IntOrString{})),
			pods: []*corev1.Pod{testPod("a", "10.244.1.2", "n1", true)},
			want: `web-fjord IPv4 ports=[/TCP/80]
  10.244.1.2 a node=n1 ready=true serving=true terminating=false
`,
		},
		{
			name: "addresses sort numerically",
			svc:  testService("web", web, port("http", 80, intstr.FromInt32(80))),
			pods: []*corev1.Pod{testPod("a", "10.244.1.10", "n1", true), testPod("b", "10.244.1.9", "n1", true)},
			want: `web-fjord IPv4 ports=[http/TCP/80]
  10.244.1.9 b node=n1 ready=true serving=true terminating=false
  10.244.1.10 a node=n1 ready=true serving=true terminating=false
`,
		},
		{
			name: "no matching pods keeps an empty placeholder slice",
			svc:  testService("web", map[string]string{"app": "nope"}, port("http", 80, intstr.FromInt32(8080))),
			pods: []*corev1.Pod{testPod("a", "10.244.1.2", "n1", true)},
			want: "web-fjord IPv4 ports=[]\n",
		},
		{
			name: "no pods at all",
			svc:  testService("web", web, port("http", 80, intstr.FromInt32(8080))),
			want: "web-fjord IPv4 ports=[]\n",
		},
		{
			name: "pods in another namespace are ignored",
			svc:  testService("web", web, port("http", 80, intstr.FromInt32(8080))),
			pods: []*corev1.Pod{testPod("a", "10.244.1.2", "n1", true, func(p *corev1.Pod) { p.Namespace = "other" })},
			want: "web-fjord IPv4 ports=[]\n",
		},
		{
			name: "service without selector gets nothing",
			svc:  testService("web", nil, port("http", 80, intstr.FromInt32(8080))),
			pods: []*corev1.Pod{testPod("a", "10.244.1.2", "n1", true)},
			want: "",
		},
		{
			name: "ExternalName service gets nothing",
			svc: func() *corev1.Service {
				s := testService("web", web)
				s.Spec.Type = corev1.ServiceTypeExternalName
				return s
			}(),
			pods: []*corev1.Pod{testPod("a", "10.244.1.2", "n1", true)},
			want: "",
		},
		{
			name: "readiness: not-ready pod, dead node, no node",
			svc:  testService("web", web, port("http", 80, intstr.FromInt32(80))),
			pods: []*corev1.Pod{
				testPod("notready", "10.244.1.2", "n1", false),
				testPod("deadnode", "10.244.1.3", "n9", true),
				testPod("ready", "10.244.1.4", "n2", true),
				testPod("unscheduled", "10.244.1.5", "", true),
			},
			want: `web-fjord IPv4 ports=[http/TCP/80]
  10.244.1.2 notready node=n1 ready=false serving=false terminating=false
  10.244.1.3 deadnode node=n9 ready=false serving=true terminating=false
  10.244.1.4 ready node=n2 ready=true serving=true terminating=false
  10.244.1.5 unscheduled node=- ready=false serving=true terminating=false
`,
		},
		{
			name: "publishNotReadyAddresses serves not-ready pods on live nodes",
			svc: func() *corev1.Service {
				s := testService("web", web, port("http", 80, intstr.FromInt32(80)))
				s.Spec.PublishNotReadyAddresses = true
				return s
			}(),
			pods: []*corev1.Pod{testPod("a", "10.244.1.2", "n1", false), testPod("b", "10.244.1.3", "n9", false)},
			want: `web-fjord IPv4 ports=[http/TCP/80]
  10.244.1.2 a node=n1 ready=true serving=true terminating=false
  10.244.1.3 b node=n9 ready=false serving=true terminating=false
`,
		},
		{
			name: "left out: no IP, terminating, finished, IPv6 only",
			svc:  testService("web", web, port("http", 80, intstr.FromInt32(80))),
			pods: []*corev1.Pod{
				testPod("noip", "", "n1", true),
				testPod("terminating", "10.244.1.3", "n1", true, func(p *corev1.Pod) { p.DeletionTimestamp = &now }),
				testPod("done", "10.244.1.4", "n1", false, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
				testPod("failed", "10.244.1.5", "n1", false, func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }),
				testPod("v6", "fd00::5", "n1", true),
				testPod("dual", "fd00::6", "n1", true, func(p *corev1.Pod) {
					p.Status.PodIPs = []corev1.PodIP{{IP: "fd00::6"}, {IP: "10.244.1.6"}}
				}),
			},
			want: `web-fjord IPv4 ports=[http/TCP/80]
  10.244.1.6 dual node=n1 ready=true serving=true terminating=false
`,
		},
		{
			name: "multi-port with a named port resolved the same everywhere",
			svc: testService("web", web,
				port("http", 80, intstr.FromString("web")),
				corev1.ServicePort{Name: "dns", Port: 53, TargetPort: intstr.FromInt32(5353), Protocol: corev1.ProtocolUDP}),
			pods: []*corev1.Pod{
				testPod("a", "10.244.1.2", "n1", true, containerPort("web", 8080)),
				testPod("b", "10.244.1.3", "n1", true, containerPort("web", 8080)),
			},
			want: `web-fjord IPv4 ports=[http/TCP/8080 dns/UDP/5353]
  10.244.1.2 a node=n1 ready=true serving=true terminating=false
  10.244.1.3 b node=n1 ready=true serving=true terminating=false
`,
		},
		{
			name: "named port resolving to different numbers splits the slice",
			svc:  testService("web", web, port("http", 80, intstr.FromString("web"))),
			pods: []*corev1.Pod{
				testPod("new", "10.244.1.2", "n1", true, containerPort("web", 9090)),
				testPod("old", "10.244.1.3", "n1", true, containerPort("web", 8080)),
				testPod("old2", "10.244.1.4", "n1", true, containerPort("web", 8080)),
				testPod("unnamed", "10.244.1.5", "n1", true, containerPort("other", 8080)),
			},
			want: `web-fjord-1 IPv4 ports=[]
  10.244.1.5 unnamed node=n1 ready=true serving=true terminating=false
web-fjord-2 IPv4 ports=[http/TCP/8080]
  10.244.1.3 old node=n1 ready=true serving=true terminating=false
  10.244.1.4 old2 node=n1 ready=true serving=true terminating=false
web-fjord-3 IPv4 ports=[http/TCP/9090]
  10.244.1.2 new node=n1 ready=true serving=true terminating=false
`,
		},
		{
			name: "hostname when the pod's subdomain is the service",
			svc:  testService("web", web, port("http", 80, intstr.FromInt32(80))),
			pods: []*corev1.Pod{
				testPod("a", "10.244.1.2", "n1", true, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "web-0", "web" }),
				testPod("b", "10.244.1.3", "n1", true, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "db-0", "db" }),
			},
			want: `web-fjord IPv4 ports=[http/TCP/80]
  10.244.1.2 a node=n1 ready=true serving=true terminating=false hostname=web-0
  10.244.1.3 b node=n1 ready=true serving=true terminating=false
`,
		},
		{
			name: "named port needs the same protocol",
			svc: testService("web", web,
				corev1.ServicePort{Name: "dns", Port: 53, TargetPort: intstr.FromString("dns"), Protocol: corev1.ProtocolUDP},
				port("http", 80, intstr.FromInt32(80))),
			pods: []*corev1.Pod{testPod("a", "10.244.1.2", "n1", true, containerPort("dns", 5353))}, // a TCP port
			want: `web-fjord IPv4 ports=[http/TCP/80]
  10.244.1.2 a node=n1 ready=true serving=true terminating=false
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Desired(tt.svc, tt.pods, live)
			if r := render(got); r != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", r, tt.want)
			}
			for _, es := range got {
				if err := objects.Validate(es); err != nil {
					t.Errorf("slice %s does not validate: %v", es.Name, err)
				}
				if es.Namespace != tt.svc.Namespace || es.Labels[LabelServiceName] != tt.svc.Name || !Managed(es) {
					t.Errorf("slice %s: namespace %q labels %v", es.Name, es.Namespace, es.Labels)
				}
				if len(es.OwnerReferences) != 1 || es.OwnerReferences[0].UID != tt.svc.UID || es.OwnerReferences[0].Kind != "Service" {
					t.Errorf("slice %s: owner references %+v", es.Name, es.OwnerReferences)
				}
				for _, ep := range es.Endpoints {
					if ep.TargetRef.Kind != "Pod" || ep.TargetRef.UID == "" {
						t.Errorf("slice %s: target ref %+v", es.Name, ep.TargetRef)
					}
				}
			}
			// Deterministic: input order does not matter.
			rev := append([]*corev1.Pod(nil), tt.pods...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			if r := render(Desired(tt.svc, rev, live)); r != tt.want {
				t.Errorf("reversed pod order changed the result:\n%s", r)
			}
		})
	}
}
