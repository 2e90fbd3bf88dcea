package main

// The cluster's objects and the load generator that plays 1,000 kubelets.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/fjord-net/fjord/internal/agent"
	"github.com/fjord-net/fjord/internal/nodereg"
)

func nodeName(i int) string { return fmt.Sprintf("scale-%04d", i) }

// add returns a + n.
func add(a netip.Addr, n int) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Node i (1..N) has underlay address 198.18.184.0+i and pod CIDR 10.128.i.0/24 (in
// 256s): the agent's own node is 0.
func nodeIP(i int) netip.Addr { return add(netip.MustParseAddr("198.18.184.0"), i) }

func podCIDR(i int) netip.Prefix { return netip.PrefixFrom(add(clusterCIDR.Addr(), i*256), 24) }

// node is Node i as a kubelet registers it and its fjord agent annotates it, the
// controller-manager having set its pod CIDR: labels, addresses, capacity, the images
// the kubelet reports (up to 50; here 25), node info. Its size is what a watcher of
// Nodes receives on every change.
func node(i int, ip netip.Addr, cidr netip.Prefix) *corev1.Node {
	name := nodeName(i)
	if i == 0 {
		name = agentNode
	}
	now := metav1.Now()
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels: map[string]string{
				"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
				"node.kubernetes.io/instance-type": "m5.xlarge", "topology.kubernetes.io/region": "eu-north-1",
				"topology.kubernetes.io/zone": fmt.Sprintf("eu-north-1%c", 'a'+i%3),
			},
			Annotations: map[string]string{
				"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true",
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: cidr.String(), PodCIDRs: []string{cidr.String()}},
		Status: corev1.NodeStatus{
			Capacity:        resources("4", "16110980Ki", "110", "101430960Ki"),
			Allocatable:     resources("4", "16008580Ki", "110", "93478772582"),
			Conditions:      conditions(now),
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip.String()}, {Type: corev1.NodeHostName, Address: name}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
			NodeInfo: corev1.NodeSystemInfo{
				MachineID: fmt.Sprintf("%032x", i+1), SystemUUID: fmt.Sprintf("ec2%029x", i+1), BootID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i),
				KernelVersion: "6.1.0-27-cloud-amd64", OSImage: "Debian GNU/Linux 12 (bookworm)", ContainerRuntimeVersion: "containerd://1.7.22",
				KubeletVersion: "v1.37.2", OperatingSystem: "linux", Architecture: "amd64",
			},
		},
	}
	for k := range 25 {
		n.Status.Images = append(n.Status.Images, corev1.ContainerImage{
			Names:     []string{fmt.Sprintf("registry.example/team-%02d/app@sha256:%064x", k, k+1), fmt.Sprintf("registry.example/team-%02d/app:v1.%d.0", k, k)},
			SizeBytes: int64(20_000_000 + k*3_000_000),
		})
	}
	// What the node's fjord agent publishes.
	n.Annotations[nodereg.AnnotationBackend] = "vxlan"
	n.Annotations[nodereg.AnnotationNodeIP] = ip.String()
	n.Annotations[nodereg.AnnotationVTEPMAC] = agent.VTEPMAC(name)
	return n
}

func resources(cpu, mem, pods, disk string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem),
		corev1.ResourcePods: resource.MustParse(pods), corev1.ResourceEphemeralStorage: resource.MustParse(disk),
		"hugepages-1Gi": resource.MustParse("0"), "hugepages-2Mi": resource.MustParse("0")}
}

// conditions are the kubelet's five, heartbeat at t.
func conditions(t metav1.Time) []corev1.NodeCondition {
	since := metav1.NewTime(time.Now().Add(-24 * time.Hour))
	c := func(typ corev1.NodeConditionType, st corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: typ, Status: st, Reason: reason, Message: msg, LastHeartbeatTime: t, LastTransitionTime: since}
	}
	return []corev1.NodeCondition{
		c(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		c(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		c(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		c(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		c(corev1.NodeNetworkUnavailable, corev1.ConditionFalse, "FjordIsUp", "fjord programmed the pod network"),
	}
}

func lease(name string) *coordinationv1.Lease {
	now := metav1.NewMicroTime(time.Now())
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: nodereg.LeaseNamespace},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &name, LeaseDurationSeconds: ref[int32](40), RenewTime: &now},
	}
}

func ref[T any](v T) *T { return &v }

func serviceName(i int) string { return fmt.Sprintf("svc-%05d", i) }

// serviceIP i is 10.96.4.0 + i: clear of 10.96.0.1 ("kubernetes").
func serviceIP(i int) netip.Addr { return add(serviceCIDR.Addr(), 1024+i) }

func service(i int) *corev1.Service {
	ip := serviceIP(i).String()
	name := serviceName(i)
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app": name, "tier": "backend"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip},
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(backendPort), Protocol: corev1.ProtocolTCP}}},
	}
}

