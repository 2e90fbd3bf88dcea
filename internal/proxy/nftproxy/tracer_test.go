package nftproxy

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
)

// tracer follows the first packet of a connection through the fake's
// table, interpreting the rule forms nftproxy writes (and failing the test
// on any other). It models netfilter only as far as this table needs:
//
//	arriving packet:  nat prerouting -> route -> filter input (local dst)
//	                  or filter forward + nat postrouting
//	local packet:     nat output -> filter output -> nat postrouting
//
// Base chains of a hook run in priority order. numgen and jhash verdict
// maps take the index pick returns. Affinity sets live in the tracer, so
// several traces model several connections. For per-endpoint dispatch
// rules, pick chooses the endpoint: "numgen random" rules fail until the
// picked one, "jhash ... == i" rules compare against the picked hash.
type tracer struct {
	t     *testing.T
	table *knftables.FakeTable
	local []netip.Addr // the node's addresses ("fib ... type local")
	// pick chooses the numgen/jhash index in [0, n).
	pick     func(n int) int
	affinity map[string]map[netip.Addr]bool
}

type packet struct {
	src, dst netip.AddrPort
	proto    string // tcp, udp or sctp
	local    bool   // sent by a process on this node
}

type trace struct {
	verdict string         // accept, drop or reject
	dnat    netip.AddrPort // valid when DNATed
	// identityNAT: the packet got the identity mapping (no one else's DNAT may
	// take it; ct status dnat stays unset).
	identityNAT bool
	redirect    uint16   // port, when redirected to this node
	masq        bool     // masqueraded in postrouting
	chains      []string // chains entered, in order
}

func (tr trace) String() string {
	s := tr.verdict
	if tr.dnat.IsValid() {
		s += " dnat " + tr.dnat.String()
	}
	if tr.redirect != 0 {
		s += " redirect :" + strconv.Itoa(int(tr.redirect))
	}
	if tr.identityNAT {
		s += " nat-held"
	}
	if tr.masq {
		s += " masquerade"
	}
	return s
}

func newTracer(t *testing.T, fake *knftables.Fake) *tracer {
	return &tracer{t: t, table: fake.Table, local: []netip.Addr{nodeIP, addr("127.0.0.1")}, pick: func(int) int { return 0 }, affinity: map[string]map[netip.Addr]bool{}}
}

// state is a packet in flight.
type state struct {
	src, dst netip.AddrPort
	proto    string
	mark     uint32
	res      trace
	// Per-endpoint dispatch rules in the current chain: the endpoint the
	// tracer picked (-1: not yet) and how many such rules were passed;
	// the source hash (-1: not yet).
	target, passed, hash int
}

func (tr *tracer) trace(p packet) trace {
	tr.t.Helper()
	s := &state{src: p.src, dst: p.dst, proto: p.proto}
	hook := knftables.PreroutingHook
	if p.local {
		hook = knftables.OutputHook
	}
	if v := tr.hook(s, knftables.NATType, hook); v != "accept" {
		s.res.verdict = v
		return s.res
	}
	var filterHook knftables.BaseChainHook
	post := true
	switch {
	case p.local:
		filterHook = knftables.OutputHook
	case s.res.redirect != 0 || tr.isLocal(s.dst.Addr()):
		filterHook, post = knftables.InputHook, false
	default:
		filterHook = knftables.ForwardHook
	}
	if v := tr.hook(s, knftables.FilterType, filterHook); v != "accept" {
		s.res.verdict = v
		return s.res
	}
	if post {
		if v := tr.hook(s, knftables.NATType, knftables.PostroutingHook); v != "accept" {
			s.res.verdict = v
			return s.res
		}
	}
	s.res.verdict = "accept"
	return s.res
}

// hook runs the base chains of one hook; the verdict is accept, drop or
// reject.
func (tr *tracer) hook(s *state, typ knftables.BaseChainType, hook knftables.BaseChainHook) string {
	var chains []*knftables.FakeChain
	for _, c := range tr.table.Chains {
		if c.Type != nil && *c.Type == typ && *c.Hook == hook {
			chains = append(chains, c)
		}
	}
	slices.SortFunc(chains, func(a, b *knftables.FakeChain) int {
		pa, _ := knftables.ParsePriority(knftables.IPv4Family, string(*a.Priority))
		pb, _ := knftables.ParsePriority(knftables.IPv4Family, string(*b.Priority))
		return cmp.Compare(pa, pb)
	})
	for _, c := range chains {
		switch v := tr.chain(s, c.Name, 0); v {
		case "", "accept":
		default:
			return v
		}
	}
	return "accept"
}

