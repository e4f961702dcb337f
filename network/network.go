// Package network is the daemon's networks: their records (under
// <data-root>/network), the three built-in ones (bridge, host, none), and
// containers' endpoints on bridge networks, made in the containers'
// namespaces and undone when they stop. The work is in its subpackages,
// one per capability: ipam hands out addresses, bridge makes bridges and
// veth pairs with netlink, firewall puts NAT, isolation and published
// ports in the kernel with nftables, dns is the embedded name server of
// user-defined networks. It knows containers only by ID and name, and
// nothing of HTTP.
package network

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/network/bridge"
	"berth.dev/berth/network/dns"
	"berth.dev/berth/network/firewall"
	"berth.dev/berth/network/ipam"
	nettypes "github.com/moby/moby/api/types/network"
)

// Drivers and built-in network names, as docker's.
const (
	DriverBridge = "bridge"
	DriverHost   = "host"
	DriverNull   = "null"

	NameBridge = "bridge"
	NameHost   = "host"
	NameNone   = "none"

	// DefaultBridge is the default network's bridge (docker's docker0).
	DefaultBridge = "berth0"
)

// Options of bridge networks, with docker's keys.
const (
	OptBridgeName    = "com.docker.network.bridge.name"
	OptICC           = "com.docker.network.bridge.enable_icc"
	OptMasquerade    = "com.docker.network.bridge.enable_ip_masquerade"
	OptHostBinding   = "com.docker.network.bridge.host_binding_ipv4"
	OptDefaultBridge = "com.docker.network.bridge.default_bridge"
	OptMTU           = "com.docker.network.driver.mtu"
)

// Config is the daemon's network settings.
type Config struct {
	Root string // where network records are kept
	// Bridge names the default network's bridge; "none" has no default
	// bridge network (containers asking for it fail).
	Bridge string
	// BIP is the default bridge's address and prefix (--bip); zero picks
	// a subnet that clashes with nothing the host routes.
	BIP    netip.Prefix
	MTU    int
	ICC    bool // the default bridge's --icc
	IPMasq bool // the default bridge's --ip-masq
	// Firewall has berth manage nftables rules (--iptables); without it
	// there is no NAT, isolation or published port.
	Firewall bool
	Log      *slog.Logger
}

// Record is one network's persistent record.
type Record struct {
	nettypes.Network
	// BridgeName is the bridge of a bridge network.
	BridgeName string `json:",omitempty"`
}

// nw is a network and what lives with it while the daemon runs.
type nw struct {
	Record
	mu           sync.Mutex
	pool4, pool6 *ipam.Pool
	gw4, gw6     netip.Prefix // the bridge's addresses
	dns          *dns.Server
	eps          map[string]*Endpoint // by container ID
}

// Endpoint is a container's attachment to a bridge network.
type Endpoint struct {
	ID        string
	Container string
	Name      string // the container's name, without docker's slash
	Aliases   []string
	IfName    string
	HostIf    string
	IPv4      netip.Prefix
	IPv6      netip.Prefix
	MAC       nettypes.HardwareAddr
	Ports     []firewall.Port
	Links     []firewall.Link `json:",omitempty"`
	// Upstreams are the servers names berth does not know are asked of.
	Upstreams []string
}

// Manager is the daemon's networks. It is safe for concurrent use.
type Manager struct {
	cfg Config
	log *slog.Logger
	fw  *firewall.Firewall // nil: no rules (--iptables=false, or no nftables)

	mu    sync.Mutex
	nets  map[string]*nw     // by ID
	ports map[portKey]string // host ports published, to the endpoint's container
}

type portKey struct {
	proto string
	ip    netip.Addr
	port  uint16
}

