package nftproxy

import (
	"net/netip"
	"strings"

	"sigs.k8s.io/knftables"
)

// The table's fixed objects. Packets enter through the base chains:
//
//	nat-prerouting, nat-output (dstnat) -> services: dispatch by
//	    @service-ips (daddr . proto . port) and, for node addresses,
//	    @service-nodeports (proto . port) to a service port's chains
//	nat-postrouting (srcnat) -> masquerading: masquerade packets that
//	    mark-for-masquerade marked
//	filter-input (filter), new connections to the userspace proxy's
//	    port range that no fjord redirect sent there: drop
//	filter-input, filter-forward, filter-output (filter), new
//	    connections -> service-endpoints-check / nodeport-endpoints-check:
//	    reject or drop by @no-endpoint-services / @no-endpoint-nodeports,
//	    reject what is still addressed to a cluster IP (a port the
//	    service does not have) and drop what is addressed to the rest of
//	    the service range (ServiceCIDRs)
const (
	natPreroutingChain          = "nat-prerouting"
	natOutputChain              = "nat-output"
	natPostroutingChain         = "nat-postrouting"
	filterInputChain            = "filter-input"
	filterForwardChain          = "filter-forward"
	filterOutputChain           = "filter-output"
	servicesChain               = "services"
	masqueradingChain           = "masquerading"
	markMasqChain               = "mark-for-masquerade"
	serviceEndpointsCheckChain  = "service-endpoints-check"
	nodePortEndpointsCheckChain = "nodeport-endpoints-check"
	rejectChain                 = "reject-chain"

	clusterIPsSet          = "cluster-ips"
	nodePortIPsSet         = "nodeport-ips"
	serviceIPsMap          = "service-ips"
	serviceNodePortsMap    = "service-nodeports"
	noEndpointServicesMap  = "no-endpoint-services"
	noEndpointNodePortsMap = "no-endpoint-nodeports"
)

// baseChain is the hook of a base chain.
type baseChain struct {
	typ  knftables.BaseChainType
	hook knftables.BaseChainHook
	prio knftables.BaseChainPriority
}

// chainSpec is a chain and its rules as nftproxy writes it.
type chainSpec struct {
	name  string
	base  *baseChain // nil for a regular chain
	rules []string
}

// containerSpec is a set or map.
type containerSpec struct {
	name    string
	isMap   bool
	typ     string
	flags   []knftables.SetFlag
	comment string
}

// elemSpec is an element of a set (value "") or map.
type elemSpec struct {
	container string
	isMap     bool
	key       []string
	value     string
	comment   string
}

// layout is the table's fixed part for one configuration.
type layout struct {
	chains     []chainSpec
	containers []containerSpec
	elems      []elemSpec
}

