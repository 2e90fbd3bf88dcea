package conntrack

import (
	"net/netip"
	"testing"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
func ip(s string) netip.Addr     { return netip.MustParseAddr(s) }

func TestSelectorMatches(t *testing.T) {
	// A client's DNS flow to the service, DNATed to endpoint 10.244.1.5.
	dns := Flow{Protocol: ProtoUDP, OrigSrc: ap("10.244.2.7:40000"), OrigDst: ap("10.96.0.10:53"), ReplySrc: ap("10.244.1.5:53")}
	// The same through a node port.
	nodePort := Flow{Protocol: ProtoUDP, OrigSrc: ap("198.18.0.9:40000"), OrigDst: ap("198.18.0.1:30053"), ReplySrc: ap("10.244.1.5:53")}
	tcp := dns // answered: established
	tcp.Protocol, tcp.TCPState = ProtoTCP, 3
	synSent := tcp // never answered
	synSent.TCPState = TCPSynSent
	v6 := Flow{Protocol: ProtoUDP, OrigSrc: ap("[fd00::7]:40000"), OrigDst: ap("[fd00:96::10]:53"), ReplySrc: ap("[fd00:244::5]:53")}
	mapped := Flow{Protocol: ProtoUDP, OrigSrc: ap("[::ffff:10.244.2.7]:1"), OrigDst: ap("[::ffff:10.96.0.10]:53"), ReplySrc: ap("[::ffff:10.244.1.5]:53")}

	tests := []struct {
		name string
		sel  Selector
		flow Flow
		want bool
	}{
		{"service endpoint", ServiceEndpoint(ip("10.96.0.10"), 53, ip("10.244.1.5")), dns, true},
		{"other endpoint kept", ServiceEndpoint(ip("10.96.0.10"), 53, ip("10.244.1.6")), dns, false},
		{"other service port kept", ServiceEndpoint(ip("10.96.0.10"), 5353, ip("10.244.1.5")), dns, false},
		{"other service kept", ServiceEndpoint(ip("10.96.0.11"), 53, ip("10.244.1.5")), dns, false},
		{"a UDP selector never picks TCP", ServiceEndpoint(ip("10.96.0.10"), 53, ip("10.244.1.5")), synSent, false},
		{"tcp never answered", ServiceEndpoint(ip("10.96.0.10"), 53, ip("10.244.1.5")).TCP(), synSent, true},
		{"tcp answered is kept", ServiceEndpoint(ip("10.96.0.10"), 53, ip("10.244.1.5")).TCP(), tcp, false},
		{"tcp other endpoint kept", ServiceEndpoint(ip("10.96.0.10"), 53, ip("10.244.1.6")).TCP(), synSent, false},
		{"tcp node port never answered", NodePortEndpoint(30053, ip("10.244.1.5")).TCP(), func() Flow { f := nodePort; f.Protocol, f.TCPState = ProtoTCP, TCPSynSent; return f }(), true},
		{"a TCP selector never picks UDP", ServiceEndpoint(ip("10.96.0.10"), 53, ip("10.244.1.5")).TCP(), dns, false},
		{"node port endpoint", NodePortEndpoint(30053, ip("10.244.1.5")), nodePort, true},
		{"node port other endpoint", NodePortEndpoint(30053, ip("10.244.1.6")), nodePort, false},
		{"node port does not match the cluster IP flow", NodePortEndpoint(30053, ip("10.244.1.5")), dns, false},
		{"service IP any port", ServiceIP(ip("10.96.0.10"), 0), dns, true},
		{"service IP and port", ServiceIP(ip("10.96.0.10"), 53), dns, true},
		{"service IP other port", ServiceIP(ip("10.96.0.10"), 54), dns, false},
		{"ipv6", ServiceEndpoint(ip("fd00:96::10"), 53, ip("fd00:244::5")), v6, true},
		{"v4 selector on a v6 flow", ServiceEndpoint(ip("10.96.0.10"), 53, ip("10.244.1.5")), v6, false},
		{"v4-mapped addresses compare as v4", ServiceEndpoint(ip("10.96.0.10"), 53, ip("10.244.1.5")), mapped, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.sel.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := tt.sel.Matches(tt.flow); got != tt.want {
				t.Errorf("%v matches %v = %v, want %v", tt.sel, tt.flow, got, tt.want)
			}
		})
	}
}

func TestSelectorValidate(t *testing.T) {
	bad := []Selector{
		{},
		{OrigDstPort: 53},
		ServiceEndpoint(ip("10.96.0.10"), 53, ip("fd00::5")),
		{Protocol: 132, OrigDst: ip("10.96.0.10")},
	}
	for _, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("%v: accepted", s)
		}
	}
	if err := ValidateAll(append(bad, ServiceIP(ip("10.96.0.10"), 0))); err == nil {
		t.Error("ValidateAll accepted bad selectors")
	}
	if ServiceEndpoint(ip("10.96.0.10"), 53, ip("10.244.1.5")).IPv6() || !NodePortEndpoint(1, ip("fd00::1")).IPv6() {
		t.Error("IPv6 reports the wrong family")
	}
}
