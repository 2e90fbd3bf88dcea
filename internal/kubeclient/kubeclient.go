// Package kubeclient connects fjord's commands to a Kubernetes API server: a
// kubeconfig file (a flag or $KUBECONFIG), or the in-cluster service account when
// running in a pod, and a clientset tuned for a node agent.
package kubeclient

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// InCluster reports whether the process runs in a pod with a service account, the
// way client-go's rest.InClusterConfig decides.
func InCluster() bool {
	return os.Getenv("KUBERNETES_SERVICE_HOST") != "" && os.Getenv("KUBERNETES_SERVICE_PORT") != ""
}

// Config loads a client configuration: the kubeconfig at path if given, else
// $KUBECONFIG, else the in-cluster service account.
func Config(path string) (*rest.Config, error) {
	if path == "" {
		path = os.Getenv("KUBECONFIG")
	}
	if path != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if errors.Is(err, rest.ErrNotInCluster) {
		return nil, errors.New("no --kubeconfig, no $KUBECONFIG and not running in a pod: nothing says where the Kubernetes API is")
	}
	return cfg, err
}

// New returns a clientset for component (the User-Agent names it). QPS and burst are
// raised from client-go's 5/10: an agent writes little, but a lab or a test creating
// objects must not be throttled into timeouts.
func New(cfg *rest.Config, component string) (kubernetes.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "fjord-" + component
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	// Protobuf is what kube-proxy uses for its watches: smaller and cheaper to decode
	// than JSON at tens of thousands of objects.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return kubernetes.NewForConfig(cfg)
}
