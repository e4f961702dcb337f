// Package dns is the embedded name server of user-defined networks: it
// answers for containers' names and aliases and forwards the rest to the
// resolvers the client container was given (or the host's).
//
// Messages are parsed, built and exchanged with upstreams by
// github.com/miekg/dns; the serving loops are our own rather than
// dns.Server's because that one wakes every ReadTimeout while idle, starts a
// goroutine for every UDP packet and takes any number of TCP connections.
// Here one goroutine reads UDP and answers known names inline, UDP queries
// to forward run in at most maxForwards goroutines (a query finding them
// all busy is dropped: the client asks again), and at most maxTCPConns TCP
// connections are served at once, each a goroutine answering its queries in
// turn, with deadlines. Idle, the server's goroutines sleep in the kernel.
package dns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
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

const (
	// ttl of berth's own answers. Docker says 600; a container that is
	// recreated under its name usually gets a new address, and a caching
	// client (nginx, the JVM, a container's own dnsmasq) should see it
	// within a minute. The server is on the host next to the client, so
	// asking again costs next to nothing.
	ttl = 60
	// forwardTimeout bounds one forwarded query over all upstreams: less
	// than the 5 s glibc and musl wait for an answer, so the client gets
	// our SERVFAIL rather than timing out and asking again.
	forwardTimeout = 4 * time.Second
	// upstreamTimeout is what one upstream gets when others are left to
	// try (a single upstream gets all of forwardTimeout).
	upstreamTimeout = 2 * time.Second
	// maxForwards bounds the forwards in flight from UDP queries, and so
	// their goroutines and sockets.
	maxForwards = 128
	// maxTCPConns bounds the TCP connections served at once; more are
	// closed as soon as they are accepted.
	maxTCPConns = 64
	// tcpIdle is how long a TCP connection may wait for its next query;
	// tcpWrite how long writing an answer may take; maxTCPQueries is how
	// many queries one connection gets before it is closed.
	tcpIdle       = 8 * time.Second
	tcpWrite      = 2 * time.Second
	maxTCPQueries = 128
	// udpBuffer holds any query: they are a few hundred bytes at most, a
	// longer datagram is dropped.
	udpBuffer = 4096
	// ednsSize is the UDP payload size our own answers advertise: what
	// fits in any path's MTU without fragments (DNS flag day 2020).
	ednsSize = 1232
)

// Server answers on one address, on the same port for udp and tcp.
type Server struct {
	r    Resolver
	self netip.AddrPort // where the server listens
	udp  *net.UDPConn
	tcp  *net.TCPListener

	ctx    context.Context // done when Close is called: aborts forwards
	cancel context.CancelFunc
	wg     sync.WaitGroup
	fwd    chan struct{} // a token a UDP forward in flight
	tcpSem chan struct{} // a token a TCP connection

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{} // open TCP connections, closed by Close

	closeOnce sync.Once
}

// Listen starts a server on addr (a port of 0 picks a free one, the same
// for udp and tcp). addr should be a specific address, not the unspecified
// one: answers go out from the address the socket is bound to, and clients
// are told apart by their source addresses.
func Listen(addr netip.AddrPort, r Resolver) (*Server, error) {
	udp, tcp, err := listen(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		r:      r,
		self:   netip.AddrPortFrom(addr.Addr().Unmap(), uint16(udp.LocalAddr().(*net.UDPAddr).Port)),
		udp:    udp,
		tcp:    tcp,
		ctx:    ctx,
		cancel: cancel,
		fwd:    make(chan struct{}, maxForwards),
		tcpSem: make(chan struct{}, maxTCPConns),
		conns:  make(map[net.Conn]struct{}),
	}
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	return s, nil
}

// listen opens udp and tcp sockets on addr. With port 0 the kernel picks
// udp's port, which tcp may already have taken: then it tries another.
func listen(addr netip.AddrPort) (*net.UDPConn, *net.TCPListener, error) {
	for try := 0; ; try++ {
		udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		if err != nil {
			return nil, nil, fmt.Errorf("dns: listen on udp %s: %w", addr, err)
		}
		port := uint16(udp.LocalAddr().(*net.UDPAddr).Port)
		tcp, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr.Addr(), port)))
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if addr.Port() != 0 || !errors.Is(err, syscall.EADDRINUSE) || try == 20 {
			return nil, nil, fmt.Errorf("dns: listen on tcp %s: %w", netip.AddrPortFrom(addr.Addr(), port), err)
		}
	}
}

// Port is the port the server listens on.
func (s *Server) Port() uint16 { return s.self.Port() }

// Close stops the server and waits for its goroutines.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.cancel()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		err = errors.Join(s.udp.Close(), s.tcp.Close())
		s.wg.Wait()
	})
	if err != nil {
		return fmt.Errorf("dns: close %s: %w", s.self, err)
	}
	return nil
}

