package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/fjord-net/fjord/internal/podnet"
)

// DefaultDeferral bounds how long a (re)started speaker waits for its peers' End-of-RIB
// before it trusts its table: until then the kernel keeps every route it had.
const DefaultDeferral = 30 * time.Second

// Settle is how long every session must have been Established (with End-of-RIB heard)
// before the table is trusted. Some speakers send End-of-RIB to a restarting peer before
// their routes (FRR 8.4 does, with its 1 s update-group coalescing): trusting the first
// End-of-RIB would withdraw routes that are about to arrive. Keeping stale routes a
// little longer costs nothing.
const Settle = 3 * time.Second

// Speaker is one node's BGP speaker over GoBGP. Set makes it match a Config; Learned and
// Status read it. It is safe for concurrent use.
type Speaker struct {
	log      *slog.Logger
	deferral time.Duration
	now      func() time.Time
	changed  chan struct{}

	mu      sync.Mutex
	srv     *server.BgpServer
	cancel  context.CancelFunc
	started time.Time
	global  Config                // RouterID, AS, ListenPort of the running server
	peers   map[netip.Addr]Peer   // configured sessions
	paths   map[netip.Prefix]bool // advertised prefixes
	lastErr map[netip.Addr]string // last disconnect reason per peer
}

// NewSpeaker returns a stopped speaker; the first Set starts it. deferral 0 means
// DefaultDeferral.
func NewSpeaker(log *slog.Logger, deferral time.Duration) *Speaker {
	if deferral <= 0 {
		deferral = DefaultDeferral
	}
	return &Speaker{log: log, deferral: deferral, now: time.Now, changed: make(chan struct{}, 1),
		peers: map[netip.Addr]Peer{}, paths: map[netip.Prefix]bool{}, lastErr: map[netip.Addr]string{}}
}

// Changed is poked (coalesced) whenever a session changes state or a best path changes.
func (s *Speaker) Changed() <-chan struct{} { return s.changed }

func (s *Speaker) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Set makes the speaker match cfg: it starts GoBGP on the first call (again if the AS,
// router ID or port change), then adds, updates and removes sessions and advertised
// paths by difference. Sessions that cfg keeps unchanged are never touched.
func (s *Speaker) Set(ctx context.Context, cfg Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil && (s.global.AS != cfg.AS || s.global.RouterID != cfg.RouterID || s.global.ListenPort != cfg.ListenPort || s.global.HoldTime != cfg.HoldTime) {
		s.log.Warn("BGP identity changed: restarting the speaker", "as", cfg.AS, "routerID", cfg.RouterID, "port", cfg.ListenPort)
		s.stopLocked()
	}
	first := s.srv == nil
	if first {
		if err := s.startLocked(cfg); err != nil {
			return err
		}
	}
	var errs []error
	want := map[netip.Addr]Peer{}
	for _, p := range cfg.Peers {
		want[p.Addr] = p
	}
	for addr, old := range s.peers {
		if p, ok := want[addr]; !ok || p != old {
			if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
				errs = append(errs, fmt.Errorf("remove peer %s: %w", old, err))
				continue
			}
			delete(s.peers, addr)
			s.log.Info("BGP peer removed", "peer", old.String())
		}
	}
	for _, p := range cfg.Peers {
		if _, ok := s.peers[p.Addr]; ok {
			continue
		}
		// After a restart, the sessions configured at start announce it (RFC 4724 R
		// bit): peers keep our routes, we keep the kernel's, and both sides wait for
		// End-of-RIB. A node starting fresh does not: two restarting speakers each
		// wait for the other's End-of-RIB before sending theirs, so a whole mesh
		// started at once would idle until the deferral time.
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.apiPeer(cfg, p, first && cfg.Restarting)}); err != nil {
			errs = append(errs, fmt.Errorf("add peer %s: %w", p, err))
			continue
		}
		s.peers[p.Addr] = p
		s.log.Info("BGP peer added", "peer", p.String())
	}
	wantPaths := map[netip.Prefix]bool{}
	for _, a := range cfg.Advertise {
		wantPaths[a] = true
	}
	for pfx := range s.paths {
		if wantPaths[pfx] {
			continue
		}
		p, err := s.path(pfx, cfg.RouterID, true)
		if err == nil {
			err = s.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{p}})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("withdraw %v: %w", pfx, err))
			continue
		}
		delete(s.paths, pfx)
	}
	for _, pfx := range cfg.Advertise {
		if s.paths[pfx] {
			continue
		}
		p, err := s.path(pfx, cfg.RouterID, false)
		if err == nil {
			_, err = s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{p}})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("advertise %v: %w", pfx, err))
			continue
		}
		s.paths[pfx] = true
	}
	return errors.Join(errs...)
}

