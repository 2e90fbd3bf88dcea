package kernel

import "os"

// HasIPVS reports whether the kernel offers IPVS (the module is loaded or built in).
// This one's does not; fjord then runs its nftables equivalent and says so.
func HasIPVS() bool {
	for _, p := range []string{"/proc/net/ip_vs", "/sys/module/ip_vs"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}
