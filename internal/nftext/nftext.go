// Package nftext reads the text `nft -a list table` prints: every chain with its hook
// and policy, every rule with its handle and text, and whether the rule can drop. The
// troubleshooting tools name rules the way an operator sees them in nft's listing
// (trace events only carry handles), and doctor looks for foreign drop rules.
package nftext

import (
	"strconv"
	"strings"
)

// Rule is one rule of a listing.
type Rule struct {
	Family, Table, Chain string
	Handle               uint64
	Text                 string // the rule as nft prints it, without "# handle N"
}

// Drops reports whether the rule's verdict can drop or reject the packet.
func (r Rule) Drops() bool {
	f := strings.Fields(stripComment(r.Text))
	for _, w := range f {
		if w == "drop" || w == "reject" {
			return true
		}
	}
	return false
}

// BlocksPMTU reports whether the rule drops the ICMP messages path-MTU discovery
// needs (fragmentation-needed, packet-too-big).
func (r Rule) BlocksPMTU() bool {
	t := stripComment(r.Text)
	return r.Drops() && (strings.Contains(t, "frag-needed") || strings.Contains(t, "packet-too-big"))
}

// Chain is one chain of a listing.
type Chain struct {
	Family, Table, Name string
	Hook                string // "" for a regular chain
	Policy              string // "accept" or "drop" for base chains
	Rules               []Rule
}

// Parse reads one or more tables listed with `nft -a list ...`.
func Parse(listing string) []Chain {
	var out []Chain
	var family, table string
	var cur *Chain
	for _, raw := range strings.Split(listing, "\n") {
		line := strings.TrimSpace(raw)
		body, handle := splitHandle(line)
		switch {
		case strings.HasPrefix(body, "table "):
			f := strings.Fields(body)
			if len(f) >= 3 {
				family, table = f[1], f[2]
			}
			cur = nil
		case strings.HasPrefix(body, "chain ") && strings.HasSuffix(body, "{"):
			f := strings.Fields(body)
			if len(f) >= 2 {
				out = append(out, Chain{Family: family, Table: table, Name: f[1]})
				cur = &out[len(out)-1]
			}
		case body == "}":
			cur = nil
		case cur != nil && strings.HasPrefix(body, "type "):
			// type filter hook forward priority filter; policy drop;
			f := strings.Fields(strings.ReplaceAll(body, ";", " ; "))
			for i := 0; i+1 < len(f); i++ {
				switch f[i] {
				case "hook":
					cur.Hook = f[i+1]
				case "policy":
					cur.Policy = f[i+1]
				}
			}
		case cur != nil && handle > 0:
			cur.Rules = append(cur.Rules, Rule{Family: family, Table: table, Chain: cur.Name, Handle: handle, Text: body})
		}
	}
	return out
}

// Find returns the rule with handle h in chain (ok false when absent).
func Find(chains []Chain, family, table, chain string, h uint64) (Rule, bool) {
	for _, c := range chains {
		if c.Family != family || c.Table != table || c.Name != chain {
			continue
		}
		for _, r := range c.Rules {
			if r.Handle == h {
				return r, true
			}
		}
	}
	return Rule{}, false
}

// splitHandle cuts a trailing "# handle N".
func splitHandle(line string) (string, uint64) {
	i := strings.LastIndex(line, "# handle ")
	if i < 0 {
		return line, 0
	}
	h, err := strconv.ParseUint(strings.TrimSpace(line[i+len("# handle "):]), 10, 64)
	if err != nil {
		return line, 0
	}
	return strings.TrimSpace(line[:i]), h
}

// stripComment removes a trailing comment "..." so its words are not read as verdicts.
func stripComment(t string) string {
	if i := strings.Index(t, ` comment "`); i >= 0 {
		return t[:i]
	}
	return t
}
