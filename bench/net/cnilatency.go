package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fjord-net/fjord/bench/benchkit"
	"github.com/vishvananda/netns"
)

// nsWorker is a benchkit.NSWorker with this program's jobs as methods.
type nsWorker struct{ *benchkit.NSWorker }

func newNSWorker(name string) (*nsWorker, error) {
	w, err := benchkit.NewNSWorker(name)
	if err != nil {
		return nil, err
	}
	return &nsWorker{w}, nil
}

// ---------------------------------------------------------------------------------
// CNI latency

type plugin struct {
	Key, Name, Note string
	Path, CNIPath   string
	Conf            []byte
	Add, Del        []float64 // ms, measured pods only
	attached        []attachment
}

type attachment struct{ id, ns string }

func (b *bench) cniLatency(ctx context.Context, res *results, refDir string) error {
	l := vxlanLab
	const node = 3 // no pods of ours there
	runDir := l.nodeRunDir(node)
	if !fileExists(filepath.Join(runDir, "node.json")) {
		return fmt.Errorf("%s/node.json missing: the agent on n%d has not published it", runDir, node)
	}
	binDir := filepath.Join(l.stateDir(), "bin")
	labPlugin := filepath.Join(binDir, "fjord-cni")
	labTarget, err := filepath.EvalSymlinks(labPlugin)
	if err != nil {
		return fmt.Errorf("the lab's plugin %s: %w", labPlugin, err)
	}
	mk := func(key string) string {
		d := filepath.Join(b.tmp, "cni-"+key)
		_ = os.MkdirAll(d, 0o755)
		return d
	}
	fjordConf := func(key string) []byte {
		c, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "benchnet", "type": "fjord", "runDir": runDir, "dataDir": mk(key)})
		return c
	}
	bridgeConf := func(key, br, subnet string) []byte {
		c, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "benchref", "type": "bridge",
			"bridge": br, "isGateway": true, "ipMasq": false,
			"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": subnet}}}, "dataDir": mk(key)}})
		return c
	}
	plugins := []*plugin{{
		Key: "f", Name: "fjord", Note: fmt.Sprintf("`%s` → %s (%s)", labPlugin, labTarget, binSize(labTarget)),
		Path: labPlugin, CNIPath: binDir, Conf: fjordConf("f"),
	}}
	if full, _ := filepath.EvalSymlinks(b.fjord); full != labTarget {
		// The lab execs a slim plugin build; measure the all-in-one binary too.
		plugins = append(plugins, &plugin{
			Key: "a", Name: "fjord (all-in-one binary)", Note: fmt.Sprintf("%s with CNI_COMMAND set (%s)", full, binSize(full)),
			Path: full, CNIPath: binDir, Conf: fjordConf("a"),
		})
	}
	plugins = append(plugins,
		&plugin{Key: "u", Name: "bridge+host-local " + refVersion, Note: fmt.Sprintf("upstream, `go install` (bridge %s)", binSize(filepath.Join(refDir, "bridge"))),
			Path: filepath.Join(refDir, "bridge"), CNIPath: refDir, Conf: bridgeConf("u", "fjbr0", "10.99.0.0/24")},
		&plugin{Key: "d", Name: "bridge+host-local (Debian)", Note: fmt.Sprintf("/usr/lib/cni, %s (bridge %s)", debianPluginsVersion(), binSize("/usr/lib/cni/bridge")),
			Path: "/usr/lib/cni/bridge", CNIPath: "/usr/lib/cni", Conf: bridgeConf("d", "fjbr1", "10.99.1.0/24")},
	)
	for _, p := range plugins {
		if !fileExists(p.Path) {
			return fmt.Errorf("plugin %s: %s missing", p.Name, p.Path)
		}
	}
	// One goroutine, locked to an OS thread that lives in the node's namespace, execs
	// every plugin: the children inherit that namespace, as under a runtime on the node.
	w, err := newNSWorker(l.nodeNS(node))
	if err != nil {
		return err
	}
	defer w.Close()

	total := warmupPods + *flagPods
	b.logf("CNI: %d pods per plugin (%d warm-up) on %s, plugins alternated", *flagPods, warmupPods, l.nodeNS(node))
	for i := 0; i < total; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for k := range plugins {
			p := plugins[(i+k)%len(plugins)]
			id := fmt.Sprintf("benchnet-%s-%03d", p.Key, i)
			nsName := fmt.Sprintf("%s-cni-%s-%03d", l.prefix(), p.Key, i)
			if err := w.newNetns(nsName); err != nil {
				return fmt.Errorf("creating %s: %w", nsName, err)
			}
			b.cniNS = append(b.cniNS, nsName)
			d, out, err := w.exec(ctx, p, "ADD", id, "/run/netns/"+nsName)
			if err != nil {
				return fmt.Errorf("%s ADD %s: %w", p.Name, id, err)
			}
			if err := checkResult(out); err != nil {
				return fmt.Errorf("%s ADD %s: %w", p.Name, id, err)
			}
			p.attached = append(p.attached, attachment{id, "/run/netns/" + nsName})
			if i >= warmupPods {
				p.Add = append(p.Add, ms(d))
			}
		}
	}
	b.logf("CNI: DEL all")
	for i := 0; i < total; i++ {
		for k := range plugins {
			p := plugins[(i+k)%len(plugins)]
			a := p.attached[i]
			d, _, err := w.exec(ctx, p, "DEL", a.id, a.ns)
			if err != nil {
				return fmt.Errorf("%s DEL %s: %w", p.Name, a.id, err)
			}
			if i >= warmupPods {
				p.Del = append(p.Del, ms(d))
			}
		}
	}
	// The bridges stay after the last DEL (as with any runtime); the node's namespace
	// goes with the lab anyway.
	_, _ = benchkit.RunCmd(ctx, 10*time.Second, os.Environ(), "ip", "netns", "exec", l.nodeNS(node), "sh", "-c", "ip link del fjbr0; ip link del fjbr1")
	for _, n := range b.cniNS {
		_ = netns.DeleteNamed(n)
	}
	b.cniNS = nil
	for _, p := range plugins {
		b.logf("CNI %-28s ADD p50 %6.2f ms p99 %6.2f ms | DEL p50 %6.2f ms", p.Name, benchkit.Pct(p.Add, 50), benchkit.Pct(p.Add, 99), benchkit.Pct(p.Del, 50))
	}
	res.CNI = plugins
	res.CNINode = l.nodeNS(node)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func binSize(p string) string {
	fi, err := os.Stat(p)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MB", float64(fi.Size())/1e6)
}

