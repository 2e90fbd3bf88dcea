package echo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestEchoReportsIdentity(t *testing.T) {
	port, tcpPort := freePort(t), freePort(t)
	cfg := Config{Pod: "web-1", Namespace: "default", Node: "n1", HTTPPort: port, TCPPort: tcpPort, UDPPort: port}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	defer func() { cancel(); <-done }()

	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ {
		if resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/x", port)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "pod=web-1") || !strings.Contains(string(body), "node=n1") || !strings.Contains(string(body), "client=127.0.0.1:") {
		t.Fatalf("http reply %q", body)
	}

	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(c, "hello")
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if line != "hello\n" {
		t.Fatalf("tcp echo %q", line)
	}

	u, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.Write([]byte("ping"))
	u.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, err := u.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "pod=web-1") || !strings.HasSuffix(string(buf[:n]), "payload=ping") {
		t.Fatalf("udp reply %q %v", buf[:n], err)
	}
}
