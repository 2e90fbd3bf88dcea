// Package kubetest runs a real Kubernetes control plane for an integration test
// (internal/kubecp: fjord's embedded etcd on a unix socket in a temporary directory,
// kube-apiserver on 127.0.0.1 with token authentication and RBAC, and, when asked
// for, kube-controller-manager). The binaries come from internal/kubebuild's shared
// cache (built from the k8s.io/kubernetes module the first time: minutes, with
// progress on standard error).
//
// A test gets an admin client, the admin's kubeconfig, clients for other users
// through a Link it can cut (a partition as the client sees it), the API server to
// stop and start again (an outage, a restart), and the etcd client underneath (to
// compact it, so watches from before expire with 410 Gone). Everything started is
// stopped and removed when the test ends, whether it passed or not. A harness that
// cannot start fails the test with the reason; it never skips (callers skip under
// -short).
package kubetest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/fjord-net/fjord/internal/kubebuild"
	"github.com/fjord-net/fjord/internal/kubeclient"
	"github.com/fjord-net/fjord/internal/kubecp"
)

// Users every test API server knows, each with its own bearer token.
const (
	// Admin is in system:masters: every permission, exempt from priority and fairness.
	Admin = "kubetest:admin"
	// AgentUser and IngressUser get deploy/fjord.yaml's least-privilege roles from
	// GrantFjordRoles, as its ServiceAccounts do.
	AgentUser   = "fjord:agent"
	IngressUser = "fjord:ingress"
	// controllerManager runs kube-controller-manager (in system:masters: the tests
	// are not about its permissions).
	controllerManager = "system:kube-controller-manager"
)

var users = map[string][]string{
	Admin:             {"system:masters"},
	AgentUser:         nil,
	IngressUser:       nil,
	controllerManager: {"system:masters"},
}

// Options says what to run.
type Options struct {
	// ServiceCIDR is the API server's Service range; default 10.96.0.0/16.
	ServiceCIDR netip.Prefix
	// APIServerArgs are added to kube-apiserver's command line, e.g.
	// "--watch-cache=false" so that watches are served by etcd itself.
	APIServerArgs []string
	// ControllerManager, if set, runs kube-controller-manager (its User is set here).
	ControllerManager *kubecp.ControllerManager
}

// Cluster is a running test control plane.
type Cluster struct {
	// Client is the admin's client (protobuf, as fjord's own clients are).
	Client kubernetes.Interface
	// Kubeconfig is the admin's kubeconfig file.
	Kubeconfig string
	// Etcd is a client of the API server's etcd.
	Etcd *clientv3.Client
	// Dir holds everything of this cluster: etcd's data and socket, credentials,
	// logs (kube-apiserver.log, kube-controller-manager.log).
	Dir string

	t  testing.TB
	cp *kubecp.ControlPlane

	mu      sync.Mutex
	dynamic *dynamic.DynamicClient // Apply and Delete, made on first use
	mapper  *restmapper.DeferredDiscoveryRESTMapper
}

// Start runs a control plane for t, stopped and removed when t ends. It fails t if
// anything cannot start, with the reason and the end of the component's log.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	targets := []kubebuild.Target{kubebuild.KubeAPIServer}
	if opts.ControllerManager != nil {
		targets = append(targets, kubebuild.KubeControllerManager)
		m := *opts.ControllerManager
		m.User = controllerManager
		opts.ControllerManager = &m
	}
	bins, err := EnsureBinaries(context.Background(), targets...)
	if err != nil {
		t.Fatalf("kubetest: Kubernetes binaries: %v", err)
	}
	// Short: unix socket paths are limited to ~108 bytes.
	dir, err := os.MkdirTemp("", "fjord-kt-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, Dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{kubecp.APIServerLog, kubecp.ControllerManagerLog} {
				if tail := c.logTail(name); tail != "" {
					t.Logf("kubetest: end of %s:\n%s", name, tail)
				}
			}
		}
		os.RemoveAll(dir)
	})
	c.cp, err = kubecp.Start(context.Background(), kubecp.Config{
		Dir: dir, Binaries: bins, ServiceCIDR: opts.ServiceCIDR, Users: users,
		APIServerArgs: opts.APIServerArgs, ControllerManager: opts.ControllerManager,
	})
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	t.Cleanup(c.cp.Close)
	c.Etcd = c.cp.Etcd()
	c.Kubeconfig = c.KubeconfigFor(Admin)
	c.Client = c.newClient(Admin, nil)
	return c
}