// chain runs a chain; "" means it fell off the end or returned.
func (tr *tracer) chain(s *state, name string, depth int) string {
	if depth > 16 {
		tr.t.Fatalf("chain depth exceeded at %s", name)
	}
	c := tr.table.Chains[name]
	if c == nil {
		tr.t.Fatalf("no chain %q", name)
	}
	s.res.chains = append(s.res.chains, name)
	s.target, s.passed, s.hash = -1, 0, -1
	for _, r := range c.Rules {
		verdict, target := tr.rule(s, r.Rule)
		switch verdict {
		case "", "next":
			continue
		case "jump":
			if v := tr.chain(s, target, depth+1); v != "" {
				return v
			}
		case "goto":
			return tr.chain(s, target, depth+1)
		case "return":
			return ""
		default:
			return verdict
		}
	}
	return ""
}

// rule evaluates one rule. verdict is "" when a match failed, "next" when
// the rule matched without a verdict, or jump/goto (with target), return,
// accept, drop or reject.
func (tr *tracer) rule(s *state, rule string) (verdict, target string) {
	toks := strings.Fields(rule)
	i := 0
	next := func() string {
		if i >= len(toks) {
			tr.t.Fatalf("rule ends early: %q", rule)
		}
		i++
		return toks[i-1]
	}
	expect := func(want ...string) {
		for _, w := range want {
			if got := next(); got != w {
				tr.t.Fatalf("rule %q: got %q, want %q", rule, got, w)
			}
		}
	}
	for i < len(toks) {
		tok := next()
		switch tok {
		case "ip":
			field := next()
			if i < len(toks) && toks[i] == "." {
				// ip daddr . meta l4proto . th dport vmap @map
				expect(".", "meta", "l4proto", ".", "th", "dport", "vmap")
				key := s.dst.Addr().String() + " . " + s.proto + " . " + strconv.Itoa(int(s.dst.Port()))
				return tr.vmapLookup(next(), key)
			}
			a := s.src.Addr()
			if field == "daddr" {
				a = s.dst.Addr()
			}
			neg := false
			arg := next()
			if arg == "!=" {
				neg, arg = true, next()
			}
			if arg == "{" { // anonymous set of prefixes: { p1, p2 }
				in := false
				for tok := next(); tok != "}"; tok = next() {
					in = in || tr.match(a, strings.TrimSuffix(tok, ","))
				}
				if in == neg {
					return "", ""
				}
				continue
			}
			if tr.match(a, arg) == neg {
				return "", ""
			}
		case "meta":
			switch next() {
			case "l4proto":
				if toks[i] == "." {
					expect(".", "th", "dport", "vmap")
					return tr.vmapLookup(next(), s.proto+" . "+strconv.Itoa(int(s.dst.Port())))
				}
				if toks[i] == "{" { // meta l4proto { tcp, udp }
					in := false
					next()
					for tok := next(); tok != "}"; tok = next() {
						in = in || strings.TrimSuffix(tok, ",") == s.proto
					}
					if !in {
						return "", ""
					}
					continue
				}
				if next() != s.proto {
					return "", ""
				}
			case "mark":
				switch next() {
				case "&": // meta mark & M == V
					m, v := parseUint(tr.t, next()), uint32(0)
					expect("==")
					v = parseUint(tr.t, next())
					if s.mark&m != v {
						return "", ""
					}
				case "set": // meta mark set meta mark (|,^) M
					expect("meta", "mark")
					op, m := next(), parseUint(tr.t, next())
					if op == "|" {
						s.mark |= m
					} else {
						s.mark ^= m
					}
				}
			}
		case "tcp", "udp", "sctp":
			expect("dport")
			if tok != s.proto || next() != strconv.Itoa(int(s.dst.Port())) {
				return "", ""
			}
		case "fib":
			field := next()
			expect("type", "local")
			a := s.src.Addr()
			if field == "daddr" {
				a = s.dst.Addr()
			}
			if !tr.isLocal(a) {
				return "", ""
			}
		case "th": // th dport FIRST-LAST
			expect("dport")
			lo, hi, _ := strings.Cut(next(), "-")
			first, _ := strconv.Atoi(lo)
			last, _ := strconv.Atoi(hi)
			if p := int(s.dst.Port()); p < first || p > last {
				return "", ""
			}
		case "ct":
			if toks[i] == "status" { // ct status & dnat == 0
				expect("status", "&", "dnat", "==", "0")
				if s.res.dnat.IsValid() || s.res.redirect != 0 {
					return "", ""
				}
				continue
			}
			expect("state", "new") // traces are of new connections
		case "numgen", "jhash":
			if tok == "numgen" {
				next() // random | inc
			} else {
				expect("ip", "saddr")
			}
			expect("mod")
			n, _ := strconv.Atoi(next())
			if tok == "jhash" {
				expect("seed")
				next()
			}
			if op := next(); op != "vmap" {
				// One rule per endpoint: "numgen random mod R < w" or
				// "jhash ... == i".
				v, _ := strconv.Atoi(next())
				if tok == "jhash" {
					if s.hash < 0 {
						s.hash = tr.pick(n)
					}
					if s.hash != v {
						return "", ""
					}
					continue
				}
				if s.target < 0 {
					s.target = tr.pick(n)
				}
				s.passed++
				if s.passed-1 != s.target {
					return "", ""
				}
				continue
			}
			expect("{")
			elems := map[int]string{}
			for toks[i] != "}" {
				k, _ := strconv.Atoi(next())
				expect(":")
				elems[k] = next() + " " + next()
				if toks[i] == "," {
					i++
				}
			}
			idx := tr.pick(n)
			v, ok := elems[idx]
			if !ok {
				tr.t.Fatalf("rule %q has no element %d", rule, idx)
			}
			verdict, target, _ = strings.Cut(v, " ")
			return verdict, target
		case "update": // update @set { ip saddr timeout Ns }
			set := strings.TrimPrefix(next(), "@")
			expect("{", "ip", "saddr", "timeout")
			next()
			expect("}")
			if tr.affinity[set] == nil {
				tr.affinity[set] = map[netip.Addr]bool{}
			}
			tr.affinity[set][s.src.Addr()] = true
		case "dnat": // dnat to A:P, or the identity mapping dnat to ip daddr
			expect("to")
			to := next()
			if to == "ip" || to == "ip6" {
				expect("daddr")
				s.res.identityNAT = true
				return "accept", ""
			}
			s.res.dnat = netip.MustParseAddrPort(to)
			s.dst = s.res.dnat
			return "accept", ""
		case "redirect": // redirect to :P
			expect("to")
			p, _ := strconv.Atoi(strings.TrimPrefix(next(), ":"))
			s.res.redirect = uint16(p)
			s.dst = netip.AddrPortFrom(nodeIP, uint16(p))
			return "accept", ""
		case "masquerade":
			s.res.masq = true
			return "accept", ""
		case "reject":
			return "reject", ""
		case "jump", "goto":
			return tok, next()
		case "return", "accept", "drop":
			return tok, ""
		default:
			tr.t.Fatalf("tracer does not know %q in rule %q", tok, rule)
		}
	}
	return "next", ""
}

