package servicemap

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Build returns one ServicePort per (Service, port). Headless and
// ExternalName Services have no ServicePorts, nor have Services labelled with
// service.kubernetes.io/service-proxy-name (another proxy's) or
// service.kubernetes.io/headless, as kube-proxy skips them. EndpointSlices belong to the
// Service named by their kubernetes.io/service-name label in the same
// namespace; FQDN slices, and slices labelled service-proxy-name or headless
// (which kube-proxy's informer leaves out), are ignored. An endpoint port is matched to a
// Service port by name and protocol. When slices list the same IP and port
// twice, the slice that sorts first by name wins.
func Build(services []*corev1.Service, endpointSlices []*discoveryv1.EndpointSlice, opts Options) Map {
	b := &builder{opts: opts, m: Map{Ports: make(map[string]ServicePort)}}
	def := opts.DefaultScheduler
	if def == "" {
		def = "random"
	} else if !validScheduler(def) {
		b.problem("Options", "DefaultScheduler", fmt.Sprintf("unknown scheduler %q; using random", def))
		def = "random"
	}
	b.defaultScheduler = def

	bySvc := groupSlices(endpointSlices)
	for _, svc := range services {
		if svc == nil {
			continue
		}
		b.service(svc, bySvc[nsName{svc.Namespace, svc.Name}])
	}
	slicesSortProblems(b.m.Problems)
	return b.m
}

type nsName struct{ ns, name string }

type builder struct {
	opts             Options
	defaultScheduler string
	m                Map
}

func (b *builder) problem(object, field, msg string) {
	b.m.Problems = append(b.m.Problems, Problem{Object: object, Field: field, Message: msg})
}

// groupSlices indexes slices by owning Service, each list sorted by name.
func groupSlices(in []*discoveryv1.EndpointSlice) map[nsName][]*discoveryv1.EndpointSlice {
	out := make(map[nsName][]*discoveryv1.EndpointSlice)
	for _, es := range in {
		if es == nil || es.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		// kube-proxy watches EndpointSlices with the same label selector as
		// Services: a slice labelled for another proxy, or headless, is not ours.
		if _, ok := es.Labels[ServiceProxyNameLabel]; ok {
			continue
		}
		if _, ok := es.Labels[HeadlessLabel]; ok {
			continue
		}
		k := nsName{es.Namespace, svc}
		out[k] = append(out[k], es)
	}
	for _, l := range out {
		slices.SortFunc(l, func(a, b *discoveryv1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	}
	return out
}

func (b *builder) service(svc *corev1.Service, eps []*discoveryv1.EndpointSlice) {
	obj := "Service " + svc.Namespace + "/" + svc.Name
	spec := &svc.Spec
	if spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	if _, ok := svc.Labels[ServiceProxyNameLabel]; ok {
		return
	}
	if _, ok := svc.Labels[HeadlessLabel]; ok {
		return
	}
	clusterIPs := b.clusterIPs(obj, spec)
	if len(clusterIPs) == 0 {
		return // headless
	}
	scheduler := b.defaultScheduler
	if a, ok := svc.Annotations[SchedulerAnnotation]; ok {
		if validScheduler(a) {
			scheduler = a
		} else {
			b.problem(obj, "metadata.annotations["+SchedulerAnnotation+"]",
				fmt.Sprintf("unknown scheduler %q (want one of rr, wrr, lc, wlc, sh, random, maglev); using %s", a, scheduler))
		}
	}
	var weights map[netip.Addr]int
	if a, ok := svc.Annotations[WeightsAnnotation]; ok {
		var bad []string
		weights, bad = parseWeights(a)
		for _, msg := range bad {
			b.problem(obj, "metadata.annotations["+WeightsAnnotation+"]", msg)
		}
	}
	external := b.addrs(obj, "spec.externalIPs", spec.ExternalIPs)
	var lbIPs []netip.Addr
	if spec.Type == corev1.ServiceTypeLoadBalancer {
		var raw []string
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if ing.IP != "" {
				raw = append(raw, ing.IP)
			}
		}
		lbIPs = b.addrs(obj, "status.loadBalancer.ingress[].ip", raw)
	}
	affinity := SessionAffinity{}
	if spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		affinity = SessionAffinity{ClientIP: true, TimeoutSeconds: DefaultAffinityTimeoutSeconds}
		if c := spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			if t := *c.ClientIP.TimeoutSeconds; t > 0 {
				affinity.TimeoutSeconds = t
			} else {
				b.problem(obj, "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
					fmt.Sprintf("%d is not positive; using %d", t, DefaultAffinityTimeoutSeconds))
			}
		}
	}
	trigger := triggerTime(eps)
	for i, p := range spec.Ports {
		proto := Protocol(p.Protocol)
		if proto == "" {
			proto = TCP
		}
		field := fmt.Sprintf("spec.ports[%d]", i)
		if proto != TCP && proto != UDP && proto != SCTP {
			b.problem(obj, field+".protocol", fmt.Sprintf("unsupported protocol %q; port skipped", p.Protocol))
			continue
		}
		if p.Port < 1 || p.Port > 65535 {
			b.problem(obj, field+".port", fmt.Sprintf("%d is not a port; port skipped", p.Port))
			continue
		}
		sp := ServicePort{
			Namespace:                  svc.Namespace,
			Name:                       svc.Name,
			PortName:                   p.Name,
			Protocol:                   proto,
			ClusterIPs:                 slices.Clone(clusterIPs),
			Port:                       uint16(p.Port),
			ExternalIPs:                slices.Clone(external),
			LoadBalancerIPs:            slices.Clone(lbIPs),
			SessionAffinity:            affinity,
			InternalTrafficPolicyLocal: spec.InternalTrafficPolicy != nil && *spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal,
			ExternalTrafficPolicyLocal: spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
			Scheduler:                  scheduler,
		}
		if spec.Type == corev1.ServiceTypeLoadBalancer && sp.ExternalTrafficPolicyLocal {
			if hc := spec.HealthCheckNodePort; hc > 0 && hc <= 65535 {
				sp.HealthCheckNodePort = uint16(hc)
			}
		}
		sp.TriggerTime = trigger
		if spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer {
			if p.NodePort < 0 || p.NodePort > 65535 {
				b.problem(obj, field+".nodePort", fmt.Sprintf("%d is not a port; no NodePort", p.NodePort))
			} else {
				sp.NodePort = uint16(p.NodePort)
			}
		}
		sp.Endpoints = b.endpoints(eps, p.Name, proto, weights)
		key := sp.Key()
		if _, dup := b.m.Ports[key]; dup {
			b.problem(obj, field+".name", fmt.Sprintf("port %q/%s listed twice; the first wins", p.Name, proto))
			continue
		}
		b.m.Ports[key] = sp
	}
}

