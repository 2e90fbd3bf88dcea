package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/store"
)

// NodeLeaseNamespace holds one Lease per live node, named after it, which the agent keeps
// alive with an etcd lease TTL: a node is Ready while its Lease exists.
const NodeLeaseNamespace = "kube-node-lease"

type getOptions struct {
	namespace     string
	allNamespaces bool
	output        string
	selector      string
}

func newGetCommand(g *globals) *cobra.Command { return getCommand(g, time.Now) }

// getCommand takes the clock so that tests get deterministic AGE columns.
func getCommand(g *globals, now func() time.Time) *cobra.Command {
	var o getOptions
	known := objects.Kinds().Resources()
	cmd := &cobra.Command{
		Use:   "get KIND [NAME...]",
		Short: "Show objects, as tables like kubectl or as YAML/JSON",
		Long: "Get lists objects of one kind in a namespace (-n, default \"default\") or in all (-A),\n" +
			"or shows the named ones. Kinds: " + strings.Join(known, ", ") + ".",
		Example: `  fjord get nodes -o wide
  fjord get pods -A -l app=web
  fjord get configmap nginx-configuration -n ingress-nginx -o yaml`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("get needs a KIND: one of %s", strings.Join(known, ", "))
			}
			return nil
		},
		ValidArgs: known,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGet(cmd.Context(), g, o, now(), args[0], args[1:])
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.namespace, "namespace", "n", "", "namespace (default \"default\")")
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list across all namespaces")
	f.StringVarP(&o.output, "output", "o", "", "output format: wide, yaml, json or name")
	f.StringVarP(&o.selector, "selector", "l", "", "label selector, e.g. app=web,tier!=db")
	return cmd
}

func runGet(ctx context.Context, g *globals, o getOptions, now time.Time, kindArg string, names []string) error {
	k, err := objects.Kinds().Lookup(kindArg)
	if err != nil {
		return err
	}
	switch o.output {
	case "", "wide", "yaml", "json", "name":
	default:
		return fmt.Errorf("--output %q: must be one of wide, yaml, json, name", o.output)
	}
	sel, err := labels.Parse(o.selector)
	if err != nil {
		return fmt.Errorf("--selector: %w", err)
	}
	switch {
	case len(names) > 0 && o.allNamespaces && k.Namespaced:
		return errors.New("a resource cannot be retrieved by name across all namespaces")
	case len(names) > 0 && o.selector != "":
		return errors.New("a selector (-l) cannot be combined with names")
	case o.allNamespaces && o.namespace != "":
		return errors.New("use either -n or -A, not both")
	}
	ns := o.namespace
	if ns == "" && !o.allNamespaces {
		ns = "default"
	}
	if !k.Namespaced {
		ns = ""
	}

	s, done, err := g.reader(ctx)
	if err != nil {
		return err
	}
	defer done()

	var objs []objects.Object
	var rev int64
	var missing []error
	if len(names) > 0 {
		for _, name := range names {
			obj, err := s.Get(ctx, k, ns, name)
			if errors.Is(err, store.ErrNotFound) {
				missing = append(missing, fmt.Errorf("%s %q not found", k.Resource, name))
				continue
			}
			if err != nil {
				return err
			}
			objs = append(objs, obj)
		}
	} else {
		all, r, err := s.List(ctx, k, ns)
		if err != nil {
			return err
		}
		rev = r
		for _, obj := range all {
			if sel.Matches(labels.Set(obj.GetLabels())) {
				objs = append(objs, obj)
			}
		}
	}

	switch {
	case o.output == "yaml" || o.output == "json" || o.output == "name":
		if len(objs) > 0 || len(names) == 0 {
			if err := printObjects(g.streams.Out, o.output, objs, len(names) == 1, rev); err != nil {
				return err
			}
		}
	case len(objs) == 0 && len(names) == 0:
		fmt.Fprintln(g.streams.Err, noResources(k, ns))
	case len(objs) > 0:
		opt := tableOptions{wide: o.output == "wide", withNamespace: o.allNamespaces, now: now}
		if k.Name == "Node" {
			if opt.liveNodes, err = s.LiveNodes(ctx); err != nil {
				return err
			}
		}
		if err := printTable(g.streams.Out, k, objs, opt); err != nil {
			return err
		}
	}
	return errors.Join(missing...)
}

// noResources is kubectl's message for an empty listing.
func noResources(k objects.Kind, ns string) string {
	if k.Namespaced && ns != "" {
		return fmt.Sprintf("No resources found in %s namespace.", ns)
	}
	return "No resources found"
}

// liveNodes returns the names of nodes whose Lease exists in kube-node-lease.
func liveNodes(ctx context.Context, s *store.Store) (map[string]bool, error) {
	lk, ok := s.Kinds().ByName("Lease")
	if !ok {
		return nil, nil
	}
	leases, _, err := s.List(ctx, lk, NodeLeaseNamespace)
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for _, l := range leases {
		live[l.GetName()] = true
	}
	return live, nil
}
