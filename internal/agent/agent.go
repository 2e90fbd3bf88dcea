// Package agent is the node agent's pod network: it registers its node (through a
// nodereg.Registrar: fjord's store or the Kubernetes API), gets a pod CIDR, keeps the
// node alive, publishes the node's pod network for the CNI plugin, and keeps the
// kernel's pod-network state equal to what podnet plans from all Nodes.
//
// A shared Node informer feeds a map of peers; every change (and a periodic resync)
// runs one reconcile: observe the kernel, diff against the plan, apply the
// difference. An outage of the store or API server only stops the map from changing:
// the kernel keeps the last good state.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"

	"github.com/fjord-net/fjord/internal/bgp"
	"github.com/fjord-net/fjord/internal/cidralloc"
	"github.com/fjord-net/fjord/internal/kernel"
	"github.com/fjord-net/fjord/internal/nodereg"
	"github.com/fjord-net/fjord/internal/nodestate"
	"github.com/fjord-net/fjord/internal/podnet"
)

// Config is everything the agent is told.
type Config struct {
	NodeName     string
	Mode         podnet.Mode
	ClusterCIDR  netip.Prefix      // pod network of the whole cluster, e.g. 10.244.0.0/16
	NodeCIDRBits int               // size of each node's pod CIDR, e.g. 24
	Iface        string            // underlay interface; "" = detect
	NodeIP       netip.Addr        // underlay address; invalid = first address of Iface
	MTU          int               // pod MTU override; 0 = underlay MTU less overhead
	VNI          int               // vxlan network identifier
	Port         int               // vxlan UDP port
	RunDir       string            // where node.json is written for the CNI plugin
	Resync       time.Duration     // full reconcile period, repairs drift
	BGP          BGPConfig         // bgp mode only
	NodeLabels   map[string]string // added to the Node at registration (--node-labels)
}

// Validate checks the configuration and names the offending flag.
func (c Config) Validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("--node-name: required")
	case !c.ClusterCIDR.IsValid():
		return errors.New("--cluster-cidr: must be a CIDR such as 10.244.0.0/16")
	case !c.ClusterCIDR.Addr().Is4():
		// The allocator handles IPv6 (internal/cidralloc), but the service proxy and
		// the lab program IPv4 only; refuse rather than half-work.
		return fmt.Errorf("--cluster-cidr: %v is IPv6; fjord's pod network and service proxy are IPv4-only for now", c.ClusterCIDR)
	case cidralloc.Validate(c.ClusterCIDR, c.NodeCIDRBits) != nil:
		return fmt.Errorf("--node-cidr-size: %w", cidralloc.Validate(c.ClusterCIDR, c.NodeCIDRBits))
	case c.VNI < 1 || c.VNI > 1<<24-1:
		return fmt.Errorf("--vni: %d is outside 1..16777215", c.VNI)
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("--vxlan-port: %d is outside 1..65535", c.Port)
	case c.Resync <= 0:
		return errors.New("--resync: must be positive")
	case c.RunDir == "":
		return errors.New("--run-dir: required")
	}
	if _, err := podnet.ParseMode(string(c.Mode)); err != nil {
		return err
	}
	if c.Mode == podnet.ModeBGP {
		return c.BGP.validate()
	}
	return nil
}

// DeviceName is the vxlan device's name: "fjord." and the VNI, like flannel's "flannel.1".
func (c Config) DeviceName() string { return fmt.Sprintf("fjord.%d", c.VNI) }

// Kernel is what the agent needs from the kernel; *kernel.Netlink implements it.
type Kernel interface {
	FindUnderlay(name string, want netip.Addr) (kernel.Underlay, error)
	Observe(device string) (podnet.State, error)
	Apply(podnet.Changes) error
	EnableForwarding() error
}

// Deps are the agent's collaborators, wired in main.
type Deps struct {
	// Registrar registers the node, gives it a pod CIDR and keeps it alive.
	Registrar nodereg.Registrar
	// Nodes is the shared Node informer the peers come from.
	Nodes  cache.SharedIndexInformer
	Kernel Kernel
	Log    *slog.Logger
	// Publish is called with the node's network once the pod CIDR is known (writes
	// node.json and the CNI config); nil = nodestate.Write to Config.RunDir only.
	Publish func(nodestate.NodeNetwork) error
	// Ready, if set, is called once the first reconcile has succeeded.
	Ready func()
	// BGP is required in bgp mode.
	BGP BGPDeps
}

// Agent runs one node.
type Agent struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	self podnet.Self

	mu      sync.Mutex
	peers   map[string]podnet.Peer // by node name, from the Node informer
	nodes   []bgp.Node             // the same Nodes as bgp mode reads them
	synced  bool                   // peers reflects at least one full List
	kick    chan struct{}          // coalesced "reconcile now"
	lastErr string                 // last reported peer problems, to log changes only
}

// New validates cfg and builds an agent.
func New(cfg Config, deps Deps) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Registrar == nil || deps.Nodes == nil || deps.Kernel == nil {
		return nil, errors.New("agent: registrar, node informer and kernel are required")
	}
	if cfg.Mode == podnet.ModeBGP && (deps.BGP.Speaker == nil || deps.BGP.Configurations == nil || deps.BGP.Peers == nil || deps.BGP.Leases == nil) {
		return nil, errors.New("agent: bgp mode needs a speaker and the BGPConfiguration, BGPPeer and Lease informers")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Publish == nil {
		dir := cfg.RunDir
		deps.Publish = func(n nodestate.NodeNetwork) error { return nodestate.Write(dir, n) }
	}
	return &Agent{cfg: cfg, deps: deps, log: deps.Log.With("node", cfg.NodeName), peers: map[string]podnet.Peer{}, kick: make(chan struct{}, 1)}, nil
}

// NodeIP returns the node's underlay address; valid once Ready was called.
func (a *Agent) NodeIP() netip.Addr { return a.self.NodeIP }

// Run sets the node up and keeps its pod network in shape until ctx ends. It returns an
// error if setup fails or if this node's Node object is deleted. The Node informer must
// be started by the caller (it is shared with the rest of the process).
func (a *Agent) Run(ctx context.Context) error {
	if err := a.setup(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if err := a.watchNodes(ctx, cancel); err != nil {
		return err
	}
	if a.cfg.Mode == podnet.ModeBGP {
		if err := a.watchBGP(ctx); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.deps.Registrar.KeepAlive(ctx, a.cfg.NodeName); err != nil {
			a.log.Warn("giving the node lease back failed", "err", err)
		}
	}()
	a.reconcileLoop(ctx)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		if a.cfg.Mode == podnet.ModeBGP {
			a.deps.BGP.Speaker.Stop() // the node leaves: withdraw its routes now
		}
		return err
	}
	return nil
}
