package nftproxy

import (
	"context"
	"fmt"
	"slices"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/fjord-net/fjord/internal/proxy/servicemap"
)

// Proxier programs the table TableName from servicemap.Maps. It is not
// safe for concurrent use: the caller serialises Sync calls (for example
// with a bounded-frequency runner).
type Proxier struct {
	nft knftables.Interface
	s   *settings

	// The desired state: the fixed layout plus every service port's
	// rendered objects, indexed by name.
	fixed           layout
	fixedChains     map[string]*chainSpec
	fixedContainers map[string]*containerSpec
	svcs            map[string]*svcObjects           // by service port key
	chains          map[string]*chainSpec            // service chains by name
	sets            map[string]bool                  // affinity sets
	claims          map[elemKey]map[string]*elemSpec // element -> owner key -> spec ("" = fixed)

	// What the table holds.
	k     kernelState
	stale map[string]time.Time // flushed chains -> when they became unused

	synced   bool      // a sync has succeeded since New
	needFull bool      // the last transaction failed
	lastRead time.Time // when the whole table was last read
	tableUse uint32    // the table's use count after the last write (Netlink)
}

// New returns a Proxier for the table TableName of nft, which must be an
// Interface for that table in cfg.Family (see NewInterface). New does not
// touch the table; the first Sync is a full one.
func New(nft knftables.Interface, cfg Config) (*Proxier, error) {
	s, err := newSettings(cfg)
	if err != nil {
		return nil, err
	}
	p := &Proxier{
		nft:             nft,
		s:               s,
		fixed:           s.layout(),
		fixedChains:     map[string]*chainSpec{},
		fixedContainers: map[string]*containerSpec{},
		svcs:            map[string]*svcObjects{},
		chains:          map[string]*chainSpec{},
		sets:            map[string]bool{},
		claims:          map[elemKey]map[string]*elemSpec{},
		k:               newKernelState(),
		stale:           map[string]time.Time{},
	}
	for i := range p.fixed.chains {
		p.fixedChains[p.fixed.chains[i].name] = &p.fixed.chains[i]
	}
	for i := range p.fixed.containers {
		p.fixedContainers[p.fixed.containers[i].name] = &p.fixed.containers[i]
	}
	for i := range p.fixed.elems {
		p.claim(&p.fixed.elems[i], "")
	}
	return p, nil
}

// Stats describes one Sync.
type Stats struct {
	// Full is true when the sync read the table and reconciled all of it
	// (asked for, the first sync, or after a failed one).
	Full bool
	// Audited is true when a sync asked to be full audited the table
	// instead (see Config.Netlink), found it as the Proxier believed, and
	// wrote only what changed.
	Audited bool
	// ServicePorts is the number of service ports in the map.
	ServicePorts int
	// Rendered counts service ports that were new or changed; Removed
	// those that went away.
	Rendered, Removed int
	// Operations is the size of the transaction; 0 means nft was not run.
	Operations int
	// ChainsWritten counts chains created or rewritten; ChainsFlushed
	// chains no longer used (flushed now, deleted after the grace
	// period); ChainsDeleted chains deleted; PendingDeletes flushed
	// chains still waiting.
	ChainsWritten, ChainsFlushed, ChainsDeleted, PendingDeletes int
	// ElementsAdded and ElementsDeleted count set and map elements.
	ElementsAdded, ElementsDeleted int
	// Conflicts lists elements (e.g. "service-ips 198.18.0.10 . tcp . 80")
	// that more than one service port wants, among those this sync looked
	// at; the service port whose key sorts first gets it.
	Conflicts []string
	// DeleteRetried is true when the transaction failed with stale chain
	// deletions in it and succeeded without them.
	DeleteRetried bool
}

// Sync is SyncContext with a background context.
func (p *Proxier) Sync(m servicemap.Map, full bool) (Stats, error) {
	return p.SyncContext(context.Background(), m, full)
}

