package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"berth.dev/berth/daemon/container"
	"berth.dev/berth/daemon/filters"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/trace"
	"berth.dev/berth/network"
	"berth.dev/berth/network/bridge"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	nettypes "github.com/moby/moby/api/types/network"
)

// openNetworks opens <data-root>/network with the daemon's bridge
// settings.
func (d *Daemon) openNetworks() error {
	cfg := network.Config{Root: filepath.Join(d.cfg.DataRoot, "network"), Bridge: d.cfg.Bridge, MTU: d.cfg.MTU,
		ICC: boolOr(d.cfg.ICC, true), IPMasq: boolOr(d.cfg.IPMasq, true), Firewall: boolOr(d.cfg.IPTables, true), Log: d.log}
	if d.cfg.BIP != "" {
		p, err := netip.ParsePrefix(d.cfg.BIP)
		if err != nil {
			return errdefs.Invalid("invalid bip %q: %v", d.cfg.BIP, err)
		}
		cfg.BIP = p
	}
	m, err := network.Open(cfg)
	if err != nil {
		return err
	}
	d.nets = m
	return nil
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// networkMode is the container's network mode with "default" resolved.
func networkMode(hc *containertypes.HostConfig) string {
	m := string(hc.NetworkMode)
	if m == "" || m == "default" {
		return network.NameBridge
	}
	return m
}

// planNetworks checks a create's network mode and endpoint configs and
// returns the networks the container will be on, by name.
func (d *Daemon) planNetworks(hc *containertypes.HostConfig, nc *nettypes.NetworkingConfig) (map[string]*nettypes.EndpointSettings, error) {
	mode := networkMode(hc)
	asked := map[string]*nettypes.EndpointSettings{}
	if nc != nil {
		for name, es := range nc.EndpointsConfig {
			if name == "default" { // the docker CLI's name for the mode
				name = network.NameBridge
			}
			asked[name] = es
		}
	}
	// container:NAME is looked up at start (as docker, it may not exist
	// yet).
	if strings.HasPrefix(mode, "container:") {
		if len(asked) > 0 || len(hc.PortBindings) > 0 || hc.PublishAllPorts || len(hc.Links) > 0 {
			return nil, errdefs.Invalid("conflicting options: networks, port publishing and links cannot be used with the network of another container")
		}
		if len(hc.DNS) > 0 || len(hc.DNSSearch) > 0 || len(hc.DNSOptions) > 0 || len(hc.ExtraHosts) > 0 {
			return nil, errdefs.Invalid("conflicting options: dns and the network mode")
		}
		return map[string]*nettypes.EndpointSettings{}, nil
	}
	primary, err := d.nets.Find(mode)
	if err != nil {
		if mode == network.NameBridge {
			return nil, errdefs.Invalid("the default bridge network is disabled in this daemon (--bridge=none)")
		}
		if !errdefs.Is(err, errdefs.KindNotFound) {
			return nil, err
		}
		// As docker: a container may name a network made after it; its
		// start fails while there is none.
		primary = &network.Record{Network: nettypes.Network{Name: mode, Driver: network.DriverBridge}}
	}
	out := map[string]*nettypes.EndpointSettings{}
	add := func(r *network.Record, es *nettypes.EndpointSettings) error {
		es = es.Copy()
		if es == nil {
			es = &nettypes.EndpointSettings{}
		}
		es.NetworkID = r.ID
		if r.Driver != network.DriverBridge {
			if len(out) > 0 {
				return errdefs.Invalid("container cannot be connected to multiple networks with one of the networks in private (none) or host mode")
			}
		} else if r.Name == network.NameBridge {
			if len(es.Aliases) > 0 {
				return errdefs.Invalid("network-scoped alias is supported only for containers in user defined networks")
			}
			if es.IPAMConfig != nil && (es.IPAMConfig.IPv4Address.IsValid() || es.IPAMConfig.IPv6Address.IsValid()) {
				return errdefs.Invalid("user specified IP address is supported on user defined networks only")
			}
		}
		out[r.Name] = es
		return nil
	}
	es := asked[mode]
	if es == nil {
		es = asked[primary.Name]
		if es == nil {
			es = asked[primary.ID]
		}
	}
	if err := add(primary, es); err != nil {
		return nil, err
	}
	if primary.Driver == network.DriverHost && (len(hc.Links) > 0) {
		return nil, errdefs.Invalid("conflicting options: host type networking can't be used with links. This would result in undefined behavior")
	}
	for name, es := range asked {
		r, err := d.nets.Find(name)
		if errdefs.Is(err, errdefs.KindNotFound) {
			r, err = &network.Record{Network: nettypes.Network{Name: name, Driver: network.DriverBridge}}, nil
		}
		if err != nil {
			return nil, err
		}
		if r.Name == primary.Name {
			continue
		}
		if primary.Driver != network.DriverBridge || r.Driver != network.DriverBridge {
			return nil, errdefs.Invalid("container cannot be connected to multiple networks with one of the networks in private (none) or host mode")
		}
		if err := add(r, es); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// netSetup is a start's network: what the spec and the /etc files need,
// worked out before the runtime's create.
type netSetup struct {
	mode   string
	nsPath string // another container's namespace (container:NAME)
	host   bool
	none   bool
	// shared is the container whose network namespace and /etc files
	// this one uses.
	shared *container.Container
	etc    container.EtcOptions
	// dns are the container's --dns servers.
	dns []netip.Addr
	// env is the legacy links' environment, linkTo their targets.
	env    []string
	linkTo []network.LinkTarget
}

// prepareNetwork works out a start's network before its spec is made.
func (d *Daemon) prepareNetwork(c *container.Container, hostname string) (*netSetup, error) {
	c.Lock()
	hc, cfg := c.HostConfig, c.Config
	mode := networkMode(hc)
	nets := c.Networks
	c.Unlock()
	s := &netSetup{mode: mode}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	s.etc = container.EtcOptions{Hostname: hostname, Domainname: cfg.Domainname, HostResolv: resolv,
		Search: hc.DNSSearch, Options: hc.DNSOptions}
	s.etc.Nameservers = slices.Clone(hc.DNS)
	s.dns = hc.DNS
	for _, h := range hc.ExtraHosts {
		s.etc.ExtraHosts = append(s.etc.ExtraHosts, d.hostGateway(h))
	}
	if ref, ok := strings.CutPrefix(mode, "container:"); ok {
		other, err := d.ctrs.store.Get(ref)
		if err != nil {
			return nil, fmt.Errorf("joining network namespace of container: %w", err)
		}
		if other.ID == c.ID {
			return nil, errdefs.Invalid("cannot join own network namespace")
		}
		other.Lock()
		pid, running := other.State.Pid, other.Running()
		other.Unlock()
		if !running || pid <= 0 {
			return nil, errdefs.Conflict("cannot join network namespace of a non running container: container %s is not running", strings.TrimPrefix(other.Name, "/"))
		}
		s.nsPath, s.shared = fmt.Sprintf("/proc/%d/ns/net", pid), other
		return s, nil
	}
	if len(nets) == 0 {
		// A container made before berth had networks.
		nets = map[string]*nettypes.EndpointSettings{mode: {}}
	}
	for name := range nets {
		r, err := d.nets.Find(name)
		if err != nil {
			return nil, fmt.Errorf("failed to set up container networking: %w", err)
		}
		switch r.Driver {
		case network.DriverHost:
			s.host, s.etc.HostNetwork = true, true
		case network.DriverNull:
			s.none = true
		}
	}
	if len(hc.Links) > 0 {
		var err error
		if s.etc.LinkLines, s.env, s.linkTo, err = d.legacyLinks(c); err != nil {
			return nil, err
		}
	}
	// On a user-defined network, names resolve through berth's server
	// on the gateway, which forwards the rest to the container's --dns
	// (or the host's) servers.
	if gw, ok := d.nets.DNSServer(mode); ok {
		s.etc.Nameservers, s.etc.Embedded = []netip.Addr{gw}, true
	}
	return s, nil
}

// hostGateway resolves --add-host's host-gateway to the default bridge's
// gateway, as docker does.
func (d *Daemon) hostGateway(h string) string {
	if !strings.HasSuffix(h, "host-gateway") {
		return h
	}
	r, err := d.nets.Find(network.NameBridge)
	if err != nil {
		return h
	}
	for _, c := range r.IPAM.Config {
		if c.Gateway.Is4() {
			return strings.TrimSuffix(h, "host-gateway") + c.Gateway.String()
		}
	}
	return h
}

// joinNetworks gives a created container (its init is pid) its network
// before it starts: loopback up, an endpoint on each bridge network, the
// ports published, and its /etc/hosts with its addresses. On error
// nothing is left.
func (d *Daemon) joinNetworks(c *container.Container, s *netSetup, pid int) (err error) {
	if s.host || s.shared != nil {
		return nil
	}
	ns, err := bridge.OpenNamespace(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return err
	}
	defer ns.Close()
	trace.Step("network: namespace open")
	if err := ns.LoopbackUp(); err != nil {
		return err
	}
	trace.Step("network: lo up")
	if s.none {
		return nil
	}
	c.Lock()
	names := make([]string, 0, len(c.Networks))
	for name := range c.Networks {
		names = append(names, name)
	}
	hc, cfg, id, cname := c.HostConfig, c.Config, c.ID, strings.TrimPrefix(c.Name, "/")
	asked := map[string]*nettypes.EndpointSettings{}
	for n, es := range c.Networks {
		asked[n] = es.Copy()
	}
	c.Unlock()
	if len(names) == 0 {
		names = []string{s.mode}
		asked[s.mode] = &nettypes.EndpointSettings{}
	}
	// The network of the mode first: it has eth0, the default route and
	// the published ports.
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == s.mode) != (names[j] == s.mode) {
			return names[i] == s.mode
		}
		return names[i] < names[j]
	})
	ports := publishedPorts(hc, cfg)
	upstreams := upstreamsOf(s.dns, s.etc.HostResolv)
	eps := map[string]*network.Endpoint{}
	settings := map[string]*nettypes.EndpointSettings{}
	var published nettypes.PortMap
	defer func() {
		if err != nil {
			for netID := range eps {
				d.nets.Leave(netID, id, true)
			}
		}
	}()
	for i, name := range names {
		r, err := d.nets.Find(name)
		if err != nil {
			return fmt.Errorf("failed to set up container networking: %w", err)
		}
		es := asked[name]
		req := network.JoinRequest{Container: id, Name: cname, IfName: "eth" + strconv.Itoa(i), Aliases: es.Aliases,
			Gateway: i == 0, Upstreams: upstreams}
		if i == 0 {
			req.Ports = ports
		}
		if name == network.NameBridge {
			req.LinkTo = s.linkTo
		}
		if es.IPAMConfig != nil {
			req.IPv4, req.IPv6 = es.IPAMConfig.IPv4Address, es.IPAMConfig.IPv6Address
		}
		req.MAC = es.MacAddress
		ep, pub, err := d.nets.Join(ns, r.ID, req)
		if err != nil {
			return err
		}
		trace.Step("network: joined " + name)
		eps[r.ID] = ep
		if i == 0 {
			published = pub
		}
		settings[name] = endpointSettings(es, r, ep, cname, id, hostnameOf(cfg, id))
		if ep.IPv4.IsValid() {
			s.etc.IPs = append(s.etc.IPs, ep.IPv4.Addr())
		}
		if ep.IPv6.IsValid() {
			s.etc.IPs = append(s.etc.IPs, ep.IPv6.Addr())
		}
	}
	c.Lock()
	c.Networks, c.Endpoints, c.Ports = settings, eps, published
	c.Unlock()
	// The hostname and resolv.conf written before the create stand; only
	// /etc/hosts has news (the addresses).
	return container.WriteHosts(c, s.etc)
}