// triggerTime returns the latest last-change-trigger-time annotation of
// slices; unparsable values are ignored.
func triggerTime(slices []*discoveryv1.EndpointSlice) time.Time {
	var latest time.Time
	for _, es := range slices {
		v, ok := es.Annotations[corev1.EndpointsLastChangeTriggerTime]
		if !ok {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil && t.After(latest) {
			latest = t
		}
	}
	return latest
}

// clusterIPs returns spec.clusterIPs (or spec.clusterIP), nil for headless.
func (b *builder) clusterIPs(obj string, spec *corev1.ServiceSpec) []netip.Addr {
	raw := spec.ClusterIPs
	field := "spec.clusterIPs"
	if len(raw) == 0 && spec.ClusterIP != "" {
		raw = []string{spec.ClusterIP}
		field = "spec.clusterIP"
	}
	if len(raw) == 0 || raw[0] == corev1.ClusterIPNone {
		return nil
	}
	return b.addrs(obj, field, raw)
}

// addrs parses IP addresses, reporting and skipping bad ones, and returns
// them unique and sorted.
func (b *builder) addrs(obj, field string, raw []string) []netip.Addr {
	var out []netip.Addr
	for i, s := range raw {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || a.Zone() != "" {
			b.problem(obj, fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("%q is not an IP address; skipped", s))
			continue
		}
		out = append(out, a.Unmap())
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// endpoints collects the ready or serving endpoints for one Service port.
func (b *builder) endpoints(eps []*discoveryv1.EndpointSlice, portName string, proto Protocol, weights map[netip.Addr]int) []Endpoint {
	seen := make(map[netip.AddrPort]bool)
	var out []Endpoint
	var hints []endpointHints // hints[i] belongs to out[i]
	for _, es := range eps {
		port, ok := slicePort(es, portName, proto)
		if !ok {
			continue
		}
		for i, e := range es.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			ip, err := netip.ParseAddr(e.Addresses[0])
			if err != nil || ip.Zone() != "" {
				b.problem("EndpointSlice "+es.Namespace+"/"+es.Name, fmt.Sprintf("endpoints[%d].addresses[0]", i),
					fmt.Sprintf("%q is not an IP address; endpoint skipped", e.Addresses[0]))
				continue
			}
			ip = ip.Unmap()
			ready := e.Conditions.Ready == nil || *e.Conditions.Ready
			serving := ready
			if e.Conditions.Serving != nil {
				serving = *e.Conditions.Serving
			}
			terminating := e.Conditions.Terminating != nil && *e.Conditions.Terminating
			if !ready && !serving {
				continue
			}
			ap := netip.AddrPortFrom(ip, port)
			if seen[ap] {
				continue
			}
			seen[ap] = true
			ep := Endpoint{IP: ip, Port: port, Ready: ready, Serving: serving, Terminating: terminating, Weight: 1}
			if e.NodeName != nil {
				ep.NodeName = *e.NodeName
			}
			ep.IsLocal = ep.NodeName != "" && ep.NodeName == b.opts.NodeName
			if w, ok := weights[ip]; ok {
				ep.Weight = w
			}
			out = append(out, ep)
			hints = append(hints, hintsOf(e))
		}
	}
	applyTopology(out, hints, b.opts.NodeName, b.opts.NodeZone)
	slices.SortFunc(out, func(a, b Endpoint) int { return a.AddrPort().Compare(b.AddrPort()) })
	return out
}

// slicePort finds the slice's port for a Service port by name and protocol.
func slicePort(es *discoveryv1.EndpointSlice, name string, proto Protocol) (uint16, bool) {
	for _, p := range es.Ports {
		pn := ""
		if p.Name != nil {
			pn = *p.Name
		}
		pp := TCP
		if p.Protocol != nil {
			pp = Protocol(*p.Protocol)
		}
		if pn != name || pp != proto || p.Port == nil || *p.Port < 1 || *p.Port > 65535 {
			continue
		}
		return uint16(*p.Port), true
	}
	return 0, false
}

func slicesSortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Object, b.Object), cmp.Compare(a.Field, b.Field))
	})
}
