package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/spf13/pflag"

	"github.com/fjord-net/fjord/internal/agent"
	"github.com/fjord-net/fjord/internal/bgp"
	"github.com/fjord-net/fjord/internal/nodereg"
	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/source"
)

// agentBGPFlags are the agent's bgp-mode flags.
type agentBGPFlags struct {
	nodeLabels         string
	encap              string
	as                 string
	peers              []string
	advertiseServiceIP bool
}

func (b *agentBGPFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&b.nodeLabels, "node-labels", "", "labels to add to this node's Node, k=v,k2=v2, as the kubelet's flag (BGPPeer nodeSelectors match them, e.g. fjord.dev/rack=r1)")
	fl.StringVar(&b.encap, "encap", "never", "bgp mode: VXLAN towards other nodes: never, cross-subnet (only to nodes in another subnet) or always")
	fl.StringVar(&b.as, "bgp-as", "", "bgp mode: this node's AS number, published on its Node (default: the BGPConfiguration's asNumber, else 64512)")
	fl.StringArrayVar(&b.peers, "bgp-peer", nil, "bgp mode: a router to peer with, IP[:port]/AS (repeatable; adds to the BGPPeer objects)")
	fl.BoolVar(&b.advertiseServiceIP, "bgp-advertise-service-cidr", false, "bgp mode: advertise --service-cidr to the peers (as a BGPConfiguration's serviceClusterIPs does)")
}

// labels parses --node-labels.
func (b agentBGPFlags) labels() (map[string]string, error) {
	if b.nodeLabels == "" {
		return nil, nil
	}
	set, err := labels.ConvertSelectorToLabelsMap(b.nodeLabels)
	if err != nil {
		return nil, fmt.Errorf("--node-labels: %w", err)
	}
	for k, v := range set {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("--node-labels: key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("--node-labels: value %q: %s", v, strings.Join(errs, "; "))
		}
	}
	return set, nil
}

// config turns the flags into the agent's BGPConfig, naming the flag at fault.
func (b agentBGPFlags) config(serviceCIDR string) (agent.BGPConfig, error) {
	c := agent.BGPConfig{Encap: podnet.Encap(b.encap)}
	if _, err := podnet.ParseEncap(b.encap); err != nil {
		return c, fmt.Errorf("--encap: %w", err)
	}
	if b.as != "" {
		as, err := objects.ParseASNumber(b.as)
		if err != nil {
			return c, fmt.Errorf("--bgp-as: %w", err)
		}
		c.AS = as
	}
	for _, p := range b.peers {
		fp, err := bgp.ParseFlagPeer(p)
		if err != nil {
			return c, fmt.Errorf("--bgp-peer: %w", err)
		}
		c.Flags.Peers = append(c.Flags.Peers, fp)
	}
	if b.advertiseServiceIP {
		p, err := netip.ParsePrefix(serviceCIDR)
		if err != nil {
			return c, fmt.Errorf("--service-cidr: %w", err)
		}
		c.Flags.Advertise = append(c.Flags.Advertise, p.Masked())
	}
	return c, nil
}

// bgpDeps starts what bgp mode needs: the speaker, the informers of the BGP objects
// and Leases, and the status socket RUN-DIR/bgp.sock that `fjord bgp status` reads.
func bgpDeps(ctx context.Context, src *source.Source, node, runDir string, log *slog.Logger) (agent.BGPDeps, error) {
	sp := bgp.NewSpeaker(log, 0)
	d := agent.BGPDeps{Speaker: sp, Configurations: src.Informer("BGPConfiguration"), Peers: src.Informer("BGPPeer"),
		Leases: src.Leases(nodereg.LeaseNamespace)}
	sock := filepath.Join(runDir, bgp.SocketName)
	if err := bgp.Serve(ctx, sock, func(ctx context.Context) (bgp.Status, error) { return sp.Status(ctx, node) }, log); err != nil {
		return d, err
	}
	log.Info("BGP status socket", "path", sock)
	return d, nil
}