// upstreamsOf are where the embedded server sends the names it does not
// know: the container's --dns servers, else the host's (loopback ones
// too: the daemon reaches them).
func upstreamsOf(dns []netip.Addr, hostResolv []byte) []string {
	servers := dns
	if len(servers) == 0 {
		servers = container.HostNameservers(hostResolv)
	}
	out := make([]string, 0, len(servers))
	for _, a := range servers {
		out = append(out, netip.AddrPortFrom(a, 53).String())
	}
	return out
}

func hostnameOf(cfg *containertypes.Config, id string) string {
	if cfg.Hostname != "" {
		return cfg.Hostname
	}
	return id[:12]
}

// endpointSettings is docker's view of an endpoint: what was asked, and
// what the container got.
func endpointSettings(asked *nettypes.EndpointSettings, r *network.Record, ep *network.Endpoint, name, id, hostname string) *nettypes.EndpointSettings {
	es := asked.Copy()
	if es == nil {
		es = &nettypes.EndpointSettings{}
	}
	es.NetworkID, es.EndpointID, es.MacAddress = r.ID, ep.ID, ep.MAC
	if ep.IPv4.IsValid() {
		es.IPAddress, es.IPPrefixLen = ep.IPv4.Addr(), ep.IPv4.Bits()
	}
	if ep.IPv6.IsValid() {
		es.GlobalIPv6Address, es.GlobalIPv6PrefixLen = ep.IPv6.Addr(), ep.IPv6.Bits()
	}
	if !r.Internal {
		for _, c := range r.IPAM.Config {
			if c.Gateway.Is4() {
				es.Gateway = c.Gateway
			} else {
				es.IPv6Gateway = c.Gateway
			}
		}
	}
	if r.Name != network.NameBridge {
		es.DNSNames = append([]string{name}, es.Aliases...)
		es.DNSNames = append(es.DNSNames, id[:12])
		if hostname != id[:12] && !slices.Contains(es.DNSNames, hostname) {
			es.DNSNames = append(es.DNSNames, hostname)
		}
	}
	return es
}

