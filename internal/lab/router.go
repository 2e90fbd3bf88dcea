package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/bgp"
	"github.com/fjord-net/fjord/internal/objects"
	"github.com/fjord-net/fjord/internal/podnet"
	"github.com/fjord-net/fjord/internal/store"
)

// The router namespace runs a real routing daemon from Debian as the top-of-rack router
// of every rack (eBGP: the router in AS 65000, rack k's nodes in AS 65000+k). It is
// started in the foreground through `fjord netns-exec` with the lab's environment
// marker, so Down finds and stops it like every other lab process, and every file it
// uses (configuration, control sockets, pid files, log) is under RouterDir: nothing in
// /etc, /run/bird or /run/frr is touched, and the Debian services stay off.

// Daemon binaries (Debian's bird2 and frr packages).
var (
	birdBin  = "/usr/sbin/bird"
	birdcBin = "/usr/sbin/birdc"
	zebraBin = "/usr/lib/frr/zebra"
	bgpdBin  = "/usr/lib/frr/bgpd"
	vtyshBin = "/usr/bin/vtysh"
)

// routerTimers: the lab's sessions use a 9 s hold time (3 s keepalives) and a 120 s
// graceful-restart time, as fjord's speakers do by default. BIRD waits 1 s after a
// session error before it takes a connection again, doubling up to 3 s on repeated
// errors (its default, 60 s doubling to 300 s, would make a node that just left and came back wait
// minutes: the lab is for watching convergence).
const (
	routerHold    = 9
	routerRestart = 120
)

// BIRDConfig is the router's bird.conf.
func (c Config) BIRDConfig() string {
	var b strings.Builder
	fmt.Fprintf(&b, `# fjord lab %q: the top-of-rack router of every rack (BIRD 2).
log %q all;
router id %v;

protocol device {
}

# Pod routes (and advertised Service ranges) into this namespace's kernel, so it
# forwards between racks. ECMP when several nodes advertise one range.
protocol kernel {
	merge paths on;
	ipv4 { export where source = RTS_BGP; };
}

template bgp rack_node {
	hold time %d;
	keepalive time %d;
	connect delay time 1;
	connect retry time 2;
	error wait time 1, 3;
	graceful restart on;
	graceful restart time %d;
	ipv4 { import all; export where source = RTS_BGP; };
}
`, c.Name, filepath.Join(c.RouterDir(), "bird.log"), c.RouterAddr(1), routerHold, routerHold/3, routerRestart)
	for i := 1; i <= c.Nodes; i++ {
		fmt.Fprintf(&b, "\nprotocol bgp %s from rack_node {\n\tlocal %v as %d;\n\tneighbor %v as %d;\n}\n",
			c.NodeName(i), c.RouterAddr(c.Rack(i)), RouterAS, c.NodeAddr(i), c.NodeAS(i))
	}
	return b.String()
}

// FRRConfig is the router's frr.conf (zebra and bgpd read the same file).
func (c Config) FRRConfig() string {
	var b strings.Builder
	fmt.Fprintf(&b, `! fjord lab %q: the top-of-rack router of every rack (FRR).
frr defaults datacenter
hostname %s
log file %s informational
!
router bgp %d
 bgp router-id %v
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp bestpath as-path multipath-relax
 bgp graceful-restart
 bgp graceful-restart restart-time %d
 timers bgp %d %d
`, c.Name, c.RouterNS(), filepath.Join(c.RouterDir(), "frr.log"), RouterAS, c.RouterAddr(1), routerRestart, routerHold/3, routerHold)
	for i := 1; i <= c.Nodes; i++ {
		n := c.NodeAddr(i)
		fmt.Fprintf(&b, " neighbor %v remote-as %d\n neighbor %v description %s\n neighbor %v timers connect 2\n neighbor %v advertisement-interval 0\n",
			n, c.NodeAS(i), n, c.NodeName(i), n, n)
	}
	b.WriteString(" !\n address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n!\n")
	return b.String()
}

