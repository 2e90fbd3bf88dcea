package ipam_test

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/fjord-net/fjord/internal/ipam"
	"github.com/fjord-net/fjord/internal/ipam/ipamfake"
)

func owner(i int) ipam.Owner { return ipam.Owner{ContainerID: fmt.Sprintf("c%d", i), IfName: "eth0"} }

func TestAllocateRoundRobinAndReuse(t *testing.T) {
	p := mustPool(t, "10.0.0.0/29", "10.0.0.1")
	s := ipamfake.New()
	want := []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"}
	for i, w := range want {
		ip, fresh, err := ipam.Allocate(s, p, owner(i))
		if err != nil || !fresh || ip.String() != w {
			t.Fatalf("Allocate(%d) = %v %v %v, want %s fresh", i, ip, fresh, err, w)
		}
	}
	// Same owner again: same address, not fresh.
	ip, fresh, err := ipam.Allocate(s, p, owner(1))
	if err != nil || fresh || ip.String() != "10.0.0.3" {
		t.Fatalf("re-Allocate = %v %v %v, want 10.0.0.3 reused", ip, fresh, err)
	}
	// Release .2, then the next allocation continues after the last reserved (.4),
	// not at the freed .2.
	if freed, err := ipam.Release(s, owner(0)); err != nil || len(freed) != 1 {
		t.Fatalf("Release = %v %v", freed, err)
	}
	ip, _, _ = ipam.Allocate(s, p, owner(7))
	if ip.String() != "10.0.0.5" {
		t.Fatalf("round robin: got %v, want 10.0.0.5", ip)
	}
	// Release of an unknown owner is fine.
	if freed, err := ipam.Release(s, owner(99)); err != nil || len(freed) != 0 {
		t.Fatalf("Release(unknown) = %v %v", freed, err)
	}
}

func TestAllocateExhaustion(t *testing.T) {
	p := mustPool(t, "10.0.0.0/29", "10.0.0.1") // 5 usable
	s := ipamfake.New()
	for i := range 5 {
		if _, _, err := ipam.Allocate(s, p, owner(i)); err != nil {
			t.Fatalf("Allocate(%d): %v", i, err)
		}
	}
	if _, _, err := ipam.Allocate(s, p, owner(5)); !errors.Is(err, ipam.ErrExhausted) {
		t.Fatalf("6th Allocate err = %v, want ErrExhausted", err)
	}
	ipam.Release(s, owner(2))
	ip, _, err := ipam.Allocate(s, p, owner(5))
	if err != nil || ip.String() != "10.0.0.4" {
		t.Fatalf("after release got %v %v, want 10.0.0.4", ip, err)
	}
}

func TestAllocateAfterCIDRChange(t *testing.T) {
	oldIP := netip.MustParseAddr("10.1.0.7")
	other := netip.MustParseAddr("10.1.0.9")
	s := ipamfake.New(
		ipam.Allocation{IP: oldIP, Owner: owner(1)},
		ipam.Allocation{IP: other, Owner: owner(2)},
	)
	s.SetLastReserved(oldIP)
	p := mustPool(t, "10.2.0.0/24", "10.2.0.1")
	ip, fresh, err := ipam.Allocate(s, p, owner(1))
	if err != nil || !fresh || ip.String() != "10.2.0.2" {
		t.Fatalf("Allocate = %v %v %v, want fresh 10.2.0.2", ip, fresh, err)
	}
	snap := s.Snapshot()
	if _, ok := snap[oldIP]; ok {
		t.Error("owner's allocation outside the new CIDR was not released")
	}
	if _, ok := snap[other]; !ok {
		t.Error("another owner's allocation was touched by Allocate (GC's job)")
	}
	if _, ok, _ := ipam.Lookup(s, p, owner(2)); ok {
		t.Error("Lookup returned an allocation outside the pool")
	}
	// GC with a pool-aware keep drops the stale one even though its owner is valid.
	freed, err := ipam.GC(s, func(a ipam.Allocation) bool { return p.Usable(a.IP) })
	if err != nil || len(freed) != 1 || freed[0] != other {
		t.Fatalf("GC freed %v %v, want [%v]", freed, err, other)
	}
}

func TestGCKeepsValid(t *testing.T) {
	p := mustPool(t, "10.0.0.0/24", "10.0.0.1")
	s := ipamfake.New()
	for i := range 4 {
		ipam.Allocate(s, p, owner(i))
	}
	valid := map[ipam.Owner]bool{owner(1): true, owner(3): true}
	freed, err := ipam.GC(s, func(a ipam.Allocation) bool { return valid[a.Owner] })
	if err != nil || len(freed) != 2 {
		t.Fatalf("GC = %v %v, want 2 freed", freed, err)
	}
	for o := range valid {
		if _, ok, _ := ipam.Lookup(s, p, o); !ok {
			t.Errorf("GC released valid %v", o)
		}
	}
}

func TestAllocateStoreError(t *testing.T) {
	p := mustPool(t, "10.0.0.0/24", "10.0.0.1")
	s := ipamfake.New()
	s.FailReserve = errors.New("disk full")
	if _, _, err := ipam.Allocate(s, p, owner(0)); err == nil {
		t.Fatal("want the store's error")
	}
	if len(s.Snapshot()) != 0 {
		t.Fatal("failed Allocate left an allocation")
	}
}