// leaveNetworks undoes joinNetworks when the container stops: its
// endpoints go, and its settings keep only what was asked.
func (d *Daemon) leaveNetworks(c *container.Container) {
	c.Lock()
	eps := c.Endpoints
	id := c.ID
	c.Endpoints, c.Ports = nil, nil
	for _, es := range c.Networks {
		clearRuntime(es)
	}
	c.Unlock()
	for netID := range eps {
		d.nets.Leave(netID, id, false)
	}
}

func clearRuntime(es *nettypes.EndpointSettings) {
	if es == nil {
		return
	}
	es.EndpointID, es.Gateway, es.IPAddress, es.IPPrefixLen = "", netip.Addr{}, netip.Addr{}, 0
	es.IPv6Gateway, es.GlobalIPv6Address, es.GlobalIPv6PrefixLen = netip.Addr{}, netip.Addr{}, 0
	es.DNSNames = nil
	if es.IPAMConfig == nil || len(es.MacAddress) > 0 && !es.IPAMConfig.IPv4Address.IsValid() {
		es.MacAddress = nil
	}
}

// restoreNetworks takes back a running container's endpoints at daemon
// start.
func (d *Daemon) restoreNetworks(c *container.Container) {
	c.Lock()
	eps := c.Endpoints
	c.Unlock()
	for netID, ep := range eps {
		if err := d.nets.Restore(netID, ep); err != nil {
			d.log.Warn("restore endpoint", "container", c.ID, "network", netID, "error", err)
		}
	}
}

