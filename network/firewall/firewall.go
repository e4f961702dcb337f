// Package firewall puts berth's packet rules in the kernel with nftables.
// Each bridge network has its own tables, named for its bridge
// ("berth-<bridge>"), so networks and daemons never touch each other's
// rules and a network's rules go with one delete.
//
// A network has two tables:
//
//   - inet berth-<bridge>: NAT (masquerade, published ports, the DNS
//     redirect) and the forward filter that isolates the bridge from
//     everything else, for IPv4 and IPv6 alike;
//   - bridge berth-<bridge>: the filter of frames between two ports of the
//     bridge (inter-container traffic, ICC), which is switched at layer 2
//     and never reaches the inet hooks without br_netfilter. berth does
//     not load br_netfilter nor change its sysctls (that would change
//     every bridge of the host), but works with it on too, as on hosts
//     where it is built in: then switched frames also pass the inet
//     hooks, and the inet rules treat them as the bridge table does.
//
// An endpoint's rules (its published ports and links) are in chains of
// its own ("ports-<id>", "links-<id>"), which packets reach through
// verdict maps keyed by host port ("nat-*") and by container address
// ("src4", "dst6", ...): one lookup per packet however many endpoints
// there are. Each rule's comment names the map element that leads to it,
// so SetEndpoint and RemoveEndpoint read only the endpoint's own chains
// and change its chains and elements in one atomic batch, at a cost that
// does not grow with the number of endpoints; SetNetwork rewrites the
// network-wide rules and keeps the maps' elements.
//
// Rules of other programs: nftables evaluates every table's base chain on
// a hook and a drop in any of them is final, so our accepts do not override
// another table's drop. If another program (dockerd through iptables-nft,
// for example) set the "ip filter FORWARD" policy to drop, forwarded
// container traffic is dropped there; berth leaves other tables alone.
package firewall

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"berth.dev/berth/errdefs"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Network is what one bridge network asks of the firewall.
type Network struct {
	Bridge  string         // the bridge's interface name
	Subnets []netip.Prefix // IPv4 and IPv6 subnets of the network
	// Masquerade NATs traffic from the subnets that leaves the host by
	// another interface (docker's ip-masq).
	Masquerade bool
	// ICC allows containers on this bridge to talk to each other; when
	// false only the pairs of SetEndpoint's links may (on their ports).
	ICC bool
	// Internal networks have no traffic in or out of the subnets except
	// with the bridge's own addresses (the gateway, where DNS answers).
	Internal bool
	// DNSPort, when not 0, is the port the network's DNS server listens
	// on at the gateway: queries to the gateway's port 53 (udp and tcp)
	// from the bridge are redirected to it.
	DNSPort uint16
}

// Port is one published port. A host port (with its HostIP, or with
// none) is one endpoint's on a network: SetEndpoint refuses another's with
// a conflict. Ports from the host to [::1] are not NATed (IPv6 has no
// route_localnet): the daemon must proxy those if it wants them.
type Port struct {
	Proto    string     // "tcp" or "udp"
	HostIP   netip.Addr // zero or unspecified: every address of the host (of IP's family)
	HostPort uint16
	IP       netip.Addr // the container's address, the endpoint's own
	Port     uint16
}

// Link lets From reach To on Port when the network forbids ICC (docker's
// --link), and To answer. From is the address of the endpoint whose link
// it is.
type Link struct {
	From, To netip.Addr
	Proto    string
	Port     uint16
}

// TablePrefix starts the name of every table berth makes.
const TablePrefix = "berth-"

// Chain names. SetNetwork rewrites them all; ports and links hold the
// lookups that lead to the endpoints' own chains.
const (
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainForward     = "forward"
	chainPorts       = "ports"
	chainLinks       = "links"
)

// Firewall is a handle on the kernel's nftables. Its methods are safe for
// concurrent use.
type Firewall struct {
	netns int // 0: the caller's network namespace

	// mu serializes the operations, which share one batch buffer and one
	// netlink socket, and makes SetEndpoint's read-then-replace atomic.
	// One lasting socket, because closing a socket after a batch that
	// deleted rules waits for the kernel to release them (about 15ms
	// here, against 20µs).
	mu sync.Mutex
	c  *nftables.Conn // nil until used, and after an error
}

// Option configures New.
type Option func(*Firewall)

