package controller

import (
	"crypto/tls"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/fjord-net/fjord/internal/ingress/nginxconf"
	"github.com/fjord-net/fjord/internal/ingress/proxy"
	"github.com/fjord-net/fjord/internal/ingress/route"
)

// Input is everything a Snapshot is built from.
type Input struct {
	Ingresses      []*networkingv1.Ingress
	IngressClasses []*networkingv1.IngressClass
	Services       []*corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
	Secrets        []*corev1.Secret
	Config         nginxconf.Config

	Class           string   // the controller's own class name
	ControllerNames []string // IngressClass spec.controller values served
}

// Build turns the cluster state into a Snapshot. problems describe input
// that could not be used (conflicting or invalid Ingress rules, missing
// Services or ports, bad TLS Secrets), sorted by kind of problem; they do
// not stop the rest from being served. loadCert parses a TLS Secret
// (certCache.get caches it).
func Build(in Input, loadCert func(*corev1.Secret) (*tls.Certificate, error)) (snap *proxy.Snapshot, problems []string) {
	sel := classSelector(in.Class, in.ControllerNames, in.IngressClasses)
	table := route.BuildSelected(in.Ingresses, sel.Selects)
	problems = append(problems, table.Conflicts...)
	problems = append(problems, table.Skipped...)

	services := map[string]*corev1.Service{}
	for _, s := range in.Services {
		services[s.Namespace+"/"+s.Name] = s
	}
	idx := indexSlices(in.EndpointSlices)
	ups := map[proxy.UpstreamKey]proxy.Upstream{}
	for _, b := range table.Backends() {
		eps, err := readyEndpoints(b, services[b.Namespace+"/"+b.Service], idx)
		if err != nil {
			problems = append(problems, err.Error())
		}
		ups[proxy.KeyOf(b)] = proxy.Upstream{Endpoints: eps}
	}

	secrets := map[string]*corev1.Secret{}
	for _, s := range in.Secrets {
		secrets[s.Namespace+"/"+s.Name] = s
	}
	certs := map[proxy.SecretRef]*tls.Certificate{}
	for _, ref := range table.TLSSecrets() {
		s := secrets[ref.Namespace+"/"+ref.Name]
		if s == nil {
			problems = append(problems, "tls secret "+ref.Namespace+"/"+ref.Name+" not found; the default certificate is used")
			continue
		}
		cert, err := loadCert(s)
		if err != nil {
			problems = append(problems, err.Error()+"; the default certificate is used")
			continue
		}
		certs[proxy.SecretRef{Namespace: ref.Namespace, Name: ref.Name}] = cert
	}
	return &proxy.Snapshot{Routes: table, Upstreams: ups, Certs: certs, Config: in.Config}, problems
}
