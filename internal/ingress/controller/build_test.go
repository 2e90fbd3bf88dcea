package controller

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/fjord-net/fjord/internal/ingress/ingresstest"
	"github.com/fjord-net/fjord/internal/ingress/nginxconf"
	"github.com/fjord-net/fjord/internal/ingress/proxy"
	"github.com/fjord-net/fjord/internal/ingress/route"
)

func ptr[T any](v T) *T { return &v }

func ing(name, class string, annotations map[string]string, host, svc string, port networkingv1.ServiceBackendPort) *networkingv1.Ingress {
	i := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Annotations: annotations}}
	if class != "" {
		i.Spec.IngressClassName = ptr(class)
	}
	i.Spec.Rules = []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
		Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr(networkingv1.PathTypePrefix), Backend: networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: svc, Port: port}}}},
	}}}}
	return i
}

func service(name string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: corev1.ServiceSpec{Ports: ports}}
}

type ep struct {
	addr  string
	ready *bool
}

func slice(svc, name string, ports map[string]int32, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for n, p := range ports {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr(n), Port: ptr(p), Protocol: ptr(corev1.ProtocolTCP)})
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{e.addr}, Conditions: discoveryv1.EndpointConditions{Ready: e.ready}})
	}
	return s
}

func names(snap *proxy.Snapshot, host string) string {
	b, ok := snap.Routes.Match(host, "/")
	if !ok {
		return "none"
	}
	return b.IngressName
}

func TestBuildSelectsIngressesByClass(t *testing.T) {
	port := networkingv1.ServiceBackendPort{Number: 80}
	ings := []*networkingv1.Ingress{
		ing("by-name", "nginx", nil, "a.example", "s", port),
		ing("other-class", "traefik", nil, "b.example", "s", port),
		ing("legacy", "", map[string]string{route.LegacyClassAnnotation: "nginx"}, "c.example", "s", port),
		ing("unclassed", "", nil, "d.example", "s", port),
		ing("via-class-object", "fjord", nil, "e.example", "s", port),
	}
	for _, tc := range []struct {
		name    string
		classes []*networkingv1.IngressClass
		want    string
	}{
		{"no IngressClass objects", nil, "a:by-name b:none c:legacy d:none e:none"},
		{"nginx is the default class", []*networkingv1.IngressClass{
			{ObjectMeta: metav1.ObjectMeta{Name: "nginx", Annotations: map[string]string{DefaultClassAnnotation: "true"}}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}},
		}, "a:by-name b:none c:legacy d:unclassed e:none"},
		{"a class of fjord's controller is served too", []*networkingv1.IngressClass{
			{ObjectMeta: metav1.ObjectMeta{Name: "fjord"}, Spec: networkingv1.IngressClassSpec{Controller: "fjord.dev/ingress"}},
			{ObjectMeta: metav1.ObjectMeta{Name: "traefik", Annotations: map[string]string{DefaultClassAnnotation: "true"}}, Spec: networkingv1.IngressClassSpec{Controller: "traefik.io/ingress-controller"}},
		}, "a:by-name b:none c:legacy d:none e:via-class-object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap, _ := Build(Input{Ingresses: ings, IngressClasses: tc.classes, Config: nginxconf.Defaults(1), Class: "nginx", ControllerNames: DefaultControllerNames}, parseTLSSecret)
			var got []string
			for _, h := range []string{"a", "b", "c", "d", "e"} {
				got = append(got, h+":"+names(snap, h+".example"))
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("got  %s\nwant %s", g, tc.want)
			}
		})
	}
}

