package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
)

// idleConns is how many idle keep-alive connections the memory test holds.
const idleConns = 10000

// idleBudget is a generous bound on the proxy's memory per idle keep-alive
// connection (Go heap and stacks in use). The measured figure is in
// docs/benchmarks.md.
const idleBudget = 32 << 10

// TestIdleKeepAliveMemory opens 10,000 keep-alive connections from a child
// process (the file-descriptor limit here is 20,000 per process), sends
// one request on each, leaves them idle, and checks that the proxy's
// memory stays bounded: within idleBudget per connection.
func TestIdleKeepAliveMemory(t *testing.T) {
	if addr := os.Getenv("FJORD_IDLE_CLIENT_ADDR"); addr != "" {
		idleClient(addr)
		return
	}
	b := startBackend(t, "b", 0, nil)
	cfg := defaults()
	cfg.KeepAlive = 10 * time.Minute
	tp := startProxy(t, cfg)
	tp.swap(cfg, []*networkingv1.Ingress{ingress("ns", "i", "nginx", map[string]string{"h/": "s:http"}, nil)},
		map[UpstreamKey]Upstream{key("ns", "s", "http"): {Endpoints: []netipAddrPort{b.addr(t)}}})

	before := goMemory()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleKeepAliveMemory$")
	cmd.Env = append(os.Environ(), "FJORD_IDLE_CLIENT_ADDR="+strings.TrimPrefix(tp.httpURL, "http://"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("client: %q, %v", line, err)
	}
	if n := tp.http.Conns(); n < idleConns {
		t.Fatalf("the proxy holds %d connections, want %d", n, idleConns)
	}
	after := goMemory()
	per := (after.inUse - before.inUse) / idleConns
	t.Logf("%d idle keep-alive connections: Go heap+stacks in use +%.1f MiB (%d bytes per connection; stacks %.1f MiB), RSS +%.1f MiB",
		idleConns, mib(after.inUse-before.inUse), per, mib(after.stacks-before.stacks), mib(after.rss-before.rss))
	if per > idleBudget {
		t.Errorf("%d bytes per idle connection, budget %d", per, idleBudget)
	}
}

type memSample struct{ inUse, stacks, rss int64 }

// goMemory returns the Go heap and stacks in use after two collections
// (the second shrinks stacks that the first found oversized) and the RSS.
func goMemory() memSample {
	for range 6 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSample{inUse: int64(ms.HeapInuse + ms.StackInuse), stacks: int64(ms.StackInuse)}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				s.rss = kb << 10
			}
		}
	}
	return s
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// idleClient is the child process: it opens idleConns connections to addr,
// makes one request on each, says "ready" and holds them until stdin ends.
func idleClient(addr string) {
	conns := make([]net.Conn, 0, idleConns)
	req := []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	for range idleConns {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			os.Exit(1)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(req); err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			os.Exit(1)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			fmt.Fprintln(os.Stderr, "response:", resp, err)
			os.Exit(1)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		c.SetDeadline(time.Time{})
		conns = append(conns, c)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	os.Exit(0)
}
