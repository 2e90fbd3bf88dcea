package servicemap

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/fjord-net/fjord/internal/proxy/sched"
)

// validScheduler reports whether name is a scheduler sched knows.
func validScheduler(name string) bool {
	return slices.Contains(sched.Names(), name)
}

// parseWeights parses the fjord.dev/weights annotation. Bad entries are
// returned as messages and left out of the result.
func parseWeights(s string) (map[netip.Addr]int, []string) {
	w := make(map[netip.Addr]int)
	var bad []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		ipText, wText, ok := strings.Cut(item, "=")
		if !ok {
			bad = append(bad, fmt.Sprintf("entry %q is not IP=weight; ignored", item))
			continue
		}
		ip, err := netip.ParseAddr(strings.TrimSpace(ipText))
		if err != nil || ip.Zone() != "" {
			bad = append(bad, fmt.Sprintf("entry %q: %q is not an IP address; ignored", item, ipText))
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(wText))
		if err != nil || n < 0 || n > MaxWeight {
			bad = append(bad, fmt.Sprintf("entry %q: weight must be an integer from 0 to %d; ignored", item, MaxWeight))
			continue
		}
		ip = ip.Unmap()
		if _, dup := w[ip]; dup {
			bad = append(bad, fmt.Sprintf("entry %q: %s listed twice; the first weight wins", item, ip))
			continue
		}
		w[ip] = n
	}
	return w, bad
}
