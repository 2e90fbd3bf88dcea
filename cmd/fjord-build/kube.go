package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/kubebuild"
)

func newKubeCommand() *cobra.Command {
	var k kubeFlags
	cmd := &cobra.Command{
		Use:   "kube [TARGET...]",
		Short: "Build Kubernetes binaries (default: all targets) and print their directory",
		Long: fmt.Sprintf(`Builds the targets from the k8s.io/kubernetes module in a scratch module under the
cache, reusing binaries that are current. Targets: %v.`, kubebuild.AllTargets()),
		RunE: func(cmd *cobra.Command, args []string) error {
			targets := kubebuild.AllTargets()
			if len(args) > 0 {
				targets = nil
				for _, a := range args {
					targets = append(targets, kubebuild.Target(a))
				}
			}
			bins, err := kubebuild.Ensure(cmd.Context(), k.config(), targets...)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), bins.Dir)
			return nil
		},
	}
	k.register(cmd)
	return cmd
}

func newCoreDNSCommand() *cobra.Command {
	var k kubeFlags
	var version string
	cmd := &cobra.Command{
		Use:   "coredns",
		Short: "Build CoreDNS (the plugins a test cluster needs) and print its path",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := k.config()
			cfg.CoreDNSVersion = version
			path, err := kubebuild.EnsureCoreDNS(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), path)
			return nil
		},
	}
	k.register(cmd)
	cmd.Flags().StringVar(&version, "coredns-version", kubebuild.DefaultCoreDNSVersion, "CoreDNS release to build")
	return cmd
}