// EnsureBinaries returns the Kubernetes binaries the harness runs from the shared
// cache, building them first if needed (minutes when cold; progress goes to standard
// error).
func EnsureBinaries(ctx context.Context, targets ...kubebuild.Target) (kubebuild.Binaries, error) {
	return kubebuild.Ensure(ctx, kubebuild.Config{
		Logf: func(format string, args ...any) { fmt.Fprintf(os.Stderr, "kubetest: "+format+"\n", args...) },
	}, targets...)
}

func (c *Cluster) logTail(name string) string { return c.cp.LogTail(name, 30) }

// KubeconfigFor writes a kubeconfig of user (Admin, AgentUser, IngressUser) and
// returns its path: for programs under test, such as `fjord agent --kubeconfig`.
func (c *Cluster) KubeconfigFor(user string) string {
	c.t.Helper()
	data, err := c.cp.Kubeconfig(user)
	if err != nil {
		c.t.Fatal(err)
	}
	path := filepath.Join(c.Dir, strings.NewReplacer(":", "-").Replace(user)+".kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// Server is the API server's URL, https://127.0.0.1:PORT.
func (c *Cluster) Server() string { return c.cp.Server() }

// RESTConfig returns a client configuration for user (Admin, AgentUser, IngressUser).
func (c *Cluster) RESTConfig(user string) *rest.Config {
	c.t.Helper()
	cfg, err := c.cp.RESTConfig(user)
	if err != nil {
		c.t.Fatal(err)
	}
	return cfg
}

// Connect returns a client of user whose traffic goes through a new Link: the test
// can cut it and count its requests.
func (c *Cluster) Connect(user string) (kubernetes.Interface, *Link) {
	c.t.Helper()
	l := newLink()
	return c.newClient(user, l), l
}

func (c *Cluster) newClient(user string, l *Link) kubernetes.Interface {
	c.t.Helper()
	cfg := c.RESTConfig(user)
	if l != nil {
		l.attach(cfg)
	}
	client, err := kubeclient.New(cfg, "kubetest")
	if err != nil {
		c.t.Fatal(err)
	}
	return client
}

// StartAPIServer starts kube-apiserver again after StopAPIServer (same port, same
// etcd) and waits until it is ready.
func (c *Cluster) StartAPIServer() {
	c.t.Helper()
	if err := c.cp.StartAPIServer(context.Background()); err != nil {
		c.t.Fatalf("kubetest: %v", err)
	}
}

// StopAPIServer kills kube-apiserver (SIGKILL: a crash, or a machine gone) and waits
// for it to exit: clients see their connections end and new ones refused. etcd keeps
// running.
func (c *Cluster) StopAPIServer() {
	c.t.Helper()
	if err := c.cp.StopAPIServer(); err != nil {
		c.t.Fatal(err)
	}
}

// RestartAPIServer stops kube-apiserver and starts it again.
func (c *Cluster) RestartAPIServer() {
	c.t.Helper()
	c.StopAPIServer()
	c.StartAPIServer()
}

// CompactEtcd compacts etcd's history up to its current revision: a watch that
// resumes from any earlier resourceVersion and is served by etcd gets 410 Gone.
func (c *Cluster) CompactEtcd() {
	c.t.Helper()
	if err := c.cp.CompactEtcd(context.Background()); err != nil {
		c.t.Fatalf("kubetest: compact etcd: %v", err)
	}
}

// APIServerPID is kube-apiserver's process id (0 while stopped).
func (c *Cluster) APIServerPID() int { return c.cp.APIServerPID() }
