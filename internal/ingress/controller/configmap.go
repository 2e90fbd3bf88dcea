package controller

import (
	"log/slog"

	corev1 "k8s.io/api/core/v1"

	"github.com/fjord-net/fjord/internal/ingress/nginxconf"
)

// configTracker turns the ConfigMap into the Config in force: a ConfigMap
// with a bad value leaves the last good Config in force (and is reported
// once per version, with its key); unknown keys are reported once each; a
// missing ConfigMap means ingress-nginx's defaults.
type configTracker struct {
	name     string // namespace/name, for messages
	numCPU   int
	log      *slog.Logger
	good     nginxconf.Config
	goodRV   string // resourceVersion of good; "" = defaults
	badRV    string // last resourceVersion reported as bad
	ignored  map[string]bool
	reported bool // a missing ConfigMap was reported
}

func newConfigTracker(name string, numCPU int, log *slog.Logger) *configTracker {
	return &configTracker{name: name, numCPU: numCPU, log: log, good: nginxconf.Defaults(numCPU), ignored: map[string]bool{}}
}

// update returns the Config in force for cm (nil = absent).
func (t *configTracker) update(cm *corev1.ConfigMap) nginxconf.Config {
	if cm == nil {
		if t.goodRV != "" || !t.reported {
			t.log.Info("configmap not found; using ingress-nginx defaults", "configmap", t.name)
			t.reported = true
		}
		t.good, t.goodRV, t.badRV = nginxconf.Defaults(t.numCPU), "", ""
		return t.good
	}
	if cm.ResourceVersion != "" && cm.ResourceVersion == t.goodRV {
		return t.good
	}
	cfg, ignored, err := nginxconf.Parse(cm.Data, t.numCPU)
	if err != nil {
		if cm.ResourceVersion != t.badRV {
			t.log.Error("configmap has a bad value; the last good configuration stays in force",
				"configmap", t.name, "resourceVersion", cm.ResourceVersion, "error", err)
			t.badRV = cm.ResourceVersion
		}
		return t.good
	}
	for _, k := range ignored {
		if !t.ignored[k] {
			t.ignored[k] = true
			t.log.Warn("configmap key is not supported by fjord and is ignored", "configmap", t.name, "key", k)
		}
	}
	if t.goodRV != cm.ResourceVersion {
		t.log.Info("configuration loaded", "configmap", t.name, "resourceVersion", cm.ResourceVersion)
	}
	t.good, t.goodRV, t.badRV = cfg, cm.ResourceVersion, ""
	return cfg
}
