package kubelet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netns"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fjord-net/fjord/internal/namedns"
)

// sandboxRecord is what survives a restart of the runtime: enough to find and tear
// down a pod's namespace, IP and process.
type sandboxRecord struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	UID       types.UID `json:"uid"`
	Netns     string    `json:"netns"` // /run/netns/...
	IP        string    `json:"ip"`
	PID       int       `json:"pid"`
}

func (r sandboxRecord) key() string { return r.Namespace + "/" + r.Name }

func (k *Kubelet) recordPath(namespace, name string) string {
	return filepath.Join(k.sandboxDir(), namespace+"_"+name+".json")
}

func (k *Kubelet) saveRecord(r sandboxRecord) error {
	b, _ := json.Marshal(r)
	tmp := k.recordPath(r.Namespace, r.Name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, k.recordPath(r.Namespace, r.Name))
}

func (k *Kubelet) loadRecords() map[string]sandboxRecord {
	out := map[string]sandboxRecord{}
	files, _ := filepath.Glob(filepath.Join(k.sandboxDir(), "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		var r sandboxRecord
		if err == nil && json.Unmarshal(b, &r) == nil {
			out[r.key()] = r
		}
	}
	return out
}

func (k *Kubelet) runtimeConf(r sandboxRecord) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: string(r.UID),
		NetNS:       r.Netns,
		IfName:      "eth0",
		Args: [][2]string{
			{"K8S_POD_NAMESPACE", r.Namespace}, {"K8S_POD_NAME", r.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", string(r.UID)}, {"K8S_POD_UID", string(r.UID)},
		},
	}
}

func (k *Kubelet) cni() (*libcni.CNIConfig, *libcni.NetworkConfigList, error) {
	path, err := k.cniConfPath()
	if err != nil {
		return nil, nil, err
	}
	list, err := libcni.ConfListFromFile(path)
	if err != nil {
		return nil, nil, err
	}
	return libcni.NewCNIConfigWithCacheDir(k.cfg.CNIPath, k.cacheDir(), nil), list, nil
}

// createSandbox makes the pod's network namespace and runs CNI ADD in it. On failure
// nothing is left behind.
func (k *Kubelet) createSandbox(ctx context.Context, r sandboxRecord) (sandboxRecord, error) {
	cniConf, list, err := k.cni()
	if err != nil {
		return r, err
	}
	name := filepath.Base(r.Netns)
	if err := namedns.Create(name); err != nil {
		return r, fmt.Errorf("create netns %s: %w", name, err)
	}
	res, err := cniConf.AddNetworkList(ctx, list, k.runtimeConf(r))
	if err != nil {
		_ = cniConf.DelNetworkList(ctx, list, k.runtimeConf(r))
		_ = netns.DeleteNamed(name)
		return r, fmt.Errorf("CNI ADD: %w", err)
	}
	cur, err := types100.NewResultFromResult(res)
	if err != nil || len(cur.IPs) == 0 {
		_ = cniConf.DelNetworkList(ctx, list, k.runtimeConf(r))
		_ = netns.DeleteNamed(name)
		return r, fmt.Errorf("CNI ADD returned no IP (%v)", err)
	}
	r.IP = cur.IPs[0].Address.IP.String()
	return r, nil
}

// sandboxAlive reports whether a recorded sandbox can be adopted: its namespace exists
// and the CNI chain still agrees it is set up (CNI CHECK against the cached result).
func (k *Kubelet) sandboxAlive(ctx context.Context, r sandboxRecord) bool {
	if _, err := os.Stat(r.Netns); err != nil || r.IP == "" {
		return false
	}
	cniConf, list, err := k.cni()
	if err != nil {
		return false
	}
	return cniConf.CheckNetworkList(ctx, list, k.runtimeConf(r)) == nil
}

// teardown stops the pod's process, runs CNI DEL and removes the namespace. Every step
// tolerates "already gone", so it is safe to repeat.
func (k *Kubelet) teardown(ctx context.Context, r sandboxRecord) {
	killProcess(r.PID)
	if cniConf, list, err := k.cni(); err == nil {
		if err := cniConf.DelNetworkList(ctx, list, k.runtimeConf(r)); err != nil {
			k.log.Warn("CNI DEL failed", "pod", r.key(), "err", err)
		}
	}
	if err := netns.DeleteNamed(filepath.Base(r.Netns)); err != nil && !errors.Is(err, os.ErrNotExist) {
		k.log.Warn("delete netns failed", "netns", r.Netns, "err", err)
	}
	_ = os.Remove(k.recordPath(r.Namespace, r.Name))
}

// killProcess ends a pod process started by a previous run, if that PID is still one of
// ours (a reused PID belongs to someone else and is left alone).
func killProcess(pid int) {
	if pid <= 0 || !isOurPod(pid) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 40; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// isOurPod checks the process environment for the marker every pod process carries.
func isOurPod(pid int) bool {
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	return err == nil && strings.Contains(string(env), "FJORD_POD=")
}
