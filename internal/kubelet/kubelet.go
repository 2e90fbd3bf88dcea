// Package kubelet is the lab's small container runtime, playing the kubelet's part for
// one lab node: it watches the Pods bound to its node and, for each, creates a network
// namespace, runs the node's CNI chain in it exactly as containerd does (libcni with the
// CNI environment and the config the agent wrote), starts the pod's process inside it,
// and reports the pod's IP and phase. It is lab-only and deliberately not in the agent.
package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fjord-net/fjord/internal/store"
	"github.com/fjord-net/fjord/internal/syncrunner"
)

// Config is the runtime's configuration for one node.
type Config struct {
	NodeName    string
	NetnsPrefix string   // pod namespaces are named <prefix><namespace>-<name>
	CNIConfDir  string   // where the agent writes the node's conflist
	CNIPath     []string // directories with CNI plugin binaries
	StateDir    string   // sandbox records, CNI cache, pod logs
	Binary      string   // the fjord binary: default pod command and netns-exec
}

// Kubelet runs the pods of one node.
type Kubelet struct {
	cfg   Config
	store *store.Store
	log   *slog.Logger

	mu   sync.Mutex
	pods map[string]*podRuntime // by namespace/name

	// runner serialises every change to pods: syncs run on its goroutine only.
	runner *syncrunner.Runner
}

// New builds a runtime.
func New(cfg Config, s *store.Store, log *slog.Logger) *Kubelet {
	return &Kubelet{cfg: cfg, store: s, log: log.With("node", cfg.NodeName), pods: map[string]*podRuntime{},
		runner: syncrunner.New(0, 30*time.Second)}
}

// Run syncs pods until ctx ends; pods keep running if the runtime itself is stopped.
// A store.Mirror keeps a copy of every Pod; each change kicks a coalesced sync of this
// node's pods, and a periodic full pass restarts anything that failed.
func (k *Kubelet) Run(ctx context.Context) error {
	for _, d := range []string{k.sandboxDir(), k.logDir(), k.cacheDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	kind, _ := k.store.Kinds().ByName("Pod")
	pods := k.store.NewMirror(kind, "", k.log, k.runner.Kick)
	go pods.Run(ctx)
	k.runner.Run(ctx, func(bool) error {
		if !pods.Synced() {
			return nil
		}
		want := map[string]*corev1.Pod{}
		for _, o := range pods.Objects() {
			if p := o.(*corev1.Pod); p.Spec.NodeName == k.cfg.NodeName {
				want[podKey(p)] = p
			}
		}
		k.syncAll(ctx, want)
		return nil
	})
	return nil
}

// syncAll makes the running set equal to want, including sandboxes left by a previous
// run of the runtime that no pod claims any more.
func (k *Kubelet) syncAll(ctx context.Context, want map[string]*corev1.Pod) {
	for key, rec := range k.loadRecords() {
		if p, ok := want[key]; !ok || p.UID != rec.UID {
			k.teardown(ctx, rec)
		}
	}
	k.mu.Lock()
	var gone []string
	for key := range k.pods {
		if _, ok := want[key]; !ok {
			gone = append(gone, key)
		}
	}
	k.mu.Unlock()
	for _, key := range gone {
		k.stopPod(ctx, key)
	}
	for _, p := range want {
		k.ensurePod(ctx, p)
	}
}

func podKey(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

func (k *Kubelet) sandboxDir() string { return filepath.Join(k.cfg.StateDir, "sandboxes") }
func (k *Kubelet) logDir() string     { return filepath.Join(k.cfg.StateDir, "logs") }
func (k *Kubelet) cacheDir() string   { return filepath.Join(k.cfg.StateDir, "cni-cache") }

// NetnsName returns the network namespace name of a pod.
func (c Config) NetnsName(namespace, name string) string {
	return c.NetnsPrefix + namespace + "-" + name
}

var errNoCNIConfig = errors.New("no CNI config yet (is the node agent running?)")

func (k *Kubelet) cniConfPath() (string, error) {
	p := filepath.Join(k.cfg.CNIConfDir, "10-fjord.conflist")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w: %s", errNoCNIConfig, p)
	}
	return p, nil
}
