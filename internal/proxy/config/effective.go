package config

import (
	"maps"
	"time"
)

// Defaults kube-proxy applies when a field is absent.
const (
	defaultSyncPeriod                        = 30 * time.Second
	defaultMinSyncPeriodIPVS   time.Duration = 0
	defaultMinSyncPeriodTables               = time.Second
	defaultScheduler                         = "rr"
)

// effective applies defaults to a validated document.
func effective(raw *KubeProxyConfiguration) *Config {
	c := &Config{
		Mode:            Mode(raw.Mode),
		StrictARP:       raw.IPVS.StrictARP,
		DetectLocalMode: raw.DetectLocalMode,
		FeatureGates:    maps.Clone(raw.FeatureGates),
		Raw:             *raw,
	}
	if c.Mode == "" {
		c.Mode = ModeIPTables
	}
	// The inputs were validated, so these cannot fail.
	c.ExcludeCIDRs, _ = prefixes("ipvs.excludeCIDRs", raw.IPVS.ExcludeCIDRs)
	c.ClusterCIDR, _ = clusterCIDR(raw.ClusterCIDR)
	c.NodePortAddresses, c.NodePortPrimary, _ = nodePortAddresses(raw.NodePortAddresses)
	if len(raw.NodePortAddresses) == 0 {
		// kube-proxy: "all" in iptables and ipvs mode, "primary" in nftables.
		if c.Mode == ModeNFTables {
			c.NodePortPrimary = true
		} else {
			c.NodePortAddresses, _, _ = nodePortAddresses([]string{"all"})
		}
	}

	// The inputs were validated, so syncPeriods cannot fail here.
	switch c.Mode {
	case ModeIPVS:
		c.SyncPeriod, c.MinSyncPeriod, _ = syncPeriods("ipvs", raw.IPVS.SyncPeriod, raw.IPVS.MinSyncPeriod, defaultMinSyncPeriodIPVS)
		c.Scheduler = raw.IPVS.Scheduler
		if c.Scheduler == "" {
			c.Scheduler = defaultScheduler
		}
	case ModeNFTables:
		c.SyncPeriod, c.MinSyncPeriod, _ = syncPeriods("nftables", raw.NFTables.SyncPeriod, raw.NFTables.MinSyncPeriod, defaultMinSyncPeriodTables)
		c.MasqueradeAll = raw.NFTables.MasqueradeAll
		c.Scheduler = "random"
	case ModeIPTables:
		c.SyncPeriod, c.MinSyncPeriod, _ = syncPeriods("iptables", raw.IPTables.SyncPeriod, raw.IPTables.MinSyncPeriod, defaultMinSyncPeriodTables)
		c.MasqueradeAll = raw.IPTables.MasqueradeAll
		c.Scheduler = "random"
	}
	return c
}