// publishedPorts are the port bindings a container asks for: -p's, and
// with -P every exposed port without one, on a port the kernel picks.
func publishedPorts(hc *containertypes.HostConfig, cfg *containertypes.Config) nettypes.PortMap {
	out := nettypes.PortMap{}
	for p, bs := range hc.PortBindings {
		if len(bs) == 0 {
			bs = []nettypes.PortBinding{{}}
		}
		out[p] = bs
	}
	if hc.PublishAllPorts {
		for p := range cfg.ExposedPorts {
			if _, ok := out[p]; !ok {
				out[p] = []nettypes.PortBinding{{}}
			}
		}
	}
	return out
}

// legacyLinks are a container's --link's on the default bridge, as
// docker makes them: an /etc/hosts line per link and the environment of
// the linked container's address, ports and variables. Each linked
// container must run.
func (d *Daemon) legacyLinks(c *container.Container) (hosts, env []string, targets []network.LinkTarget, err error) {
	c.Lock()
	links := slices.Clone(c.HostConfig.Links)
	self := strings.TrimPrefix(c.Name, "/")
	c.Unlock()
	for _, l := range links {
		name, alias, _ := strings.Cut(l, ":")
		name = strings.TrimPrefix(name, "/")
		if i := strings.LastIndexByte(alias, '/'); i >= 0 {
			alias = alias[i+1:] // docker's stored form, /self/alias
		}
		other, err := d.ctrs.store.Get(name)
		if err != nil {
			return nil, nil, nil, errdefs.Invalid("could not get container for %s", name)
		}
		if alias == "" {
			alias = strings.TrimPrefix(other.Name, "/")
		}
		other.Lock()
		running := other.Running()
		es := other.Networks[network.NameBridge]
		oname, ohost := strings.TrimPrefix(other.Name, "/"), hostnameOf(other.Config, other.ID)
		oenv, exposed := slices.Clone(other.Config.Env), make([]nettypes.Port, 0, len(other.Config.ExposedPorts))
		for p := range other.Config.ExposedPorts {
			exposed = append(exposed, p)
		}
		other.Unlock()
		if !running {
			return nil, nil, nil, errdefs.Invalid("cannot link to a non running container: /%s AS /%s/%s", oname, self, alias)
		}
		if es == nil || !es.IPAddress.IsValid() {
			return nil, nil, nil, errdefs.Invalid("cannot link to /%s, as it does not belong to the default network", oname)
		}
		ip := es.IPAddress.String()
		names := []string{alias}
		if alias != oname {
			names = append(names, oname)
		}
		if ohost != alias && ohost != oname {
			names = append(names, ohost)
		}
		hosts = append(hosts, ip+"\t"+strings.Join(names, " "))
		prefix := strings.ToUpper(strings.ReplaceAll(alias, "-", "_"))
		env = append(env, prefix+"_NAME=/"+self+"/"+alias)
		slices.SortFunc(exposed, func(a, b nettypes.Port) int { return int(a.Num()) - int(b.Num()) })
		targets = append(targets, network.LinkTarget{IP: es.IPAddress, Ports: exposed})
		for i, p := range exposed {
			proto, port := string(p.Proto()), strconv.Itoa(int(p.Num()))
			url := proto + "://" + ip + ":" + port
			if i == 0 {
				env = append(env, prefix+"_PORT="+url)
			}
			k := prefix + "_PORT_" + port + "_" + strings.ToUpper(proto)
			env = append(env, k+"="+url, k+"_ADDR="+ip, k+"_PORT="+port, k+"_PROTO="+proto)
		}
		for _, kv := range oenv {
			k, v, ok := strings.Cut(kv, "=")
			if ok && k != "HOME" && k != "PATH" {
				env = append(env, prefix+"_ENV_"+k+"="+v)
			}
		}
	}
	return hosts, env, targets, nil
}

