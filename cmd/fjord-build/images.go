package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/labimages"
)

func newLabImagesCommand() *cobra.Command {
	var k kubeFlags
	var dir string
	cmd := &cobra.Command{
		Use:   "lab-images",
		Short: "Write the lab's container images (pause, busybox, agnhost, CoreDNS, ...) as tarballs for ctr import",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			built, err := labimages.Build(cmd.Context(), labimages.Config{Dir: dir, Kube: k.config()})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FILE\tSIZE\tWRITTEN\tTAGS")
			for _, b := range built {
				fmt.Fprintf(tw, "%s\t%d MB\t%v\t%s\n", b.File, b.Image.Size>>20, b.Written, strings.Join(b.Image.Tags, " "))
			}
			return tw.Flush()
		},
	}
	k.register(cmd)
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the tarballs (default: images/ in the cache)")
	return cmd
}

func newFjordImageCommand() *cobra.Command {
	var in labimages.FjordInputs
	var out string
	cmd := &cobra.Command{
		Use:   "fjord-image",
		Short: "Write fjord's image (fjord.dev/fjord:VERSION) as a tarball for ctr import",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for flag, val := range map[string]string{"--version": in.Version, "--fjord": in.Fjord, "--fjord-cni": in.FjordCNI, "-o": out} {
				if val == "" {
					return fmt.Errorf("%s is required", flag)
				}
			}
			for _, p := range []*string{&in.Fjord, &in.FjordCNI, &in.CNIPluginDir, &in.Nft} {
				abs, err := filepath.Abs(*p)
				if err != nil {
					return err
				}
				*p = abs
			}
			img, err := labimages.WriteFjord(out, in)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s, image %s, %d MB\n", out, strings.Join(img.Tags, " "), img.ID, img.Size>>20)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "", "tarball to write")
	f.StringVar(&in.Version, "version", "", "image tag: fjord's version (git describe, or dev)")
	f.StringVar(&in.Fjord, "fjord", "", "the fjord binary (build it with CGO_ENABLED=0)")
	f.StringVar(&in.FjordCNI, "fjord-cni", "", "the fjord-cni binary (CGO_ENABLED=0)")
	f.StringVar(&in.CNIPluginDir, "cni-dir", "/usr/local/lib/fjord/cni", "directory with the static reference plugins "+strings.Join(labimages.CNIPlugins(), ", "))
	f.StringVar(&in.Nft, "nft", "/usr/sbin/nft", "the nft command (copied with its libraries)")
	return cmd
}