// InNetNS makes the Firewall work on the network namespace of fd (an open
// /proc/<pid>/ns/net or /run/netns/<name>), which must stay open while the
// Firewall is used. Without it, the Firewall works on the namespace of
// the calling process.
func InNetNS(fd int) Option {
	return func(f *Firewall) { f.netns = fd }
}

// New returns a Firewall, or an error saying why nftables cannot be used.
// Close it when done.
func New(opts ...Option) (*Firewall, error) {
	f := &Firewall{}
	for _, o := range opts {
		o(f)
	}
	err := f.do(func(c *nftables.Conn) error {
		_, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
		return err
	})
	if err != nil {
		switch {
		case errors.Is(err, unix.EPERM):
			err = fmt.Errorf("%w (berth needs CAP_NET_ADMIN to set packet rules)", err)
		case errors.Is(err, unix.EPROTONOSUPPORT), errors.Is(err, unix.ENOENT), errors.Is(err, unix.EOPNOTSUPP):
			err = fmt.Errorf("%w (the kernel has no nf_tables: CONFIG_NF_TABLES, module nf_tables)", err)
		}
		return nil, errdefs.Unavailable("firewall: nftables is not usable: %w", err)
	}
	return f, nil
}

// Close closes the Firewall's netlink socket; the rules stay.
func (f *Firewall) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.c == nil {
		return nil
	}
	err := f.c.CloseLasting()
	f.c = nil
	return err
}

// sockBuf is the netlink socket's send and receive buffer size: a batch
// goes in one sendmsg, which fails with EMSGSIZE beyond the send buffer,
// and the kernel answers each of its messages into the receive buffer
// (ENOBUFS when full). An endpoint with a range of 1000 ports is a batch
// of about 1.5MB.
const sockBuf = 16 << 20

// bigBuffers sets sockBuf, past the rmem_max and wmem_max sysctls (the
// *FORCE options need CAP_NET_ADMIN, which the firewall needs anyway).
func bigBuffers(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, sockBuf); e != nil {
				serr = fmt.Errorf("netlink socket buffer: %w", e)
			}
		}
	})
	return errors.Join(err, serr)
}

// do runs fn with the connection, alone. After an error the connection
// is dropped, so that no unread answer can confuse the next operation.
func (f *Firewall) do(fn func(c *nftables.Conn) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.c == nil {
		opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(bigBuffers)}
		if f.netns != 0 {
			opts = append(opts, nftables.WithNetNSFd(f.netns))
		}
		c, err := nftables.New(opts...)
		if err != nil {
			return fmt.Errorf("firewall: nftables: %w", err)
		}
		f.c = c
	}
	err := fn(f.c)
	if err != nil {
		_ = f.c.CloseLasting()
		f.c = nil
	}
	return err
}

// tables of the network of bridge.
type tables struct {
	inet, br *nftables.Table
}

func tablesOf(bridge string) tables {
	name := TablePrefix + bridge
	return tables{
		inet: &nftables.Table{Name: name, Family: nftables.TableFamilyINet},
		br:   &nftables.Table{Name: name, Family: nftables.TableFamilyBridge},
	}
}

func validBridge(name string) error {
	if name == "" || len(name) >= unix.IFNAMSIZ || strings.ContainsAny(name, "/ \x00") {
		return errdefs.Invalid("firewall: bad bridge name %q", name)
	}
	return nil
}

// SetNetwork creates the network's tables, or replaces their network-wide
// rules (keeping its endpoints').
func (f *Firewall) SetNetwork(n Network) error {
	if err := validBridge(n.Bridge); err != nil {
		return err
	}
	for _, p := range n.Subnets {
		if !p.IsValid() {
			return errdefs.Invalid("firewall: network %s: invalid subnet", n.Bridge)
		}
	}
	return f.do(func(c *nftables.Conn) error { return setNetwork(c, n) })
}

