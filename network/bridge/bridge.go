// Package bridge makes the links of bridge networks with netlink: the host
// bridges, and for each container a veth pair with one end on a bridge and
// the other, configured, in the container's network namespace.
//
// A container's end lives in its namespace, so when the container's last
// process ends the kernel deletes the pair: a container that dies, even
// with the daemon down, leaves no veth behind.
package bridge

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Ensure makes the bridge name (or adopts the one there), gives it addrs
// (the networks' gateways, with their prefix lengths) and mtu (0: the
// kernel's), lets connections from the host's loopback reach published
// ports through it (route_localnet), and sets it up.
func Ensure(name string, mtu int, addrs []netip.Prefix) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		if !isNotFound(err) {
			return fmt.Errorf("find bridge %s: %w", name, err)
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		if mtu > 0 {
			attrs.MTU = mtu
		}
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create bridge %s: %w", name, err)
		}
		if l, err = netlink.LinkByName(name); err != nil {
			return fmt.Errorf("find bridge %s: %w", name, err)
		}
	} else if l.Type() != "bridge" {
		return fmt.Errorf("%s is a %s link, not a bridge", name, l.Type())
	}
	if mtu > 0 && l.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("set mtu %d on %s: %w", mtu, name, err)
		}
	}
	for _, a := range addrs {
		if a.Addr().Is6() {
			if err := sysctl(filepath.Join("ipv6/conf", name, "disable_ipv6"), "0"); err != nil {
				return err
			}
		}
		na := &netlink.Addr{IPNet: ipNet(a)}
		if a.Addr().Is6() {
			na.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(l, na); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add address %s to %s: %w", a, name, err)
		}
	}
	if err := sysctl(filepath.Join("ipv4/conf", name, "route_localnet"), "1"); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// Delete removes the link name; a missing one is not an error.
