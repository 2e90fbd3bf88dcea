package nftproxy

import (
	"maps"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/knftables"
)

// plan is one transaction and the state it leads to once it succeeds.
type plan struct {
	tx *knftables.Transaction

	tableAdded        bool
	containersAdded   []string
	containersDeleted []string
	written           map[string]chainState // chains created or rewritten
	flushed           []string              // chains no longer used
	unstale           []string              // stale chains used again
	deleted           []string              // stale chains deleted
	deferred          []string              // stale chains whose deletion was left out
	elemsSet          map[elemKey]string
	elemsDeleted      []elemKey
	conflicts         []string
}

// plan builds the transaction for the dirty objects. Its order matters to
// nft: table, sets and maps, chains, rules (which reference sets and
// chains), element deletes and adds (values reference chains), then
// deletions of sets and chains nothing references any more.
func (p *Proxier) plan(d *dirty, now time.Time, withDeletes bool) *plan {
	pl := &plan{tx: p.nft.NewTransaction(), written: map[string]chainState{}, elemsSet: map[elemKey]string{}}
	tx := pl.tx
	if !p.k.table {
		tx.Add(&knftables.Table{Comment: knftables.PtrTo("fjord service proxy")})
		pl.tableAdded = true
	}

	containers := slices.Sorted(maps.Keys(d.containers))
	for _, name := range containers {
		if _, exists := p.k.containers[name]; !exists {
			c := p.wantContainer(name)
			if c == nil {
				continue
			}
			tx.Add(containerObject(c))
			pl.containersAdded = append(pl.containersAdded, name)
		}
	}

	var rules []*chainSpec
	for _, name := range slices.Sorted(maps.Keys(d.chains)) {
		want := p.wantChain(name)
		have, exists := p.k.chains[name]
		if want != nil {
			if _, ok := p.stale[name]; ok {
				pl.unstale = append(pl.unstale, name)
			}
			ws := stateOf(want)
			switch {
			case !exists:
				tx.Add(chainObject(want))
			case have != ws:
				tx.Flush(&knftables.Chain{Name: name})
			default:
				continue
			}
			pl.written[name] = ws
			rules = append(rules, want)
			continue
		}
		if exists && have.rules > 0 {
			tx.Flush(&knftables.Chain{Name: name})
			pl.flushed = append(pl.flushed, name)
		} else if exists {
			if _, ok := p.stale[name]; !ok {
				pl.flushed = append(pl.flushed, name) // empty, but starts its grace period now
			}
		}
	}
	for _, c := range rules {
		last := len(c.rules) - 1
		for i, r := range c.rules {
			rule := &knftables.Rule{Chain: c.name, Rule: r}
			if i == last {
				rule.Comment = knftables.PtrTo(fingerprint(c.rules))
			}
			tx.Add(rule)
		}
	}

	elems := slices.SortedFunc(maps.Keys(d.elems), func(a, b elemKey) int {
		if c := strings.Compare(a.container, b.container); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	var adds []*elemSpec
	for _, k := range elems {
		if p.wantContainer(k.container) == nil {
			continue // the set or map itself goes
		}
		want, conflict := p.wantElem(k)
		if conflict {
			pl.conflicts = append(pl.conflicts, k.container+" "+k.key)
		}
		have, exists := p.k.elems[k]
		if exists && (want == nil || want.value != have) {
			tx.Delete(elementObject(k.container, p.wantContainer(k.container).isMap, splitKey(k.key), ""))
			pl.elemsDeleted = append(pl.elemsDeleted, k)
		}
		if want != nil && (!exists || want.value != have) {
			adds = append(adds, want)
			pl.elemsSet[k] = want.value
		}
	}
	for _, e := range adds {
		el := elementObject(e.container, e.isMap, e.key, e.value)
		if e.comment != "" {
			el.Comment = knftables.PtrTo(e.comment)
		}
		tx.Add(el)
	}

	for _, name := range containers {
		isMap, exists := p.k.containers[name]
		if exists && p.wantContainer(name) == nil {
			tx.Delete(containerObject(&containerSpec{name: name, isMap: isMap}))
			pl.containersDeleted = append(pl.containersDeleted, name)
		}
	}

	for _, name := range slices.Sorted(maps.Keys(p.stale)) {
		if p.wantChain(name) != nil || slices.Contains(pl.flushed, name) || now.Sub(p.stale[name]) < p.s.grace {
			continue
		}
		if _, exists := p.k.chains[name]; !exists {
			continue
		}
		if !withDeletes {
			pl.deferred = append(pl.deferred, name)
			continue
		}
		tx.Delete(&knftables.Chain{Name: name})
		pl.deleted = append(pl.deleted, name)
	}
	return pl
}

// commit records the plan's effect after its transaction succeeded.
func (p *Proxier) commit(pl *plan, now time.Time) {
	if pl.tableAdded {
		p.k.table = true
	}
	for _, name := range pl.containersAdded {
		p.k.containers[name] = p.wantContainer(name).isMap
	}
	for _, name := range pl.containersDeleted {
		delete(p.k.containers, name)
		for k := range p.k.elems {
			if k.container == name {
				delete(p.k.elems, k)
			}
		}
	}
	for name, st := range pl.written {
		p.k.chains[name] = st
	}
	for _, name := range pl.unstale {
		delete(p.stale, name)
	}
	for _, name := range pl.flushed {
		p.k.chains[name] = chainState{}
		p.stale[name] = now
	}
	for _, name := range pl.deleted {
		delete(p.k.chains, name)
		delete(p.stale, name)
	}
	for _, k := range pl.elemsDeleted {
		delete(p.k.elems, k)
	}
	for k, v := range pl.elemsSet {
		p.k.elems[k] = v
	}
}

func (pl *plan) fill(st *Stats) {
	st.Operations = pl.tx.NumOperations()
	st.ChainsWritten = len(pl.written)
	st.ChainsFlushed = len(pl.flushed)
	st.ChainsDeleted = len(pl.deleted)
	st.ElementsAdded = len(pl.elemsSet)
	st.ElementsDeleted = len(pl.elemsDeleted)
	st.Conflicts = pl.conflicts
}

func splitKey(k string) []string { return strings.Split(k, " . ") }

func chainObject(c *chainSpec) *knftables.Chain {
	ch := &knftables.Chain{Name: c.name}
	if c.base != nil {
		ch.Type = knftables.PtrTo(c.base.typ)
		ch.Hook = knftables.PtrTo(c.base.hook)
		ch.Priority = knftables.PtrTo(c.base.prio)
	}
	return ch
}

func containerObject(c *containerSpec) knftables.Object {
	var comment *string
	if c.comment != "" {
		comment = knftables.PtrTo(c.comment)
	}
	if c.isMap {
		return &knftables.Map{Name: c.name, Type: c.typ, Flags: c.flags, Comment: comment}
	}
	return &knftables.Set{Name: c.name, Type: c.typ, Flags: c.flags, Comment: comment}
}

func elementObject(container string, isMap bool, key []string, value string) *knftables.Element {
	e := &knftables.Element{Key: key}
	if isMap {
		e.Map = container
		if value != "" {
			e.Value = []string{value}
		}
	} else {
		e.Set = container
	}
	return e
}