func setNetwork(c *nftables.Conn, n Network) error {
	t := tablesOf(n.Bridge)
	c.AddTable(t.inet)
	c.AddTable(t.br)

	base := func(tab *nftables.Table, name string, typ nftables.ChainType, hook *nftables.ChainHook, prio nftables.ChainPriority) *nftables.Chain {
		accept := nftables.ChainPolicyAccept
		ch := c.AddChain(&nftables.Chain{Name: name, Table: tab, Type: typ,
			Hooknum: hook, Priority: nftables.ChainPriorityRef(prio), Policy: &accept})
		c.FlushChain(ch)
		return ch
	}
	// Adding an existing map is no error and keeps its elements, the
	// endpoints'.
	for _, m := range natMaps {
		if err := c.AddSet(m.in(t.inet), nil); err != nil {
			return fmt.Errorf("firewall: set network %s: %w", n.Bridge, err)
		}
	}
	for _, m := range addrMaps {
		for _, tab := range []*nftables.Table{t.inet, t.br} {
			if err := c.AddSet(m.in(tab), nil); err != nil {
				return fmt.Errorf("firewall: set network %s: %w", n.Bridge, err)
			}
		}
	}
	regular := func(tab *nftables.Table, name string) *nftables.Chain {
		ch := c.AddChain(&nftables.Chain{Name: name, Table: tab})
		c.FlushChain(ch)
		return ch
	}
	ports := regular(t.inet, chainPorts)
	inetLinks := regular(t.inet, chainLinks)
	brLinks := regular(t.br, chainLinks)

	pre := base(t.inet, chainPrerouting, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, *nftables.ChainPriorityNATDest)
	out := base(t.inet, chainOutput, nftables.ChainTypeNAT, nftables.ChainHookOutput, *nftables.ChainPriorityNATDest)
	post := base(t.inet, chainPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, *nftables.ChainPriorityNATSource)
	fwd := base(t.inet, chainForward, nftables.ChainTypeFilter, nftables.ChainHookForward, *nftables.ChainPriorityFilter)
	// -200 is the bridge family's "filter" priority.
	brFwd := base(t.br, chainForward, nftables.ChainTypeFilter, nftables.ChainHookForward, -200)

	add := func(ch *nftables.Chain, parts ...any) {
		c.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: join(parts...)})
	}
	br := n.Bridge
	for _, e := range natLookups() {
		add(ports, e)
	}
	for _, e := range addrLookups(nfproto) {
		add(inetLinks, e)
	}
	for _, e := range addrLookups(ethertype) {
		add(brLinks, e)
	}

	// Queries to the bridge's own addresses on port 53 go to the DNS
	// server's port, at the same address.
	if n.DNSPort != 0 {
		for _, fam := range []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()} {
			for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
				add(pre, iif(br), nfproto(fam), l4proto(proto), dport(53), localDst(true), dnatPort(fam, n.DNSPort))
			}
		}
	}
	// Published ports, for traffic to this host from anywhere (prerouting)
	// and from the host itself (output).
	add(pre, localDst(false), jump(chainPorts))
	// Not from the host to [::1]: IPv6 has no route_localnet, the answers
	// to ::1 would come back by the bridge and be dropped as martians. A
	// proxy in the daemon must serve [::1] (as docker's does).
	add(out, nfproto(netip.IPv6Unspecified()), daddr(netip.IPv6Loopback()), &expr.Verdict{Kind: expr.VerdictReturn})
	add(out, localDst(false), jump(chainPorts))

	// Connections from the host to a published port at 127.0.0.1 (which
	// the bridge lets out with route_localnet=1) must leave with an
	// address the container can answer.
	add(post, oif(br), srcIn(netip.MustParsePrefix("127.0.0.0/8")), masq)
	for _, s := range n.Subnets {
		// Hairpin: a container reaching a published port of this bridge by
		// a host address; without it, the answer would go straight back
		// over the bridge, not un-NATed.
		add(post, oif(br), srcIn(s), ctDNAT(), masq)
		if n.Masquerade && !n.Internal {
			add(post, notOif(br), srcIn(s), masq)
		}
	}

	// Forward. Packets between two containers of the bridge come here
	// when routed by the host (a container can route by the gateway) and,
	// when br_netfilter is on, also when only switched (bridged): then
	// the inet hooks see them as in and out of the bridge. With ICC off,
	// only links, answers and published ports pass between containers.
	if !n.ICC {
		in := join(iif(br), oif(br))
		add(fwd, in, ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), accept)
		add(fwd, in, ctDNAT(), accept)
		add(fwd, in, jump(chainLinks))
		add(fwd, in, nfproto(netip.IPv6Unspecified()), icmpv6ND(), accept)
		add(fwd, in, drop)
	}
	// Only answers and published ports reach the bridge from elsewhere;
	// internal networks exchange nothing with elsewhere.
	if n.Internal {
		add(fwd, iif(br), notOif(br), drop)
		add(fwd, oif(br), notIif(br), drop)
	} else {
		add(fwd, oif(br), ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), accept)
		add(fwd, oif(br), ctDNAT(), accept)
		add(fwd, oif(br), notIif(br), drop)
	}

	// Between two ports of the bridge without br_netfilter: with ICC off,
	// only links' IP traffic, and IPv6 neighbour discovery (which links
	// need) pass; ARP and other non-IP frames do too, as in docker.
	// Frames are told by their destination in the subnets: the bridge
	// family's "meta ibrname" needs CONFIG_NFT_BRIDGE_META, which kernels
	// may lack, and matching no source keeps a container from spoofing
	// its way past. (Another bridge with the same subnet would be
	// filtered alike; berth's address management keeps subnets apart.)
	if !n.ICC {
		for _, s := range n.Subnets {
			to := join(ethertype(s.Addr()), daddrIn(s))
			add(brFwd, to, jump(chainLinks))
			if s.Addr().Is6() {
				add(brFwd, to, icmpv6ND(), accept)
			}
			add(brFwd, to, drop)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: set network %s: %w", br, err)
	}
	return nil
}

