// Command fjord-build builds what fjord's Kubernetes-mode lab, tests and
// benchmarks run but fjord itself does not contain: Kubernetes binaries and
// CoreDNS from the Go module proxy (internal/kubebuild), the lab's container
// images and fjord's own image (internal/labimages, internal/ociimage). It is
// a separate program so the fjord binary does not link the image writer; the
// Makefile runs it (`make image`, `make images`, `make kube`).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/kubebuild"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// kubeFlags are the flags every command that builds from the Kubernetes
// module shares.
type kubeFlags struct {
	version, cache string
}

func (k *kubeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.version, "kube-version", kubebuild.DefaultVersion, "Kubernetes release to build (v1.MINOR.PATCH)")
	cmd.Flags().StringVar(&k.cache, "cache", "", "cache directory for the scratch modules, binaries and images (default $"+kubebuild.CacheEnv+", else ~/.cache/fjord)")
}

func (k *kubeFlags) config() kubebuild.Config {
	return kubebuild.Config{Version: k.version, CacheDir: k.cache}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "fjord-build",
		Short:         "Build Kubernetes binaries, CoreDNS and container images for fjord's lab and tests",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newKubeCommand(), newCoreDNSCommand(), newLabImagesCommand(), newFjordImageCommand())
	return root
}
