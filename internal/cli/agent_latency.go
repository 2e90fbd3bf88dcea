package cli

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"k8s.io/client-go/tools/cache"

	"github.com/fjord-net/fjord/internal/latency"
)

// startLatencyProbes runs this node's RTT responder (UDP nodeIP:10264) and prober, and
// registers their metrics on reg, the agent's registry, which serveProxyHealth serves
// on metricsBindAddress at /metrics beside kube-proxy's:
// fjord_node_rtt_seconds{peer}, fjord_node_probes_total, fjord_node_probes_lost_total,
// fjord_node_peer_reachable, fjord_node_clock_offset_seconds. Peers are every other
// Node with an InternalIP in the nodes informer (read from its store each round; no
// handler is added). Failures are logged as errors; the agent's data plane does not
// depend on any of this.
func startLatencyProbes(ctx context.Context, wg *sync.WaitGroup, nodes cache.SharedIndexInformer, node string, nodeIP netip.Addr, reg prometheus.Registerer, log *slog.Logger) {
	log = log.With("component", "latency")
	resp, err := latency.Listen(netip.AddrPortFrom(nodeIP, latency.DefaultPort).String())
	if err != nil {
		log.Error("RTT responder cannot listen: peers will see this node as unreachable", "addr", netip.AddrPortFrom(nodeIP, latency.DefaultPort), "err", err)
	} else {
		wg.Add(1)
		go func() { defer wg.Done(); _ = resp.Serve(ctx) }()
	}
	peers := func() []latency.Peer {
		var out []latency.Peer
		for _, o := range nodes.GetStore().List() {
			n, ok := o.(*corev1.Node)
			if !ok {
				continue
			}
			if n.Name == node {
				continue
			}
			for _, a := range n.Status.Addresses {
				if ip, err := netip.ParseAddr(a.Address); err == nil && a.Type == corev1.NodeInternalIP {
					out = append(out, latency.Peer{Name: n.Name, Addr: netip.AddrPortFrom(ip, latency.DefaultPort)})
					break
				}
			}
		}
		return out
	}
	p, err := latency.NewProber(latency.Config{Source: nodeIP, Peers: peers}, reg)
	if err != nil {
		log.Error("RTT prober cannot start", "err", err)
		return
	}
	wg.Add(1)
	go func() { defer wg.Done(); p.Run(ctx) }()
	log.Info("RTT probes", "responder", netip.AddrPortFrom(nodeIP, latency.DefaultPort))
}

// responderPort is for messages.
var responderPort = strconv.Itoa(latency.DefaultPort)