// DeleteNetwork removes the network's tables; a missing one is not an error.
func (f *Firewall) DeleteNetwork(bridge string) error {
	if err := validBridge(bridge); err != nil {
		return err
	}
	return f.do(func(c *nftables.Conn) error {
		t := tablesOf(bridge)
		for _, tab := range []*nftables.Table{t.inet, t.br} {
			// One batch per table: a missing one must not keep the other.
			c.DelTable(tab)
			if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("firewall: delete network %s: %w", bridge, err)
			}
		}
		return nil
	})
}

func protoNum(p string) (byte, error) {
	switch p {
	case "tcp":
		return unix.IPPROTO_TCP, nil
	case "udp":
		return unix.IPPROTO_UDP, nil
	}
	return 0, errdefs.Invalid("firewall: unsupported protocol %q", p)
}

// elemRef names one element of a verdict map that sends packets to an
// endpoint's chain.
type elemRef struct {
	m   vmap
	key []byte
}

// epRule is one rule of an endpoint's chain, with the map element that
// leads to it.
type epRule struct {
	exprs []expr.Any
	ref   elemRef
}

// endpointRules are an endpoint's rules, by chain.
type endpointRules struct {
	ports     []epRule // inet, NAT
	inetLinks []epRule // inet, forward filter
	brLinks   []epRule // bridge, forward filter
}

func portRule(p Port) (epRule, error) {
	proto, err := protoNum(p.Proto)
	if err != nil {
		return epRule{}, err
	}
	switch {
	case !p.IP.IsValid():
		return epRule{}, errdefs.Invalid("firewall: port %d/%s: no container address", p.HostPort, p.Proto)
	case p.HostPort == 0 || p.Port == 0:
		return epRule{}, errdefs.Invalid("firewall: port %d:%d/%s: port 0", p.HostPort, p.Port, p.Proto)
	}
	ip := p.IP.Unmap()
	h := p.HostIP.Unmap()
	if !h.IsValid() || h.IsUnspecified() {
		return epRule{
			exprs: join(nfproto(ip), l4proto(proto), dport(p.HostPort), dnatTo(ip, p.Port)),
			ref:   elemRef{natAny(ip), natAnyKey(proto, p.HostPort)},
		}, nil
	}
	if h.Is4() != ip.Is4() {
		return epRule{}, errdefs.Invalid("firewall: port %s:%d: host address and container address %s are of different families", h, p.HostPort, ip)
	}
	return epRule{
		exprs: join(nfproto(ip), daddr(h), l4proto(proto), dport(p.HostPort), dnatTo(ip, p.Port)),
		ref:   elemRef{natIP(ip), natIPKey(h, proto, p.HostPort)},
	}, nil
}

// openPortRules let the neighbours on the bridge reach a published port
// even with ICC off. With br_netfilter on, a neighbour's connection to the
// port by a host address is "bridged DNAT": after prerouting's DNAT the
// kernel switches it to the container at layer 2, and the bridge table
// sees it, from the neighbour's address and to the container's port,
// with no conntrack to tell it from a direct connection. Published ports
// are open to anyone who reaches the host, so opening them to the
// neighbours directly too gives nothing away.
func openPortRules(p Port, family func(netip.Addr) []expr.Any) []epRule {
	proto, _ := protoNum(p.Proto)
	ip := p.IP.Unmap()
	src, dst := addrMapsOf(ip)
	return []epRule{
		{join(family(ip), daddr(ip), l4proto(proto), dport(p.Port), accept), elemRef{dst, ip.AsSlice()}},
		{join(family(ip), saddr(ip), l4proto(proto), sport(p.Port), accept), elemRef{src, ip.AsSlice()}},
	}
}