func debianPluginsVersion() string {
	out, err := benchkit.RunCmd(context.Background(), 10*time.Second, os.Environ(), "dpkg-query", "-W", "-f", "${Version}", "containernetworking-plugins")
	if err != nil {
		return "containernetworking-plugins"
	}
	return "containernetworking-plugins " + strings.TrimSpace(string(out))
}

// checkResult accepts a CNI result with at least one address.
func checkResult(out []byte) error {
	var r struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return fmt.Errorf("result: %v: %s", err, out)
	}
	if len(r.IPs) == 0 || r.IPs[0].Address == "" {
		return fmt.Errorf("result has no address: %s", out)
	}
	return nil
}

// newNetns creates a named namespace; the worker thread returns to the node's.
func (w *nsWorker) newNetns(name string) (err error) {
	w.Run(func() {
		var node, created netns.NsHandle
		if node, err = netns.Get(); err != nil {
			return
		}
		defer node.Close()
		if created, err = netns.NewNamed(name); err != nil {
			_ = netns.Set(node)
			return
		}
		_ = created.Close()
		err = netns.Set(node)
	})
	return err
}

// exec runs one CNI command the way a runtime does and returns its wall time.
func (w *nsWorker) exec(ctx context.Context, p *plugin, command, id, nsPath string) (d time.Duration, out []byte, err error) {
	w.Run(func() {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(cctx, p.Path)
		cmd.Args[0] = filepath.Base(p.Path)
		cmd.Env = []string{"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + id, "CNI_NETNS=" + nsPath,
			"CNI_IFNAME=eth0", "CNI_PATH=" + p.CNIPath, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		cmd.Stdin = strings.NewReader(string(p.Conf))
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err = cmd.Run()
		d = time.Since(start)
		out = []byte(stdout.String())
		if err != nil {
			err = fmt.Errorf("%w: %s %s", err, strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()))
		}
	})
	return d, out, err
}
