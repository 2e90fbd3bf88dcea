package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/store"
)

func newDeleteCommand(g *globals) *cobra.Command {
	var (
		files          []string
		recursive      bool
		namespace      string
		ignoreNotFound bool
	)
	cmd := &cobra.Command{
		Use:   "delete (KIND NAME... | -f FILE|DIR|-)",
		Short: "Delete objects by kind and name, or those a manifest describes",
		Example: `  fjord delete pod web
  fjord delete svc web api -n prod
  fjord delete -f manifests/ -R --ignore-not-found`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var targets []objects.Object
			switch {
			case len(files) > 0 && len(args) > 0:
				return errors.New("give either KIND NAME... or -f, not both")
			case len(files) > 0:
				if namespace != "" {
					return errors.New("-n does not apply to -f: manifests name their namespaces")
				}
				// A manifest names what to delete; it need not be valid any more.
				objs, err := loadManifests(g, files, recursive, false)
				if err != nil {
					return err
				}
				targets = objs
			case len(args) >= 2:
				k, err := objects.Kinds().Lookup(args[0])
				if err != nil {
					return err
				}
				ns := namespace
				switch {
				case !k.Namespaced:
					ns = ""
				case ns == "":
					ns = "default"
				}
				for _, name := range args[1:] {
					o := k.New()
					o.SetName(name)
					o.SetNamespace(ns)
					targets = append(targets, o)
				}
			case len(args) == 1:
				return fmt.Errorf("delete %s: at least one NAME is required", args[0])
			default:
				return errors.New("delete needs KIND NAME... or -f FILE|DIR|-")
			}
			return runDelete(cmd.Context(), g, targets, ignoreNotFound)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&files, "filename", "f", nil, "manifest file, directory or - for stdin, naming the objects to delete (repeatable)")
	f.BoolVarP(&recursive, "recursive", "R", false, "also read subdirectories of directories given with -f")
	f.StringVarP(&namespace, "namespace", "n", "", "namespace (default \"default\")")
	f.BoolVar(&ignoreNotFound, "ignore-not-found", false, "treat objects that do not exist as deleted")
	return cmd
}

// runDelete deletes each target, going on past missing ones so one typo does not stop the
// rest; every object not found is an error unless ignoreNotFound.
func runDelete(ctx context.Context, g *globals, targets []objects.Object, ignoreNotFound bool) error {
	s, done, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	var errs []error
	for _, o := range targets {
		k, err := s.KindOf(o)
		if err != nil {
			return err
		}
		err = s.Delete(ctx, k, o.GetNamespace(), o.GetName())
		switch {
		case errors.Is(err, store.ErrNotFound):
			if !ignoreNotFound {
				errs = append(errs, fmt.Errorf("%s %q not found", k.Resource, o.GetName()))
			}
		case err != nil:
			return errors.Join(append(errs, err)...)
		default:
			fmt.Fprintf(g.streams.Out, "%s %q deleted\n", lowerKind(o), o.GetName())
		}
	}
	return errors.Join(errs...)
}
