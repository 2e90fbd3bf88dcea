package kubebuild

import (
	"fmt"
	"regexp"
	"strconv"
)

// release is a parsed Kubernetes release, v1.MINOR.PATCH.
type release struct {
	minor, patch int
}

var releaseRE = regexp.MustCompile(`^v1\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

// parseRelease accepts exactly the form the k8s.io/kubernetes module is
// published under for a release (v1.37.2); pre-releases are refused because
// their staging modules are not published under a matching v0 version.
func parseRelease(v string) (release, error) {
	m := releaseRE.FindStringSubmatch(v)
	if m == nil {
		return release{}, fmt.Errorf("kubernetes version %q is not of the form v1.MINOR.PATCH", v)
	}
	minor, err1 := strconv.Atoi(m[1])
	patch, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil {
		return release{}, fmt.Errorf("kubernetes version %q: numbers out of range", v)
	}
	return release{minor: minor, patch: patch}, nil
}

func (r release) String() string { return fmt.Sprintf("v1.%d.%d", r.minor, r.patch) }

// staging is the version the staging modules (k8s.io/api, client-go, ...) are
// published under for this release: v1.37.2 -> v0.37.2.
func (r release) staging() string { return fmt.Sprintf("v0.%d.%d", r.minor, r.patch) }

// ldflags stamp the version into k8s.io/component-base/version, as the
// release build does, so `kubelet --version` says "Kubernetes v1.37.2" and the
// apiserver reports it to clients; -s -w drop the symbol tables.
func (r release) ldflags() string {
	const v = "k8s.io/component-base/version"
	return fmt.Sprintf("-s -w -X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%d -X %s.gitTreeState=clean",
		v, r, v, v, r.minor, v)
}
