package nftproxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"sigs.k8s.io/knftables"
)

// fingerprintPrefix starts the comment on the last rule of every chain the
// Proxier writes.
const fingerprintPrefix = "fp:"

// chainState is what a chain holds, as far as a sync can tell: its rule
// count and the fingerprint comment of its last rule.
type chainState struct {
	rules int
	fp    string
}

func stateOf(c *chainSpec) chainState {
	if len(c.rules) == 0 {
		return chainState{}
	}
	return chainState{rules: len(c.rules), fp: fingerprint(c.rules)}
}

func fingerprint(rules []string) string {
	h := sha256.New()
	for _, r := range rules {
		h.Write([]byte(r))
		h.Write([]byte{'\n'})
	}
	return fingerprintPrefix + hex.EncodeToString(h.Sum(nil)[:6])
}

// elemKey identifies an element: its set or map and its key joined by " . ".
type elemKey struct {
	container string
	key       string
}

func keyOf(e *elemSpec) elemKey {
	return elemKey{e.container, strings.Join(e.key, " . ")}
}

// kernelState is what the table holds, as far as the Proxier knows: read
// from nft on a full sync, then kept up to date with every transaction
// that succeeds.
type kernelState struct {
	table  bool
	chains map[string]chainState
	// containers maps set and map names to whether they are maps.
	containers map[string]bool
	// elems holds the elements of the fixed sets and maps (affinity sets
	// are filled by the kernel and not tracked), with their values.
	elems map[elemKey]string
}

func newKernelState() kernelState {
	return kernelState{chains: map[string]chainState{}, containers: map[string]bool{}, elems: map[elemKey]string{}}
}

// listKernel reads the table. A missing table is an empty state.
func (p *Proxier) listKernel(ctx context.Context) (kernelState, error) {
	ks := newKernelState()
	all, err := p.nft.ListAll(ctx)
	if knftables.IsNotFound(err) {
		return ks, nil
	}
	if err != nil {
		return ks, fmt.Errorf("nftproxy: list table %s %s: %w", p.s.fam.nft, TableName, err)
	}
	ks.table = true
	for _, name := range all["chain"] {
		ks.chains[name] = chainState{}
	}
	for _, name := range all["set"] {
		ks.containers[name] = false
	}
	for _, name := range all["map"] {
		ks.containers[name] = true
	}
	if len(ks.chains) > 0 {
		rules, err := p.nft.ListRules(ctx, "")
		if err != nil {
			return ks, fmt.Errorf("nftproxy: list rules of table %s %s: %w", p.s.fam.nft, TableName, err)
		}
		for _, r := range rules {
			st := ks.chains[r.Chain]
			st.rules++
			st.fp = ""
			if r.Comment != nil && strings.HasPrefix(*r.Comment, fingerprintPrefix) {
				st.fp = *r.Comment
			}
			ks.chains[r.Chain] = st
		}
	}
	for _, c := range p.fixed.containers {
		if _, ok := ks.containers[c.name]; !ok {
			continue
		}
		kind := "set"
		if c.isMap {
			kind = "map"
		}
		elems, err := p.nft.ListElements(ctx, kind, c.name)
		if err != nil {
			return ks, fmt.Errorf("nftproxy: list %s %s: %w", kind, c.name, err)
		}
		for _, e := range elems {
			ks.elems[elemKey{c.name, strings.Join(e.Key, " . ")}] = strings.Join(e.Value, " . ")
		}
	}
	return ks, nil
}
