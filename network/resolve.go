package network

import (
	"net/netip"
	"slices"
	"strings"
)

// resolver answers one user-defined network's DNS server: a query comes
// from a container's address on that network, and names resolve among
// the containers on every user-defined network the asker is on, as
// docker's do (the default bridge has no names: legacy links write
// /etc/hosts instead).
type resolver struct {
	m *Manager
	n *nw
}

// asker finds the container a query comes from.
func (r *resolver) asker(client netip.Addr) *Endpoint {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	for _, ep := range r.n.eps {
		if ep.IPv4.Addr() == client || ep.IPv6.Addr() == client {
			return ep
		}
	}
	return nil
}

// peers calls f with each endpoint on the user-defined networks the
// container asker is on, until f returns true.
func (r *resolver) peers(asker string, f func(n *nw, ep *Endpoint) bool) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	for _, n := range r.m.nets {
		if n.Driver != DriverBridge || n.isDefault() {
			continue
		}
		n.mu.Lock()
		_, on := n.eps[asker]
		stop := false
		if on {
			for _, ep := range n.eps {
				if stop = f(n, ep); stop {
					break
				}
			}
		}
		n.mu.Unlock()
		if stop {
			return
		}
	}
}

func (r *resolver) Lookup(client netip.Addr, name string) ([]netip.Addr, bool) {
	me := r.asker(client)
	if me == nil {
		return nil, false
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	var out []netip.Addr
	found := false
	r.peers(me.Container, func(n *nw, ep *Endpoint) bool {
		if !ep.answers(name) {
			return false
		}
		found = true
		for _, a := range []netip.Prefix{ep.IPv4, ep.IPv6} {
			if a.IsValid() && !slices.Contains(out, a.Addr()) {
				out = append(out, a.Addr())
			}
		}
		return false
	})
	return out, found
}

// answers says whether ep goes by name: its container's name, its short
// ID, or one of its aliases on the network.
func (ep *Endpoint) answers(name string) bool {
	if strings.EqualFold(ep.Name, name) || len(ep.Container) >= 12 && ep.Container[:12] == name {
		return true
	}
	for _, a := range ep.Aliases {
		if strings.EqualFold(a, name) {
			return true
		}
	}
	return false
}

func (r *resolver) Reverse(client, ip netip.Addr) (string, bool) {
	me := r.asker(client)
	if me == nil {
		return "", false
	}
	name := ""
	r.peers(me.Container, func(n *nw, ep *Endpoint) bool {
		if ep.IPv4.Addr() == ip || ep.IPv6.Addr() == ip {
			name = ep.Name + "." + n.Name
			return true
		}
		return false
	})
	return name, name != ""
}

func (r *resolver) Upstreams(client netip.Addr) []string {
	if r.n.Internal {
		return nil
	}
	me := r.asker(client)
	if me == nil {
		return nil
	}
	return me.Upstreams
}
