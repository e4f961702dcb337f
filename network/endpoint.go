package network

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/network/bridge"
	"berth.dev/berth/network/firewall"
	"berth.dev/berth/network/ipam"
	nettypes "github.com/moby/moby/api/types/network"
)

// JoinRequest is what a container asks of a network it joins.
type JoinRequest struct {
	Container string // its ID
	Name      string // its name, without docker's slash
	IfName    string // the link's name inside (eth0, ...)
	Aliases   []string
	// IPv4 and IPv6 are static addresses asked for (--ip, --ip6).
	IPv4, IPv6 netip.Addr
	MAC        nettypes.HardwareAddr
	// Gateway routes the container's default traffic through this
	// network (its first).
	Gateway bool
	// Ports are published on this network's addresses.
	Ports     nettypes.PortMap
	Upstreams []string
	// LinkTo are the containers legacy links let this one reach on a
	// network without ICC.
	LinkTo []LinkTarget
}

// LinkTarget is a linked container's address and exposed ports.
type LinkTarget struct {
	IP    netip.Addr
	Ports []nettypes.Port
}

// Join attaches a container, whose network namespace ns is, to a bridge
// network: addresses, the veth pair, published ports. It returns the
// endpoint and the ports as published (host ports chosen). On error
// nothing is left.
func (m *Manager) Join(ns *bridge.Namespace, netID string, req JoinRequest) (*Endpoint, nettypes.PortMap, error) {
	m.mu.Lock()
	n := m.nets[netID]
	m.mu.Unlock()
	if n == nil {
		return nil, nil, errdefs.NotFound("network %s not found", netID)
	}
	if n.Driver != DriverBridge {
		return nil, nil, errdefs.Invalid("network %s has no endpoints (driver %s)", n.Name, n.Driver)
	}
	if n.pool4 == nil && n.pool6 == nil {
		return nil, nil, errdefs.Unavailable("network %s is not set up (see the daemon's log)", n.Name)
	}
	ep := &Endpoint{ID: randomID(), Container: req.Container, Name: req.Name, Aliases: slices.Clone(req.Aliases),
		IfName: req.IfName, MAC: req.MAC, Upstreams: req.Upstreams}
	if len(ep.MAC) == 0 {
		ep.MAC = nettypes.HardwareAddr(bridge.RandomMAC())
	}
	if err := n.allocate(ep, req); err != nil {
		return nil, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			n.release(ep)
		}
	}()
	ports, published, err := m.publish(ep, req.Ports)
	if err != nil {
		return nil, nil, err
	}
	ep.Ports = ports
	if ep.IPv4.IsValid() {
		for _, t := range req.LinkTo {
			for _, p := range t.Ports {
				ep.Links = append(ep.Links, firewall.Link{From: ep.IPv4.Addr(), To: t.IP, Proto: string(p.Proto()), Port: p.Num()})
			}
		}
	}
	defer func() {
		if !ok {
			m.unpublish(ep)
		}
	}()
	var addrs []netip.Prefix
	var gws []netip.Addr
	for _, a := range []netip.Prefix{ep.IPv4, ep.IPv6} {
		if a.IsValid() {
			addrs = append(addrs, a)
		}
	}
	if req.Gateway && !n.Internal {
		for _, g := range []netip.Prefix{n.gw4, n.gw6} {
			if g.IsValid() {
				gws = append(gws, g.Addr())
			}
		}
	}
	mtu, _ := strconv.Atoi(n.Options[OptMTU])
	host, err := ns.Attach(bridge.Endpoint{Bridge: n.BridgeName, IfName: req.IfName, MAC: net.HardwareAddr(ep.MAC),
		MTU: mtu, Addrs: addrs, Gateways: gws})
	if err != nil {
		return nil, nil, fmt.Errorf("network %s: %w", n.Name, err)
	}
	ep.HostIf = host
	if len(ep.Ports) > 0 && m.fw != nil {
		if err := bridge.SetHairpin(host); err != nil {
			_ = bridge.Delete(host)
			return nil, nil, err
		}
	}
	if (len(ep.Ports) > 0 || len(ep.Links) > 0) && m.fw != nil {
		if err := m.fw.SetEndpoint(n.BridgeName, ep.Container, ep.Ports, ep.Links); err != nil {
			_ = bridge.Delete(host)
			return nil, nil, fmt.Errorf("publish ports: %w", err)
		}
	}
	n.mu.Lock()
	n.eps[ep.Container] = ep
	n.mu.Unlock()
	ok = true
	return ep, published, nil
}

// allocate gives ep its addresses: the static ones asked for, else free
// ones, of each family the network has.
func (n *nw) allocate(ep *Endpoint, req JoinRequest) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, dup := n.eps[req.Container]; dup {
		return errdefs.Forbidden("endpoint with name %s already exists in network %s", req.Name, n.Name)
	}
	var err error
	if ep.IPv4, err = n.take(n.pool4, n.gw4, req.IPv4); err == nil {
		ep.IPv6, err = n.take(n.pool6, n.gw6, req.IPv6)
	}
	if err != nil {
		n.releaseLocked(ep)
	}
	return err
}

