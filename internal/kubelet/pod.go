package kubelet

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnnotationNetns is set on a running pod to its network namespace path; `fjord exec`
// enters it.
const AnnotationNetns = "fjord.dev/netns"

// podRuntime is one running pod: its sandbox and the goroutine supervising its process.
type podRuntime struct {
	rec     sandboxRecord
	spec    string // hash of what the process depends on; a change restarts the pod
	stop    context.CancelFunc
	stopped chan struct{}
}

// ensurePod starts p if it is not running as specified.
func (k *Kubelet) ensurePod(ctx context.Context, p *corev1.Pod) {
	key := podKey(p)
	spec := specHash(p)
	k.mu.Lock()
	cur := k.pods[key]
	k.mu.Unlock()
	if cur != nil && cur.rec.UID == p.UID && cur.spec == spec {
		return
	}
	if cur != nil {
		k.stopPod(ctx, key)
	}
	rec := sandboxRecord{Namespace: p.Namespace, Name: p.Name, UID: p.UID, Netns: "/run/netns/" + k.cfg.NetnsName(p.Namespace, p.Name)}
	if old, ok := k.loadRecords()[key]; ok && old.UID == p.UID && k.sandboxAlive(ctx, old) {
		killProcess(old.PID) // adopt the sandbox, restart the process
		rec = old
	} else {
		if ok {
			k.teardown(ctx, old)
		}
		var err error
		if rec, err = k.createSandbox(ctx, rec); err != nil {
			k.log.Error("pod sandbox failed", "pod", key, "err", err)
			k.setStatus(ctx, p, rec, corev1.PodPending, err.Error(), false)
			go k.retryLater(ctx, p)
			return
		}
	}
	if err := k.saveRecord(rec); err != nil {
		k.log.Error("save sandbox record", "pod", key, "err", err)
	}
	pctx, stop := context.WithCancel(context.Background())
	pr := &podRuntime{rec: rec, spec: spec, stop: stop, stopped: make(chan struct{})}
	k.mu.Lock()
	k.pods[key] = pr
	k.mu.Unlock()
	go k.supervise(pctx, p, pr)
	k.setStatus(ctx, p, rec, corev1.PodRunning, "", false)
	k.log.Info("pod running", "pod", key, "ip", rec.IP)
	go k.awaitReady(pctx, p, rec)
}

// awaitReady marks the pod Ready once every TCP port its container declares accepts a
// connection (a default readiness probe): a Service sends traffic to a pod only after
// its server listens, so a new endpoint never refuses a connection. The kubelet runs
// in the node's namespace, where pod addresses are directly routed.
func (k *Kubelet) awaitReady(ctx context.Context, p *corev1.Pod, rec sandboxRecord) {
	var ports []int32
	if len(p.Spec.Containers) > 0 {
		for _, cp := range p.Spec.Containers[0].Ports {
			if cp.Protocol == "" || cp.Protocol == corev1.ProtocolTCP {
				ports = append(ports, cp.ContainerPort)
			}
		}
	}
	for _, port := range ports {
		addr := net.JoinHostPort(rec.IP, strconv.Itoa(int(port)))
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	k.setStatus(ctx, p, rec, corev1.PodRunning, "", true)
}

// retryLater asks for another sync soon, for a pod that failed (for example before
// the agent wrote the CNI config). The sync itself runs on the runner's goroutine.
func (k *Kubelet) retryLater(ctx context.Context, _ *corev1.Pod) {
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
		k.runner.Kick()
	}
}

// stopPod stops the process and tears the sandbox down.
func (k *Kubelet) stopPod(ctx context.Context, key string) {
	k.mu.Lock()
	pr := k.pods[key]
	delete(k.pods, key)
	k.mu.Unlock()
	if pr == nil {
		if rec, ok := k.loadRecords()[key]; ok {
			k.teardown(ctx, rec)
		}
		return
	}
	pr.stop()
	<-pr.stopped
	k.teardown(ctx, pr.rec)
	k.log.Info("pod stopped", "pod", key)
}

