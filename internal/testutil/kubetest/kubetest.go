// Package kubetest runs a real Kubernetes control plane for integration tests: fjord's
// embedded etcd (on a unix socket in a temporary directory), kube-apiserver on
// 127.0.0.1 with token authentication and RBAC, and, when asked for,
// kube-controller-manager. The binaries come from internal/kubebuild's shared cache
// (built from the k8s.io/kubernetes module the first time: minutes, with progress on
// standard error).
//
// A test gets an admin client, the admin's kubeconfig, clients for other users through
// a Link it can cut (a partition as the client sees it), the API server to stop and
// start again (an outage, a restart), and the etcd client underneath (to compact it,
// so watches from before expire with 410 Gone). Everything started is stopped and
// removed when the test ends, whether it passed or not. A harness that cannot start
// fails the test with the reason; it never skips (callers skip under -short).
package kubetest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/fjord-net/fjord/internal/etcdserver"
	"github.com/fjord-net/fjord/internal/kubebuild"
	"github.com/fjord-net/fjord/internal/kubeclient"
)

// AdvertiseAddress is what the test API servers advertise as their address (the
// endpoint of the "kubernetes" Service). kube-apiserver refuses a loopback address,
// and nothing is ever sent there: it is the last address of 198.18.0.0/15, outside
// every lab, test-lab and benchmark subnet.
var AdvertiseAddress = netip.MustParseAddr("198.19.255.254")

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
	// ControllerManager, if set, runs kube-controller-manager.
	ControllerManager *ControllerManager
}

// ControllerManager configures kube-controller-manager.
type ControllerManager struct {
	// Controllers to run; default node-ipam-controller only.
	Controllers []string
	// AllocateNodeCIDRs turns on --allocate-node-cidrs from ClusterCIDR (default
	// 10.244.0.0/16) in /NodeCIDRBits (default 24) per Node.
	AllocateNodeCIDRs bool
	ClusterCIDR       netip.Prefix
	NodeCIDRBits      int
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

	t       testing.TB
	bins    kubebuild.Binaries
	opts    Options
	server  string // https://127.0.0.1:PORT
	caPEM   []byte
	tokens  map[string]string
	apiArgs []string

	mu        sync.Mutex
	apiserver *process
	kcm       *process
	dynamic   *dynamic.DynamicClient // Apply and Delete, made on first use
	mapper    *restmapper.DeferredDiscoveryRESTMapper
}

// Start runs a control plane for t, stopped and removed when t ends. It fails t if
// anything cannot start, with the reason and the end of the component's log.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if !opts.ServiceCIDR.IsValid() {
		opts.ServiceCIDR = netip.MustParsePrefix("10.96.0.0/16")
	}
	targets := []kubebuild.Target{kubebuild.KubeAPIServer}
	if opts.ControllerManager != nil {
		targets = append(targets, kubebuild.KubeControllerManager)
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
	c := &Cluster{t: t, bins: bins, opts: opts, Dir: dir, tokens: map[string]string{}}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
		os.RemoveAll(dir)
	})

	sock := filepath.Join(dir, "etcd.sock")
	srv, err := etcdserver.Start(context.Background(), etcdserver.Config{DataDir: filepath.Join(dir, "etcd"), ClientSocket: sock})
	if err != nil {
		t.Fatalf("kubetest: etcd: %v", err)
	}
	t.Cleanup(srv.Close)
	c.Etcd, err = clientv3.New(clientv3.Config{Endpoints: []string{etcdserver.SocketEndpoint(sock)}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("kubetest: etcd client: %v", err)
	}
	t.Cleanup(func() { c.Etcd.Close() })

	port, err := freePort()
	if err != nil {
		t.Fatalf("kubetest: no free port on 127.0.0.1: %v", err)
	}
	c.server = "https://127.0.0.1:" + strconv.Itoa(port)
	if err := c.writeCredentials(); err != nil {
		t.Fatalf("kubetest: credentials: %v", err)
	}
	c.apiArgs = append(c.apiserverArgs(sock, port), opts.APIServerArgs...)
	// Processes are stopped before etcd closes and the directory goes (cleanups run
	// last-registered first).
	t.Cleanup(c.stopAll)
	c.Client = c.newClient(Admin, nil)
	c.StartAPIServer()
	if opts.ControllerManager != nil {
		c.startControllerManager()
	}
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeCredentials writes the serving certificate (and its CA) for 127.0.0.1, the
// service-account signing key, one token per user, and the admin's kubeconfig.
func (c *Cluster) writeCredentials() error {
	cert, key, err := certutil.GenerateSelfSignedCertKey("localhost", []net.IP{net.IPv4(127, 0, 0, 1)}, nil)
	if err != nil {
		return err
	}
	c.caPEM = cert // the serving certificate followed by the CA that signed it
	sa, err := keyutil.MakeEllipticPrivateKeyPEM()
	if err != nil {
		return err
	}
	var tokens bytes.Buffer
	for user, groups := range users {
		tok, err := randomHex(24)
		if err != nil {
			return err
		}
		c.tokens[user] = tok
		fmt.Fprintf(&tokens, "%s,%s,%s,%q\n", tok, user, user, strings.Join(groups, ","))
	}
	files := map[string][]byte{
		"apiserver.crt": cert, "apiserver.key": key, "sa.key": sa, "tokens.csv": tokens.Bytes(),
		"admin.kubeconfig":              c.kubeconfig(Admin),
		"controller-manager.kubeconfig": c.kubeconfig(controllerManager),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(c.Dir, name), data, 0o600); err != nil {
			return err
		}
	}
	c.Kubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	return nil
}

