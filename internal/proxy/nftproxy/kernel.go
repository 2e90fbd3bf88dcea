package nftproxy

import (
	"errors"
	"fmt"
	"os/exec"

	"sigs.k8s.io/knftables"
)

// NewInterface returns a knftables.Interface for the table TableName in
// family (knftables.IPv4Family or IPv6Family), checking that nft can be
// run: the binary exists, is at least 1.0.1, and may change the kernel's
// ruleset (root or CAP_NET_ADMIN). The error says which of these failed.
func NewInterface(family knftables.Family) (knftables.Interface, error) {
	if _, err := familyOf(family); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return nil, fmt.Errorf("nftproxy: the nft command was not found (%w); install nftables 1.0.1 or newer (Debian: apt install nftables)", err)
	}
	nft, err := knftables.New(family, TableName)
	if err != nil {
		var ee *exec.ExitError
		hint := "fjord needs nft 1.0.1 or newer, the nf_tables kernel module, and root or CAP_NET_ADMIN"
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return nil, fmt.Errorf("nftproxy: nftables is not usable: %w: %s (%s)", err, ee.Stderr, hint)
		}
		return nil, fmt.Errorf("nftproxy: nftables is not usable: %w (%s)", err, hint)
	}
	return nft, nil
}