// match tests an address against an address, a prefix or @set.
func (tr *tracer) match(a netip.Addr, arg string) bool {
	if set, ok := strings.CutPrefix(arg, "@"); ok {
		if strings.HasPrefix(set, affinitySetPrefix) {
			return tr.affinity[set][a]
		}
		fs := tr.table.Sets[set]
		if fs == nil {
			tr.t.Fatalf("no set %q", set)
		}
		return fs.FindElement(a.String()) != nil
	}
	if p, err := netip.ParsePrefix(arg); err == nil {
		return p.Contains(a)
	}
	return netip.MustParseAddr(arg) == a
}

func (tr *tracer) vmapLookup(ref, key string) (string, string) {
	m := tr.table.Maps[strings.TrimPrefix(ref, "@")]
	if m == nil {
		tr.t.Fatalf("no map %q", ref)
	}
	e := m.FindElement(strings.Split(key, " . ")...)
	if e == nil {
		return "", ""
	}
	verdict, target, _ := strings.Cut(e.Value[0], " ")
	return verdict, target
}

func (tr *tracer) isLocal(a netip.Addr) bool {
	return slices.Contains(tr.local, a) || a.IsLoopback()
}

func parseUint(t *testing.T, s string) uint32 {
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		t.Fatalf("bad number %q", s)
	}
	return uint32(n)
}
