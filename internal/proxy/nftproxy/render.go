package nftproxy

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

// svcObjects is everything one service port puts in the table.
type svcObjects struct {
	sp     servicemap.ServicePort
	chains []chainSpec
	sets   []string // affinity sets (type addr, flags dynamic,timeout)
	elems  []elemSpec
}

// render turns one service port into chains, sets and map elements. It
// reads only sp and the settings, so its result can be cached until sp
// changes.
//
// Internal traffic (to the cluster IP) goes to the cluster-policy chain
// svc-…, or with internalTrafficPolicy Local to the local-policy chain
// loc-…. External traffic (NodePort, external and load-balancer IPs) goes
// to ext-…, which masquerades and continues to svc-… (Cluster policy), or
// with externalTrafficPolicy Local lets pods and the node itself through to
// svc-… and sends everyone else, unmasqueraded, to loc-…. Service chains
// pick an endpoint chain ep-…, which marks hairpin traffic for masquerade,
// records ClientIP affinity and DNATs.
func (s *settings) render(sp *servicemap.ServicePort) *svcObjects {
	o := &svcObjects{sp: *sp}
	fam := s.fam
	var cip netip.Addr
	for _, a := range sp.ClusterIPs {
		if fam.has(a) {
			cip = a
			break
		}
	}
	if !cip.IsValid() {
		return o // the service has no address in this family
	}
	hasCIP := !s.excluded(cip)
	var extIPs []netip.Addr
	for _, a := range append(slices.Clone(sp.ExternalIPs), sp.LoadBalancerIPs...) {
		if fam.has(a) && !s.excluded(a) {
			extIPs = append(extIPs, a)
		}
	}
	slices.SortFunc(extIPs, netip.Addr.Compare)
	extIPs = slices.Compact(extIPs)

	proto := strings.ToLower(string(sp.Protocol))
	port := itoa(int(sp.Port))
	clusterEps := s.ofFamily(sp.ClusterEndpoints())
	localEps := s.ofFamily(sp.LocalEndpoints())
	hasEndpoints := len(clusterEps) > 0
	external := sp.NodePort != 0 || len(extIPs) > 0
	etpLocal := sp.ExternalTrafficPolicyLocal && external
	itpLocal := sp.InternalTrafficPolicyLocal

	svcChain := serviceChainName(clusterChainPrefix, sp)
	locChain := serviceChainName(localChainPrefix, sp)
	extChain := serviceChainName(externalChainPrefix, sp)
	internalChain, internalEps := svcChain, clusterEps
	if itpLocal {
		internalChain, internalEps = locChain, localEps
	}
	externalEps := clusterEps
	if etpLocal {
		externalEps = localEps
	}
	usesCluster := hasEndpoints && ((hasCIP && !itpLocal) || external)
	usesLocal := len(localEps) > 0 && ((hasCIP && itpLocal) || etpLocal)
	usesExt := hasEndpoints && external
	comment := readable(sp)

	// Verdict-map elements.
	noEndpoints := func(verdictIfSome string) string {
		if !hasEndpoints {
			return "goto " + rejectChain
		}
		return verdictIfSome
	}
	if hasCIP {
		o.elems = append(o.elems, elemSpec{container: clusterIPsSet, key: []string{cip.String()}})
		key := []string{cip.String(), proto, port}
		if len(internalEps) > 0 {
			o.elems = append(o.elems, elemSpec{container: serviceIPsMap, isMap: true, key: key, value: "goto " + internalChain})
		} else {
			o.elems = append(o.elems, elemSpec{container: noEndpointServicesMap, isMap: true, key: key, value: noEndpoints("drop"), comment: comment})
		}
	}
	for _, a := range extIPs {
		key := []string{a.String(), proto, port}
		if usesExt {
			o.elems = append(o.elems, elemSpec{container: serviceIPsMap, isMap: true, key: key, value: "goto " + extChain})
		}
		if len(externalEps) == 0 {
			o.elems = append(o.elems, elemSpec{container: noEndpointServicesMap, isMap: true, key: key, value: noEndpoints("drop"), comment: comment})
		}
	}
	if sp.NodePort != 0 {
		key := []string{proto, itoa(int(sp.NodePort))}
		if usesExt {
			o.elems = append(o.elems, elemSpec{container: serviceNodePortsMap, isMap: true, key: key, value: "goto " + extChain})
		}
		if len(externalEps) == 0 {
			o.elems = append(o.elems, elemSpec{container: noEndpointNodePortsMap, isMap: true, key: key, value: noEndpoints("drop"), comment: comment})
		}
	}

	// Masquerade traffic to the cluster IP from outside the pod network
	// (or all of it with MasqueradeAll). The daddr match keeps it off
	// external traffic that reaches the same chain.
	userspace := sp.UserspacePort != 0
	var masq []string
	if hasCIP && !userspace { // a redirect delivers locally: nothing to masquerade
		match := s.fam.ip + " daddr " + cip.String() + " " + proto + " dport " + port
		switch {
		case s.masqAll:
			masq = []string{match + " jump " + markMasqChain}
		case s.clusterCIDR.IsValid():
			masq = []string{match + " " + s.fam.ip + " saddr != " + s.clusterCIDR.String() + " jump " + markMasqChain}
		}
	}
	affinity := sp.SessionAffinity.ClientIP && !userspace
	epChain := func(ep servicemap.Endpoint) string { return endpointObjName(endpointChainPrefix, sp, ep.AddrPort()) }
	affSet := func(ep servicemap.Endpoint) string { return endpointObjName(affinitySetPrefix, sp, ep.AddrPort()) }
	dispatch := func(eps []servicemap.Endpoint) []string {
		if userspace {
			return []string{"meta l4proto " + proto + " redirect to :" + itoa(int(sp.UserspacePort))}
		}
		var rules []string
		if affinity {
			for _, ep := range eps {
				rules = append(rules, s.fam.ip+" saddr @"+affSet(ep)+" goto "+epChain(ep))
			}
		}
		return append(rules, s.dispatchRules(sp, eps, epChain)...)
	}

	if usesCluster {
		var rules []string
		if internalChain == svcChain {
			rules = append(rules, masq...)
		}
		o.chains = append(o.chains, chainSpec{name: svcChain, rules: append(rules, dispatch(clusterEps)...)})
	}
	if usesLocal {
		var rules []string
		if internalChain == locChain {
			rules = append(rules, masq...)
		}
		o.chains = append(o.chains, chainSpec{name: locChain, rules: append(rules, dispatch(localEps)...)})
	}
	if usesExt {
		var rules []string
		if !etpLocal {
			rules = []string{"jump " + markMasqChain, "goto " + svcChain}
		} else {
			if s.clusterCIDR.IsValid() {
				// Pods reach external IPs and NodePorts as if through an
				// outside load balancer: any endpoint, source kept.
				rules = append(rules, s.fam.ip+" saddr "+s.clusterCIDR.String()+" goto "+svcChain)
			}
			// The node itself: its source address is local, so masquerade.
			rules = append(rules,
				"fib saddr type local jump "+markMasqChain,
				"fib saddr type local goto "+svcChain)
			if len(localEps) > 0 {
				rules = append(rules, "goto "+locChain)
			}
			// Otherwise fall through: @no-endpoint-* drops it.
		}
		o.chains = append(o.chains, chainSpec{name: extChain, rules: rules})
	}

	// Endpoint chains of the endpoints either policy chain uses.
	if !userspace {
		var eps []servicemap.Endpoint
		if usesCluster {
			eps = append(eps, clusterEps...)
		}
		if usesLocal {
			eps = append(eps, localEps...)
		}
		slices.SortFunc(eps, func(a, b servicemap.Endpoint) int { return a.AddrPort().Compare(b.AddrPort()) })
		eps = slices.CompactFunc(eps, func(a, b servicemap.Endpoint) bool { return a.AddrPort() == b.AddrPort() })
		for _, ep := range eps {
			rules := []string{s.fam.ip + " saddr " + ep.IP.String() + " jump " + markMasqChain}
			if affinity {
				rules = append(rules, "update @"+affSet(ep)+" { "+s.fam.ip+" saddr timeout "+itoa(int(sp.SessionAffinity.TimeoutSeconds))+"s }")
				o.sets = append(o.sets, affSet(ep))
			}
			rules = append(rules, "meta l4proto "+proto+" dnat to "+ep.AddrPort().String())
			o.chains = append(o.chains, chainSpec{name: epChain(ep), rules: rules})
		}
	}
	return o
}

// ofFamily keeps the endpoints of the Proxier's family.
func (s *settings) ofFamily(eps []servicemap.Endpoint) []servicemap.Endpoint {
	return slices.DeleteFunc(eps, func(ep servicemap.Endpoint) bool { return !s.fam.has(ep.IP) })
}
