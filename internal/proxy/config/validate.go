package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// validate checks the values of a shape-checked document. It reports the
// first problem in a fixed field order.
func validate(c *KubeProxyConfiguration) error {
	if c.APIVersion != APIVersion {
		return fieldErr("apiVersion", fmt.Sprintf("%q is not %s", c.APIVersion, APIVersion))
	}
	if c.Kind != Kind {
		return fieldErr("kind", fmt.Sprintf("%q is not %s", c.Kind, Kind))
	}
	switch Mode(c.Mode) {
	case "", ModeIPVS, ModeNFTables, ModeIPTables:
	default:
		return fieldErr("mode", fmt.Sprintf("%q is not one of ipvs, nftables, iptables", c.Mode))
	}
	if c.IPVS.Scheduler != "" && !slices.Contains(Schedulers(), c.IPVS.Scheduler) {
		return fieldErr("ipvs.scheduler", fmt.Sprintf("%q is not one of %s", c.IPVS.Scheduler, strings.Join(Schedulers(), ", ")))
	}
	checks := []func() error{
		func() error {
			_, _, err := syncPeriods("ipvs", c.IPVS.SyncPeriod, c.IPVS.MinSyncPeriod, defaultMinSyncPeriodIPVS)
			return err
		},
		func() error {
			_, _, err := syncPeriods("iptables", c.IPTables.SyncPeriod, c.IPTables.MinSyncPeriod, defaultMinSyncPeriodTables)
			return err
		},
		func() error {
			_, _, err := syncPeriods("nftables", c.NFTables.SyncPeriod, c.NFTables.MinSyncPeriod, defaultMinSyncPeriodTables)
			return err
		},
		func() error { return nonNegative("ipvs.tcpTimeout", c.IPVS.TCPTimeout) },
		func() error { return nonNegative("ipvs.tcpFinTimeout", c.IPVS.TCPFinTimeout) },
		func() error { return nonNegative("ipvs.udpTimeout", c.IPVS.UDPTimeout) },
		func() error { _, err := prefixes("ipvs.excludeCIDRs", c.IPVS.ExcludeCIDRs); return err },
		func() error { return masqBit("iptables.masqueradeBit", c.IPTables.MasqueradeBit) },
		func() error { return masqBit("nftables.masqueradeBit", c.NFTables.MasqueradeBit) },
		func() error { _, err := clusterCIDR(c.ClusterCIDR); return err },
		func() error { _, _, err := nodePortAddresses(c.NodePortAddresses); return err },
		func() error { return oomScoreAdj(c.OOMScoreAdj) },
		func() error { return detectLocalMode(c.DetectLocalMode) },
		func() error { return bindIP("bindAddress", c.BindAddress) },
		func() error { return hostPort("healthzBindAddress", c.HealthzBindAddress) },
		func() error { return hostPort("metricsBindAddress", c.MetricsBindAddress) },
		func() error { return nonNegInt("conntrack.maxPerCore", c.Conntrack.MaxPerCore) },
		func() error { return nonNegInt("conntrack.min", c.Conntrack.Min) },
		func() error { return nonNegative("conntrack.tcpEstablishedTimeout", c.Conntrack.TCPEstablishedTimeout) },
		func() error { return nonNegative("conntrack.tcpCloseWaitTimeout", c.Conntrack.TCPCloseWaitTimeout) },
		func() error { return nonNegative("conntrack.udpTimeout", c.Conntrack.UDPTimeout) },
		func() error { return nonNegative("conntrack.udpStreamTimeout", c.Conntrack.UDPStreamTimeout) },
		func() error { return nonNegative("configSyncPeriod", c.ConfigSyncPeriod) },
		func() error { return portRange(c.PortRange) },
		func() error { return nonNegInt("clientConnection.burst", &c.ClientConnection.Burst) },
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// syncPeriods returns a section's effective syncPeriod and minSyncPeriod
// the way kube-proxy defaults them: an absent or zero syncPeriod means 30s,
// an absent or zero minSyncPeriod means minDefault (kube-proxy cannot
// express "0" for iptables and nftables, whose default is 1s). It rejects
// negative values and a minSyncPeriod above the syncPeriod.
func syncPeriods(section string, sync, minSync *Duration, minDefault time.Duration) (time.Duration, time.Duration, error) {
	s, m := defaultSyncPeriod, minDefault
	if sync != nil {
		if sync.Duration < 0 {
			return 0, 0, fieldErr(section+".syncPeriod", "must be positive")
		}
		if sync.Duration > 0 {
			s = sync.Duration
		}
	}
	if minSync != nil {
		if minSync.Duration < 0 {
			return 0, 0, fieldErr(section+".minSyncPeriod", "must not be negative")
		}
		if minSync.Duration > 0 {
			m = minSync.Duration
		}
	}
	if m > s {
		return 0, 0, fieldErr(section+".minSyncPeriod", fmt.Sprintf("%s must not exceed syncPeriod %s", m, s))
	}
	return s, m, nil
}

func nonNegative(path string, d *Duration) error {
	if d != nil && d.Duration < 0 {
		return fieldErr(path, "must not be negative")
	}
	return nil
}

func nonNegInt(path string, n *int32) error {
	if n != nil && *n < 0 {
		return fieldErr(path, "must not be negative")
	}
	return nil
}

func masqBit(path string, bit *int32) error {
	if bit != nil && (*bit < 0 || *bit > 31) {
		return fieldErr(path, fmt.Sprintf("%d is not in 0..31", *bit))
	}
	return nil
}

// prefixes parses a list of CIDRs; a null or empty list gives nil.
func prefixes(path string, list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range list {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fieldErr(path+"["+strconv.Itoa(i)+"]", fmt.Sprintf("%q is not a CIDR", s))
		}
		out = append(out, p)
	}
	return out, nil
}

// clusterCIDR parses the comma-separated clusterCIDR field (at most one
// prefix per IP family).
func clusterCIDR(s string) ([]netip.Prefix, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []netip.Prefix
	for part := range strings.SplitSeq(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(part))
		if err != nil {
			return nil, fieldErr("clusterCIDR", fmt.Sprintf("%q is not a CIDR", strings.TrimSpace(part)))
		}
		out = append(out, p)
	}
	if len(out) > 2 || (len(out) == 2 && out[0].Addr().Is4() == out[1].Addr().Is4()) {
		return nil, fieldErr("clusterCIDR", fmt.Sprintf("%q must be one CIDR, or one IPv4 and one IPv6 CIDR", s))
	}
	return out, nil
}