func (c Config) routerNSPath() string { return filepath.Join("/run/netns", c.RouterNS()) }
func (c Config) birdSocket() string   { return filepath.Join(c.RouterDir(), "bird.ctl") }
func (c Config) frrVtyDir() string    { return filepath.Join(c.RouterDir(), "vty") }

// routerPreflight says what is missing to run the chosen daemon.
func (c Config) routerPreflight() error {
	bins := []string{birdBin, birdcBin}
	pkg := "bird2"
	if c.Router == RouterFRR {
		bins, pkg = []string{zebraBin, bgpdBin, vtyshBin}, "frr"
	}
	for _, b := range bins {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("--router %s needs %s (Debian package %s): run 'make deps'", c.routerName(), b, pkg)
		}
	}
	return nil
}

func (c Config) routerName() string {
	if c.Router == "" {
		return RouterBIRD
	}
	return c.Router
}

// startRouter writes the daemon's configuration and starts it in the router namespace.
func (c Config) startRouter() error {
	if err := os.MkdirAll(c.frrVtyDir(), 0o755); err != nil {
		return err
	}
	dir := c.RouterDir()
	switch c.Router {
	case RouterFRR:
		conf := filepath.Join(dir, "frr.conf")
		if err := os.WriteFile(conf, []byte(c.FRRConfig()), 0o644); err != nil {
			return err
		}
		zsock := filepath.Join(dir, "zserv.api")
		// -P 0: no vty on TCP; the vty sockets, the zebra API socket and the pid files
		// live in the lab's state directory, which the daemons' user (frr, whose group
		// frrvty may use the vty) must own.
		common := []string{"-u", "frr", "-g", "frr", "-P", "0", "--vty_socket", c.frrVtyDir(), "-z", zsock}
		if err := os.WriteFile(filepath.Join(dir, "zebra.conf"), []byte("! zebra: nothing but the defaults\n"), 0o644); err != nil {
			return err
		}
		if err := chownTree(dir, "frr"); err != nil {
			return err
		}
		if _, err := c.spawnExec("router-zebra", c.routerNSPath(), zebraBin,
			append(common, "-f", filepath.Join(dir, "zebra.conf"), "-i", filepath.Join(dir, "zebra.pid"))...); err != nil {
			return err
		}
		if err := waitFile(zsock, 10*time.Second); err != nil {
			return fmt.Errorf("zebra did not start (see %s): %w", filepath.Join(c.LogDir(), "router-zebra.log"), err)
		}
		_, err := c.spawnExec("router-bgpd", c.routerNSPath(), bgpdBin,
			append(common, "-f", conf, "-i", filepath.Join(dir, "bgpd.pid"), "-p", "179")...)
		return err
	default:
		conf := filepath.Join(dir, "bird.conf")
		if err := os.WriteFile(conf, []byte(c.BIRDConfig()), 0o644); err != nil {
			return err
		}
		_, err := c.spawnExec("router-bird", c.routerNSPath(), birdBin, "-f", "-c", conf, "-s", c.birdSocket(), "-P", filepath.Join(dir, "bird.pid"))
		return err
	}
}

// RouterCommand returns the command line that asks the lab's router what it knows:
// `birdc show route` or `vtysh -c 'show ip bgp'` (args are the daemon's own words).
func (c Config) RouterCommand(args ...string) *exec.Cmd {
	if c.Router == RouterFRR {
		return exec.Command(vtyshBin, append([]string{"--vty_socket", c.frrVtyDir()}, args...)...)
	}
	return exec.Command(birdcBin, append([]string{"-s", c.birdSocket()}, args...)...)
}

// rackObjects are the objects a racked bgp lab applies before its agents start: the
// BGPConfiguration (no node-to-node mesh, the Service range advertised) and one BGPPeer
// per rack pointing at that rack's router. (Each agent labels its Node with its rack:
// --node-labels.)
func (c Config) rackObjects(serviceCIDR string) []objects.Object {
	var out []objects.Object
	if c.Mode != podnet.ModeBGP {
		return out
	}
	mesh := false
	conf := &objects.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	conf.Spec.NodeToNodeMeshEnabled = &mesh
	if serviceCIDR != "" {
		conf.Spec.ServiceClusterIPs = []objects.CIDRBlock{{CIDR: serviceCIDR}}
	}
	out = append(out, conf)
	for k := 1; k <= c.Racks; k++ {
		p := &objects.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "tor-" + c.RackName(k)}}
		p.Spec = objects.BGPPeerSpec{NodeSelector: objects.LabelRack + "=" + c.RackName(k), PeerIP: c.RouterAddr(k).String(),
			ASNumber: RouterAS, NumAllowedLocalASNumbers: 1}
		out = append(out, p)
	}
	return out
}