// slice is service i's EndpointSlice as the controller-manager writes it, its
// endpoints pods of three nodes (or the given addresses on the agent's node).
func slice(i int, addrs ...netip.Addr) *discoveryv1.EndpointSlice {
	name := serviceName(i)
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-abcde", Namespace: namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ref("http"), Port: ref[int32](backendPort), Protocol: ref(corev1.ProtocolTCP)}},
	}
	if len(addrs) == 0 {
		for e := range *flagEndpoints {
			n := 1 + (i*(*flagEndpoints)+e)%*flagNodes
			addrs = append(addrs, add(podCIDR(n).Addr(), 2+i%250))
		}
	}
	for e, a := range addrs {
		nodeName := agentNode
		if !agentCIDR.Contains(a) {
			nodeName = nodeName0(a)
		}
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{a.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ref(true), Serving: ref(true), Terminating: ref(false)},
			NodeName:   &nodeName, Zone: ref("eu-north-1a"),
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: namespace, Name: fmt.Sprintf("%s-7d4b9c-%05d", name, e),
				UID: types.UID(fmt.Sprintf("%08x-1111-4000-8000-%012x", i, e))},
		})
	}
	return es
}

// nodeName0 is the node whose pod CIDR holds a.
func nodeName0(a netip.Addr) string {
	b := a.As4()
	return nodeName((int(b[1])-int(clusterCIDR.Addr().As4()[1]))*256 + int(b[2]))
}

// parallel runs do for 0..n-1 on -create-workers goroutines, reporting progress.
func (b *bench) parallel(ctx context.Context, what string, n int, do func(ctx context.Context, i int) error) error {
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, *flagCreate)
	t0 := time.Now()
	for range *flagCreate {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := do(ctx, i); err != nil && !apierrors.IsAlreadyExists(err) {
					errc <- fmt.Errorf("%s %d: %w", what, i, err)
					return
				}
				if d := done.Add(1); d%10000 == 0 {
					b.logf("%d of %d %s (%.0f/s)", d, n, what, float64(d)/time.Since(t0).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	return ctx.Err()
}

// kubelets plays every Node's kubelet until ctx ends: each renews its Lease every
// leaseEvery and posts its status (a patch of the conditions' heartbeat times, as the
// kubelet sends) every statusEvery, spread evenly over the period, by a pool of
// workers. It counts what it did.
type kubelets struct {
	b                       *bench
	leaseEvery, statusEvery time.Duration
	leases, statuses, fails atomic.Int64
	mu                      sync.Mutex
	held                    map[int]*coordinationv1.Lease // the last Lease written, as a kubelet keeps it
}

type beat struct {
	node   int
	status bool
}

// run sends beats until ctx ends, then lets the ones under way finish (with reqCtx).
func (k *kubelets) run(ctx, reqCtx context.Context) {
	jobs := make(chan beat, 1024)
	var wg sync.WaitGroup
	for range 128 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				var err error
				if j.status {
					err = k.postStatus(reqCtx, j.node)
				} else {
					err = k.renew(reqCtx, j.node)
				}
				if err != nil && reqCtx.Err() == nil {
					if k.fails.Add(1) <= 3 {
						k.b.logf("heartbeat of %s failed: %v", nodeName(j.node), err)
					}
				}
			}
		}()
	}
	// One tick every 10 ms sends what is due: each node's beats at its own offset in
	// the period, so the load is even.
	n := *flagNodes
	tick := time.NewTicker(10 * time.Millisecond)
	defer func() { tick.Stop(); close(jobs); wg.Wait() }()
	start := time.Now()
	type due struct {
		at    time.Time
		every time.Duration
		beat  beat
	}
	var sched []*due
	for i := 1; i <= n; i++ {
		for _, s := range []due{{every: k.leaseEvery, beat: beat{node: i}}, {every: k.statusEvery, beat: beat{node: i, status: true}}} {
			s.at = start.Add(s.every * time.Duration(i) / time.Duration(n))
			sched = append(sched, &s)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for _, d := range sched {
				for !d.at.After(now) {
					select {
					case jobs <- d.beat:
					case <-ctx.Done():
						return
					}
					d.at = d.at.Add(d.every)
				}
			}
		}
	}
}

func (k *kubelets) renew(ctx context.Context, i int) error {
	leases := k.b.admin.CoordinationV1().Leases(nodereg.LeaseNamespace)
	k.mu.Lock()
	l := k.held[i]
	k.mu.Unlock()
	if l == nil {
		var err error
		if l, err = leases.Get(ctx, nodeName(i), metav1.GetOptions{}); err != nil {
			return err
		}
	}
	l = l.DeepCopy()
	now := metav1.NewMicroTime(time.Now())
	l.Spec.RenewTime = &now
	upd, err := leases.Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		upd = nil // read it again next time
	} else {
		k.leases.Add(1)
	}
	k.mu.Lock()
	k.held[i] = upd
	k.mu.Unlock()
	return err
}

func (k *kubelets) postStatus(ctx context.Context, i int) error {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": conditions(metav1.Now())}})
	if err != nil {
		return err
	}
	if _, err := k.b.admin.CoreV1().Nodes().PatchStatus(ctx, nodeName(i), patch); err != nil {
		return err
	}
	k.statuses.Add(1)
	return nil
}
