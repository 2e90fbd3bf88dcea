package kubeclient

import (
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// NewDynamic returns a dynamic client for component, for fjord's own kinds served by
// CRDs (they speak JSON only, not protobuf).
func NewDynamic(cfg *rest.Config, component string) (dynamic.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "fjord-" + component
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	return dynamic.NewForConfig(cfg)
}
