package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/store"
	"github.com/fjord-net/fjord/internal/store/storetest"
)

// cluster is a throwaway store and a way to run fjord commands against it.
type cluster struct {
	t        *testing.T
	store    *store.Store
	endpoint string
}

func newCluster(t *testing.T) *cluster {
	env := storetest.Start(t)
	s, ep := env.Store, env.Endpoint
	return &cluster{t: t, store: s, endpoint: ep}
}

// result is what one command run printed and returned.
type result struct {
	out, err string
	runErr   error
}

// run runs `fjord args...` as main would, with stdin.
func (c *cluster) run(stdin string, args ...string) result {
	c.t.Helper()
	var out, errb bytes.Buffer
	root := NewRoot(Streams{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	root.SetArgs(append([]string{"--etcd-endpoints", c.endpoint}, args...))
	err := root.ExecuteContext(context.Background())
	return result{out: out.String(), err: errb.String(), runErr: err}
}

// get runs `fjord get args...` with a fixed clock.
func (c *cluster) get(now time.Time, args ...string) result {
	c.t.Helper()
	var out, errb bytes.Buffer
	g := &globals{streams: Streams{In: strings.NewReader(""), Out: &out, Err: &errb}, endpoints: c.endpoint}
	cmd := getCommand(g, func() time.Time { return now })
	runCommand(cmd, args)
	err := cmd.ExecuteContext(context.Background())
	return result{out: out.String(), err: errb.String(), runErr: err}
}

func runCommand(cmd *cobra.Command, args []string) {
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetArgs(args)
}

// mustRun fails the test unless the command succeeds.
func (c *cluster) mustRun(stdin string, args ...string) result {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.runErr != nil {
		c.t.Fatalf("fjord %s: %v\nstderr:\n%s", strings.Join(args, " "), r.runErr, r.err)
	}
	return r
}

// setCreated rewrites every object's creationTimestamp, so AGE columns are stable.
func (c *cluster) setCreated(at time.Time) {
	c.t.Helper()
	ctx := context.Background()
	for _, k := range objects.Kinds().All() {
		list, _, err := c.store.List(ctx, k, "")
		if err != nil {
			c.t.Fatal(err)
		}
		for _, o := range list {
			_, err := c.store.Update(ctx, k, o.GetNamespace(), o.GetName(), func(o objects.Object) (bool, error) {
				o.SetCreationTimestamp(metaTime(at))
				return true, nil
			})
			if err != nil {
				c.t.Fatal(err)
			}
		}
	}
}

// count returns how many objects of every kind the store holds.
func (c *cluster) count() int {
	c.t.Helper()
	n := 0
	for _, k := range objects.Kinds().All() {
		list, _, err := c.store.List(context.Background(), k, "")
		if err != nil {
			c.t.Fatal(err)
		}
		n += len(list)
	}
	return n
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
