package kubetest_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/testutil/kubetest"
)

func TestSmoke(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	c.GrantFjordRoles()
	c.Apply(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.18.0.1"}}}})
	agent, _ := c.Connect(kubetest.AgentUser)
	n, err := agent.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(n.Status.Addresses)
	c.RestartAPIServer()
	if _, err := agent.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	c.CompactEtcd()
}
