// Package ipam hands out the addresses of a network's subnets and picks
// subnets for new networks that clash with nothing the host routes.
//
// A Pool is memory only: the daemon rebuilds it at start from the
// addresses its running containers hold (their records are the
// persistence), so an address held by a container that died while the
// daemon was down is free again without any cleanup.
package ipam

import (
	"net/netip"
	"sync"

	"berth.dev/berth/errdefs"
)

// Pool hands out the addresses of one subnet, or of the range within it
// that --ip-range names. Addresses are given in turn from after the last
// one given, as docker does, so an address just released is not handed
// out again at once (a peer's ARP or conntrack entry may still name it).
type Pool struct {
	mu     sync.Mutex
	subnet netip.Prefix
	rng    netip.Prefix
	used   map[netip.Addr]bool
	last   netip.Addr
}

// NewPool returns a pool for subnet; ipRange, when valid, must lie within
// subnet and limits what Allocate gives (Reserve takes any address of the
// subnet).
func NewPool(subnet, ipRange netip.Prefix) (*Pool, error) {
	subnet = subnet.Masked()
	if !subnet.IsValid() {
		return nil, errdefs.Invalid("invalid subnet %s", subnet)
	}
	rng := subnet
	if ipRange.IsValid() {
		ipRange = ipRange.Masked()
		if ipRange.Addr().Is4() != subnet.Addr().Is4() || ipRange.Bits() < subnet.Bits() || !subnet.Contains(ipRange.Addr()) {
			return nil, errdefs.Invalid("invalid ip-range %s: it must be within subnet %s", ipRange, subnet)
		}
		rng = ipRange
	}
	if bits := subnet.Addr().BitLen() - subnet.Bits(); subnet.Addr().Is4() && bits < 2 {
		return nil, errdefs.Invalid("subnet %s is too small: it has no address for containers", subnet)
	}
	return &Pool{subnet: subnet, rng: rng, used: map[netip.Addr]bool{}}, nil
}

// Subnet is the pool's subnet.
func (p *Pool) Subnet() netip.Prefix { return p.subnet }

// usable says whether a may be handed out at all: IPv4's network and
// broadcast addresses may not; IPv6's subnet-router anycast address (all
// zeros) may not either.
func (p *Pool) usable(a netip.Addr) bool {
	if a == p.subnet.Addr() {
		return false
	}
	if a.Is4() && a == lastAddr(p.subnet) {
		return false
	}
	return true
}

// Allocate hands out a free address of the range.
func (p *Pool) Allocate() (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := p.rng.Addr()
	if p.last.IsValid() {
		start = p.next(p.last)
	}
	for a := start; ; {
		if !p.used[a] && p.usable(a) {
			p.used[a] = true
			p.last = a
			return a, nil
		}
		if a = p.next(a); a == start {
			family := "IPv4"
			if a.Is6() {
				family = "IPv6"
			}
			return netip.Addr{}, errdefs.Unavailable("no available %s addresses on this network's address pools: %s", family, p.rng)
		}
	}
}

// next is the address after a in the range, wrapping round.
func (p *Pool) next(a netip.Addr) netip.Addr {
	if a = a.Next(); !a.IsValid() || !p.rng.Contains(a) {
		return p.rng.Addr()
	}
	return a
}

// Reserve takes a given address (a static --ip, the gateway, or one a
// running container held when the daemon restarted).
func (p *Pool) Reserve(a netip.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.subnet.Contains(a) {
		return errdefs.Invalid("invalid address %s: it does not belong to subnet %s", a, p.subnet)
	}
	if !p.usable(a) {
		return errdefs.Invalid("invalid address %s: it is the network or broadcast address of subnet %s", a, p.subnet)
	}
	if p.used[a] {
		return errdefs.Conflict("Address already in use: %s", a)
	}
	p.used[a] = true
	return nil
}

// Release gives an address back; one not held is ignored.
func (p *Pool) Release(a netip.Addr) {
	p.mu.Lock()
	delete(p.used, a)
	p.mu.Unlock()
}

// InUse is the number of addresses held.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}

// FirstHost is the subnet's first address after the network address: the
// default gateway.
func FirstHost(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr().Next() }

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// DefaultPools are where subnets for networks come from when none is
// given, docker's defaults: 172.17-31.0.0/16, then 192.168.0-240.0/20.
func DefaultPools() []netip.Prefix {
	var ps []netip.Prefix
	for i := 17; i <= 31; i++ {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i <= 240; i += 16 {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	return ps
}

// PickSubnet returns the first of candidates that overlaps none of avoid
// (the host's routes and addresses, and other networks' subnets).
func PickSubnet(candidates, avoid []netip.Prefix) (netip.Prefix, error) {
next:
	for _, c := range candidates {
		for _, a := range avoid {
			if c.Overlaps(a) {
				continue next
			}
		}
		return c, nil
	}
	return netip.Prefix{}, errdefs.Unavailable("all predefined address pools have been fully subnetted")
}