// SyncContext makes the table match m in one nft transaction. With full
// (and always on the first sync, or after a failed one) it first lists the
// table and repairs any drift; otherwise it writes only what changed since
// the last successful sync. It never flushes or deletes the table.
//
// On error the table is as it was (transactions are atomic) and the next
// sync is a full one.
func (p *Proxier) SyncContext(ctx context.Context, m servicemap.Map, full bool) (Stats, error) {
	full = full || !p.synced || p.needFull
	st := Stats{Full: full, ServicePorts: len(m.Ports)}
	d := newDirty()

	// Update the desired state from the service ports that changed (in
	// any order: plan sorts what it writes).
	for key, sp := range m.Ports {
		old := p.svcs[key]
		if old != nil && old.sp.Equal(&sp) {
			continue
		}
		o := p.s.render(&sp)
		if old != nil {
			p.unindex(old, d)
		}
		p.index(o, d)
		p.svcs[key] = o
		st.Rendered++
	}
	for key, old := range p.svcs {
		if _, ok := m.Ports[key]; !ok {
			p.unindex(old, d)
			delete(p.svcs, key)
			st.Removed++
		}
	}

	if full && p.s.netlink && p.synced && !p.needFull && p.s.now().Sub(p.lastRead) < p.s.fullRead {
		clean, err := p.auditKernel()
		if err != nil {
			p.needFull = true
			return st, err
		}
		st.Audited = true
		full = !clean
		st.Full = full
	}
	if full {
		ks, err := p.listKernel(ctx)
		if err != nil {
			p.needFull = true
			return st, err
		}
		p.lastRead = p.s.now()
		p.k = ks
		for name := range p.stale {
			if _, ok := ks.chains[name]; !ok {
				delete(p.stale, name)
			}
		}
		d = p.everything()
	}

	now := p.s.now()
	pl := p.plan(d, now, true)
	err := p.run(ctx, pl)
	if err != nil && len(pl.deleted) > 0 {
		// A stale chain may still be referenced (by something we did not
		// write, or a kernel that has not noticed yet): sync without
		// deleting and try the deletions again later.
		pl = p.plan(d, now, false)
		if err = p.run(ctx, pl); err == nil {
			st.DeleteRetried = true
			for _, name := range pl.deferred {
				p.stale[name] = now
			}
		}
	}
	if err != nil {
		p.needFull = true
		return st, fmt.Errorf("nftproxy: sync table %s %s: %w", p.s.fam.nft, TableName, err)
	}
	p.commit(pl, now)
	if p.s.netlink && pl.tx.NumOperations() > 0 {
		// What an audit compares the table's use count with. Unknown (0) if
		// this read fails; the next audit then finds a difference and reads
		// the whole table, which sets it again.
		p.tableUse, _ = tableUseNetlink(p.s.fam.nfproto, TableName)
	}
	p.synced, p.needFull = true, false
	pl.fill(&st)
	st.PendingDeletes = len(p.stale)
	return st, nil
}

func (p *Proxier) run(ctx context.Context, pl *plan) error {
	if pl.tx.NumOperations() == 0 {
		return nil
	}
	return p.nft.Run(ctx, pl.tx)
}

// dirty names the objects a sync must look at.
type dirty struct {
	chains     map[string]bool
	containers map[string]bool
	elems      map[elemKey]bool
}

func newDirty() *dirty {
	return &dirty{chains: map[string]bool{}, containers: map[string]bool{}, elems: map[elemKey]bool{}}
}

// everything marks every desired and every existing object dirty.
func (p *Proxier) everything() *dirty {
	d := newDirty()
	for name := range p.fixedChains {
		d.chains[name] = true
	}
	for name := range p.chains {
		d.chains[name] = true
	}
	for name := range p.k.chains {
		d.chains[name] = true
	}
	for name := range p.fixedContainers {
		d.containers[name] = true
	}
	for name := range p.sets {
		d.containers[name] = true
	}
	for name := range p.k.containers {
		d.containers[name] = true
	}
	for k := range p.claims {
		d.elems[k] = true
	}
	for k := range p.k.elems {
		d.elems[k] = true
	}
	return d
}

// index adds a service port's objects to the desired state.
func (p *Proxier) index(o *svcObjects, d *dirty) {
	owner := o.sp.Key()
	for i := range o.chains {
		p.chains[o.chains[i].name] = &o.chains[i]
		d.chains[o.chains[i].name] = true
	}
	for _, name := range o.sets {
		p.sets[name] = true
		d.containers[name] = true
	}
	for i := range o.elems {
		d.elems[p.claim(&o.elems[i], owner)] = true
	}
}

// unindex removes a service port's objects from the desired state.
func (p *Proxier) unindex(o *svcObjects, d *dirty) {
	owner := o.sp.Key()
	for _, c := range o.chains {
		delete(p.chains, c.name)
		d.chains[c.name] = true
	}
	for _, name := range o.sets {
		delete(p.sets, name)
		d.containers[name] = true
	}
	for i := range o.elems {
		k := keyOf(&o.elems[i])
		delete(p.claims[k], owner)
		if len(p.claims[k]) == 0 {
			delete(p.claims, k)
		}
		d.elems[k] = true
	}
}

func (p *Proxier) claim(e *elemSpec, owner string) elemKey {
	k := keyOf(e)
	if p.claims[k] == nil {
		p.claims[k] = map[string]*elemSpec{}
	}
	p.claims[k][owner] = e
	return k
}

// wantElem returns the element that should be at k: the claim of the
// owner that sorts first. conflict is true when several owners want
// different values.
func (p *Proxier) wantElem(k elemKey) (e *elemSpec, conflict bool) {
	owners := p.claims[k]
	if len(owners) == 0 {
		return nil, false
	}
	keys := make([]string, 0, len(owners))
	for o := range owners {
		keys = append(keys, o)
	}
	slices.Sort(keys)
	e = owners[keys[0]]
	for _, o := range keys[1:] {
		if owners[o].value != e.value {
			conflict = true
		}
	}
	return e, conflict
}

func (p *Proxier) wantChain(name string) *chainSpec {
	if c := p.fixedChains[name]; c != nil {
		return c
	}
	return p.chains[name]
}

func (p *Proxier) wantContainer(name string) *containerSpec {
	if c := p.fixedContainers[name]; c != nil {
		return c
	}
	if p.sets[name] {
		return &containerSpec{name: name, typ: p.s.fam.addrType, flags: []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag}}
	}
	return nil
}