// bgpAgentArgs are the agent flags of a racked or bgp-mode lab node: its rack label,
// and in bgp mode the encapsulation and the rack's AS.
func (c Config) bgpAgentArgs(i int) []string {
	var args []string
	if c.racked() {
		args = append(args, "--node-labels", objects.LabelRack+"="+c.RackName(c.Rack(i)))
	}
	if c.Mode != podnet.ModeBGP {
		return args
	}
	encap := c.Encap
	if encap == "" {
		encap = string(podnet.EncapNever)
	}
	args = append(args, "--encap", encap)
	if c.racked() {
		args = append(args, "--bgp-as", strconv.FormatUint(uint64(c.NodeAS(i)), 10))
	}
	return args
}

func waitFile(path string, d time.Duration) error {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s did not appear within %s", path, d)
}

// waitBGP waits until every node's speaker has every session Established, trusts its
// table (End-of-RIB heard) and has learned every other node's pod CIDR.
func (c Config) waitBGP(ctx context.Context, st *store.Store) error {
	nk, _ := st.Kinds().ByName("Node")
	var last string
	for i := 0; i < 600; i++ {
		last = c.bgpConverged(ctx, st, nk)
		if last == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("BGP did not converge: %s (see 'fjord bgp status --lab %s' and %s)", last, c.Name, c.LogDir())
}

// bgpConverged returns "" when converged, else what is still missing.
func (c Config) bgpConverged(ctx context.Context, st *store.Store, nk objects.Kind) string {
	cidrs := map[string]string{}
	for i := 1; i <= c.Nodes; i++ {
		o, err := st.Get(ctx, nk, "", c.NodeName(i))
		if err != nil || o.(*corev1.Node).Spec.PodCIDR == "" {
			return "node " + c.NodeName(i) + " has no pod CIDR"
		}
		cidrs[c.NodeName(i)] = o.(*corev1.Node).Spec.PodCIDR
	}
	for i := 1; i <= c.Nodes; i++ {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := bgp.Query(qctx, filepath.Join(c.NodeRunDir(i), bgp.SocketName))
		cancel()
		if err != nil {
			return err.Error()
		}
		if len(s.Peers) == 0 && c.Nodes > 1 {
			return c.NodeName(i) + " has no BGP sessions"
		}
		for _, p := range s.Peers {
			if p.State != "Established" {
				return fmt.Sprintf("%s: session with %s is %s", c.NodeName(i), p.Address, p.State)
			}
		}
		if !s.Synced {
			return c.NodeName(i) + " waits for End-of-RIB"
		}
		learned := strings.Join(s.Learned, ",")
		for j := 1; j <= c.Nodes; j++ {
			if j != i && !strings.Contains(learned, cidrs[c.NodeName(j)]+" via") {
				return fmt.Sprintf("%s has not learned %s (%s)", c.NodeName(i), cidrs[c.NodeName(j)], c.NodeName(j))
			}
		}
	}
	return ""
}

// chownTree gives dir and what it holds to user (and the user's group).
func chownTree(dir, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("user %s (Debian's frr package creates it): %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	})
}

// removeRouterLeftovers removes what FRR leaves outside the lab's state directory: a
// crash-log directory per daemon process, /var/tmp/frr/<daemon>.<pid>.
func (c Config) removeRouterLeftovers() {
	for _, d := range []string{"zebra", "bgpd"} {
		b, err := os.ReadFile(filepath.Join(c.StateDir(), "pids", "router-"+d+".pid"))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			_ = os.RemoveAll(filepath.Join("/var/tmp/frr", fmt.Sprintf("%s.%d", d, pid)))
		}
	}
}