// Open loads the networks under cfg.Root, making the built-in ones on
// first use, and sets up every bridge network's bridge and rules afresh:
// rules of endpoints that went while the daemon was down go with them;
// Restore puts back those of containers that still run.
func Open(cfg Config) (*Manager, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	m := &Manager{cfg: cfg, log: cfg.Log, nets: map[string]*nw{}, ports: map[portKey]string{}}
	if cfg.Firewall {
		fw, err := firewall.New()
		if err != nil {
			m.log.Warn("no NAT, isolation or published ports: nftables cannot be used", "error", err)
		} else {
			m.fw = fw
		}
	}
	ents, err := os.ReadDir(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(cfg.Root, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("networks: %w", err)
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil || r.ID == "" {
			m.log.Warn("network record unreadable: ignored", "file", e.Name(), "error", err)
			continue
		}
		m.nets[r.ID] = &nw{Record: r, eps: map[string]*Endpoint{}}
	}
	if err := m.builtins(); err != nil {
		return nil, err
	}
	if err := bridge.EnableForwarding(m.anyIPv6()); err != nil {
		m.log.Warn("forwarding stays off", "error", err)
	}
	for _, n := range m.nets {
		if n.Driver != DriverBridge {
			continue
		}
		if err := m.setUp(n); err != nil {
			// The network stays listed; its containers fail to start
			// with this error until it is fixed.
			m.log.Warn("network not set up", "network", n.Name, "error", err)
		}
	}
	return m, nil
}

func (m *Manager) anyIPv6() bool {
	for _, n := range m.nets {
		if n.EnableIPv6 {
			return true
		}
	}
	return false
}

// builtins makes the host and none networks, and the default bridge
// network unless --bridge=none; an existing default network whose bridge
// or --bip changed is made again.
func (m *Manager) builtins() error {
	byName := map[string]*nw{}
	for _, n := range m.nets {
		byName[n.Name] = n
	}
	for _, b := range []struct{ name, driver string }{{NameHost, DriverHost}, {NameNone, DriverNull}} {
		if byName[b.name] == nil {
			if err := m.save(m.add(Record{Network: nettypes.Network{Name: b.name, Driver: b.driver, IPAM: nettypes.IPAM{Driver: "default"}}})); err != nil {
				return err
			}
		}
	}
	old := byName[NameBridge]
	if m.cfg.Bridge == "none" {
		if old != nil {
			m.forget(old)
		}
		return nil
	}
	if old != nil && old.BridgeName == m.cfg.Bridge && (!m.cfg.BIP.IsValid() || old.gwMatches(m.cfg.BIP)) {
		old.Options[OptICC] = strconv.FormatBool(m.cfg.ICC)
		old.Options[OptMasquerade] = strconv.FormatBool(m.cfg.IPMasq)
		return m.save(old)
	}
	if old != nil {
		m.forget(old)
	}
	var ipamCfg nettypes.IPAMConfig
	if p := m.cfg.BIP; p.IsValid() {
		ipamCfg = nettypes.IPAMConfig{Subnet: p.Masked(), Gateway: p.Addr()}
	} else {
		subnet, err := m.pickSubnet()
		if err != nil {
			return err
		}
		ipamCfg = nettypes.IPAMConfig{Subnet: subnet, Gateway: ipam.FirstHost(subnet)}
	}
	mtu := m.cfg.MTU
	if mtu <= 0 {
		mtu = 1500
	}
	r := Record{Network: nettypes.Network{Name: NameBridge, Driver: DriverBridge, EnableIPv4: true,
		IPAM: nettypes.IPAM{Driver: "default", Config: []nettypes.IPAMConfig{ipamCfg}},
		Options: map[string]string{OptDefaultBridge: "true", OptICC: strconv.FormatBool(m.cfg.ICC),
			OptMasquerade: strconv.FormatBool(m.cfg.IPMasq), OptHostBinding: "0.0.0.0",
			OptBridgeName: m.cfg.Bridge, OptMTU: strconv.Itoa(mtu)},
	}, BridgeName: m.cfg.Bridge}
	return m.save(m.add(r))
}

func (n *nw) gwMatches(p netip.Prefix) bool {
	for _, c := range n.IPAM.Config {
		if c.Subnet == p.Masked() && c.Gateway == p.Addr() {
			return true
		}
	}
	return false
}

// add gives r an ID and creation time when it has none, and holds it.
func (m *Manager) add(r Record) *nw {
	if r.ID == "" {
		r.ID = randomID()
	}
	if r.Created.IsZero() {
		r.Created = time.Now().UTC()
	}
	if r.Scope == "" {
		r.Scope = "local"
	}
	if r.Options == nil {
		r.Options = map[string]string{}
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	n := &nw{Record: r, eps: map[string]*Endpoint{}}
	m.nets[r.ID] = n
	return n
}

func (m *Manager) forget(n *nw) {
	m.tearDown(n)
	delete(m.nets, n.ID)
	_ = os.Remove(filepath.Join(m.cfg.Root, n.ID+".json"))
}

func (m *Manager) save(n *nw) error {
	b, err := json.MarshalIndent(n.Record, "", "\t")
	if err != nil {
		return err
	}
	p := filepath.Join(m.cfg.Root, n.ID+".json")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save network %s: %w", n.Name, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("save network %s: %w", n.Name, err)
	}
	return nil
}

// pickSubnet finds a subnet among docker's default pools that overlaps no
// route or address of the host and no other network's.
func (m *Manager) pickSubnet() (netip.Prefix, error) {
	avoid, err := bridge.Routes()
	if err != nil {
		return netip.Prefix{}, err
	}
	for _, n := range m.nets {
		for _, c := range n.IPAM.Config {
			if c.Subnet.IsValid() {
				avoid = append(avoid, c.Subnet)
			}
		}
	}
	return ipam.PickSubnet(ipam.DefaultPools(), avoid)
}

// setUp makes a bridge network's pools, bridge, rules and DNS server.
func (m *Manager) setUp(n *nw) error {
	n.pool4, n.pool6, n.gw4, n.gw6 = nil, nil, netip.Prefix{}, netip.Prefix{}
	var addrs []netip.Prefix
	for _, c := range n.IPAM.Config {
		pool, err := ipam.NewPool(c.Subnet, c.IPRange)
		if err != nil {
			return err
		}
		gw := c.Gateway
		if !gw.IsValid() {
			gw = ipam.FirstHost(c.Subnet)
		}
		if err := pool.Reserve(gw); err != nil {
			return fmt.Errorf("gateway %s: %w", gw, err)
		}
		for _, aux := range c.AuxAddress {
			_ = pool.Reserve(aux)
		}
		gwp := netip.PrefixFrom(gw, c.Subnet.Bits())
		addrs = append(addrs, gwp)
		if c.Subnet.Addr().Is4() {
			n.pool4, n.gw4 = pool, gwp
		} else {
			n.pool6, n.gw6 = pool, gwp
		}
	}
	mtu, _ := strconv.Atoi(n.Options[OptMTU])
	if err := bridge.Ensure(n.BridgeName, mtu, addrs); err != nil {
		return err
	}
	if !n.isDefault() && n.gw4.IsValid() && n.dns == nil {
		// Port 53 itself when there is no firewall to redirect to a
		// free one (--iptables=false).
		port := uint16(0)
		if m.fw == nil {
			port = 53
		}
		srv, err := dns.Listen(netip.AddrPortFrom(n.gw4.Addr(), port), &resolver{m: m, n: n})
		if err != nil {
			m.log.Warn("no embedded DNS server", "network", n.Name, "error", err)
		} else {
			n.dns = srv
		}
	}
	if m.fw != nil {
		if err := m.fw.DeleteNetwork(n.BridgeName); err != nil {
			return err
		}
		if err := m.fw.SetNetwork(m.rules(n)); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) rules(n *nw) firewall.Network {
	r := firewall.Network{Bridge: n.BridgeName, Internal: n.Internal,
		ICC: n.Options[OptICC] != "false", Masquerade: !n.Internal && n.Options[OptMasquerade] != "false"}
	for _, c := range n.IPAM.Config {
		r.Subnets = append(r.Subnets, c.Subnet)
	}
	if n.dns != nil {
		r.DNSPort = n.dns.Port()
	}
	return r
}

// tearDown stops a network's DNS server and removes its rules and bridge.
func (m *Manager) tearDown(n *nw) {
	if n.dns != nil {
		_ = n.dns.Close()
		n.dns = nil
	}
	if n.Driver != DriverBridge {
		return
	}
	if m.fw != nil {
		if err := m.fw.DeleteNetwork(n.BridgeName); err != nil {
			m.log.Warn("remove network rules", "network", n.Name, "error", err)
		}
	}
	if err := bridge.Delete(n.BridgeName); err != nil {
		m.log.Warn("remove bridge", "network", n.Name, "error", err)
	}
}

func (n *nw) isDefault() bool { return n.Options[OptDefaultBridge] == "true" }

// Close stops the DNS servers; when no container is attached anywhere
// (none runs), the bridges and rules go too, as the cgroup parents do:
// the next start makes them again.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	busy := false
	for _, n := range m.nets {
		n.mu.Lock()
		busy = busy || len(n.eps) > 0
		n.mu.Unlock()
	}
	for _, n := range m.nets {
		if busy {
			if n.dns != nil {
				_ = n.dns.Close()
				n.dns = nil
			}
			continue
		}
		m.tearDown(n)
	}
	if m.fw != nil {
		_ = m.fw.Close()
	}
}

// Find returns the network named by ref: an ID, a name, or an ID prefix
// (in that order, as docker).
func (m *Manager) Find(ref string) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.find(ref)
	if err != nil {
		return nil, err
	}
	r := n.copyRecord()
	return &r, nil
}

