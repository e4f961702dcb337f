// Package firewall puts berth's packet rules in the kernel with nftables.
// Each bridge network has its own tables, named for its bridge
// ("berth-<bridge>"), so networks and daemons never touch each other's
// rules and a network's rules go with one delete.
package firewall

import (
	"errors"
	"net/netip"
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

// Port is one published port.
type Port struct {
	Proto    string     // "tcp" or "udp"
	HostIP   netip.Addr // zero: every address of the host (of IP's family)
	HostPort uint16
	IP       netip.Addr // the container's address
	Port     uint16
}

// Link lets From reach To on Port when the network forbids ICC (docker's
// --link), and To answer.
type Link struct {
	From, To netip.Addr
	Proto    string
	Port     uint16
}

// Firewall is a handle on the kernel's nftables. Its methods are safe for
// concurrent use.
type Firewall struct{}

var errTodo = errors.New("firewall: not implemented")

// New returns a Firewall, or an error saying why nftables cannot be used.
func New() (*Firewall, error) { return nil, errTodo }

// SetNetwork creates the network's tables, or replaces their network-wide
// rules (keeping its endpoints').
func (f *Firewall) SetNetwork(n Network) error { return errTodo }

// DeleteNetwork removes the network's tables; a missing one is not an error.
func (f *Firewall) DeleteNetwork(bridge string) error { return errTodo }

// SetEndpoint sets one endpoint's published ports and links on the
// network of bridge, replacing what was set for id before, in one atomic
// change.
func (f *Firewall) SetEndpoint(bridge, id string, ports []Port, links []Link) error { return errTodo }

// RemoveEndpoint removes what SetEndpoint set for id; none is not an error.
func (f *Firewall) RemoveEndpoint(bridge, id string) error { return errTodo }

// Bridges lists the bridges that have berth tables (to reconcile at
// daemon start).
func (f *Firewall) Bridges() ([]string, error) { return nil, errTodo }
