package bgp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v4/api"
)

// SocketName is the status socket's file name in the agent's run directory.
const SocketName = "bgp.sock"

// Status is one speaker's state, what `fjord bgp status` prints.
type Status struct {
	Node      string       `json:"node"`
	RouterID  string       `json:"routerID"`
	AS        uint32       `json:"as"`
	Synced    bool         `json:"synced"` // the kernel follows the learned paths
	Peers     []PeerStatus `json:"peers"`
	Advertise []string     `json:"advertise"`
	Learned   []string     `json:"learned"` // best paths from peers: "prefix via next-hop"
}

// PeerStatus is one session.
type PeerStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	AS      uint32 `json:"as"`
	State   string `json:"state"` // Established, Active, Connect, OpenSent, OpenConfirm, Idle
	// Since is when the session reached its state (up or down); zero if never.
	Since      time.Time `json:"since,omitzero"`
	Received   uint64    `json:"received"`   // prefixes received
	Accepted   uint64    `json:"accepted"`   // of which accepted
	Advertised uint64    `json:"advertised"` // prefixes advertised
	// GracefulRestart: "" (the peer does not do it), "peer restart 120s", and
	// ", restarting" while the peer restarts and its routes are kept stale.
	GracefulRestart string `json:"gracefulRestart,omitempty"`
	LastError       string `json:"lastError,omitempty"`
}

var stateNames = map[api.PeerState_SessionState]string{
	api.PeerState_SESSION_STATE_IDLE: "Idle", api.PeerState_SESSION_STATE_CONNECT: "Connect",
	api.PeerState_SESSION_STATE_ACTIVE: "Active", api.PeerState_SESSION_STATE_OPENSENT: "OpenSent",
	api.PeerState_SESSION_STATE_OPENCONFIRM: "OpenConfirm", api.PeerState_SESSION_STATE_ESTABLISHED: "Established",
}

// Status reads the speaker's sessions.
func (s *Speaker) Status(ctx context.Context, node string) (Status, error) {
	s.mu.Lock()
	srv, g := s.srv, s.global
	names := map[string]string{}
	for a, p := range s.peers {
		names[a.String()] = p.Name
	}
	lastErr := map[string]string{}
	for a, e := range s.lastErr {
		lastErr[a.String()] = e
	}
	var adv []string
	for p := range s.paths {
		adv = append(adv, p.String())
	}
	s.mu.Unlock()
	slices.Sort(adv)
	st := Status{Node: node, RouterID: g.RouterID.String(), AS: g.AS, Advertise: adv}
	if srv == nil {
		return st, errors.New("the BGP speaker is not running")
	}
	st.Synced = s.Synced(ctx)
	learned, err := s.Learned()
	if err != nil {
		return st, err
	}
	for _, l := range learned {
		st.Learned = append(st.Learned, l.String())
	}
	err = srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		ps := PeerStatus{Address: p.Conf.GetNeighborAddress(), AS: p.Conf.GetPeerAsn()}
		ps.Name = names[ps.Address]
		ps.State = stateNames[p.State.GetSessionState()]
		if ps.State == "" {
			ps.State = p.State.GetSessionState().String()
		}
		if t := p.Timers.GetState(); t != nil {
			if ps.State == "Established" && t.Uptime != nil {
				ps.Since = t.Uptime.AsTime()
			} else if t.Downtime != nil && t.Downtime.Seconds > 0 {
				ps.Since = t.Downtime.AsTime()
			}
		}
		for _, af := range p.AfiSafis {
			if a := af.GetState(); a != nil {
				ps.Received += a.Received
				ps.Accepted += a.Accepted
				ps.Advertised += a.Advertised
			}
		}
		if gr := p.GracefulRestart; gr.GetPeerRestartTime() > 0 {
			ps.GracefulRestart = fmt.Sprintf("peer restart %ds", gr.GetPeerRestartTime())
			if gr.GetPeerRestarting() {
				ps.GracefulRestart += ", restarting"
			}
		}
		ps.LastError = lastErr[ps.Address]
		if ps.LastError == "" {
			ps.LastError = p.State.GetDisconnectMessage()
		}
		st.Peers = append(st.Peers, ps)
	})
	slices.SortFunc(st.Peers, func(a, b PeerStatus) int { return strings.Compare(a.Address, b.Address) })
	return st, err
}

// Serve answers GET /status on a unix socket at path (mode 0600: root only) until ctx
// ends. It opens no TCP port.
func Serve(ctx context.Context, path string, status func(context.Context) (Status, error), log *slog.Logger) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	_ = os.Remove(path) // a socket left by a killed agent
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("BGP status socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st, err := status(r.Context())
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": err.Error(), "status": st})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = hs.Close()
	}()
	go func() {
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("BGP status socket stopped", "err", err)
		}
	}()
	return nil
}

// Query reads a speaker's status from its socket.
func Query(ctx context.Context, path string) (Status, error) {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://bgp/status", nil)
	if err != nil {
		return Status{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return Status{}, fmt.Errorf("%s: %w (is the agent running in bgp mode?)", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return Status{}, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error  string `json:"error"`
			Status Status `json:"status"`
		}
		_ = json.Unmarshal(body, &e)
		return e.Status, fmt.Errorf("%s: %s", path, e.Error)
	}
	var st Status
	return st, json.Unmarshal(body, &st)
}

// PrintTable writes statuses as `birdc show protocols` does: one line per session.
func PrintTable(w io.Writer, sts []Status, now time.Time) {
	fmt.Fprintf(w, "%-6s %-16s %-20s %-16s %-10s %-12s %-10s %5s %5s  %s\n", "NODE", "PEER", "NAME", "ADDRESS", "AS", "STATE", "SINCE", "RECV", "SENT", "INFO")
	for _, st := range sts {
		if len(st.Peers) == 0 {
			fmt.Fprintf(w, "%-6s %-16s (no sessions; AS %d, router ID %s)\n", st.Node, "-", st.AS, st.RouterID)
		}
		for _, p := range st.Peers {
			since := "-"
			if !p.Since.IsZero() {
				since = now.Sub(p.Since).Round(time.Second).String()
			}
			info := p.GracefulRestart
			if p.LastError != "" && p.State != "Established" {
				info = strings.TrimSpace(info + " last error: " + p.LastError)
			}
			fmt.Fprintf(w, "%-6s %-16s %-20s %-16s %-10d %-12s %-10s %5d %5d  %s\n", st.Node, st.RouterID, p.Name, p.Address, p.AS, p.State, since, p.Received, p.Advertised, info)
		}
	}
}