// serveUDP reads queries until the socket is closed. Known names are
// answered here, without a goroutine; the rest go to a forward.
func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, udpBuffer+1) // a byte more: longer ones show
	var backoff time.Duration
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.pause(&backoff)
			continue
		}
		backoff = 0
		if n > udpBuffer {
			continue
		}
		req := parse(buf[:n])
		if req == nil {
			continue
		}
		client := from.Addr().Unmap()
		reply := s.local(client, req)
		if reply != nil {
			s.writeUDP(reply, req, from)
			continue
		}
		select {
		case s.fwd <- struct{}{}:
		default:
			continue // too many in flight: drop, the client asks again
		}
		s.wg.Add(1)
		go func() {
			defer func() { <-s.fwd; s.wg.Done() }()
			if reply := s.forward(client, req, false); reply != nil {
				s.writeUDP(reply, req, from)
			}
		}()
	}
}

func (s *Server) writeUDP(reply, req *dns.Msg, to netip.AddrPort) {
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = max(size, int(opt.UDPSize()))
	}
	b, err := finish(reply, req, size)
	if err != nil {
		return
	}
	s.udp.WriteToUDPAddrPort(b, to) // a lost answer is asked again
}

// finish gives reply the client's query ID and EDNS0 and packs it within
// size bytes, truncated (TC set) when it does not fit.
func finish(reply, req *dns.Msg, size int) ([]byte, error) {
	reply.Id = req.Id
	if opt := req.IsEdns0(); opt != nil && reply.IsEdns0() == nil {
		reply.SetEdns0(ednsSize, false)
	}
	reply.Truncate(size)
	return reply.Pack()
}

// pause waits after an error of the socket, longer each time up to a
// second, so a lasting one (out of file descriptors) does not spin; Close
// ends the wait.
func (s *Server) pause(backoff *time.Duration) {
	*backoff = min(max(2**backoff, 5*time.Millisecond), time.Second)
	t := time.NewTimer(*backoff)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	}
}

// serveTCP accepts connections until the listener is closed.
func (s *Server) serveTCP() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := s.tcp.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.pause(&backoff) // e.g. EMFILE, which would spin
			continue
		}
		backoff = 0
		select {
		case s.tcpSem <- struct{}{}:
		default:
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			<-s.tcpSem
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// serveConn answers the queries of one TCP connection in turn.
func (s *Server) serveConn(c *net.TCPConn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		<-s.tcpSem
		s.wg.Done()
	}()
	client := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	conn := &dns.Conn{Conn: c}
	b := make([]byte, dns.MaxMsgSize)
	for range maxTCPQueries {
		c.SetReadDeadline(time.Now().Add(tcpIdle))
		n, err := conn.Read(b)
		if err != nil {
			return
		}
		req := parse(b[:n])
		if req == nil {
			return
		}
		reply := s.local(client, req)
		if reply == nil {
			reply = s.forward(client, req, true)
		}
		if reply == nil {
			return
		}
		out, err := finish(reply, req, dns.MaxMsgSize)
		if err != nil {
			return
		}
		c.SetWriteDeadline(time.Now().Add(tcpWrite))
		if _, err := conn.Write(out); err != nil {
			return
		}
	}
}

// parse returns the query in b, or nil when b is not one worth an answer:
// not a message, a response (answering those could loop between servers),
// or not exactly one question with no records but EDNS0's (and TSIG's).
func parse(b []byte) *dns.Msg {
	req := new(dns.Msg)
	if err := req.Unpack(b); err != nil {
		return nil
	}
	if req.Response || len(req.Question) != 1 || len(req.Answer) != 0 || len(req.Ns) != 0 || len(req.Extra) > 2 {
		return nil
	}
	return req
}

// local answers req from berth's names, or returns nil when the query is
// to be forwarded.
func (s *Server) local(client netip.Addr, req *dns.Msg) *dns.Msg {
	if req.Opcode != dns.OpcodeQuery {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeNotImplemented)
		return m
	}
	q := req.Question[0]
	if q.Qclass != dns.ClassINET {
		return nil
	}
	reply := func() *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		m.RecursionAvailable = true
		return m
	}
	hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: ttl}
	if q.Qtype == dns.TypePTR {
		ip, ok := arpaAddr(q.Name)
		if !ok {
			return nil
		}
		name, ok := s.r.Reverse(client, ip)
		if !ok {
			return nil
		}
		m := reply()
		m.Answer = []dns.RR{&dns.PTR{Hdr: hdr, Ptr: dns.Fqdn(name)}}
		return m
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	if name == "" {
		return nil
	}
	addrs, ok := s.r.Lookup(client, name)
	if !ok {
		return nil
	}
	// A name berth knows has no other records: other types, and a family
	// it has no address of, get an empty NOERROR (NODATA), not NXDOMAIN,
	// which would tell the client the name does not exist at all.
	m := reply()
	for _, a := range addrs {
		switch {
		case q.Qtype == dns.TypeA && a.Unmap().Is4():
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.Unmap().AsSlice()})
		case q.Qtype == dns.TypeAAAA && a.Is6() && !a.Is4In6():
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	// Clients mostly take the first address: shuffling spreads them over
	// the containers sharing an alias, as docker does.
	rand.Shuffle(len(m.Answer), func(i, j int) { m.Answer[i], m.Answer[j] = m.Answer[j], m.Answer[i] })
	return m
}