// take reserves want from pool, or allocates a free address when want is
// zero; with the gateway's prefix length.
func (n *nw) take(pool *ipam.Pool, gw netip.Prefix, want netip.Addr) (netip.Prefix, error) {
	if pool == nil {
		if want.IsValid() {
			return netip.Prefix{}, errdefs.Invalid("invalid address %s: network %s has no subnet of its family", want, n.Name)
		}
		return netip.Prefix{}, nil
	}
	if !want.IsValid() {
		a, err := pool.Allocate()
		return netip.PrefixFrom(a, gw.Bits()), err
	}
	if n.isDefault() {
		return netip.Prefix{}, errdefs.Invalid("user specified IP address is supported on user defined networks only")
	}
	if err := pool.Reserve(want); err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(want, gw.Bits()), nil
}

func (n *nw) release(ep *Endpoint) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.releaseLocked(ep)
}

func (n *nw) releaseLocked(ep *Endpoint) {
	if ep.IPv4.IsValid() && n.pool4 != nil {
		n.pool4.Release(ep.IPv4.Addr())
	}
	if ep.IPv6.IsValid() && n.pool6 != nil {
		n.pool6.Release(ep.IPv6.Addr())
	}
}

// Leave undoes a container's Join (or Restore): its rules, addresses and
// host ports, and with deleteLink its veth pair (disconnecting a running
// container). A container that has exited needs no deleteLink: its pair
// goes with its namespace, when the kernel gets to it, not on the
// caller's time (deleting a veth waits for an RCU grace period, ~10 ms
// here). Leaving a network not joined does nothing.
func (m *Manager) Leave(netID, containerID string, deleteLink bool) {
	m.mu.Lock()
	n := m.nets[netID]
	m.mu.Unlock()
	if n == nil {
		return
	}
	n.mu.Lock()
	ep := n.eps[containerID]
	delete(n.eps, containerID)
	if ep != nil {
		n.releaseLocked(ep)
	}
	n.mu.Unlock()
	if ep == nil {
		return
	}
	if (len(ep.Ports) > 0 || len(ep.Links) > 0) && m.fw != nil {
		if err := m.fw.RemoveEndpoint(n.BridgeName, containerID); err != nil {
			m.log.Warn("remove published ports", "container", containerID, "network", n.Name, "error", err)
		}
	}
	m.unpublish(ep)
	if deleteLink {
		if err := bridge.Delete(ep.HostIf); err != nil {
			m.log.Warn("remove veth", "link", ep.HostIf, "error", err)
		}
	}
}

// Restore takes back the endpoint of a container that ran on while the
// daemon was down: its addresses, host ports and rules (Open cleared the
// network's rules).
func (m *Manager) Restore(netID string, ep *Endpoint) error {
	m.mu.Lock()
	n := m.nets[netID]
	m.mu.Unlock()
	if n == nil {
		return errdefs.NotFound("network %s not found", netID)
	}
	n.mu.Lock()
	for _, a := range []netip.Prefix{ep.IPv4, ep.IPv6} {
		pool := n.pool4
		if a.Addr().Is6() {
			pool = n.pool6
		}
		if a.IsValid() && pool != nil {
			if err := pool.Reserve(a.Addr()); err != nil {
				m.log.Warn("restore address", "container", ep.Container, "address", a, "error", err)
			}
		}
	}
	n.eps[ep.Container] = ep
	n.mu.Unlock()
	m.mu.Lock()
	for _, p := range ep.Ports {
		m.ports[keyOf(p)] = ep.Container
	}
	m.mu.Unlock()
	if (len(ep.Ports) > 0 || len(ep.Links) > 0) && m.fw != nil {
		return m.fw.SetEndpoint(n.BridgeName, ep.Container, ep.Ports, ep.Links)
	}
	return nil
}