func Delete(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// Exists says whether the host has a link name.
func Exists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// EnableForwarding turns on routing between interfaces for the families
// the host's networks use (docker does the same).
func EnableForwarding(ipv6 bool) error {
	if err := sysctlOn("ipv4/ip_forward"); err != nil {
		return err
	}
	if ipv6 {
		return sysctlOn("ipv6/conf/all/forwarding")
	}
	return nil
}

func sysctlOn(key string) error {
	b, err := os.ReadFile(filepath.Join("/proc/sys/net", key))
	if err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	return sysctl(key, "1")
}

func sysctl(key, value string) error {
	if err := os.WriteFile(filepath.Join("/proc/sys/net", key), []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl net/%s=%s: %w", key, value, err)
	}
	return nil
}

// Routes returns the destinations of the host's routes and the subnets of
// its addresses, but not default routes: a new network's subnet must not
// overlap any of them.
func Routes() ([]netip.Prefix, error) {
	rs, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var out []netip.Prefix
	for _, r := range rs {
		if r.Dst == nil {
			continue
		}
		if p, ok := prefixOf(r.Dst); ok && p.Bits() > 0 {
			out = append(out, p)
		}
	}
	as, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range as {
		if p, ok := prefixOf(a.IPNet); ok {
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

// Endpoint is one container's link to a bridge.
type Endpoint struct {
	Bridge string // the bridge the host end joins
	// HostName is the host end's name; empty makes one up (veth + 7 hex).
	HostName string
	IfName   string // the name inside the container (eth0, ...)
	MAC      net.HardwareAddr
	MTU      int
	Addrs    []netip.Prefix // the container's addresses, with prefix lengths
	// Gateways get default routes (none on an internal network, or on a
	// container's second network).
	Gateways []netip.Addr
}

// Namespace is a handle on a container's network namespace.
type Namespace struct {
	fd netns.NsHandle
	h  *netlink.Handle
}

// OpenNamespace opens the network namespace at path (/proc/<pid>/ns/net).
func OpenNamespace(path string) (*Namespace, error) {
	fd, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	h, err := netlink.NewHandleAt(fd)
	if err != nil {
		fd.Close()
		return nil, fmt.Errorf("netlink in namespace %s: %w", path, err)
	}
	return &Namespace{fd: fd, h: h}, nil
}

// Close releases the handle; the namespace lives on with its processes.
func (n *Namespace) Close() {
	n.h.Close()
	n.fd.Close()
}

// LoopbackUp sets the namespace's lo up (a new namespace has it down).
func (n *Namespace) LoopbackUp() error {
	lo, err := n.h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := n.h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// Attach makes ep's veth pair, its host end on the bridge and up, the
// other in the namespace with ep's name, MAC, MTU, addresses and routes.
// It returns the host end's name. On error nothing is left.
func (n *Namespace) Attach(ep Endpoint) (string, error) {
	br, err := netlink.LinkByName(ep.Bridge)
	if err != nil {
		return "", fmt.Errorf("find bridge %s: %w", ep.Bridge, err)
	}
	mtu := ep.MTU
	if mtu <= 0 {
		mtu = br.Attrs().MTU
	}
	host := ep.HostName
	var veth *netlink.Veth
	for try := 0; ; try++ {
		if ep.HostName == "" {
			host = "veth" + randomHex(4)[:7]
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU, attrs.MasterIndex = host, mtu, br.Attrs().Index
		veth = &netlink.Veth{LinkAttrs: attrs, PeerName: ep.IfName, PeerHardwareAddr: ep.MAC,
			PeerNamespace: netlink.NsFd(int(n.fd)), PeerMTU: uint32(mtu)}
		err = netlink.LinkAdd(veth)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) || ep.HostName != "" || try > 3 {
			return "", fmt.Errorf("create veth pair %s/%s: %w", host, ep.IfName, err)
		}
	}
	ok := false
	defer func() {
		if !ok {
			_ = netlink.LinkDel(veth)
		}
	}()
	if err := netlink.LinkSetUp(veth); err != nil {
		return "", fmt.Errorf("set %s up: %w", host, err)
	}
	in, err := n.h.LinkByName(ep.IfName)
	if err != nil {
		return "", fmt.Errorf("find %s in the container: %w", ep.IfName, err)
	}
	for _, a := range ep.Addrs {
		na := &netlink.Addr{IPNet: ipNet(a)}
		if a.Addr().Is6() {
			na.Flags = unix.IFA_F_NODAD // usable at once, not after DAD's second
		}
		if err := n.h.AddrAdd(in, na); err != nil {
			return "", fmt.Errorf("add address %s to %s: %w", a, ep.IfName, err)
		}
	}
	if err := n.h.LinkSetUp(in); err != nil {
		return "", fmt.Errorf("set %s up: %w", ep.IfName, err)
	}
	for _, gw := range ep.Gateways {
		r := &netlink.Route{LinkIndex: in.Attrs().Index, Gw: gw.AsSlice()}
		if err := n.h.RouteAdd(r); err != nil {
			return "", fmt.Errorf("add default route via %s: %w", gw, err)
		}
	}
	ok = true
	return host, nil
}

// SetHairpin lets frames out of the bridge port name back through it: a
// container reaching its own published port through a host address when
// br_netfilter is loaded (docker loads it) has its DNAT'ed packets
// bridged back out of the port they came in by.
func SetHairpin(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := netlink.LinkSetHairpin(l, true); err != nil {
		return fmt.Errorf("hairpin mode on %s: %w", name, err)
	}
	return nil
}

// Detach deletes the link ifName inside the namespace (its pair with it).
func (n *Namespace) Detach(ifName string) error {
	l, err := n.h.LinkByName(ifName)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("find %s in the container: %w", ifName, err)
	}
	if err := n.h.LinkDel(l); err != nil {
		return fmt.Errorf("delete %s in the container: %w", ifName, err)
	}
	return nil
}

// Links lists the names of the namespace's links other than lo.
func (n *Namespace) Links() ([]string, error) {
	ls, err := n.h.LinkList()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range ls {
		if l.Attrs().Name != "lo" {
			out = append(out, l.Attrs().Name)
		}
	}
	return out, nil
}

// RandomMAC returns a locally administered unicast MAC address.
func RandomMAC() net.HardwareAddr {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	b[0] = b[0]&^1 | 2
	return b
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}