// linkRules lets l.From reach l.To on its port, and To answer from it;
// family is nfproto for the inet table, ethertype for the bridge's.
func linkRules(l Link, family func(netip.Addr) []expr.Any) ([]epRule, error) {
	proto, err := protoNum(l.Proto)
	if err != nil {
		return nil, err
	}
	from, to := l.From.Unmap(), l.To.Unmap()
	if !from.IsValid() || !to.IsValid() || from.Is4() != to.Is4() || l.Port == 0 {
		return nil, errdefs.Invalid("firewall: bad link %s -> %s port %d/%s", l.From, l.To, l.Port, l.Proto)
	}
	src, dst := addrMapsOf(from)
	return []epRule{
		{join(family(from), saddr(from), daddr(to), l4proto(proto), dport(l.Port), accept), elemRef{src, from.AsSlice()}},
		{join(family(from), saddr(to), daddr(from), l4proto(proto), sport(l.Port), accept), elemRef{dst, from.AsSlice()}},
	}, nil
}

// validID keeps an id usable in a chain name.
func validID(id string) error {
	if id == "" || len(id) > 128 || strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
	}) >= 0 {
		return errdefs.Invalid("firewall: bad endpoint id %q", id)
	}
	return nil
}

// SetEndpoint sets one endpoint's published ports and links on the
// network of bridge, replacing what was set for id before, in one atomic
// change; with neither it is RemoveEndpoint. Its cost does not grow with
// the number of endpoints. With ICC off, the published ports' container
// ports are open to the endpoint's neighbours on the bridge too (see
// openPortRules). id is made of letters, digits, '_', '-' and '.'.
func (f *Firewall) SetEndpoint(bridge, id string, ports []Port, links []Link) error {
	if err := validBridge(bridge); err != nil {
		return err
	}
	if err := validID(id); err != nil {
		return err
	}
	// Build everything first: a bad port must change nothing.
	var r endpointRules
	for _, p := range ports {
		pr, err := portRule(p)
		if err != nil {
			return err
		}
		r.ports = append(r.ports, pr)
		r.inetLinks = append(r.inetLinks, openPortRules(p, nfproto)...)
		r.brLinks = append(r.brLinks, openPortRules(p, ethertype)...)
	}
	for _, l := range links {
		rs, err := linkRules(l, nfproto)
		if err != nil {
			return err
		}
		r.inetLinks = append(r.inetLinks, rs...)
		rs, _ = linkRules(l, ethertype)
		r.brLinks = append(r.brLinks, rs...)
	}
	return f.do(func(c *nftables.Conn) error { return replaceEndpoint(c, bridge, id, r) })
}

// RemoveEndpoint removes what SetEndpoint set for id; none is not an error.
// Its cost does not grow with the number of endpoints.
func (f *Firewall) RemoveEndpoint(bridge, id string) error {
	if err := validBridge(bridge); err != nil {
		return err
	}
	if err := validID(id); err != nil {
		return err
	}
	return f.do(func(c *nftables.Conn) error { return replaceEndpoint(c, bridge, id, endpointRules{}) })
}

// An endpoint's rules are in chains of its own, which packets reach by
// verdict maps keyed by what the rules match (host port, container
// address). Each rule's comment names the map element that leads to it,
// so the endpoint's own chains are all there is to read to undo it.
const refSep = " ref "

func refComment(id string, ref elemRef) []byte {
	return userdata.AppendString(nil, userdata.TypeComment,
		"endpoint "+id+refSep+ref.m.name+" "+hex.EncodeToString(ref.key))
}

func parseRef(r *nftables.Rule) (elemRef, bool) {
	s, ok := userdata.GetString(r.UserData, userdata.TypeComment)
	if !ok {
		return elemRef{}, false
	}
	_, s, ok = strings.Cut(s, refSep)
	name, k, ok2 := strings.Cut(s, " ")
	m, ok3 := vmapNamed(name)
	key, err := hex.DecodeString(k)
	if !ok || !ok2 || !ok3 || err != nil {
		return elemRef{}, false
	}
	return elemRef{m, key}, true
}

