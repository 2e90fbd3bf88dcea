package lab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/fjord-net/fjord/internal/objects"
)

// DemoObjects is the demo workload: the echo pods, a Service "echo" in front of them
// (port 80 to the pods' 8080) and an Ingress that sends every HTTP request reaching
// the lab's ingress to that Service.
func DemoObjects(c Config) []objects.Object {
	pathType := networkingv1.PathTypePrefix
	class := "nginx"
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "default"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "echo"}, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
			{Name: "udp-echo", Port: 9000, TargetPort: intstr.FromString("udp-echo"), Protocol: corev1.ProtocolUDP},
		}},
	}
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "default"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: &class,
			Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pathType, Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: "echo", Port: networkingv1.ServiceBackendPort{Name: "http"}},
				}}},
			}}}},
		},
	}
	return append(DemoPods(c), svc, ing)
}

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

// WaitHTTP polls url until it answers 200 OK, for at most limit. The error names the
// last answer or failure.
func WaitHTTP(ctx context.Context, url string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	// No proxy from the environment: the lab's addresses are only reachable directly.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 OK within %s (last: %s)", url, limit, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
