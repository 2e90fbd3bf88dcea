package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/fjord-net/fjord/internal/nodereg"
	"github.com/fjord-net/fjord/internal/source"
)

// KubeAPI is the runtime's API over a real API server: it plays the kubelet's part
// for the node (registers the Node, posts its Ready condition, renews its Lease in
// kube-node-lease) as well as reporting pod status and confirming deletions.
type KubeAPI struct {
	client kubernetes.Interface
	pods   cache.SharedIndexInformer
	node   string
	nodeIP string
	log    *slog.Logger
	// Heartbeat is how often the node's Lease and Ready condition are renewed.
	Heartbeat time.Duration
}

// NewKubeAPI returns the API's runtime interface for node at nodeIP, with its pods
// from src (a Kubernetes source).
func NewKubeAPI(client kubernetes.Interface, src *source.Source, node, nodeIP string, log *slog.Logger) *KubeAPI {
	return &KubeAPI{client: client, pods: src.Pods(source.OnNode(node)), node: node, nodeIP: nodeIP, log: log, Heartbeat: 10 * time.Second}
}

func (a *KubeAPI) Pods() cache.SharedIndexInformer { return a.pods }

func (a *KubeAPI) HostIP(context.Context) string { return a.nodeIP }

func (a *KubeAPI) UpdatePodStatus(ctx context.Context, p *corev1.Pod, mutate func(*corev1.Pod) bool) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := a.client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		// A kubelet writes status only (NodeRestriction lets it write no more).
		meta := cur.ObjectMeta.DeepCopy()
		if cur.UID != p.UID || !mutate(cur) {
			return nil
		}
		cur.ObjectMeta = *meta
		_, err = a.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// PodGone finishes a graceful deletion the way a kubelet does once the pod's
// containers have stopped: a delete with no grace period, for this pod's UID only.
func (a *KubeAPI) PodGone(ctx context.Context, p *corev1.Pod) error {
	zero := int64(0)
	err := a.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &p.UID}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// RunNode registers the Node and keeps it Ready until ctx ends.
func (a *KubeAPI) RunNode(ctx context.Context) error {
	delay := time.Second
	for ctx.Err() == nil {
		if err := a.register(ctx); err != nil {
			a.log.Warn("registering the node failed; retrying", "err", err, "in", delay)
		} else {
			delay = time.Second
			if err := a.heartbeat(ctx); err != nil {
				a.log.Warn("node heartbeat failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(delay, a.Heartbeat)):
		}
		delay = min(2*delay, 30*time.Second)
	}
	return nil
}

func (a *KubeAPI) register(ctx context.Context) error {
	_, err := a.client.CoreV1().Nodes().Get(ctx, a.node, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return err
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.node, Labels: map[string]string{
		"kubernetes.io/hostname": a.node, "kubernetes.io/os": "linux", "kubernetes.io/arch": runtime.GOARCH}}}
	_, err = a.client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err == nil {
		a.log.Info("registered node", "node", a.node)
	}
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// heartbeat posts the node's status (addresses, capacity, Ready) and renews its Lease,
// then keeps doing so every Heartbeat.
func (a *KubeAPI) heartbeat(ctx context.Context) error {
	t := time.NewTicker(a.Heartbeat)
	defer t.Stop()
	for {
		if err := a.postStatus(ctx); err != nil {
			return fmt.Errorf("node status: %w", err)
		}
		if err := a.renewLease(ctx); err != nil {
			return fmt.Errorf("node lease: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *KubeAPI) postStatus(ctx context.Context) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := a.client.CoreV1().Nodes().Get(ctx, a.node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: a.nodeIP}, {Type: corev1.NodeHostName, Address: a.node}}
		n.Status.Capacity = capacity()
		n.Status.Allocatable = capacity()
		n.Status.NodeInfo = corev1.NodeSystemInfo{KubeletVersion: "fjord-lab", OperatingSystem: "linux", Architecture: runtime.GOARCH,
			ContainerRuntimeVersion: "fjord-lab://1"}
		ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "the fjord lab runtime is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}
		found := false
		for i, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status == ready.Status {
					ready.LastTransitionTime = c.LastTransitionTime
				}
				n.Status.Conditions[i], found = ready, true
			}
		}
		if !found {
			n.Status.Conditions = append(n.Status.Conditions, ready)
		}
		_, err = a.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
}

func (a *KubeAPI) renewLease(ctx context.Context) error {
	leases := a.client.CoordinationV1().Leases(nodereg.LeaseNamespace)
	secs := int32(40)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, a.node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: a.node, Namespace: nodereg.LeaseNamespace},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &a.node, LeaseDurationSeconds: &secs, RenewTime: &now}}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &a.node, &secs, &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// capacity is what the node offers the scheduler: this machine's CPUs and memory,
// and kubelet's default of 110 pods.
func capacity() corev1.ResourceList {
	mem := int64(8 << 30)
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					mem = kb << 10
				}
			}
		}
	}
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(mem, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
	}
}
