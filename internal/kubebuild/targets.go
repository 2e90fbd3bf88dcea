package kubebuild

import "fmt"

// Target is a binary this package builds; its name is the file name in the
// cache's bin directory.
type Target string

// The targets. Commands report their version (`--version`) and are checked by
// it; the others carry a stamp file with a hash of what they were built from.
const (
	KubeAPIServer         Target = "kube-apiserver"
	KubeControllerManager Target = "kube-controller-manager"
	KubeScheduler         Target = "kube-scheduler"
	Kubelet               Target = "kubelet"
	KubeProxy             Target = "kube-proxy"
	Kubectl               Target = "kubectl"
	// E2ETest is the upstream end-to-end suite, `go test -c` of k8s.io/kubernetes/test/e2e.
	E2ETest Target = "e2e.test"
	// Agnhost is the e2e tests' Swiss-army test server (image registry.k8s.io/e2e-test-images/agnhost).
	Agnhost Target = "agnhost"
	// RegressionIssue74839 is the conntrack regression test server (image registry.k8s.io/e2e-test-images/regression-issue-74839).
	RegressionIssue74839 Target = "regression-issue-74839"
	// Ginkgo is the test runner CLI that runs e2e.test in parallel processes.
	Ginkgo Target = "ginkgo"
)

// AllTargets lists every target, in build order.
func AllTargets() []Target {
	return []Target{KubeAPIServer, KubeControllerManager, KubeScheduler, Kubelet, KubeProxy, Kubectl,
		Agnhost, RegressionIssue74839, Ginkgo, E2ETest}
}

// buildKind says how a target is built; targets of one kind build in one go command.
type buildKind int

const (
	// kindCommand: `go build` with the version ldflags; checked by --version.
	kindCommand buildKind = iota
	// kindTool: `go build -ldflags "-s -w"`; checked by stamp.
	kindTool
	// kindTest: `go test -c` with the version ldflags; checked by stamp.
	kindTest
)

type targetInfo struct {
	pkg  string
	kind buildKind
}

func infoOf(t Target) (targetInfo, error) {
	switch t {
	case KubeAPIServer, KubeControllerManager, KubeScheduler, Kubelet, KubeProxy, Kubectl:
		return targetInfo{pkg: "k8s.io/kubernetes/cmd/" + string(t), kind: kindCommand}, nil
	case E2ETest:
		return targetInfo{pkg: "k8s.io/kubernetes/test/e2e", kind: kindTest}, nil
	case Agnhost, RegressionIssue74839:
		return targetInfo{pkg: "k8s.io/kubernetes/test/images/" + string(t), kind: kindTool}, nil
	case Ginkgo:
		return targetInfo{pkg: "github.com/onsi/ginkgo/v2/ginkgo", kind: kindTool}, nil
	}
	return targetInfo{}, fmt.Errorf("unknown kubernetes build target %q (known: %v)", string(t), AllTargets())
}

// versionArgs is how a command is asked for its version; the answer is parsed
// by parseVersionOutput.
func versionArgs(t Target) []string {
	if t == Kubectl {
		return []string{"version", "--client", "-o", "json"}
	}
	return []string{"--version"}
}