func (s *Speaker) startLocked(cfg Config) error {
	if !cfg.RouterID.Is4() {
		return fmt.Errorf("BGP router ID %v: must be an IPv4 address", cfg.RouterID)
	}
	srv := server.NewBgpServer(server.LoggerOption(s.log.With("component", "gobgp"), nil))
	go srv.Serve()
	ctx, cancel := context.WithCancel(context.Background())
	// Listen on the node's underlay address only, never the wildcard.
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: cfg.AS, RouterId: cfg.RouterID.String(), ListenPort: int32(cfg.ListenPort),
		ListenAddresses: []string{cfg.RouterID.String()},
	}}); err != nil {
		cancel()
		srv.Stop()
		return fmt.Errorf("start BGP on %v:%d: %w", cfg.RouterID, cfg.ListenPort, err)
	}
	err := srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{
		OnBestPath: func([]*apiutil.Path, time.Time) { s.poke() },
		OnPathEor:  func(*apiutil.Path, time.Time) { s.poke() },
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
			st := ev.Peer.State
			if msg := st.DisconnectMessage; msg != "" && st.SessionState != bgp.BGP_FSM_ESTABLISHED {
				s.mu.Lock()
				s.lastErr[ev.Peer.Conf.NeighborAddress] = msg
				s.mu.Unlock()
			}
			s.poke()
		},
	}, server.WatchBestPath(true), server.WatchPeer(), server.WatchEor(true))
	if err != nil {
		cancel()
		srv.Stop()
		return err
	}
	s.srv, s.cancel, s.started = srv, cancel, s.now()
	s.global = Config{AS: cfg.AS, RouterID: cfg.RouterID, ListenPort: cfg.ListenPort, HoldTime: cfg.HoldTime}
	s.peers, s.paths = map[netip.Addr]Peer{}, map[netip.Prefix]bool{}
	s.log.Info("BGP speaker started", "as", cfg.AS, "routerID", cfg.RouterID, "port", cfg.ListenPort)
	return nil
}

func (s *Speaker) apiPeer(cfg Config, p Peer, restarting bool) *api.Peer {
	hold := uint64(cfg.HoldTime / time.Second)
	family := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if p.Addr.Is6() {
		family.Afi = api.Family_AFI_IP6
	}
	return &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Addr.String(), PeerAsn: p.AS, Description: p.Name, AllowOwnAsn: uint32(p.AllowOwnAS)},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: hold, KeepaliveInterval: max(hold/3, 1), ConnectRetry: 2, IdleHoldTimeAfterReset: 1,
		}},
		Transport: &api.Transport{LocalAddress: cfg.RouterID.String(), RemotePort: uint32(p.Port), PassiveMode: p.Passive},
		// Graceful restart (RFC 4724) without the N bit (RFC 8538): a session that
		// ends without a NOTIFICATION (the agent was killed, the TCP connection
		// dropped) keeps its routes for RestartTime; a hold-timer expiry sends a
		// NOTIFICATION and withdraws them at once.
		GracefulRestart: &api.GracefulRestart{Enabled: true, RestartTime: uint32(p.RestartTime / time.Second),
			DeferralTime: uint32(s.deferral / time.Second), LocalRestarting: restarting},
		AfiSafis: []*api.AfiSafi{{
			Config:            &api.AfiSafiConfig{Family: family, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}},
		}},
	}
}

// path builds the path advertising pfx from this node.
func (s *Speaker) path(pfx netip.Prefix, nextHop netip.Addr, withdraw bool) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(pfx)
	if err != nil {
		return nil, err
	}
	nh, err := bgp.NewPathAttributeNextHop(nextHop)
	if err != nil {
		return nil, err
	}
	family := bgp.RF_IPv4_UC
	if pfx.Addr().Is6() {
		family = bgp.RF_IPv6_UC
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP), nh}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs, Withdrawal: withdraw}, nil
}

// Learned returns the best paths learned from peers (not this node's own), IPv4.
func (s *Speaker) Learned() ([]podnet.Learned, error) {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil, nil
	}
	var out []podnet.Learned
	err := srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC},
		func(nlri bgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				if !p.Best || !p.PeerAddress.IsValid() || p.Withdrawal {
					continue
				}
				pfx, err := netip.ParsePrefix(nlri.String())
				nh := nextHop(p.Attrs)
				if err == nil && nh.IsValid() {
					out = append(out, podnet.Learned{Prefix: pfx, NextHop: nh})
				}
			}
		})
	slices.SortFunc(out, func(a, b podnet.Learned) int { return comparePrefix(a.Prefix, b.Prefix) })
	return out, err
}

func nextHop(attrs []bgp.PathAttributeInterface) netip.Addr {
	for _, a := range attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeNextHop:
			return a.Value
		case *bgp.PathAttributeMpReachNLRI:
			return a.Nexthop
		}
	}
	return netip.Addr{}
}

// Synced reports whether the learned paths can be trusted to replace the kernel's
// routes: every session has been Established for Settle and has sent End-of-RIB, or the
// deferral time since the speaker started has passed.
func (s *Speaker) Synced(ctx context.Context) bool {
	s.mu.Lock()
	srv, started := s.srv, s.started
	s.mu.Unlock()
	if srv == nil {
		return false
	}
	if s.now().Sub(started) >= s.deferral {
		return true
	}
	synced := true
	now := s.now()
	err := srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.State.GetSessionState() != api.PeerState_SESSION_STATE_ESTABLISHED {
			synced = false
			return
		}
		if up := p.Timers.GetState().GetUptime(); up == nil || now.Sub(up.AsTime()) < Settle {
			synced = false
			return
		}
		eor := false
		for _, af := range p.AfiSafis {
			if af.GetMpGracefulRestart().GetState().GetEndOfRibReceived() {
				eor = true
			}
		}
		// A peer without graceful restart sends no End-of-RIB; its first updates
		// arrive right after Established.
		if !eor && p.GracefulRestart.GetPeerRestartTime() > 0 {
			synced = false
		}
	})
	return err == nil && synced
}

// Stop stops the speaker. Its sessions end without a NOTIFICATION only if the process
// dies; a Stop sends Cease, and peers withdraw this node's routes.
func (s *Speaker) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Speaker) stopLocked() {
	if s.srv == nil {
		return
	}
	s.cancel()
	s.srv.Stop()
	s.srv = nil
}
