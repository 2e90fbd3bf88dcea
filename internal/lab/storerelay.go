package lab

// The lab's nodes reach the store over the underlay, as real nodes reach their etcd over
// the network. The embedded etcd listens only on a unix socket, which every namespace
// could open directly; had the nodes' processes used it, `lab fault partition` would
// cut a node's data plane but leave its agent renewing its Lease, so the node would
// never be seen to fail. Instead a relay in the root namespace listens on the host
// link's address (the subnet's .1, port StoreRelayPort), takes connections only from the
// lab's node addresses, and passes bytes to the socket. A partitioned node's store
// connection then stalls like any other traffic through the underlay switch.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// StoreRelayPort is the relay's port on the host link's address (etcd's client port).
const StoreRelayPort = 2379

// StoreRelayAddr is where the lab's node processes reach the store.
func (c Config) StoreRelayAddr() netip.AddrPort {
	return netip.AddrPortFrom(c.HostAddr(), StoreRelayPort)
}

// nodeStoreEndpoint is the --etcd-endpoints of the processes that run on nodes (agents,
// the lab kubelets, the ingress): through the underlay, not the socket.
func (c Config) nodeStoreEndpoint() string { return "http://" + c.StoreRelayAddr().String() }

// ServeStoreRelay runs lab c's store relay until ctx ends.
func ServeStoreRelay(ctx context.Context, c Config, log *slog.Logger) error {
	ln, err := net.Listen("tcp", c.StoreRelayAddr().String())
	if err != nil {
		return fmt.Errorf("store relay: %w", err)
	}
	nodes := map[netip.Addr]bool{}
	for i := 1; i <= c.Nodes; i++ {
		nodes[c.NodeAddr(i)] = true
	}
	sock := c.EtcdSocket()
	log.Info("store relay", "listen", ln.Addr(), "to", sock, "nodes", c.Nodes)
	return relayStore(ctx, ln, func(a netip.Addr) bool { return nodes[a.Unmap()] }, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}, log)
}

// relayStore accepts connections on ln until ctx ends and joins each one whose source
// address allow accepts to a fresh upstream connection; others are closed at once.
// It closes ln and every connection before it returns.
func relayStore(ctx context.Context, ln net.Listener, allow func(netip.Addr) bool, dial func(context.Context) (net.Conn, error), log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { <-ctx.Done(); ln.Close() }()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		src, _ := netip.ParseAddrPort(conn.RemoteAddr().String())
		if !allow(src.Addr()) {
			log.Warn("store relay: refused a connection from outside the lab's nodes", "from", conn.RemoteAddr())
			conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			join(ctx, conn, dial, log)
		}()
	}
}

// join passes bytes both ways between a client and a new upstream connection until
// either side ends or ctx does, then closes both.
func join(ctx context.Context, client net.Conn, dial func(context.Context) (net.Conn, error), log *slog.Logger) {
	defer client.Close()
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	up, err := dial(dctx)
	cancel()
	if err != nil {
		log.Warn("store relay: the store does not answer", "err", err)
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, up); done <- struct{}{} }()
	ended := 0
	select {
	case <-done:
		ended++
	case <-ctx.Done():
	}
	// Closing both ends the other copy too.
	client.Close()
	up.Close()
	for ; ended < 2; ended++ {
		<-done
	}
}
