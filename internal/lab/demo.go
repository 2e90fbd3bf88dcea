package lab

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/objects"
)

// DemoPods returns the demo workload: one echo pod per node, labelled app=echo.
func DemoPods(c Config) []objects.Object {
	var out []objects.Object
	for _, n := range c.NodeNames() {
		out = append(out, EchoPod("default", "echo-"+n, n, map[string]string{"app": "echo"}))
	}
	return out
}

// EchoPod is a pod running `fjord echo` (HTTP 8080, TCP echo 9000, UDP 9000) on a node.
func EchoPod(namespace, name, node string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: corev1.PodSpec{
			NodeName: node,
			Containers: []corev1.Container{{
				Name: "echo", Image: "fjord/echo",
				Ports: []corev1.ContainerPort{
					{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
					{Name: "tcp-echo", ContainerPort: 9000, Protocol: corev1.ProtocolTCP},
					{Name: "udp-echo", ContainerPort: 9000, Protocol: corev1.ProtocolUDP},
				},
			}},
		},
	}
}

// DemoManifest is the demo workload as YAML, for the docs and for users to copy.
func DemoManifest(node string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: my-echo
  namespace: default
  labels: {app: echo}
spec:
  nodeName: %s
  containers:
  - name: echo
    image: fjord/echo   # the lab runs 'fjord echo' unless command/args are given
`, node)
}