func endpointChain(kind, id string) string { return kind + "-" + id }

// replaceEndpoint swaps id's rules and map elements for r's in one batch.
func replaceEndpoint(c *nftables.Conn, bridge, id string, r endpointRules) error {
	t := tablesOf(bridge)
	type epChain struct {
		tab   *nftables.Table
		name  string
		rules []epRule
	}
	chains := []epChain{
		{t.inet, endpointChain(chainPorts, id), r.ports},
		{t.inet, endpointChain(chainLinks, id), r.inetLinks},
		{t.br, endpointChain(chainLinks, id), r.brLinks},
	}
	changed := false
	for _, ec := range chains {
		ch := &nftables.Chain{Name: ec.name, Table: ec.tab}
		// A missing chain (or table) dumps as empty; an endpoint's chain
		// exists exactly when it has rules.
		old, err := c.GetRules(ec.tab, ch)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("firewall: endpoint %s: list %s: %w", id, ec.name, err)
		}
		seen := map[string]bool{}
		for _, o := range old {
			ref, ok := parseRef(o)
			if !ok || seen[ref.m.name+string(ref.key)] {
				continue
			}
			seen[ref.m.name+string(ref.key)] = true
			if err := c.SetDeleteElements(ref.m.in(ec.tab), []nftables.SetElement{{Key: ref.key}}); err != nil {
				return fmt.Errorf("firewall: endpoint %s: %w", id, err)
			}
		}
		switch {
		case len(old) > 0 && len(ec.rules) == 0:
			c.FlushChain(ch)
			c.DelChain(ch)
		case len(old) > 0:
			c.FlushChain(ch)
		case len(ec.rules) > 0:
			c.AddChain(ch)
		}
		changed = changed || len(old) > 0 || len(ec.rules) > 0
		added := map[string]bool{}
		for _, er := range ec.rules {
			c.AddRule(&nftables.Rule{Table: ec.tab, Chain: ch, Exprs: er.exprs, UserData: refComment(id, er.ref)})
			if k := er.ref.m.name + string(er.ref.key); !added[k] {
				added[k] = true
				err := c.SetAddElements(er.ref.m.in(ec.tab), []nftables.SetElement{{Key: er.ref.key,
					VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: ec.name}}})
				if err != nil {
					return fmt.Errorf("firewall: endpoint %s: %w", id, err)
				}
			}
		}
	}
	if !changed {
		return nil
	}
	if err := c.Flush(); err != nil {
		switch {
		case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EEXIST):
			return errdefs.Conflict("firewall: endpoint %s: a host port or address it uses is another endpoint's on network %s: %w", id, bridge, err)
		case errors.Is(err, unix.ENOENT):
			if _, lerr := c.ListTableOfFamily(t.inet.Name, t.inet.Family); errors.Is(lerr, unix.ENOENT) {
				return errdefs.NotFound("firewall: network %s has no rules: set it first", bridge)
			}
		}
		return fmt.Errorf("firewall: endpoint %s on %s: %w", id, bridge, err)
	}
	return nil
}

// Endpoints lists the ids that have rules on the network of bridge (to
// reconcile at daemon start: RemoveEndpoint those of containers gone).
func (f *Firewall) Endpoints(bridge string) ([]string, error) {
	if err := validBridge(bridge); err != nil {
		return nil, err
	}
	name := tablesOf(bridge).inet.Name
	seen := map[string]bool{}
	err := f.do(func(c *nftables.Conn) error {
		// Every endpoint has an inet links chain: its links, or the
		// openings for its published ports.
		chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
		if err != nil {
			return fmt.Errorf("firewall: list chains: %w", err)
		}
		for _, ch := range chains {
			if id, ok := strings.CutPrefix(ch.Name, chainLinks+"-"); ok && ch.Table.Name == name {
				seen[id] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sortedKeys(seen), nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Bridges lists the bridges that have berth tables (to reconcile at
// daemon start).
func (f *Firewall) Bridges() ([]string, error) {
	seen := map[string]bool{}
	err := f.do(func(c *nftables.Conn) error {
		for _, fam := range []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyBridge} {
			ts, err := c.ListTablesOfFamily(fam)
			if err != nil {
				return fmt.Errorf("firewall: list tables: %w", err)
			}
			for _, t := range ts {
				if b, ok := strings.CutPrefix(t.Name, TablePrefix); ok && b != "" {
					seen[b] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sortedKeys(seen), nil
}
