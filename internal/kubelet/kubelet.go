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

	"github.com/fjord-net/fjord/internal/source"
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
	cfg Config
	api API
	log *slog.Logger

	mu   sync.Mutex
	pods map[string]*podRuntime // by namespace/name

	// runner serialises every change to pods: syncs run on its goroutine only.
	runner *syncrunner.Runner
}

// New builds a runtime.
func New(cfg Config, api API, log *slog.Logger) *Kubelet {
	return &Kubelet{cfg: cfg, api: api, log: log.With("node", cfg.NodeName), pods: map[string]*podRuntime{},
		runner: syncrunner.New(0, 30*time.Second)}
}

// Run syncs pods until ctx ends; pods keep running if the runtime itself is stopped.
// The node's Pod informer (started by the caller) kicks a coalesced sync on every
// change, and a periodic full pass restarts anything that failed.
func (k *Kubelet) Run(ctx context.Context) error {
	for _, d := range []string{k.sandboxDir(), k.logDir(), k.cacheDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	pods := k.api.Pods()
	if err := source.OnChange(pods, k.runner.Kick); err != nil {
		return err
	}
	go func() {
		if err := k.api.RunNode(ctx); err != nil && ctx.Err() == nil {
			k.log.Error("node registration stopped", "err", err)
		}
	}()
	k.runner.Run(ctx, func(bool) error {
		if !pods.HasSynced() {
			return syncrunner.ErrNotReady
		}
		want := map[string]*corev1.Pod{}
		for _, p := range source.List[*corev1.Pod](pods) {
			if p.Spec.NodeName != k.cfg.NodeName {
				continue
			}
			if p.DeletionTimestamp != nil {
				continue // stopped below (not wanted), then reported gone
			}
			want[podKey(p)] = p
		}
		k.syncAll(ctx, want)
		for _, p := range source.List[*corev1.Pod](pods) {
			if p.DeletionTimestamp != nil && p.Spec.NodeName == k.cfg.NodeName {
				if err := k.api.PodGone(ctx, p); err != nil {
					k.log.Warn("confirming pod deletion", "pod", podKey(p), "err", err)
				}
			}
		}
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