// NetworkInspect is GET /networks/{id}.
func (d *Daemon) NetworkInspect(ctx context.Context, ref string) (nettypes.Inspect, error) {
	return d.nets.Inspect(ref)
}

// NetworkCreate is POST /networks/create.
func (d *Daemon) NetworkCreate(ctx context.Context, req nettypes.CreateRequest) (*nettypes.CreateResponse, error) {
	resp, err := d.nets.Create(req)
	if err != nil {
		return nil, err
	}
	d.events.Publish(events.NetworkEventType, events.ActionCreate, resp.ID, map[string]string{"name": req.Name, "type": "bridge"})
	return resp, nil
}

// NetworkRemove is DELETE /networks/{id}.
func (d *Daemon) NetworkRemove(ctx context.Context, ref string) error {
	r, err := d.nets.Find(ref)
	if err != nil {
		return err
	}
	if err := d.nets.Remove(r.ID); err != nil {
		return err
	}
	d.events.Publish(events.NetworkEventType, events.ActionDestroy, r.ID, map[string]string{"name": r.Name, "type": r.Driver})
	return nil
}

// writeEtcFiles writes a start's /etc/hostname, /etc/hosts and
// /etc/resolv.conf before the runtime's create bind-mounts them: with
// --network container:NAME, that container's; on a bridge network,
// /etc/hosts is written again once the addresses are known.
func (d *Daemon) writeEtcFiles(c *container.Container, s *netSetup, hostname string) error {
	if s.shared != nil {
		for _, f := range [][2]string{{s.shared.HostnamePath(), c.HostnamePath()}, {s.shared.HostsPath(), c.HostsPath()},
			{s.shared.ResolvConfPath(), c.ResolvConfPath()}} {
			b, err := os.ReadFile(f[0])
			if err != nil {
				return fmt.Errorf("the network container's /etc files: %w", err)
			}
			if err := os.WriteFile(f[1], b, 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	s.etc.Hostname = hostname
	return container.WriteEtcFiles(c, s.etc)
}

// networkSettings is inspect's NetworkSettings of a container (its lock
// held).
func networkSettings(c *container.Container) *containertypes.NetworkSettings {
	out := &containertypes.NetworkSettings{Networks: map[string]*nettypes.EndpointSettings{}, Ports: nettypes.PortMap{}}
	for name, es := range c.Networks {
		out.Networks[name] = es.Copy()
	}
	for p, bs := range c.Ports {
		out.Ports[p] = slices.Clone(bs)
	}
	if c.Running() {
		out.SandboxID = c.ID
		if c.State.Pid > 0 {
			out.SandboxKey = fmt.Sprintf("/proc/%d/ns/net", c.State.Pid)
		}
		for p := range c.Config.ExposedPorts {
			if _, ok := out.Ports[p]; !ok {
				out.Ports[p] = nil
			}
		}
	}
	return out
}

// portSummaries is ps's view of the ports: each published binding, and
// each exposed port without one.
func portSummaries(published nettypes.PortMap, exposed nettypes.PortSet) []containertypes.PortSummary {
	out := []containertypes.PortSummary{}
	for p, bs := range published {
		for _, b := range bs {
			n, _ := strconv.ParseUint(b.HostPort, 10, 16)
			out = append(out, containertypes.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: uint16(n), Type: string(p.Proto())})
		}
	}
	for p := range exposed {
		if _, ok := published[p]; !ok {
			out = append(out, containertypes.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
		}
	}
	return out
}

// NetworkList is GET /networks with docker's filters: driver, id
// (prefix), label, name (part of the name), scope, type (custom or
// builtin), dangling.
func (d *Daemon) NetworkList(ctx context.Context, f filters.Args) ([]nettypes.Summary, error) {
	if err := f.Validate("driver", "id", "label", "name", "scope", "type", "dangling"); err != nil {
		return nil, err
	}
	for t := range f["type"] {
		if t != "custom" && t != "builtin" {
			return nil, errdefs.Invalid("invalid filter: 'type'='%s'", t)
		}
	}
	dangling, hasDangling, err := f.Bool("dangling")
	if err != nil {
		return nil, err
	}
	out := []nettypes.Summary{}
	for _, n := range d.nets.List() {
		typ := "custom"
		if network.IsBuiltin(n.Name) {
			typ = "builtin"
		}
		if !f.Match("driver", n.Driver) || !f.Match("scope", n.Scope) || !f.Match("type", typ) ||
			!f.MatchLabels("label", n.Labels) || !anyPrefix(f.Get("id"), n.ID, strings.HasPrefix) ||
			!anyPrefix(f.Get("name"), n.Name, strings.Contains) {
			continue
		}
		// Dangling, as dockerd: no container runs on it (a stopped one
		// naming it does not count).
		if hasDangling && dangling != (typ == "custom" && len(n.Containers) == 0) {
			continue
		}
		out = append(out, nettypes.Summary{Network: n.Network})
	}
	return out, nil
}

// anyPrefix says whether match(s, v) holds for one of vs, or vs is empty.
func anyPrefix(vs []string, s string, match func(s, v string) bool) bool {
	if len(vs) == 0 {
		return true
	}
	for _, v := range vs {
		if match(s, v) {
			return true
		}
	}
	return false
}

// networkReferenced says whether a container (running or not) is on the
// network.
func (d *Daemon) networkReferenced(id, name string) bool {
	for _, c := range d.ctrs.store.List() {
		c.Lock()
		es, on := c.Networks[name]
		c.Unlock()
		if on && (es == nil || es.NetworkID == "" || es.NetworkID == id) {
			return true
		}
	}
	return false
}

// NetworksPrune is POST /networks/prune: user-defined networks no
// container is on (filters until, label, label!).
func (d *Daemon) NetworksPrune(ctx context.Context, f filters.Args) (*nettypes.PruneReport, error) {
	if err := f.Validate("until", "label", "label!"); err != nil {
		return nil, err
	}
	until, err := untilFilter(f)
	if err != nil {
		return nil, err
	}
	rep := &nettypes.PruneReport{NetworksDeleted: []string{}}
	for _, n := range d.nets.List() {
		if network.IsBuiltin(n.Name) || len(n.Containers) > 0 || d.networkReferenced(n.ID, n.Name) ||
			!f.MatchLabels("label", n.Labels) || f.Has("label!") && matchAnyLabel(f.Get("label!"), n.Labels) ||
			!until.IsZero() && !n.Created.Before(until) {
			continue
		}
		if err := d.NetworkRemove(ctx, n.ID); err != nil {
			if errdefs.Is(err, errdefs.KindNotFound) || errdefs.Is(err, errdefs.KindForbidden) {
				continue
			}
			return nil, err
		}
		rep.NetworksDeleted = append(rep.NetworksDeleted, n.Name)
	}
	d.events.Publish(events.NetworkEventType, events.ActionPrune, "", map[string]string{"reclaimed": "0"})
	return rep, nil
}

// networkAndContainer finds what a connect or disconnect names, and holds
// the container's operation lock (released by unlock).
func (d *Daemon) networkAndContainer(ref, containerRef string) (*network.Record, *container.Container, func(), error) {
	r, err := d.nets.Find(ref)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := d.ctrs.store.Get(containerRef)
	if err != nil {
		return nil, nil, nil, err
	}
	return r, c, d.opLock(c.ID), nil
}

// NetworkConnect is POST /networks/{id}/connect: a running container gets
// an endpoint at once, a stopped one at its next start.
func (d *Daemon) NetworkConnect(ctx context.Context, ref, containerRef string, es *nettypes.EndpointSettings) error {
	r, c, unlock, err := d.networkAndContainer(ref, containerRef)
	if err != nil {
		return err
	}
	defer unlock()
	c.Lock()
	mode := networkMode(c.HostConfig)
	_, already := c.Networks[r.Name]
	cur, err := d.nets.Find(mode)
	c.Unlock()
	if strings.HasPrefix(mode, "container:") || err == nil && cur.Driver != network.DriverBridge {
		return errdefs.Forbidden("container sharing network namespace with another container or host cannot be connected to any other network")
	}
	if r.Driver != network.DriverBridge {
		return errdefs.Forbidden("container cannot be disconnected from host network or connected to host network")
	}
	if already {
		return errdefs.Forbidden("endpoint with name %s already exists in network %s", strings.TrimPrefix(c.Name, "/"), r.Name)
	}
	es = es.Copy()
	if es == nil {
		es = &nettypes.EndpointSettings{}
	}
	es.NetworkID = r.ID
	if r.Name == network.NameBridge && len(es.Aliases) > 0 {
		return errdefs.Invalid("network-scoped alias is supported only for containers in user defined networks")
	}
	c.Lock()
	pid, running := c.State.Pid, c.Running()
	cname, id, hostname := strings.TrimPrefix(c.Name, "/"), c.ID, hostnameOf(c.Config, c.ID)
	c.Unlock()
	if running && pid > 0 {
		ns, err := bridge.OpenNamespace(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			return err
		}
		defer ns.Close()
		links, err := ns.Links()
		if err != nil {
			return err
		}
		ifName := ""
		for i := 0; ifName == ""; i++ {
			if n := "eth" + strconv.Itoa(i); !slices.Contains(links, n) {
				ifName = n
			}
		}
		req := network.JoinRequest{Container: id, Name: cname, IfName: ifName, Aliases: es.Aliases, MAC: es.MacAddress}
		if es.IPAMConfig != nil {
			req.IPv4, req.IPv6 = es.IPAMConfig.IPv4Address, es.IPAMConfig.IPv6Address
		}
		c.Lock()
		if ep := firstEndpoint(c.Endpoints); ep != nil {
			req.Upstreams = ep.Upstreams
		}
		c.Unlock()
		ep, _, err := d.nets.Join(ns, r.ID, req)
		if err != nil {
			return err
		}
		es = endpointSettings(es, r, ep, cname, id, hostname)
		c.Lock()
		if c.Endpoints == nil {
			c.Endpoints = map[string]*network.Endpoint{}
		}
		c.Endpoints[r.ID] = ep
		c.Unlock()
	}
	c.Lock()
	if c.Networks == nil {
		c.Networks = map[string]*nettypes.EndpointSettings{}
	}
	c.Networks[r.Name] = es
	err = c.Save()
	c.Unlock()
	d.events.Publish(events.NetworkEventType, events.ActionConnect, r.ID, map[string]string{"container": id, "name": r.Name, "type": r.Driver})
	return err
}

func firstEndpoint(eps map[string]*network.Endpoint) *network.Endpoint {
	for _, ep := range eps {
		return ep
	}
	return nil
}

// NetworkDisconnect is POST /networks/{id}/disconnect.
func (d *Daemon) NetworkDisconnect(ctx context.Context, ref, containerRef string, force bool) error {
	r, c, unlock, err := d.networkAndContainer(ref, containerRef)
	if err != nil {
		return err
	}
	defer unlock()
	c.Lock()
	_, on := c.Networks[r.Name]
	id := c.ID
	c.Unlock()
	if !on {
		return errdefs.Forbidden("container %s is not connected to network %s", id, r.Name)
	}
	if r.Driver != network.DriverBridge {
		return errdefs.Forbidden("container cannot be disconnected from host network or connected to host network")
	}
	d.nets.Leave(r.ID, id, true)
	c.Lock()
	delete(c.Networks, r.Name)
	delete(c.Endpoints, r.ID)
	err = c.Save()
	c.Unlock()
	d.events.Publish(events.NetworkEventType, events.ActionDisconnect, r.ID, map[string]string{"container": id, "name": r.Name, "type": r.Driver})
	return err
}

// withLinkEnv adds the legacy links' variables to env, which wins where
// both have one (as docker's).
func withLinkEnv(env, links []string) []string {
	own := make(map[string]bool, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		own[k] = true
	}
	for _, kv := range links {
		if k, _, _ := strings.Cut(kv, "="); !own[k] {
			env = append(env, kv)
		}
	}
	return env
}

// netStats are stats' per-interface counters of a running container on
// bridge networks (from its namespace's /proc/<pid>/net/dev); none on
// host, none or another container's network, as dockerd.
func (d *Daemon) netStats(id string) map[string]containertypes.NetworkStats {
	c, err := d.ctrs.store.Get(id)
	if err != nil {
		return nil
	}
	c.Lock()
	pid, eps := c.State.Pid, len(c.Endpoints)
	c.Unlock()
	if pid <= 0 || eps == 0 {
		return nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil
	}
	out := map[string]containertypes.NetworkStats{}
	for _, line := range strings.Split(string(b), "\n")[2:] {
		name, rest, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if !ok || name == "lo" || len(f) < 16 {
			continue
		}
		n := make([]uint64, 16)
		for i := range n {
			n[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		out[name] = containertypes.NetworkStats{RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11]}
	}
	return out
}

// onNetwork is ps's network filter: the container is on a network named
// by one of refs (a name, or an ID or its prefix).
func onNetwork(c *container.Container, refs []string) bool {
	for name, es := range c.Networks {
		for _, ref := range refs {
			if ref == name || es != nil && es.NetworkID != "" && strings.HasPrefix(es.NetworkID, ref) {
				return true
			}
		}
	}
	return false
}
