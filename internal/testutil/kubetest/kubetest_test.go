package kubetest_test

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/testutil/kubetest"
)

func node(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.18.0.1"}}}}
}

// The harness serves a working API with fjord's least-privilege roles, survives a
// restart, cuts and restores a client's link, and leaves no process or file behind.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded etcd and kube-apiserver")
	}
	var pid int
	var dir string
	t.Run("cluster", func(t *testing.T) {
		c := kubetest.Start(t, kubetest.Options{})
		pid, dir = c.APIServerPID(), c.Dir
		c.GrantFjordRoles()
		c.Apply(node("n1")) // status included
		agent, link := c.Connect(kubetest.AgentUser)
		ctx := context.Background()
		n, err := agent.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil || len(n.Status.Addresses) != 1 {
			t.Fatalf("the agent reads n1: %v %v", n, err)
		}
		if _, err := agent.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Fatalf("the agent lists Secrets: %v; its role does not allow it", err)
		}
		link.Cut()
		if _, err := agent.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{}); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("through a cut link: %v, want connection refused", err)
		}
		link.Restore()
		c.RestartAPIServer()
		if pid == c.APIServerPID() {
			t.Fatal("the restart did not start a new process")
		}
		pid = c.APIServerPID()
		if _, err := agent.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{}); err != nil {
			t.Fatalf("after the restart: %v", err)
		}
		if got := link.Count(func(r kubetest.Request) bool { return r.Path == "/api/v1/nodes/n1" }); got != 3 {
			t.Errorf("the link recorded %d requests for n1, want 3", got)
		}
		c.Delete(node("n1"))
		c.CompactEtcd()
		if _, err := c.Client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("n1 after Delete: %v", err)
		}
	})
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kube-apiserver (pid %d) still runs after the test: %v", pid, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", dir, err)
	}
}
