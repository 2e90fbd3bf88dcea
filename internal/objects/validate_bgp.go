package objects

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// asTrans is the AS that stands in for 4-byte AS numbers on old speakers (RFC 6793):
// no speaker may own it.
const asTrans = 23456

// MaxRestartTime is the largest graceful-restart time the capability can carry (12 bits
// of seconds, RFC 4724).
const MaxRestartTime = 4095 * time.Second

func validateBGPConfiguration(c *BGPConfiguration) field.ErrorList {
	errs := validateMeta(c, false, apivalidation.NameIsDNSSubdomain)
	if n := c.Name; n != "default" && n != "" {
		node, ok := strings.CutPrefix(n, "node.")
		if !ok || node == "" {
			errs = append(errs, field.Invalid(metaPath.Child("name"), n, `must be "default" (every node) or "node.<node name>" (one node)`))
		}
	}
	spec := field.NewPath("spec")
	if c.Spec.ASNumber != nil {
		errs = append(errs, validateASNumber(*c.Spec.ASNumber, spec.Child("asNumber"))...)
	}
	errs = append(errs, validateRestartTime(c.Spec.NodeMeshMaxRestartTime, spec.Child("nodeMeshMaxRestartTime"))...)
	if h := c.Spec.HoldTime; h != nil {
		// RFC 4271: zero (no keepalives, never used here) or at least three seconds.
		if h.Duration < 3*time.Second || h.Duration > 65535*time.Second || h.Duration%time.Second != 0 {
			errs = append(errs, field.Invalid(spec.Child("holdTime"), h.Duration.String(), "must be whole seconds between 3s and 65535s"))
		}
	}
	for _, blocks := range []struct {
		name string
		list []CIDRBlock
	}{{"serviceClusterIPs", c.Spec.ServiceClusterIPs}, {"serviceExternalIPs", c.Spec.ServiceExternalIPs}, {"serviceLoadBalancerIPs", c.Spec.ServiceLoadBalancerIPs}} {
		for i, b := range blocks.list {
			errs = append(errs, validateBlock(b.CIDR, spec.Child(blocks.name).Index(i).Child("cidr"))...)
		}
	}
	return errs
}

func validateBGPPeer(p *BGPPeer) field.ErrorList {
	errs := validateMeta(p, false, apivalidation.NameIsDNSSubdomain)
	spec := field.NewPath("spec")
	if p.Spec.Node != "" {
		errs = append(errs, validateDNSSubdomain(p.Spec.Node, spec.Child("node"))...)
		if p.Spec.NodeSelector != "" {
			errs = append(errs, field.Invalid(spec.Child("nodeSelector"), p.Spec.NodeSelector, "may not be set together with spec.node"))
		}
	}
	if p.Spec.NodeSelector != "" {
		if _, err := labels.Parse(p.Spec.NodeSelector); err != nil {
			errs = append(errs, field.Invalid(spec.Child("nodeSelector"), p.Spec.NodeSelector, err.Error()))
		}
	}
	if p.Spec.PeerIP == "" {
		errs = append(errs, field.Required(spec.Child("peerIP"), "the router's address"))
	} else if _, _, err := ParsePeerIP(p.Spec.PeerIP); err != nil {
		errs = append(errs, field.Invalid(spec.Child("peerIP"), p.Spec.PeerIP, err.Error()))
	}
	if p.Spec.ASNumber == 0 {
		errs = append(errs, field.Required(spec.Child("asNumber"), "the router's AS number"))
	} else {
		errs = append(errs, validateASNumber(p.Spec.ASNumber, spec.Child("asNumber"))...)
	}
	errs = append(errs, validateRestartTime(p.Spec.MaxRestartTime, spec.Child("maxRestartTime"))...)
	if n := p.Spec.NumAllowedLocalASNumbers; n > 10 {
		errs = append(errs, field.Invalid(spec.Child("numAllowedLocalASNumbers"), n, "must be between 0 and 10"))
	}
	return errs
}

// ParsePeerIP reads a BGPPeer's peerIP: an address, optionally with a port ("ip:port",
// "[v6]:port"). Port 0 means the configured listen port.
func ParsePeerIP(s string) (netip.Addr, uint16, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" || a.Is4In6() {
			return netip.Addr{}, 0, fmt.Errorf("must be a plain IPv4 or IPv6 address")
		}
		return a, 0, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("must be an IP address, optionally with a port (198.18.190.254 or 198.18.190.254:179)")
	}
	if ap.Port() == 0 {
		return netip.Addr{}, 0, fmt.Errorf("port must be between 1 and 65535")
	}
	return ap.Addr(), ap.Port(), nil
}

// ParseASNumber reads an AS number as written in the annotation or a flag: plain
// ("64512") or dotted ("1.10" = 65546).
func ParseASNumber(s string) (uint32, error) {
	hi, lo, dotted := strings.Cut(s, ".")
	if !dotted {
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is not an AS number (1 to 4294967295, or dotted like 1.10)", s)
		}
		return uint32(v), validASNumber(uint32(v))
	}
	h, err1 := strconv.ParseUint(hi, 10, 16)
	l, err2 := strconv.ParseUint(lo, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not an AS number (1 to 4294967295, or dotted like 1.10)", s)
	}
	v := uint32(h<<16 | l)
	return v, validASNumber(v)
}

func validASNumber(v uint32) error {
	switch v {
	case 0:
		return fmt.Errorf("AS 0 is reserved (RFC 7607)")
	case asTrans:
		return fmt.Errorf("AS %d is AS_TRANS, reserved (RFC 6793)", asTrans)
	case 65535, 4294967295:
		return fmt.Errorf("AS %d is reserved (RFC 7300)", v)
	}
	return nil
}

func validateASNumber(v uint32, path *field.Path) field.ErrorList {
	if err := validASNumber(v); err != nil {
		return field.ErrorList{field.Invalid(path, v, err.Error())}
	}
	return nil
}

func validateRestartTime(d *metav1.Duration, path *field.Path) field.ErrorList {
	if d == nil {
		return nil
	}
	if d.Duration < time.Second || d.Duration > MaxRestartTime || d.Duration%time.Second != 0 {
		return field.ErrorList{field.Invalid(path, d.Duration.String(), "must be whole seconds between 1s and 4095s (the graceful-restart capability's limit)")}
	}
	return nil
}

func validateBlock(v string, path *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return field.ErrorList{field.Invalid(path, v, "must be a CIDR such as 10.96.0.0/12")}
	}
	if p.Masked() != p {
		return field.ErrorList{field.Invalid(path, v, fmt.Sprintf("has host bits set (did you mean %v?)", p.Masked()))}
	}
	return nil
}
