package command

import (
	"berth.dev/berth/internal/lazyregexp"
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"berth.dev/berth/client"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// networkAttachment is one --network: a name, or docker's long form
// name=...,alias=...,ip=...,ip6=...,mac-address=...,link-local-ip=...,
// driver-opt=k=v,gw-priority=N.
type networkAttachment struct {
	target, ipv4, ipv6, mac string
	aliases, links, llips   []string
	driverOpts              map[string]string
	gwPriority              int
}

// networkFlag is run and create's repeatable --network.
type networkFlag []networkAttachment

// longNetwork is docker's test for the long form: a key=value anywhere.
var longNetwork = lazyregexp.New(`\w+=\w+(,\w+=\w+)*`)

func (n *networkFlag) String() string { return "" }
func (n *networkFlag) Type() string   { return "network" }
func (n *networkFlag) Set(v string) error {
	if !longNetwork.MatchString(v) {
		*n = append(*n, networkAttachment{target: v})
		return nil
	}
	fields, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return err
	}
	var a networkAttachment
	for _, field := range fields {
		// docker lowers the whole field, values too
		key, val, ok := strings.Cut(strings.ToLower(field), "=")
		if !ok || key == "" {
			return fmt.Errorf("invalid field %s", field)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "name":
			a.target = val
		case "alias":
			a.aliases = append(a.aliases, val)
		case "ip":
			a.ipv4 = val
		case "ip6":
			a.ipv6 = val
		case "mac-address":
			a.mac = val
		case "link-local-ip":
			a.llips = append(a.llips, val)
		case "driver-opt":
			k, dv, ok := strings.Cut(val, "=")
			if !ok || k == "" {
				return errors.New("invalid key value pair format in driver options")
			}
			if a.driverOpts == nil {
				a.driverOpts = map[string]string{}
			}
			a.driverOpts[strings.TrimSpace(k)] = strings.TrimSpace(dv)
		case "gw-priority":
			p, err := strconv.Atoi(val)
			if err != nil {
				var ne *strconv.NumError
				if errors.As(err, &ne) {
					err = ne.Err
				}
				return fmt.Errorf("invalid gw-priority (%s): %w", val, err)
			}
			a.gwPriority = p
		default:
			return errors.New("invalid field key " + key)
		}
	}
	if a.target == "" {
		return errors.New("network name/id is not specified")
	}
	*n = append(*n, a)
	return nil
}

// mode is HostConfig.NetworkMode: the first network, else "default".
func (n networkFlag) mode() string {
	if len(n) == 0 {
		return "default"
	}
	return n[0].target
}