// arpaAddr returns the address a PTR query's name is for: the four octets
// of an in-addr.arpa name or the 32 nibbles of an ip6.arpa name, reversed.
func arpaAddr(name string) (netip.Addr, bool) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	var addr string
	v4, ok := strings.CutSuffix(name, ".in-addr.arpa")
	if ok {
		labels := strings.Split(v4, ".")
		slices.Reverse(labels)
		addr = strings.Join(labels, ".")
	} else if v6, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		labels := strings.Split(v6, ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		slices.Reverse(labels)
		var b strings.Builder
		for i, l := range labels {
			if len(l) != 1 || !strings.Contains("0123456789abcdef", l) {
				return netip.Addr{}, false
			}
			if i > 0 && i%4 == 0 {
				b.WriteByte(':')
			}
			b.WriteString(l)
		}
		addr = b.String()
	}
	ip, err := netip.ParseAddr(addr) // strict: no leading zeros, no octet over 255
	if err != nil || ip.Is4() != (v4 != name) || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip, true
}

// forward asks client's upstreams in turn within forwardTimeout, over TCP
// when the client asked over TCP or an upstream's UDP answer is truncated,
// and returns the first answer that is not a failure; REFUSED without
// upstreams, SERVFAIL when none answered, nil when the server is closing.
func (s *Server) forward(client netip.Addr, req *dns.Msg, tcp bool) *dns.Msg {
	var ups []netip.AddrPort
	for _, u := range s.r.Upstreams(client) {
		if a, ok := s.upstream(u); ok {
			ups = append(ups, a)
		}
	}
	fail := func(rcode int) *dns.Msg {
		m := new(dns.Msg)
		m.SetRcode(req, rcode)
		m.RecursionAvailable = true
		return m
	}
	if len(ups) == 0 {
		return fail(dns.RcodeRefused)
	}
	ctx, cancel := context.WithTimeout(s.ctx, forwardTimeout)
	defer cancel()
	// The upstream sees a fresh ID, not the client's: it is the client's
	// answer only once relayed.
	q := req.Copy()
	q.Id = dns.Id()
	for i, up := range ups {
		deadline, _ := ctx.Deadline()
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		per := min(left, max(left/time.Duration(len(ups)-i), upstreamTimeout))
		if r := exchange(ctx, q, up, tcp, per); r != nil {
			return r
		}
	}
	if s.ctx.Err() != nil {
		return nil
	}
	return fail(dns.RcodeServerFailure)
}

// upstream parses u ("ip:port", or an ip for port 53) and says whether
// queries may go to it: never to the server itself, nor to its address's
// port 53, which the firewall redirects to it.
func (s *Server) upstream(u string) (netip.AddrPort, bool) {
	a, err := netip.ParseAddrPort(u)
	if err != nil {
		ip, err := netip.ParseAddr(u)
		if err != nil {
			return netip.AddrPort{}, false
		}
		a = netip.AddrPortFrom(ip, 53)
	}
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	if !a.Addr().IsValid() || a.Addr().IsUnspecified() || a.Port() == 0 {
		return netip.AddrPort{}, false
	}
	if a.Addr() == s.self.Addr() && (a.Port() == s.self.Port() || a.Port() == 53) {
		return netip.AddrPort{}, false
	}
	return a, true
}

// exchange asks q of one upstream within timeout; nil when it failed.
func exchange(ctx context.Context, q *dns.Msg, up netip.AddrPort, tcp bool, timeout time.Duration) *dns.Msg {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ask := func(network string) *dns.Msg {
		c := &dns.Client{Net: network, UDPSize: dns.MaxMsgSize, Timeout: timeout}
		conn, err := c.DialContext(ctx, up.String())
		if err != nil {
			return nil
		}
		defer conn.Close()
		// The exchange takes the context's deadline, not its end: Close
		// ends it by closing the socket.
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		defer stop()
		r, _, err := c.ExchangeWithConnContext(ctx, q, conn)
		if err != nil || !sameQuestion(r, q) {
			return nil
		}
		return r
	}
	if tcp {
		return answered(ask("tcp"))
	}
	r := ask("udp")
	if r != nil && r.Truncated {
		// The whole answer, or the truncated one if TCP fails: the
		// client may still make do with it, or ask over TCP itself.
		if full := ask("tcp"); full != nil {
			r = full
		}
	}
	return answered(r)
}

// answered returns r unless it is no answer: a failure, or SERVFAIL or
// REFUSED, which mean the next upstream may do better.
func answered(r *dns.Msg) *dns.Msg {
	if r == nil || r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused {
		return nil
	}
	return r
}

func sameQuestion(r, q *dns.Msg) bool {
	if len(r.Question) != 1 {
		return false
	}
	a, b := r.Question[0], q.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}