func (m *Manager) find(ref string) (*nw, error) {
	if n := m.nets[ref]; n != nil {
		return n, nil
	}
	for _, n := range m.nets {
		if n.Name == ref {
			return n, nil
		}
	}
	var found *nw
	if ref != "" {
		for id, n := range m.nets {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil, errdefs.Invalid("network %s is ambiguous (%d matches found based on ID prefix)", ref, 2)
				}
				found = n
			}
		}
	}
	if found == nil {
		return nil, errdefs.NotFound("network %s not found", ref)
	}
	return found, nil
}

func (n *nw) copyRecord() Record {
	r := n.Record
	r.Options = maps.Clone(n.Options)
	r.Labels = maps.Clone(n.Labels)
	r.IPAM.Config = slices.Clone(n.IPAM.Config)
	return r
}

// List returns every network with its endpoints, by name.
func (m *Manager) List() []nettypes.Inspect {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]nettypes.Inspect, 0, len(m.nets))
	for _, n := range m.nets {
		out = append(out, m.inspect(n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Inspect returns one network with its endpoints.
func (m *Manager) Inspect(ref string) (nettypes.Inspect, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.find(ref)
	if err != nil {
		return nettypes.Inspect{}, err
	}
	return m.inspect(n), nil
}

func (m *Manager) inspect(n *nw) nettypes.Inspect {
	r := n.copyRecord()
	out := nettypes.Inspect{Network: r.Network, Containers: map[string]nettypes.EndpointResource{}}
	if out.IPAM.Config == nil {
		out.IPAM.Config = []nettypes.IPAMConfig{}
	}
	n.mu.Lock()
	for id, ep := range n.eps {
		out.Containers[id] = nettypes.EndpointResource{Name: ep.Name, EndpointID: ep.ID, MacAddress: ep.MAC,
			IPv4Address: ep.IPv4, IPv6Address: ep.IPv6}
	}
	n.mu.Unlock()
	return out
}

// Create makes a user-defined network.
func (m *Manager) Create(req nettypes.CreateRequest) (*nettypes.CreateResponse, error) {
	if req.Name == "" {
		return nil, errdefs.Invalid("invalid name: name is empty")
	}
	if strings.ContainsAny(req.Name, "/\\: \t\n") {
		return nil, errdefs.Invalid("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", req.Name)
	}
	driver := req.Driver
	if driver == "" {
		driver = DriverBridge
	}
	switch {
	case driver == DriverHost || driver == DriverNull:
		return nil, errdefs.Forbidden("only one instance of %q network is allowed", driver)
	case driver != DriverBridge:
		return nil, errdefs.NotFound("plugin %q not found", driver)
	case req.Scope != "" && req.Scope != "local":
		return nil, errdefs.Invalid("scope %q is not supported: berth has local networks only", req.Scope)
	case req.ConfigOnly || req.ConfigFrom != nil && req.ConfigFrom.Network != "":
		return nil, errdefs.Invalid("config-only networks are not supported")
	case req.Ingress:
		return nil, errdefs.Invalid("ingress networks are a swarm feature, which berth does not have")
	}
	if req.IPAM != nil && req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
		return nil, errdefs.NotFound("IPAM driver %q not found", req.IPAM.Driver)
	}
	ipv4 := req.EnableIPv4 == nil || *req.EnableIPv4
	ipv6 := req.EnableIPv6 != nil && *req.EnableIPv6
	if !ipv4 && !ipv6 {
		return nil, errdefs.Invalid("IPv4 or IPv6 must be enabled")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.nets {
		if n.Name == req.Name {
			return nil, errdefs.Conflict("network with name %s already exists", req.Name)
		}
	}
	r := Record{Network: nettypes.Network{Name: req.Name, Driver: driver, EnableIPv4: ipv4, EnableIPv6: ipv6,
		Internal: req.Internal, Attachable: req.Attachable, Labels: maps.Clone(req.Labels), Options: maps.Clone(req.Options),
		IPAM: nettypes.IPAM{Driver: "default", Options: map[string]string{}}}}
	if req.IPAM != nil {
		r.IPAM.Options = maps.Clone(req.IPAM.Options)
		if r.IPAM.Options == nil {
			r.IPAM.Options = map[string]string{}
		}
	}
	if r.Options == nil {
		r.Options = map[string]string{}
	}
	cfgs, err := m.ipamConfigs(req, ipv4, ipv6)
	if err != nil {
		return nil, err
	}
	r.IPAM.Config = cfgs
	for k, v := range r.Options {
		switch k {
		case OptICC, OptMasquerade:
			if _, err := strconv.ParseBool(v); err != nil {
				return nil, errdefs.Invalid("invalid value %q for option %s", v, k)
			}
		case OptMTU:
			if n, err := strconv.Atoi(v); err != nil || n < 68 || n > 65535 {
				return nil, errdefs.Invalid("invalid MTU %q", v)
			}
		}
	}
	r.ID = randomID()
	r.BridgeName = r.Options[OptBridgeName]
	if r.BridgeName == "" {
		r.BridgeName = "br-" + r.ID[:12]
	} else if len(r.BridgeName) > 15 {
		return nil, errdefs.Invalid("bridge name %q is longer than 15 characters", r.BridgeName)
	}
	for _, n := range m.nets {
		if n.BridgeName == r.BridgeName {
			return nil, errdefs.Conflict("bridge %s is already used by network %s", r.BridgeName, n.Name)
		}
	}
	n := m.add(r)
	if ipv6 {
		if err := bridge.EnableForwarding(true); err != nil {
			m.log.Warn("IPv6 forwarding stays off", "error", err)
		}
	}
	if err := m.setUp(n); err != nil {
		m.tearDown(n)
		delete(m.nets, n.ID)
		return nil, err
	}
	if err := m.save(n); err != nil {
		m.tearDown(n)
		delete(m.nets, n.ID)
		return nil, err
	}
	return &nettypes.CreateResponse{ID: n.ID}, nil
}

// ipamConfigs checks the asked subnets and fills in the missing ones.
func (m *Manager) ipamConfigs(req nettypes.CreateRequest, ipv4, ipv6 bool) ([]nettypes.IPAMConfig, error) {
	var asked []nettypes.IPAMConfig
	if req.IPAM != nil {
		asked = req.IPAM.Config
	}
	var out []nettypes.IPAMConfig
	have4, have6 := false, false
	for _, c := range asked {
		if !c.Subnet.IsValid() {
			if c.IPRange.IsValid() || c.Gateway.IsValid() {
				return nil, errdefs.Invalid("a subnet is needed with an ip-range or a gateway")
			}
			continue
		}
		if c.Subnet != c.Subnet.Masked() {
			return nil, errdefs.Invalid("invalid subnet %s: it should be %s", c.Subnet, c.Subnet.Masked())
		}
		is4 := c.Subnet.Addr().Is4()
		if is4 && !ipv4 || !is4 && !ipv6 {
			fam := "IPv4"
			if !is4 {
				fam = "IPv6"
			}
			return nil, errdefs.Invalid("%s subnet %s given, but %s is not enabled on the network", fam, c.Subnet, fam)
		}
		if is4 && have4 || !is4 && have6 {
			return nil, errdefs.Invalid("berth networks have one subnet per address family")
		}
		have4, have6 = have4 || is4, have6 || !is4
		if c.Gateway.IsValid() && !c.Subnet.Contains(c.Gateway) {
			return nil, errdefs.Invalid("no matching subnet for gateway %s", c.Gateway)
		}
		if c.IPRange.IsValid() {
			if _, err := ipam.NewPool(c.Subnet, c.IPRange); err != nil {
				return nil, err
			}
		}
		for name, a := range c.AuxAddress {
			if !c.Subnet.Contains(a) {
				return nil, errdefs.Invalid("no matching subnet for aux-address %s (%s)", a, name)
			}
		}
		for _, n := range m.nets {
			for _, o := range n.IPAM.Config {
				if o.Subnet.IsValid() && o.Subnet.Overlaps(c.Subnet) {
					return nil, errdefs.Forbidden("invalid pool request: Pool overlaps with other one on this address space")
				}
			}
		}
		if !c.Gateway.IsValid() {
			c.Gateway = ipam.FirstHost(c.Subnet)
		}
		out = append(out, c)
	}
	if ipv4 && !have4 {
		s, err := m.pickSubnet()
		if err != nil {
			return nil, err
		}
		out = append(out, nettypes.IPAMConfig{Subnet: s, Gateway: ipam.FirstHost(s)})
	}
	if ipv6 && !have6 {
		// A unique local /64 of its own (RFC 4193's random global ID).
		var b [16]byte
		b[0] = 0xfd
		_, _ = rand.Read(b[1:8])
		s := netip.PrefixFrom(netip.AddrFrom16(b), 64).Masked()
		out = append(out, nettypes.IPAMConfig{Subnet: s, Gateway: ipam.FirstHost(s)})
	}
	return out, nil
}

// Remove removes a user-defined network that no container is attached to.
func (m *Manager) Remove(ref string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.find(ref)
	if err != nil {
		return err
	}
	if IsBuiltin(n.Name) {
		return errdefs.Forbidden("%s is a pre-defined network and cannot be removed", n.Name)
	}
	n.mu.Lock()
	busy := len(n.eps)
	n.mu.Unlock()
	if busy > 0 {
		return errdefs.Forbidden("error while removing network: network %s has active endpoints (%d)", n.Name, busy)
	}
	m.forget(n)
	return nil
}

// DNSServer is the address containers on a user-defined network ask for
// names (its gateway), or none when the network has no server: the
// default bridge, or one whose server could not start.
func (m *Manager) DNSServer(ref string) (netip.Addr, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.find(ref)
	if err != nil || n.dns == nil {
		return netip.Addr{}, false
	}
	return n.gw4.Addr(), true
}

// IsBuiltin says whether a network name is one of the three built-in ones.
func IsBuiltin(name string) bool { return name == NameBridge || name == NameHost || name == NameNone }

func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