// endpoints builds NetworkingConfig's endpoints as docker's CLI does: the
// first network (or "default") takes --ip, --ip6, --mac-address,
// --network-alias, --link and --link-local-ip; a lone network with
// nothing set sends no endpoint.
func (o *containerOptions) endpoints() (map[string]*client.EndpointConfig, error) {
	eps := map[string]*client.EndpointConfig{}
	nets := o.networks
	if len(nets) == 0 {
		a := networkAttachment{target: "default"}
		if err := o.applyTo(&a); err != nil {
			return nil, err
		}
		ep, err := a.endpoint()
		if err != nil {
			return nil, err
		}
		eps["default"] = ep
	}
	var userDefined, builtin bool
	for i, a := range nets {
		if container.NetworkMode(a.target).IsUserDefined() {
			userDefined = true
		} else {
			builtin = true
		}
		if i == 0 {
			if err := o.applyTo(&a); err != nil {
				return nil, err
			}
		}
		ep, err := a.endpoint()
		if err != nil {
			return nil, err
		}
		if _, ok := eps[a.target]; ok {
			return nil, fmt.Errorf("network %q is specified multiple times", a.target)
		}
		if i == 0 && len(nets) == 1 && ep.IPAM == nil && len(ep.Links) == 0 && len(ep.Aliases) == 0 &&
			len(ep.DriverOpts) == 0 && ep.GwPriority == 0 && len(ep.MacAddress) == 0 {
			continue
		}
		eps[a.target] = ep
	}
	if userDefined && builtin {
		return nil, errors.New("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
	}
	return eps, nil
}

// applyTo puts the container-wide network flags on the first network.
func (o *containerOptions) applyTo(a *networkAttachment) error {
	for _, c := range []struct {
		both bool
		msg  string
	}{
		{len(a.aliases) > 0 && len(o.aliases) > 0, "--network-alias and per-network alias"},
		{len(a.links) > 0 && len(o.links) > 0, "--link and per-network links"},
		{a.ipv4 != "" && o.ip != "", "--ip and per-network IPv4 address"},
		{a.ipv6 != "" && o.ip6 != "", "--ip6 and per-network IPv6 address"},
		{a.mac != "" && o.macAddress != "", "--mac-address and per-network MAC address"},
		{len(a.llips) > 0 && len(o.linkLocalIPs) > 0, "--link-local-ip and per-network link-local IP addresses"},
	} {
		if c.both {
			return errors.New("conflicting options: cannot specify both " + c.msg)
		}
	}
	if len(o.aliases) > 0 {
		a.aliases = append([]string(nil), o.aliases...)
	}
	// On a user-defined network --link is the endpoint's; on the default
	// bridge it is a legacy link (HostConfig.Links) only.
	if container.NetworkMode(a.target).IsUserDefined() && len(o.links) > 0 {
		a.links = append([]string(nil), o.links...)
	}
	if o.ip != "" {
		a.ipv4 = o.ip
	}
	if o.ip6 != "" {
		a.ipv6 = o.ip6
	}
	if o.macAddress != "" {
		a.mac = o.macAddress
	}
	if len(o.linkLocalIPs) > 0 {
		a.llips = append([]string(nil), o.linkLocalIPs...)
	}
	return nil
}

// endpoint is the attachment's endpoint settings, its addresses as typed.
func (a networkAttachment) endpoint() (*client.EndpointConfig, error) {
	if strings.TrimSpace(a.target) == "" {
		return nil, errors.New("no name set for network")
	}
	if !container.NetworkMode(a.target).IsUserDefined() {
		if len(a.aliases) > 0 {
			return nil, errors.New("network-scoped aliases are only supported for user-defined networks")
		}
		if len(a.links) > 0 {
			return nil, errors.New("links are only supported for user-defined networks")
		}
	}
	ep := &client.EndpointConfig{EndpointSettings: network.EndpointSettings{
		Aliases: a.aliases, Links: a.links, DriverOpts: a.driverOpts, GwPriority: a.gwPriority}}
	if a.ipv4 != "" || a.ipv6 != "" || len(a.llips) > 0 {
		ep.IPAM = &client.EndpointIPAM{IPv4Address: a.ipv4, IPv6Address: a.ipv6, LinkLocalIPs: a.llips}
	}
	if a.mac != "" {
		mac, err := net.ParseMAC(strings.TrimSpace(a.mac))
		if err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", a.mac)
		}
		ep.MacAddress = network.HardwareAddr(mac)
	}
	return ep, nil
}

// dnsFlag is --dns: an IP address, checked as it is given.
type dnsFlag struct{ l *listFlag }

func (f *dnsFlag) String() string { return f.l.String() }
func (f *dnsFlag) Type() string   { return "list" }
func (f *dnsFlag) Set(v string) error {
	ip := net.ParseIP(strings.TrimSpace(v))
	if ip == nil {
		return fmt.Errorf("IP address is not correctly formatted: %s", v)
	}
	return f.l.Set(ip.String())
}

// addHostFlag is --add-host host:ip or host=ip (the IP may be bracketed,
// or host-gateway), sent as host:ip.
type addHostFlag struct{ l *listFlag }

func (f *addHostFlag) String() string { return f.l.String() }
func (f *addHostFlag) Type() string   { return "list" }
func (f *addHostFlag) Set(v string) error {
	host, ip, ok := strings.Cut(v, "=")
	if !ok {
		host, ip, ok = strings.Cut(v, ":") // only the first: IPv6 has more
	}
	if !ok || host == "" || strings.Contains(host, ":") {
		return fmt.Errorf("bad format for add-host: %q", v)
	}
	if ip != "host-gateway" {
		if len(ip) > 2 && ip[0] == '[' && ip[len(ip)-1] == ']' {
			ip = ip[1 : len(ip)-1]
		}
		if net.ParseIP(strings.TrimSpace(ip)) == nil {
			return fmt.Errorf("invalid IP address in add-host: %q", ip)
		}
	}
	return f.l.Set(host + ":" + ip)
}
