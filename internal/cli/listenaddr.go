package cli

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// helperListenAddr checks the address of a helper listener (profiling,
// metrics, health checks) and narrows a bare ":PORT" to loopback: such a
// listener never listens on every interface unless its address says so
// (0.0.0.0:PORT or [::]:PORT). "" (off) is returned as is. flag names the
// flag in errors.
func helperListenAddr(flag, addr string) (string, error) {
	if addr == "" {
		return "", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", flag, addr, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 && port != "0" {
		return "", fmt.Errorf("%s %q: port %q is not a number from 0 to 65535", flag, addr, port)
	}
	if host == "" {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
		return "", fmt.Errorf("%s %q: host %q is not an IP address", flag, addr, host)
	}
	return addr, nil
}
