package podnet

import "fmt"

// PodMTU returns the MTU for pod interfaces and the vxlan device: the underlay MTU less
// the encapsulation overhead in vxlan mode, the underlay MTU in routed mode. override > 0
// wins, but never above what the underlay can carry.
func PodMTU(mode Mode, underlayMTU int, ipv6Underlay bool, override int) (int, error) {
	max := underlayMTU
	if mode == ModeVXLAN {
		if ipv6Underlay {
			max -= VXLANOverheadIPv6
		} else {
			max -= VXLANOverhead
		}
	}
	if override == 0 {
		if max < 576 {
			return 0, fmt.Errorf("mtu: underlay MTU %d leaves %d for pods, below the 576 minimum", underlayMTU, max)
		}
		return max, nil
	}
	if override < 576 || override > max {
		return 0, fmt.Errorf("mtu: %d must be between 576 and %d (underlay MTU %d minus %s overhead)", override, max, underlayMTU, mode)
	}
	return override, nil
}