// nodePortAddresses expands nodePortAddresses: CIDRs, and the keywords
// "localhost" (127.0.0.0/8, ::1/128), "all" (0.0.0.0/0, ::/0) and "primary"
// (the node's primary IPs, reported as primary=true), in any combination.
func nodePortAddresses(list []string) (out []netip.Prefix, primary bool, err error) {
	for i, s := range list {
		switch strings.TrimSpace(s) {
		case "primary":
			primary = true
			continue
		case "localhost":
			out = append(out, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
			continue
		case "all":
			out = append(out, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
			continue
		}
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, false, fieldErr("nodePortAddresses["+strconv.Itoa(i)+"]",
				fmt.Sprintf("%q is not a CIDR or one of primary, localhost, all", s))
		}
		out = append(out, p)
	}
	return out, primary, nil
}

func oomScoreAdj(v *int32) error {
	if v != nil && (*v < -1000 || *v > 1000) {
		return fieldErr("oomScoreAdj", fmt.Sprintf("%d is not in -1000..1000", *v))
	}
	return nil
}

func detectLocalMode(s string) error {
	switch s {
	case "", "ClusterCIDR", "NodeCIDR", "BridgeInterface", "InterfaceNamePrefix":
		return nil
	}
	return fieldErr("detectLocalMode", fmt.Sprintf("%q is not one of ClusterCIDR, NodeCIDR, BridgeInterface, InterfaceNamePrefix", s))
}

func bindIP(path, s string) error {
	if s == "" {
		return nil
	}
	if _, err := netip.ParseAddr(s); err != nil {
		return fieldErr(path, fmt.Sprintf("%q is not an IP address", s))
	}
	return nil
}

// hostPort accepts "IP:port" (the documented form) and, as kube-proxy does,
// a bare IP.
func hostPort(path, s string) error {
	if s == "" {
		return nil
	}
	if _, err := netip.ParseAddrPort(s); err == nil {
		return nil
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	return fieldErr(path, fmt.Sprintf("%q is not an IP:port address", s))
}

// portRange accepts "", "begin-end" or "begin+offset" with ports 1..65535.
func portRange(s string) error {
	if s == "" {
		return nil
	}
	bad := fieldErr("portRange", fmt.Sprintf("%q is not a port range such as 30000-32767", s))
	sep := "-"
	if strings.Contains(s, "+") {
		sep = "+"
	}
	a, b, ok := strings.Cut(s, sep)
	if !ok {
		return bad
	}
	lo, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	n, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	if err1 != nil || err2 != nil || lo == 0 {
		return bad
	}
	hi := n
	if sep == "+" {
		hi = lo + n
	}
	if hi < lo || hi > 65535 {
		return bad
	}
	return nil
}