// publish chooses host ports for a container's port bindings and returns
// the kernel's rules for them and the bindings as published.
func (m *Manager) publish(ep *Endpoint, want nettypes.PortMap) ([]firewall.Port, nettypes.PortMap, error) {
	if len(want) == 0 {
		return nil, nil, nil
	}
	if m.fw == nil {
		// berth publishes in the kernel only, no proxy: say so rather
		// than publish nothing.
		return nil, nil, errdefs.Unavailable("cannot publish ports: the daemon has no packet rules (--iptables=false, or nftables unusable: see its log)")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := nettypes.PortMap{}
	var rules []firewall.Port
	fail := func(err error) ([]firewall.Port, nettypes.PortMap, error) {
		for _, r := range rules {
			delete(m.ports, keyOf(r))
		}
		return nil, nil, err
	}
	keys := make([]nettypes.Port, 0, len(want))
	for p := range want {
		keys = append(keys, p)
	}
	slices.SortFunc(keys, func(a, b nettypes.Port) int { return strings.Compare(a.String(), b.String()) })
	for _, cport := range keys {
		proto := string(cport.Proto())
		if proto != "tcp" && proto != "udp" {
			return fail(errdefs.Invalid("cannot publish %s: berth publishes tcp and udp ports", cport))
		}
		for _, b := range want[cport] {
			var fams []netip.Addr // host addresses, one per family published
			switch {
			case !b.HostIP.IsValid():
				if ep.IPv4.IsValid() {
					fams = append(fams, netip.IPv4Unspecified())
				}
				if ep.IPv6.IsValid() {
					fams = append(fams, netip.IPv6Unspecified())
				}
			case b.HostIP.Unmap().Is4() && !ep.IPv4.IsValid(), b.HostIP.Is6() && !b.HostIP.Is4In6() && !ep.IPv6.IsValid():
				return fail(errdefs.Invalid("cannot publish %s on %s: the container has no address of its family", cport, b.HostIP))
			default:
				fams = append(fams, b.HostIP.Unmap())
			}
			lo, hi, err := hostPortRange(b.HostPort)
			if err != nil {
				return fail(err)
			}
			chosen := uint16(0)
			for _, hip := range fams {
				port := chosen
				if port == 0 {
					if port, err = m.freePort(proto, hip, lo, hi); err != nil {
						return fail(err)
					}
					chosen = port
				} else if err := m.portFree(proto, hip, port); err != nil {
					return fail(err)
				}
				cip := ep.IPv4.Addr()
				if hip.Is6() {
					cip = ep.IPv6.Addr()
				}
				r := firewall.Port{Proto: proto, HostPort: port, IP: cip, Port: cport.Num()}
				if !hip.IsUnspecified() {
					r.HostIP = hip
				}
				m.ports[keyOf(r)] = ep.Container
				rules = append(rules, r)
				out[cport] = append(out[cport], nettypes.PortBinding{HostIP: hip, HostPort: strconv.Itoa(int(port))})
			}
		}
	}
	return rules, out, nil
}

func (m *Manager) unpublish(ep *Endpoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range ep.Ports {
		k := keyOf(r)
		if m.ports[k] == ep.Container {
			delete(m.ports, k)
		}
	}
}

// hostPortRange parses a binding's HostPort: empty or 0 for any
// ephemeral port, N, or N-M.
func hostPortRange(s string) (lo, hi uint16, err error) {
	if s == "" || s == "0" {
		return 0, 0, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	l, err1 := strconv.ParseUint(a, 10, 16)
	h := l
	var err2 error
	if isRange {
		h, err2 = strconv.ParseUint(b, 10, 16)
	}
	if err1 != nil || err2 != nil || l == 0 || h < l {
		return 0, 0, errdefs.Invalid("invalid host port %q", s)
	}
	return uint16(l), uint16(h), nil
}

// freePort finds a host port in [lo, hi] (0, 0: the kernel's ephemeral
// range, from a random start) that berth has not published and no host
// process holds.
func (m *Manager) freePort(proto string, ip netip.Addr, lo, hi uint16) (uint16, error) {
	if lo == 0 {
		lo, hi = ephemeralRange()
		n := uint32(hi-lo) + 1
		var b [4]byte
		_, _ = rand.Read(b[:])
		start := lo + uint16(binary.LittleEndian.Uint32(b[:])%n)
		for i := uint32(0); i < n; i++ {
			p := lo + uint16((uint32(start-lo)+i)%n)
			if m.portFree(proto, ip, p) == nil {
				return p, nil
			}
		}
		return 0, errdefs.Unavailable("no free host port for %s on %s", proto, ip)
	}
	var last error
	for p := uint32(lo); p <= uint32(hi); p++ {
		if last = m.portFree(proto, ip, uint16(p)); last == nil {
			return uint16(p), nil
		}
	}
	return 0, last
}

// keyOf is the host side of a published port: its address (0.0.0.0 or
// :: for all of a family), protocol and port.
func keyOf(p firewall.Port) portKey {
	ip := p.HostIP
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
		if p.IP.Is6() {
			ip = netip.IPv6Unspecified()
		}
	}
	return portKey{p.Proto, ip, p.HostPort}
}

// portFree says why a host port cannot be published: berth has it (on
// that address, or one of them is all the family's), or a host process
// does.
func (m *Manager) portFree(proto string, ip netip.Addr, port uint16) error {
	for k := range m.ports {
		if k.proto == proto && k.port == port && k.ip.Is4() == ip.Is4() &&
			(k.ip == ip || k.ip.IsUnspecified() || ip.IsUnspecified()) {
			return errdefs.Conflict("Bind for %s failed: port is already allocated", netip.AddrPortFrom(ip, port))
		}
	}
	// A host process listening there would never see its connections
	// again: refuse, as docker does.
	addr := netip.AddrPortFrom(ip, port).String()
	var err error
	if proto == "udp" {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp", addr); err == nil {
			c.Close()
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			l.Close()
		}
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return errdefs.Conflict("failed to bind host port %s/%s: address already in use", addr, proto)
	}
	return nil
}

func ephemeralRange() (uint16, uint16) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, e1 := strconv.ParseUint(f[0], 10, 16)
			hi, e2 := strconv.ParseUint(f[1], 10, 16)
			if e1 == nil && e2 == nil && lo > 0 && hi >= lo {
				return uint16(lo), uint16(hi)
			}
		}
	}
	return 32768, 60999
}
