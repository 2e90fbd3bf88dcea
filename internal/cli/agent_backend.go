package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fjord-net/fjord/internal/etcdserver"
	"github.com/fjord-net/fjord/internal/kubeclient"
	"github.com/fjord-net/fjord/internal/nodereg"
	proxyconfig "github.com/fjord-net/fjord/internal/proxy/config"
	"github.com/fjord-net/fjord/internal/source"
	"github.com/fjord-net/fjord/internal/store"
)

// agentBackend is where an agent's objects come from and where its node registers:
// fjord's etcd store, or a Kubernetes API server.
type agentBackend struct {
	src       *source.Source
	registrar nodereg.Registrar
	store     *store.Store // nil in Kubernetes mode
	close     func()
	// fatal delivers an error when the embedded etcd member dies: the agent stops
	// with it (non-zero exit) instead of running on a store that is gone.
	fatal <-chan error
}

// kubernetesMode says whether the agent reads the Kubernetes API: --kubeconfig, the
// KubeProxyConfiguration's clientConnection.kubeconfig when that file exists, or a pod
// with a service account and no --etcd-endpoints.
func kubernetesMode(g *globals, f agentFlags, pc *proxyconfig.Config) (kubeconfig string, ok bool) {
	if g.kubeconfig != "" {
		return g.kubeconfig, true
	}
	if g.endpoints != "" || os.Getenv("FJORD_ETCD_ENDPOINTS") != "" {
		return "", false
	}
	if kc := pc.Raw.ClientConnection.Kubeconfig; kc != "" {
		if _, err := os.Stat(kc); err == nil {
			return kc, true
		}
	}
	return "", kubeclient.InCluster()
}

func openAgentBackend(ctx context.Context, g *globals, f agentFlags, pc *proxyconfig.Config, log *slog.Logger) (*agentBackend, error) {
	if kc, ok := kubernetesMode(g, f, pc); ok {
		rc, err := kubeclient.Config(kc)
		if err != nil {
			return nil, err
		}
		client, err := kubeclient.New(rc, "agent")
		if err != nil {
			return nil, err
		}
		if f.endpointsController {
			log.Info("EndpointSlices come from the cluster's controller-manager; fjord's endpoints controller stays off")
		}
		reg := nodereg.NewKubernetes(client, log)
		reg.CIDRWait = f.podCIDRWait
		backend := source.NewKubernetes(client)
		if f.mode == "bgp" {
			// The BGP objects are CRDs (deploy/fjord-bgp-crds.yaml).
			dyn, err := kubeclient.NewDynamic(rc, "agent")
			if err != nil {
				return nil, err
			}
			backend = backend.WithDynamic(dyn)
		}
		return &agentBackend{src: source.New(backend, pc.ConfigSyncPeriod()), registrar: reg, close: func() {}}, nil
	}
	if f.leaseTTL < 2*time.Second {
		return nil, fmt.Errorf("--lease-ttl: %v is too short (minimum 2s)", f.leaseTTL)
	}
	var closers []func()
	var fatal <-chan error
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if g.endpoints == "" && os.Getenv("FJORD_ETCD_ENDPOINTS") == "" {
		sock := filepath.Join(f.stateDir, "etcd.sock")
		srv, err := etcdserver.Start(ctx, etcdserver.Config{DataDir: filepath.Join(f.stateDir, "etcd"), ClientSocket: sock})
		if err != nil {
			return nil, err
		}
		closers = append(closers, srv.Close)
		fatal = srv.Fatal()
		g.endpoints = etcdserver.SocketEndpoint(sock)
		log.Info("embedded etcd", "endpoint", g.endpoints)
	}
	cc := g.etcd
	cc.Endpoints = g.resolvedEndpoints()
	cli, err := store.Connect(ctx, cc)
	if err != nil {
		closeAll()
		return nil, err
	}
	closers = append(closers, func() { cli.Close() })
	st := store.New(cli, "")
	return &agentBackend{src: source.New(source.NewStore(st), pc.ConfigSyncPeriod()), registrar: nodereg.NewEtcd(st, f.leaseTTL, log),
		store: st, close: closeAll, fatal: fatal}, nil
}