func (s *settings) layout() layout {
	ip := s.fam.ip
	var l layout
	const serviceDNATPriority = knftables.DNATPriority + "-10"
	base := func(name string, typ knftables.BaseChainType, hook knftables.BaseChainHook, prio knftables.BaseChainPriority, rules ...string) {
		l.chains = append(l.chains, chainSpec{name: name, base: &baseChain{typ, hook, prio}, rules: rules})
	}
	chain := func(name string, rules ...string) {
		l.chains = append(l.chains, chainSpec{name: name, rules: rules})
	}
	// Service DNAT runs just before everyone else's (dstnat - 10): the Service range
	// is local on the node, so a host-local DNAT of someone else's (the portmap
	// plugin's hostPort rules match any local address) would otherwise take a
	// Service's traffic whenever a hostPort equals a Service port. At the same hook
	// the first NAT decision wins.
	//
	// A Service IP that this sync did not DNAT (no such Service or port, no
	// endpoints) gets an identity DNAT: at one hook the first NAT decision wins, so
	// nobody else's DNAT (portmap's, again) can take it, and the filter chains below
	// reject or drop it as they should. An identity mapping does not set
	// `ct status dnat`.
	natRules := []string{"jump " + servicesChain}
	if len(s.serviceCIDRs) > 0 {
		natRules = append(natRules, ip+" daddr "+cidrSet(s.serviceCIDRs)+" dnat to "+ip+" daddr")
	}
	base(natPreroutingChain, knftables.NATType, knftables.PreroutingHook, serviceDNATPriority, natRules...)
	base(natOutputChain, knftables.NATType, knftables.OutputHook, serviceDNATPriority, natRules...)
	base(natPostroutingChain, knftables.NATType, knftables.PostroutingHook, knftables.SNATPriority, "jump "+masqueradingChain)
	var inputRules []string
	if u := s.userspace; u[0] != 0 {
		// A redirect is a DNAT to a local address: conntrack marks it.
		inputRules = append(inputRules, "ct state new meta l4proto { tcp, udp } th dport "+itoa(int(u[0]))+"-"+itoa(int(u[1]))+" ct status & dnat == 0 drop")
	}
	if !s.noNodePorts {
		inputRules = append(inputRules, "ct state new jump "+nodePortEndpointsCheckChain)
	}
	base(filterInputChain, knftables.FilterType, knftables.InputHook, knftables.FilterPriority,
		append(inputRules, "ct state new jump "+serviceEndpointsCheckChain)...)
	base(filterForwardChain, knftables.FilterType, knftables.ForwardHook, knftables.FilterPriority,
		"ct state new jump "+serviceEndpointsCheckChain)
	base(filterOutputChain, knftables.FilterType, knftables.OutputHook, knftables.FilterPriority,
		"ct state new jump "+serviceEndpointsCheckChain)

	// Node addresses that take NodePorts: the configured ones, or every
	// local address but loopback.
	nodeAddrs := "fib daddr type local " + ip + " daddr != " + s.fam.loopback
	if len(s.nodeIPs) > 0 {
		nodeAddrs = ip + " daddr @" + nodePortIPsSet
	}
	services := []string{ip + " daddr . meta l4proto . th dport vmap @" + serviceIPsMap}
	nodePortCheck := []string{nodeAddrs + " meta l4proto . th dport vmap @" + noEndpointNodePortsMap}
	if s.noNodePorts {
		nodePortCheck = nil
	} else {
		services = append(services, nodeAddrs+" meta l4proto . th dport vmap @"+serviceNodePortsMap)
	}
	chain(servicesChain, services...)
	masq := []string{"meta mark & " + s.mark + " == 0 return", "meta mark set meta mark ^ " + s.mark}
	if len(s.nodeIPs) > 0 {
		// A connection from this node that already carries the node's own address
		// (a host-network client; curl --interface) keeps it: every node routes it
		// back, and the endpoint sees the real client (kube-proxy's result on
		// networks whose routes leave by the node address; fjord's leave by the
		// vxlan device, whose address masquerade would pick instead).
		masq = append(masq, ip+" saddr "+addrSet(s.nodeIPs)+" return")
	}
	chain(masqueradingChain, append(masq, "masquerade fully-random")...)
	chain(markMasqChain, "meta mark set meta mark | "+s.mark)
	check := []string{
		ip + " daddr . meta l4proto . th dport vmap @" + noEndpointServicesMap,
		ip + " daddr @" + clusterIPsSet + " goto " + rejectChain,
	}
	if len(s.serviceCIDRs) > 0 {
		check = append(check, ip+" daddr "+cidrSet(s.serviceCIDRs)+" drop")
	}
	chain(serviceEndpointsCheckChain, check...)
	if len(nodePortCheck) > 0 {
		chain(nodePortEndpointsCheckChain, nodePortCheck...)
	}
	chain(rejectChain,
		"meta l4proto tcp reject with tcp reset",
		"reject")

	addr := s.fam.addrType
	l.containers = []containerSpec{
		{name: clusterIPsSet, typ: addr, comment: "cluster IPs of services this node proxies"},
		{name: serviceIPsMap, isMap: true, typ: addr + " . inet_proto . inet_service : verdict", comment: "cluster, external and load-balancer IPs"},
		{name: serviceNodePortsMap, isMap: true, typ: "inet_proto . inet_service : verdict", comment: "NodePorts"},
		{name: noEndpointServicesMap, isMap: true, typ: addr + " . inet_proto . inet_service : verdict", comment: "reject or drop: service IPs without endpoints"},
		{name: noEndpointNodePortsMap, isMap: true, typ: "inet_proto . inet_service : verdict", comment: "reject or drop: NodePorts without endpoints"},
	}
	if len(s.nodeIPs) > 0 && !s.noNodePorts {
		l.containers = append(l.containers, containerSpec{name: nodePortIPsSet, typ: addr, comment: "node addresses that take NodePorts"})
		for _, a := range s.nodeIPs {
			l.elems = append(l.elems, elemSpec{container: nodePortIPsSet, key: []string{a.String()}})
		}
	}
	return l
}

// cidrSet renders prefixes as an anonymous nftables set.
func cidrSet(ps []netip.Prefix) string {
	cidrs := make([]string, len(ps))
	for i, p := range ps {
		cidrs[i] = p.String()
	}
	return "{ " + strings.Join(cidrs, ", ") + " }"
}

// addrSet renders addresses as an anonymous nftables set.
func addrSet(as []netip.Addr) string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return "{ " + strings.Join(out, ", ") + " }"
}
