package nftproxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
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

// listKernel reads the whole table: chains with their rule summaries, sets
// and maps, and the elements of the fixed sets and maps. A missing table is
// an empty state.
func (p *Proxier) listKernel(ctx context.Context) (kernelState, error) {
	if !p.s.netlink {
		return p.listKernelNFT(ctx)
	}
	ks := newKernelState()
	t, err := readTableNetlink(p.s.fam.nfproto, TableName, true, nil)
	if err != nil {
		return ks, fmt.Errorf("nftproxy: read table %s %s over netlink: %w", p.s.fam.nft, TableName, err)
	}
	if !t.found {
		return ks, nil
	}
	ks.table, ks.chains, ks.containers = true, t.chains, t.containers
	p.tableUse = t.use
	return ks, p.listFixedElements(ctx, &ks)
}

// auditSample is how many service chains one audit reads the rules of.
// Reading one costs about 12 µs, so an audit stays in the tens of
// milliseconds at any size, and at 30,000 services (some 120,000 chains)
// every chain has been looked at after a few dozen audits on average.
const auditSample = 2048

// auditKernel checks cheaply, over netlink, that the table is as the
// Proxier believes: as many chains and sets as after its last write (the
// table's use count), the same named sets and maps, the same rules in the
// fixed chains (through which every packet enters, so a flushed table
// shows there) and in a sample of the service chains (all of them in a
// small table), and as many elements in each fixed set and map. An element
// whose value was edited, or a chain outside the sample, passes; the
// periodic full read (Config.FullReadPeriod) catches those.
func (p *Proxier) auditKernel() (bool, error) {
	fixed := make([]string, 0, len(p.fixedChains)+auditSample)
	for name := range p.fixedChains {
		fixed = append(fixed, name)
	}
	sampled := 0
	for name := range p.k.chains { // map order: a different sample each time
		if sampled == auditSample {
			break
		}
		if p.fixedChains[name] == nil {
			fixed = append(fixed, name)
			sampled++
		}
	}
	t, err := readTableNetlink(p.s.fam.nfproto, TableName, false, fixed)
	if err != nil {
		return false, fmt.Errorf("nftproxy: audit table %s %s over netlink: %w", p.s.fam.nft, TableName, err)
	}
	if t.found != p.k.table || t.use != p.tableUse || len(t.missing) > 0 || !maps.Equal(t.containers, p.k.containers) {
		return false, nil
	}
	for _, name := range fixed {
		if t.chains[name] != p.k.chains[name] {
			return false, nil
		}
	}
	believed := map[string]int{}
	for k := range p.k.elems {
		believed[k.container]++
	}
	for _, c := range p.fixed.containers {
		if _, ok := t.containers[c.name]; !ok {
			continue
		}
		n, err := countElementsNetlink(p.s.fam.nfproto, TableName, c.name)
		if err != nil {
			return false, fmt.Errorf("nftproxy: audit %s over netlink: %w", c.name, err)
		}
		if n != believed[c.name] {
			return false, nil
		}
	}
	return true, nil
}

// listKernelNFT reads the table through nft's JSON listing.
func (p *Proxier) listKernelNFT(ctx context.Context) (kernelState, error) {
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
	return ks, p.listFixedElements(ctx, &ks)
}

// listFixedElements lists the elements of the fixed sets and maps into ks.
func (p *Proxier) listFixedElements(ctx context.Context, ks *kernelState) error {
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
			return fmt.Errorf("nftproxy: list %s %s: %w", kind, c.name, err)
		}
		for _, e := range elems {
			ks.elems[elemKey{c.name, strings.Join(e.Key, " . ")}] = strings.Join(e.Value, " . ")
		}
	}
	return nil
}
