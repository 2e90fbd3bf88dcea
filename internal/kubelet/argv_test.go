package kubelet

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// podArgv follows Kubernetes: command replaces the entrypoint, args alone replace its
// arguments.
func TestPodArgv(t *testing.T) {
	pod := func(cmd, args []string) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i", Command: cmd, Args: args}}}}
	}
	cases := []struct {
		p    *corev1.Pod
		want []string
	}{
		{pod(nil, nil), []string{"/bin/fjord", "echo"}},
		{pod(nil, []string{"--http", "81"}), []string{"/bin/fjord", "echo", "--http", "81"}},
		{pod([]string{"python3", "-m", "http.server"}, nil), []string{"python3", "-m", "http.server"}},
		{pod([]string{"iperf3"}, []string{"-s"}), []string{"iperf3", "-s"}},
	}
	for _, tc := range cases {
		if got := podArgv("/bin/fjord", tc.p); !slices.Equal(got, tc.want) {
			t.Errorf("got %q want %q", got, tc.want)
		}
	}
}

func TestSpecHashChangesWithCommand(t *testing.T) {
	a := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
	b := a.DeepCopy()
	b.Spec.Containers[0].Args = []string{"--http", "81"}
	if specHash(a) == specHash(b) {
		t.Fatal("a changed command must restart the pod")
	}
	c := a.DeepCopy()
	c.Labels = map[string]string{"x": "y"}
	if specHash(a) != specHash(c) {
		t.Fatal("a label change must not restart the pod")
	}
}
