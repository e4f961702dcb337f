package ipam

import (
	"net/netip"
	"slices"
	"sync"
	"testing"

	"berth.dev/berth/errdefs"
)

func TestPoolInTurn(t *testing.T) {
	p, err := NewPool(netip.MustParsePrefix("10.9.0.0/29"), netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Reserve(FirstHost(p.Subnet())); err != nil { // the gateway
		t.Fatal(err)
	}
	var got []string
	for i := 0; i < 5; i++ {
		a, err := p.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.String())
	}
	want := []string{"10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"}
	if !slices.Equal(got, want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	if _, err := p.Allocate(); !errdefs.Is(err, errdefs.KindUnavailable) {
		t.Fatalf("full pool: %v, want unavailable", err)
	}
	p.Release(netip.MustParseAddr("10.9.0.3"))
	p.Release(netip.MustParseAddr("10.9.0.5"))
	// In turn from after the last given (10.9.0.6): .3 before .5.
	for _, w := range []string{"10.9.0.3", "10.9.0.5"} {
		if a, err := p.Allocate(); err != nil || a.String() != w {
			t.Fatalf("after release: %v %v, want %s", a, err, w)
		}
	}
}

func TestPoolRangeAndReserve(t *testing.T) {
	p, err := NewPool(netip.MustParsePrefix("10.9.0.0/24"), netip.MustParsePrefix("10.9.0.128/30"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"10.9.0.128", "10.9.0.129", "10.9.0.130", "10.9.0.131"} {
		if a, err := p.Allocate(); err != nil || a.String() != w {
			t.Fatalf("allocate: %v %v, want %s", a, err, w)
		}
	}
	if err := p.Reserve(netip.MustParseAddr("10.9.0.7")); err != nil { // outside the range, inside the subnet
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr string
		kind errdefs.Kind
	}{
		{"10.9.0.7", errdefs.KindConflict},
		{"10.9.1.7", errdefs.KindInvalid},
		{"10.9.0.0", errdefs.KindInvalid},
		{"10.9.0.255", errdefs.KindInvalid},
	} {
		if err := p.Reserve(netip.MustParseAddr(c.addr)); !errdefs.Is(err, c.kind) {
			t.Errorf("reserve %s: %v, want kind %v", c.addr, err, c.kind)
		}
	}
	for _, bad := range []string{"10.8.0.0/24", "10.9.0.0/16", "fd00::/120"} {
		if _, err := NewPool(netip.MustParsePrefix("10.9.0.0/24"), netip.MustParsePrefix(bad)); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("range %s: %v, want invalid", bad, err)
		}
	}
}

func TestPoolIPv6Concurrent(t *testing.T) {
	p, err := NewPool(netip.MustParsePrefix("fd00:b::/64"), netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[netip.Addr]bool{}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := p.Allocate()
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[a] {
				t.Errorf("%s given twice", a)
			}
			seen[a] = true
		}()
	}
	wg.Wait()
	if len(seen) != 50 || p.InUse() != 50 || seen[netip.MustParseAddr("fd00:b::")] {
		t.Fatalf("got %d addresses (%d in use), want 50 without the subnet's anycast address", len(seen), p.InUse())
	}
}

func TestPickSubnet(t *testing.T) {
	avoid := []netip.Prefix{netip.MustParsePrefix("172.17.0.1/32"), netip.MustParsePrefix("172.16.0.0/12")}
	if _, err := PickSubnet(DefaultPools()[:15], avoid); !errdefs.Is(err, errdefs.KindUnavailable) {
		t.Fatalf("all 172 pools overlap 172.16/12: %v", err)
	}
	got, err := PickSubnet(DefaultPools(), append(avoid, netip.MustParsePrefix("192.168.1.0/24")))
	if err != nil || got.String() != "192.168.16.0/20" {
		t.Fatalf("picked %v %v, want 192.168.16.0/20", got, err)
	}
	if got, _ := PickSubnet(DefaultPools(), nil); got.String() != "172.17.0.0/16" {
		t.Fatalf("picked %v with nothing to avoid", got)
	}
}
