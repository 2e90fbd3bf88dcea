package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/objects"
)

func newApplyCommand(g *globals) *cobra.Command {
	var files []string
	var recursive bool
	var maxTxnOps int
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|- [-f ...] [-R]",
		Short: "Create or update objects from manifests, all or nothing",
		Long: `Apply reads every manifest (YAML or JSON; a directory means its .yaml, .yml and .json
files; - means stdin), decodes and validates all of it, and only then writes every
object in one etcd transaction. Any problem in any document is reported and nothing is
written.

One transaction holds a write and a comparison per object, and an etcd server refuses
more than its --max-txn-ops (128 unless the cluster raised it; fjord's embedded etcd
allows 10000). A larger apply then fails and writes nothing; it is never split, which
would not be all or nothing. --max-txn-ops N makes fjord refuse such an apply itself,
before sending it.`,
		Example: `  fjord apply -f web.yaml
  fjord apply -f manifests/ -R
  cat web.yaml | fjord apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("apply needs at least one -f FILE|DIR|-")
			}
			if maxTxnOps < 0 {
				return fmt.Errorf("--max-txn-ops %d: must be 0 (let the server refuse) or positive", maxTxnOps)
			}
			objs, err := loadManifests(g, files, recursive, true)
			if err != nil {
				return err
			}
			if len(objs) == 0 {
				return errors.New("no objects passed to apply")
			}
			s, done, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			s.SetMaxTxnOps(maxTxnOps)
			res, err := s.Apply(cmd.Context(), objs)
			if err != nil {
				return fmt.Errorf("nothing was applied: %w", err)
			}
			for _, r := range res {
				fmt.Fprintln(g.streams.Out, r.String())
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file, directory or - for stdin (repeatable)")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "also read subdirectories of directories given with -f")
	cmd.Flags().IntVar(&maxTxnOps, "max-txn-ops", 0, "the etcd cluster's --max-txn-ops: refuse a bigger apply before sending it (0 = let the server refuse)")
	return cmd
}

// loadManifests decodes (and, if validate, validates) everything -f names. Every problem
// is written to stderr, one per line, naming the file, the object and the field; the
// returned error then only counts them, so a caller never acts on part of the input.
func loadManifests(g *globals, files []string, recursive, validate bool) ([]objects.Object, error) {
	decoded, err := objects.Kinds().DecodeFiles(files, recursive, g.streams.In)
	var problems []string
	if err != nil {
		problems = append(problems, strings.Split(err.Error(), "\n")...)
	}
	seen := map[string]string{} // kind/namespace/name -> source
	var objs []objects.Object
	for _, d := range decoded {
		id := objects.Describe(d.Object)
		if first, dup := seen[id]; dup {
			problems = append(problems, fmt.Sprintf("%s: %s is also defined in %s", d.Source, id, first))
			continue
		}
		seen[id] = d.Source
		if validate {
			if err := objects.Validate(d.Object); err != nil {
				for _, line := range strings.Split(err.Error(), "\n") {
					problems = append(problems, d.Source+": "+line)
				}
				continue
			}
		}
		objs = append(objs, d.Object)
	}
	if len(problems) > 0 {
		printProblems(g.streams.Err, problems)
		what := "problem"
		if len(problems) > 1 {
			what = "problems"
		}
		return nil, fmt.Errorf("%d %s in the input; nothing was changed", len(problems), what)
	}
	return objs, nil
}

func printProblems(w io.Writer, problems []string) {
	for _, p := range problems {
		fmt.Fprintln(w, p)
	}
}
