// Package kubecp runs a throwaway Kubernetes control plane for tests and benchmarks:
// fjord's embedded etcd (in this process, on a unix socket), kube-apiserver with token
// authentication and RBAC, and optionally kube-controller-manager, all under one
// directory. The binaries come from internal/kubebuild's cache. The API server can be
// killed and started again on the same address and data (an outage, a restart), and
// its etcd compacted (so that watches from before expire).
//
// internal/testutil/kubetest wraps it for tests; bench/scale runs it in a network
// namespace of its own. The lab (internal/lab) runs its control plane its own way, as
// a user's cluster: long-lived processes it records and restarts.
package kubecp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
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
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/fjord-net/fjord/internal/etcdserver"
	"github.com/fjord-net/fjord/internal/kubebuild"
	"github.com/fjord-net/fjord/internal/kubeclient"
)

// DefaultAdvertiseAddress is what an API server bound to loopback advertises (the
// endpoint of the "kubernetes" Service): kube-apiserver refuses a loopback address,
// and nothing is ever sent there. It is the last address of 198.18.0.0/15, outside
// every lab, test-lab and benchmark subnet.
var DefaultAdvertiseAddress = netip.MustParseAddr("198.19.255.254")

// Config says what to run and where.
type Config struct {
	// Dir holds everything: etcd's data and socket, credentials, logs. It must exist,
	// and be short (unix socket paths are limited to ~108 bytes).
	Dir string
	// Binaries holds kube-apiserver (and kube-controller-manager if asked for).
	Binaries kubebuild.Binaries
	// Address is where the API server listens; default 127.0.0.1 and a free port.
	Address netip.AddrPort
	// AdvertiseAddress defaults to Address's address unless that is loopback
	// (DefaultAdvertiseAddress then).
	AdvertiseAddress netip.Addr
	// ServiceCIDR is the Service range; default 10.96.0.0/16.
	ServiceCIDR netip.Prefix
	// Users maps each user name to its groups; each gets a bearer token.
	Users map[string][]string
	// APIServerArgs are added to kube-apiserver's command line.
	APIServerArgs []string
	// ControllerManager, if set, runs kube-controller-manager as ControllerUser.
	ControllerManager *ControllerManager
	// Command makes a component's command (to run it in a network namespace, say);
	// nil = exec.Command.
	Command func(bin string, args ...string) *exec.Cmd
	// Dial, if set, is how this process reaches the API server (from outside its
	// network namespace, say); RESTConfig sets it on every configuration.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// ControllerManager configures kube-controller-manager.
type ControllerManager struct {
	// User it runs as (one of Config.Users, with the permissions it needs).
	User string
	// Controllers to run; default node-ipam-controller only.
	Controllers []string
	// AllocateNodeCIDRs turns on --allocate-node-cidrs from ClusterCIDR (default
	// 10.244.0.0/16) in /NodeCIDRBits (default 24) per Node.
	AllocateNodeCIDRs bool
	ClusterCIDR       netip.Prefix
	NodeCIDRBits      int
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	cfg     Config
	server  string
	caPEM   []byte
	tokens  map[string]string
	apiArgs []string
	etcd    *etcdserver.Server
	etcdCli *clientv3.Client
	ready   kubernetes.Interface // the readiness probe's client

	mu        sync.Mutex
	apiserver *process
	kcm       *process
}

// Component log files in Config.Dir.
const (
	APIServerLog         = "kube-apiserver.log"
	ControllerManagerLog = "kube-controller-manager.log"
)

// Start starts etcd, the API server (waiting until it is ready) and the
// controller-manager. On error everything started is stopped again.
func Start(ctx context.Context, cfg Config) (_ *ControlPlane, err error) {
	if cfg.Dir == "" || cfg.Binaries.Dir == "" {
		return nil, errors.New("kubecp: Dir and Binaries are required")
	}
	if !cfg.ServiceCIDR.IsValid() {
		cfg.ServiceCIDR = netip.MustParsePrefix("10.96.0.0/16")
	}
	if !cfg.Address.IsValid() {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("kubecp: no free port on 127.0.0.1: %w", err)
		}
		cfg.Address = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))
	}
	if !cfg.AdvertiseAddress.IsValid() {
		cfg.AdvertiseAddress = cfg.Address.Addr()
		if cfg.AdvertiseAddress.IsLoopback() {
			cfg.AdvertiseAddress = DefaultAdvertiseAddress
		}
	}
	if cfg.Command == nil {
		cfg.Command = exec.Command
	}
	cp := &ControlPlane{cfg: cfg, server: "https://" + cfg.Address.String(), tokens: map[string]string{}}
	defer func() {
		if err != nil {
			cp.Close()
		}
	}()
	sock := filepath.Join(cfg.Dir, "etcd.sock")
	if cp.etcd, err = etcdserver.Start(ctx, etcdserver.Config{DataDir: filepath.Join(cfg.Dir, "etcd"), ClientSocket: sock}); err != nil {
		return nil, fmt.Errorf("kubecp: etcd: %w", err)
	}
	if cp.etcdCli, err = clientv3.New(clientv3.Config{Endpoints: []string{etcdserver.SocketEndpoint(sock)}, DialTimeout: 5 * time.Second}); err != nil {
		return nil, fmt.Errorf("kubecp: etcd client: %w", err)
	}
	if err := cp.writeCredentials(); err != nil {
		return nil, fmt.Errorf("kubecp: credentials: %w", err)
	}
	cp.apiArgs = append(cp.apiserverArgs(sock), cfg.APIServerArgs...)
	probe, err := cp.probeConfig()
	if err != nil {
		return nil, err
	}
	if cp.ready, err = kubernetes.NewForConfig(probe); err != nil {
		return nil, err
	}
	if err := cp.StartAPIServer(ctx); err != nil {
		return nil, err
	}
	if cfg.ControllerManager != nil {
		if err := cp.startControllerManager(); err != nil {
			return nil, err
		}
	}
	return cp, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeCredentials writes the serving certificate (and the CA that signed it), the