// KubeconfigFor writes a kubeconfig of user (Admin, AgentUser, IngressUser) and
// returns its path: for programs under test, such as `fjord agent --kubeconfig`.
func (c *Cluster) KubeconfigFor(user string) string {
	c.t.Helper()
	path := filepath.Join(c.Dir, strings.NewReplacer(":", "-").Replace(user)+".kubeconfig")
	if err := os.WriteFile(path, c.kubeconfig(user), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

func (c *Cluster) kubeconfig(user string) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %q
  user:
    token: %s
contexts:
- name: kubetest
  context: {cluster: kubetest, user: %q}
current-context: kubetest
`, c.server, b64(c.caPEM), user, c.tokens[user], user)
}

func (c *Cluster) apiserverArgs(sock string, port int) []string {
	d := c.Dir
	return []string{
		"--etcd-servers=" + etcdserver.SocketEndpoint(sock),
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port), "--advertise-address=" + AdvertiseAddress.String(),
		"--tls-cert-file=" + filepath.Join(d, "apiserver.crt"), "--tls-private-key-file=" + filepath.Join(d, "apiserver.key"),
		"--service-cluster-ip-range=" + c.opts.ServiceCIDR.String(),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(d, "sa.key"), "--service-account-signing-key-file=" + filepath.Join(d, "sa.key"),
		"--token-auth-file=" + filepath.Join(d, "tokens.csv"), "--anonymous-auth=false",
		"--authorization-mode=Node,RBAC",
		// Tests create Pods without a controller-manager to make service accounts.
		"--disable-admission-plugins=ServiceAccount",
		"--profiling=false",
	}
}

// Server is the API server's URL, https://127.0.0.1:PORT.
func (c *Cluster) Server() string { return c.server }

// RESTConfig returns a client configuration for user (Admin, AgentUser, IngressUser).
func (c *Cluster) RESTConfig(user string) *rest.Config {
	c.t.Helper()
	tok, ok := c.tokens[user]
	if !ok {
		c.t.Fatalf("kubetest: no user %q", user)
	}
	return &rest.Config{Host: c.server, BearerToken: tok, TLSClientConfig: rest.TLSClientConfig{CAData: c.caPEM}}
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

// StartAPIServer starts kube-apiserver (again, after StopAPIServer: same port, same
// etcd) and waits until it is ready.
func (c *Cluster) StartAPIServer() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apiserver != nil {
		c.t.Fatal("kubetest: kube-apiserver is already running")
	}
	p, err := startProcess(c.bins.Path(kubebuild.KubeAPIServer), c.apiArgs, filepath.Join(c.Dir, "kube-apiserver.log"))
	if err != nil {
		c.t.Fatalf("kubetest: %v", err)
	}
	c.apiserver = p
	if err := c.waitReady(p); err != nil {
		c.t.Fatalf("kubetest: %v\n%s", err, p.tail(40))
	}
}

// StopAPIServer kills kube-apiserver (SIGKILL: a crash, or a machine gone) and waits
// for it to exit: clients see their connections end and new ones refused. etcd keeps
// running.
func (c *Cluster) StopAPIServer() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apiserver == nil {
		c.t.Fatal("kubetest: kube-apiserver is not running")
	}
	c.apiserver.kill()
	c.apiserver = nil
}

// RestartAPIServer stops kube-apiserver and starts it again.
func (c *Cluster) RestartAPIServer() {
	c.t.Helper()
	c.StopAPIServer()
	c.StartAPIServer()
}

// waitReady polls /readyz (every poststart hook done: RBAC roles, system namespaces,
// the kubernetes Service) for at most 90 s.
func (c *Cluster) waitReady(p *process) error {
	var last error
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := p.exited(); err != nil {
			return fmt.Errorf("kube-apiserver exited: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		cancel()
		if err == nil && strings.TrimSpace(string(body)) == "ok" {
			return nil
		}
		last = err
	}
	return fmt.Errorf("kube-apiserver not ready after 90 s (last: %v)", last)
}

func (c *Cluster) startControllerManager() {
	c.t.Helper()
	o := c.opts.ControllerManager
	if len(o.Controllers) == 0 {
		o.Controllers = []string{"node-ipam-controller"}
	}
	kc := filepath.Join(c.Dir, "controller-manager.kubeconfig")
	args := []string{
		"--kubeconfig=" + kc, "--leader-elect=false", "--profiling=false", "--secure-port=0",
		"--use-service-account-credentials=false", "--controllers=" + strings.Join(o.Controllers, ","),
		"--service-cluster-ip-range=" + c.opts.ServiceCIDR.String(),
	}
	if o.AllocateNodeCIDRs {
		if !o.ClusterCIDR.IsValid() {
			o.ClusterCIDR = netip.MustParsePrefix("10.244.0.0/16")
		}
		if o.NodeCIDRBits == 0 {
			o.NodeCIDRBits = 24
		}
		args = append(args, "--allocate-node-cidrs=true", "--cluster-cidr="+o.ClusterCIDR.String(),
			"--node-cidr-mask-size="+strconv.Itoa(o.NodeCIDRBits))
	}
	p, err := startProcess(c.bins.Path(kubebuild.KubeControllerManager), args, filepath.Join(c.Dir, "kube-controller-manager.log"))
	if err != nil {
		c.t.Fatalf("kubetest: %v", err)
	}
	c.mu.Lock()
	c.kcm = p
	c.mu.Unlock()
	// It has no port to ask (--secure-port=0); a quick death is a bad command line.
	time.Sleep(500 * time.Millisecond)
	if err := p.exited(); err != nil {
		c.t.Fatalf("kubetest: kube-controller-manager exited: %v\n%s", err, p.tail(40))
	}
}

func (c *Cluster) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range []**process{&c.kcm, &c.apiserver} {
		if *p != nil {
			(*p).kill()
			*p = nil
		}
	}
}

// CompactEtcd compacts etcd's history up to its current revision: a watch that
// resumes from any earlier resourceVersion and is served by etcd gets 410 Gone.
func (c *Cluster) CompactEtcd() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Etcd.Get(ctx, "kubetest-compaction-probe")
	if err != nil {
		c.t.Fatalf("kubetest: etcd: %v", err)
	}
	if _, err := c.Etcd.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		c.t.Fatalf("kubetest: compact etcd at %d: %v", resp.Header.Revision, err)
	}
}

func (c *Cluster) dumpLogs() {
	for _, name := range []string{"kube-apiserver.log", "kube-controller-manager.log"} {
		if tail := tailFile(filepath.Join(c.Dir, name), 30); tail != "" {
			c.t.Logf("kubetest: end of %s:\n%s", name, tail)
		}
	}
}

// process is one component, in its own process group so that stopping it stops
// whatever it started.
type process struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProcess(bin string, args []string, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Killed with the test process even if it dies without running its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	p := &process{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// exited returns a non-nil error once the process has exited.
func (p *process) exited() error {
	select {
	case <-p.done:
		if p.err == nil {
			return fmt.Errorf("exit status 0")
		}
		return p.err
	default:
		return nil
	}
}

// kill kills the process group and waits for the process to exit. The tests' control
// plane keeps nothing worth a graceful stop, and kube-apiserver's takes as long as
// its clients' watches stay open.
func (p *process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *process) tail(n int) string { return tailFile(p.log, n) }

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