func TestBuildResolvesReadyEndpointsPerServicePort(t *testing.T) {
	ings := []*networkingv1.Ingress{
		ing("by-name", "nginx", nil, "name.example", "web", networkingv1.ServiceBackendPort{Name: "http"}),
		ing("by-number", "nginx", nil, "num.example", "web", networkingv1.ServiceBackendPort{Number: 8443}),
		ing("no-port", "nginx", nil, "noport.example", "web", networkingv1.ServiceBackendPort{Number: 9}),
		ing("no-svc", "nginx", nil, "nosvc.example", "missing", networkingv1.ServiceBackendPort{Number: 80}),
	}
	svcs := []*corev1.Service{service("web",
		corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)},
		corev1.ServicePort{Name: "https", Port: 8443, TargetPort: intstr.FromString("tls")},
	)}
	slices_ := []*discoveryv1.EndpointSlice{
		slice("web", "web-1", map[string]int32{"http": 8080, "https": 9443}, ep{"10.0.0.1", ptr(true)}, ep{"10.0.0.2", nil}, ep{"10.0.0.3", ptr(false)}),
		slice("web", "web-2", map[string]int32{"http": 8080}, ep{"10.0.0.4", ptr(true)}, ep{"10.0.0.1", ptr(true)}),
		slice("other", "other-1", map[string]int32{"http": 1}, ep{"10.9.9.9", ptr(true)}),
	}
	snap, problems := Build(Input{Ingresses: ings, Services: svcs, EndpointSlices: slices_, Config: nginxconf.Defaults(1), Class: "nginx"}, parseTLSSecret)
	get := func(svc string, p route.Port) string {
		return fmt.Sprint(snap.Upstreams[proxy.UpstreamKey{Namespace: "ns", Service: svc, Port: p}].Endpoints)
	}
	if got, want := get("web", route.Port{Name: "http"}), "[10.0.0.1:8080 10.0.0.2:8080 10.0.0.4:8080]"; got != want {
		t.Errorf("web:http = %s, want %s", got, want)
	}
	if got, want := get("web", route.Port{Number: 8443}), "[10.0.0.1:9443 10.0.0.2:9443]"; got != want {
		t.Errorf("web:8443 = %s, want %s", got, want)
	}
	if got := get("web", route.Port{Number: 9}); got != "[]" {
		t.Errorf("web:9 = %s, want none", got)
	}
	for _, want := range []string{"service ns/web has no port 9", "service ns/missing not found"} {
		if !slices.Contains(problems, want) {
			t.Errorf("problems %q lack %q", problems, want)
		}
	}
	if len(snap.Upstreams) != 4 {
		t.Errorf("upstreams for %d backends, want 4 (only those routed to)", len(snap.Upstreams))
	}
}

func TestBuildLoadsTLSSecretsAndReportsBadOnes(t *testing.T) {
	crt, key := ingresstest.CertPEM(t, "a.example")
	withTLS := func(name, host, secret string) *networkingv1.Ingress {
		i := ing(name, "nginx", nil, host, "s", networkingv1.ServiceBackendPort{Number: 80})
		i.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{host}, SecretName: secret}}
		return i
	}
	secrets := []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "good"}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": crt, "tls.key": key}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "bad"}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": crt, "tls.key": []byte("junk")}},
	}
	snap, problems := Build(Input{
		Ingresses: []*networkingv1.Ingress{withTLS("a", "a.example", "good"), withTLS("b", "b.example", "bad"), withTLS("c", "c.example", "absent")},
		Secrets:   secrets, Config: nginxconf.Defaults(1), Class: "nginx",
	}, parseTLSSecret)
	if c := snap.Certs[proxy.SecretRef{Namespace: "ns", Name: "good"}]; c == nil {
		t.Error("good secret not loaded")
	} else if _, err := tls.X509KeyPair(crt, key); err != nil {
		t.Error(err)
	}
	if len(snap.Certs) != 1 {
		t.Errorf("%d certificates loaded, want 1", len(snap.Certs))
	}
	text := strings.Join(problems, "\n")
	for _, want := range []string{"secret ns/bad:", "tls secret ns/absent not found"} {
		if !strings.Contains(text, want) {
			t.Errorf("problems lack %q:\n%s", want, text)
		}
	}
}
