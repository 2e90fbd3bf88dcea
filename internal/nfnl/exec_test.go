package nfnl

import "os/exec"

func execOutputForTest(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}
