// Package dns is the embedded name server of user-defined networks: it
// answers for containers' names and aliases and forwards the rest to the
// resolvers the client container was given (or the host's).
package dns

import (
	"errors"
	"net/netip"
)

// Resolver is what the server asks the daemon. Its methods are called
// concurrently.
type Resolver interface {
	// Lookup returns the addresses name has for a query from client (the
	// containers and aliases on the networks client shares with them);
	// ok is false when berth does not know the name, and the query is
	// forwarded.
	Lookup(client netip.Addr, name string) (addrs []netip.Addr, ok bool)
	// Reverse returns the name of ip for a PTR query from client.
	Reverse(client, ip netip.Addr) (name string, ok bool)
	// Upstreams returns the servers ("ip:port") that queries from client
	// go to when berth does not know the name; none: the answer is
	// REFUSED (internal networks).
	Upstreams(client netip.Addr) []string
}

// Server answers on one address, on the same port for udp and tcp.
type Server struct{}

var errTodo = errors.New("dns: not implemented")

// Listen starts a server on addr (a port of 0 picks a free one, the same
// for udp and tcp).
func Listen(addr netip.AddrPort, r Resolver) (*Server, error) { return nil, errTodo }

// Port is the port the server listens on.
func (s *Server) Port() uint16 { return 0 }

// Close stops the server and waits for its goroutines.
func (s *Server) Close() error { return errTodo }