// supervise runs the pod's process and restarts it when it exits (restartPolicy
// Always), with a growing pause, until stopped.
func (k *Kubelet) supervise(ctx context.Context, p *corev1.Pod, pr *podRuntime) {
	defer close(pr.stopped)
	backoff := time.Second
	for ctx.Err() == nil {
		cmd, err := k.startProcess(p, pr.rec)
		if err != nil {
			k.log.Error("start pod process", "pod", pr.rec.key(), "err", err)
		} else {
			pr.rec.PID = cmd.Process.Pid
			_ = k.saveRecord(pr.rec)
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case <-ctx.Done():
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(3 * time.Second):
					_ = cmd.Process.Kill()
					<-exited
				}
				return
			case err := <-exited:
				k.log.Warn("pod process exited; restarting", "pod", pr.rec.key(), "err", err, "in", backoff)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// startProcess runs the pod's command inside its namespace, via `fjord netns-exec`.
func (k *Kubelet) startProcess(p *corev1.Pod, rec sandboxRecord) (*exec.Cmd, error) {
	argv := podArgv(k.cfg.Binary, p)
	logf, err := os.OpenFile(filepath.Join(k.logDir(), p.Namespace+"_"+p.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(k.cfg.Binary, append([]string{"netns-exec", rec.Netns, "--"}, argv...)...)
	cmd.Env = append(os.Environ(),
		"FJORD_POD="+p.Namespace+"/"+p.Name,
		"POD_NAME="+p.Name, "POD_NAMESPACE="+p.Namespace, "POD_IP="+rec.IP, "NODE_NAME="+k.cfg.NodeName)
	if len(p.Spec.Containers) > 0 {
		for _, e := range p.Spec.Containers[0].Env {
			if e.ValueFrom == nil {
				cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
			}
		}
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd, cmd.Start()
}

// podArgv follows Kubernetes: command replaces the image's entrypoint (here `fjord
// echo`), args alone replace its arguments.
func podArgv(binary string, p *corev1.Pod) []string {
	entry := []string{binary, "echo"}
	var args []string
	if len(p.Spec.Containers) > 0 {
		c := p.Spec.Containers[0]
		if len(c.Command) > 0 {
			entry = c.Command
		}
		args = c.Args
	}
	return append(append([]string{}, entry...), args...)
}

func specHash(p *corev1.Pod) string {
	b, _ := json.Marshal(p.Spec.Containers)
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// setStatus records phase, IPs, conditions and the netns annotation on the Pod.
func (k *Kubelet) setStatus(ctx context.Context, p *corev1.Pod, rec sandboxRecord, phase corev1.PodPhase, msg string, isReady bool) {
	hostIP := k.api.HostIP(ctx)
	err := k.api.UpdatePodStatus(ctx, p, func(cur *corev1.Pod) bool {
		before, _ := json.Marshal(cur)
		ready := corev1.ConditionFalse
		if isReady {
			ready = corev1.ConditionTrue
		}
		cur.Status.Phase = phase
		cur.Status.Message = msg
		cur.Status.HostIP = hostIP
		cur.Status.HostIPs = nil
		if hostIP != "" {
			cur.Status.HostIPs = []corev1.HostIP{{IP: hostIP}}
		}
		cur.Status.PodIP = rec.IP
		cur.Status.PodIPs = nil
		if rec.IP != "" {
			cur.Status.PodIPs = []corev1.PodIP{{IP: rec.IP}}
		}
		if cur.Status.StartTime == nil && phase == corev1.PodRunning {
			now := metav1.Now()
			cur.Status.StartTime = &now
		}
		setCondition(cur, corev1.PodScheduled, corev1.ConditionTrue)
		setCondition(cur, corev1.PodInitialized, corev1.ConditionTrue)
		setCondition(cur, corev1.PodReady, ready)
		setCondition(cur, corev1.ContainersReady, ready)
		cur.Status.ContainerStatuses = containerStatuses(cur, phase == corev1.PodRunning, isReady)
		if cur.Annotations == nil {
			cur.Annotations = map[string]string{}
		}
		if rec.IP != "" {
			cur.Annotations[AnnotationNetns] = rec.Netns
		} else {
			delete(cur.Annotations, AnnotationNetns)
		}
		after, _ := json.Marshal(cur)
		return string(before) != string(after)
	})
	if err != nil {
		k.log.Warn("update pod status", "pod", podKey(p), "err", err)
	}
}

// containerStatuses reports the pod's containers as kubectl expects to read them
// (READY 1/1): the lab runs one process per pod, standing for every container.
func containerStatuses(p *corev1.Pod, running, ready bool) []corev1.ContainerStatus {
	out := make([]corev1.ContainerStatus, 0, len(p.Spec.Containers))
	for _, c := range p.Spec.Containers {
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: ready, Started: &running}
		for _, old := range p.Status.ContainerStatuses {
			if old.Name == c.Name && old.State.Running != nil && running {
				cs.State = old.State
			}
		}
		if running && cs.State.Running == nil {
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.Now()}
		} else if !running {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		out = append(out, cs)
	}
	return out
}

func setCondition(p *corev1.Pod, t corev1.PodConditionType, s corev1.ConditionStatus) {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			if p.Status.Conditions[i].Status != s {
				p.Status.Conditions[i].Status = s
				p.Status.Conditions[i].LastTransitionTime = metav1.Now()
			}
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: s, LastTransitionTime: metav1.Now()})
}
