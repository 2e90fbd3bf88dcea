// Command fjord is the one binary of the fjord data plane: node agent, CNI plugin,
// store, lab and troubleshooting tools.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fjord-net/fjord/internal/cli"
	"github.com/fjord-net/fjord/internal/cni"
)

func main() {
	// A container runtime runs CNI plugins by file name with CNI_COMMAND set.
	if filepath.Base(os.Args[0]) == "fjord-cni" || os.Getenv("CNI_COMMAND") != "" {
		os.Exit(cni.Main())
	}
	root := cli.NewRoot(cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	if err := root.ExecuteContext(context.Background()); err != nil {
		var code cli.ExitCode
		if errors.As(err, &code) {
			os.Exit(int(code))
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
