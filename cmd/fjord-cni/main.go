// Command fjord-cni is fjord's CNI plugin alone. The fjord binary is the same plugin
// when invoked as fjord-cni or with CNI_COMMAND set; this build links nothing else, so
// it skips the ~10 ms of package initialisation the store and metrics libraries cost
// on every exec, and a runtime's CNI ADD is as fast as the reference plugins'.
package main

import (
	"os"

	"github.com/fjord-net/fjord/internal/cni"
)

func main() { os.Exit(cni.Main()) }