// service-account signing key, one token per user, and a kubeconfig for the
// controller-manager.
func (cp *ControlPlane) writeCredentials() error {
	ip := cp.cfg.Address.Addr()
	cert, key, err := certutil.GenerateSelfSignedCertKey("localhost", []net.IP{ip.AsSlice(), net.IPv4(127, 0, 0, 1)}, nil)
	if err != nil {
		return err
	}
	cp.caPEM = cert // the serving certificate followed by its CA
	sa, err := keyutil.MakeEllipticPrivateKeyPEM()
	if err != nil {
		return err
	}
	var tokens bytes.Buffer
	for user, groups := range cp.cfg.Users {
		tok, err := randomHex(24)
		if err != nil {
			return err
		}
		cp.tokens[user] = tok
		fmt.Fprintf(&tokens, "%s,%s,%s,%q\n", tok, user, user, strings.Join(groups, ","))
	}
	files := map[string][]byte{"apiserver.crt": cert, "apiserver.key": key, "sa.key": sa, "tokens.csv": tokens.Bytes()}
	if m := cp.cfg.ControllerManager; m != nil {
		if files["controller-manager.kubeconfig"], err = cp.Kubeconfig(m.User); err != nil {
			return err
		}
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(cp.cfg.Dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Kubeconfig returns a kubeconfig file's text for user.
func (cp *ControlPlane) Kubeconfig(user string) ([]byte, error) {
	tok, ok := cp.tokens[user]
	if !ok {
		return nil, fmt.Errorf("kubecp: no user %q", user)
	}
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: kubecp
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %q
  user:
    token: %s
contexts:
- name: kubecp
  context: {cluster: kubecp, user: %q}
current-context: kubecp
`, cp.server, b64(cp.caPEM), user, tok, user), nil
}

func (cp *ControlPlane) apiserverArgs(sock string) []string {
	d := cp.cfg.Dir
	return []string{
		"--etcd-servers=" + etcdserver.SocketEndpoint(sock),
		"--bind-address=" + cp.cfg.Address.Addr().String(), "--secure-port=" + strconv.Itoa(int(cp.cfg.Address.Port())),
		"--advertise-address=" + cp.cfg.AdvertiseAddress.String(),
		"--tls-cert-file=" + filepath.Join(d, "apiserver.crt"), "--tls-private-key-file=" + filepath.Join(d, "apiserver.key"),
		"--service-cluster-ip-range=" + cp.cfg.ServiceCIDR.String(),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(d, "sa.key"), "--service-account-signing-key-file=" + filepath.Join(d, "sa.key"),
		"--token-auth-file=" + filepath.Join(d, "tokens.csv"), "--anonymous-auth=false",
		"--authorization-mode=Node,RBAC",
		// Pods are created without a controller-manager to make service accounts.
		"--disable-admission-plugins=ServiceAccount",
		"--profiling=false",
	}
}

// Server is the API server's URL.
func (cp *ControlPlane) Server() string { return cp.server }

// Etcd is a client of the API server's etcd.
func (cp *ControlPlane) Etcd() *clientv3.Client { return cp.etcdCli }

// Dir is the control plane's directory.
func (cp *ControlPlane) Dir() string { return cp.cfg.Dir }

// RESTConfig returns a client configuration for user.
func (cp *ControlPlane) RESTConfig(user string) (*rest.Config, error) {
	tok, ok := cp.tokens[user]
	if !ok {
		return nil, fmt.Errorf("kubecp: no user %q", user)
	}
	return &rest.Config{Host: cp.server, BearerToken: tok, TLSClientConfig: rest.TLSClientConfig{CAData: cp.caPEM}, Dial: cp.cfg.Dial}, nil
}

// probeConfig is the readiness probe's: the first user, with a short timeout.
func (cp *ControlPlane) probeConfig() (*rest.Config, error) {
	for user := range cp.tokens {
		cfg, err := cp.RESTConfig(user)
		if err != nil {
			return nil, err
		}
		cfg.Timeout = 5 * time.Second
		return cfg, nil
	}
	return nil, errors.New("kubecp: no users")
}

// NewClient returns a clientset of user tuned as fjord's own (kubeclient.New).
func (cp *ControlPlane) NewClient(user, component string) (kubernetes.Interface, error) {
	cfg, err := cp.RESTConfig(user)
	if err != nil {
		return nil, err
	}
	return kubeclient.New(cfg, component)
}

// StartAPIServer starts kube-apiserver (again, after StopAPIServer: same address,
// same etcd) and waits until it is ready.
func (cp *ControlPlane) StartAPIServer(ctx context.Context) error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.apiserver != nil {
		return errors.New("kubecp: kube-apiserver is already running")
	}
	p, err := cp.startProcess(cp.cfg.Binaries.Path(kubebuild.KubeAPIServer), cp.apiArgs, APIServerLog)
	if err != nil {
		return err
	}
	cp.apiserver = p
	if err := cp.waitReady(ctx, p); err != nil {
		return fmt.Errorf("%w\n%s", err, cp.LogTail(APIServerLog, 40))
	}
	return nil
}

// StopAPIServer kills kube-apiserver (SIGKILL: a crash, or a machine gone) and waits
// for it to exit: clients see their connections end and new ones refused. etcd keeps
// running.
func (cp *ControlPlane) StopAPIServer() error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.apiserver == nil {
		return errors.New("kubecp: kube-apiserver is not running")
	}
	cp.apiserver.kill()
	cp.apiserver = nil
	return nil
}

// APIServerPID is kube-apiserver's process id (0 when stopped).
func (cp *ControlPlane) APIServerPID() int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.apiserver == nil {
		return 0
	}
	return cp.apiserver.cmd.Process.Pid
}

// waitReady polls /readyz (every poststart hook done: RBAC roles, system namespaces,
// the kubernetes Service) for at most 90 s.
func (cp *ControlPlane) waitReady(ctx context.Context, p *process) error {
	var last error
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := p.exited(); err != nil {
			return fmt.Errorf("kube-apiserver exited: %v", err)
		}
		body, err := cp.ready.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && strings.TrimSpace(string(body)) == "ok" {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		last = err
	}
	return fmt.Errorf("kube-apiserver not ready after 90 s (last: %v)", last)
}

func (cp *ControlPlane) startControllerManager() error {
	o := *cp.cfg.ControllerManager
	if len(o.Controllers) == 0 {
		o.Controllers = []string{"node-ipam-controller"}
	}
	args := []string{
		"--kubeconfig=" + filepath.Join(cp.cfg.Dir, "controller-manager.kubeconfig"), "--leader-elect=false", "--profiling=false",
		"--secure-port=0", "--use-service-account-credentials=false", "--controllers=" + strings.Join(o.Controllers, ","),
		"--service-cluster-ip-range=" + cp.cfg.ServiceCIDR.String(),
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
	p, err := cp.startProcess(cp.cfg.Binaries.Path(kubebuild.KubeControllerManager), args, ControllerManagerLog)
	if err != nil {
		return err
	}
	cp.mu.Lock()
	cp.kcm = p
	cp.mu.Unlock()
	// It has no port to ask (--secure-port=0); a quick death is a bad command line.
	time.Sleep(500 * time.Millisecond)
	if err := p.exited(); err != nil {
		return fmt.Errorf("kube-controller-manager exited: %v\n%s", err, cp.LogTail(ControllerManagerLog, 40))
	}
	return nil
}

// CompactEtcd compacts etcd's history up to its current revision: a watch that
// resumes from any earlier resourceVersion and is served by etcd gets 410 Gone.
func (cp *ControlPlane) CompactEtcd(ctx context.Context) error {
	resp, err := cp.etcdCli.Get(ctx, "kubecp-compaction-probe")
	if err != nil {
		return err
	}
	_, err = cp.etcdCli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical())
	return err
}

// Close kills every component and stops etcd. The directory stays (the caller's).
func (cp *ControlPlane) Close() {
	cp.mu.Lock()
	for _, p := range []**process{&cp.kcm, &cp.apiserver} {
		if *p != nil {
			(*p).kill()
			*p = nil
		}
	}
	cp.mu.Unlock()
	if cp.etcdCli != nil {
		cp.etcdCli.Close()
	}
	if cp.etcd != nil {
		cp.etcd.Close()
	}
}

// LogTail returns the last n lines of a component's log (APIServerLog, ...).
func (cp *ControlPlane) LogTail(name string, n int) string {
	data, err := os.ReadFile(filepath.Join(cp.cfg.Dir, name))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// process is one component, in its own process group so that killing it kills
// whatever it started.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (cp *ControlPlane) startProcess(bin string, args []string, logName string) (*process, error) {
	logf, err := os.OpenFile(filepath.Join(cp.cfg.Dir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := cp.cfg.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Killed with this process even if it dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
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
			return errors.New("exit status 0")
		}
		return p.err
	default:
		return nil
	}
}

// kill kills the process group and waits for the process to exit. A throwaway
// control plane keeps nothing worth a graceful stop, and kube-apiserver's takes as
// long as its clients' watches stay open.
func (p *process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
