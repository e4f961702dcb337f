// Package dns is the embedded name server of user-defined networks: it
// answers for containers' names and aliases and forwards the rest to the
// resolvers the client container was given (or the host's).
//
// Messages are parsed and built with golang.org/x/net/dns/dnsmessage and
// upstreams are asked over plain sockets: github.com/miekg/dns, which did
// this before, built type tables at init (22 KB at every start of the
// binary, whatever the command). Forwarded answers are relayed as the
// upstream sent them, the ID aside; only one too long for the client is
// rebuilt, cut to the records that fit.
//
// The serving loops are our own rather than a library's server, which
// would wake every read timeout while idle, start a goroutine for every
// UDP packet and take any number of TCP connections. Here one goroutine
// reads UDP and answers known names inline, UDP queries to forward run in
// at most maxForwards goroutines (a query finding them all busy is dropped:
// the client asks again), and at most maxTCPConns TCP connections are
// served at once, each a goroutine answering its queries in turn, with
// deadlines. Idle, the server's goroutines sleep in the kernel.
package dns

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
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
	// minUDPSize is what a UDP answer may take when the query has no
	// EDNS0 (RFC 1035); maxMsgSize is the most a message can be over TCP,
	// whose length prefix is 16 bits.
	minUDPSize = 512
	maxMsgSize = 65535
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
	buf := make([]byte, udpBuffer+1)   // a byte more: longer ones show
	out := make([]byte, 0, minUDPSize) // berth's answers, each sent before the next read
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
		q, ok := parse(buf[:n])
		if !ok {
			continue
		}
		client := from.Addr().Unmap()
		if reply := s.local(out[:0], client, &q); reply != nil {
			s.writeUDP(reply, &q, from)
			out = reply[:0] // grown for a long answer: kept for the next
			continue
		}
		select {
		case s.fwd <- struct{}{}:
		default:
			continue // too many in flight: drop, the client asks again
		}
		raw := slices.Clone(buf[:n]) // buf is read into again meanwhile
		fq := q                      // on the heap for the goroutine, q stays on the stack
		s.wg.Add(1)
		go func() {
			defer func() { <-s.fwd; s.wg.Done() }()
			if reply := s.forward(client, &fq, raw, false); reply != nil {
				s.writeUDP(reply, &fq, from)
			}
		}()
	}
}

func (s *Server) writeUDP(reply []byte, q *query, to netip.AddrPort) {
	if reply = fit(reply, q.size); reply != nil {
		s.udp.WriteToUDPAddrPort(reply, to) // a lost answer is asked again
	}
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

// serveConn answers the queries of one TCP connection in turn, each
// message after its 2-byte length (RFC 1035 4.2.2).
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
	b := make([]byte, maxMsgSize)
	var out []byte
	var l [2]byte
	for range maxTCPQueries {
		c.SetReadDeadline(time.Now().Add(tcpIdle))
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		msg := b[:binary.BigEndian.Uint16(l[:])]
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		q, ok := parse(msg)
		if !ok {
			return
		}
		reply := s.local(out[:0], client, &q)
		if reply != nil {
			out = reply // its buffer, for the next answer
		} else {
			reply = s.forward(client, &q, msg, true)
		}
		if reply = fit(reply, maxMsgSize); reply == nil {
			return
		}
		binary.BigEndian.PutUint16(l[:], uint16(len(reply)))
		c.SetWriteDeadline(time.Now().Add(tcpWrite))
		if _, err := (&net.Buffers{l[:], reply}).WriteTo(c); err != nil {
			return
		}
	}
}

// query is a client's query, parsed.
type query struct {
	hdr dnsmessage.Header
	q   dnsmessage.Question
	// edns says the query has an OPT record (EDNS0); size is the longest
	// UDP answer the client takes, minUDPSize or the OPT's.
	edns bool
	size int
}

// parse returns the query in b, false when b is not one worth an answer:
// not a message, a response (answering those could loop between servers),
// or not exactly one question with no records but EDNS0's (and TSIG's).
func parse(b []byte) (query, bool) {
	var p dnsmessage.Parser
	hdr, err := p.Start(b)
	if err != nil || hdr.Response {
		return query{}, false
	}
	q := query{hdr: hdr, size: minUDPSize}
	if q.q, err = p.Question(); err != nil {
		return query{}, false
	}
	if p.SkipQuestion() != dnsmessage.ErrSectionDone {
		return query{}, false
	}
	if _, err := p.AnswerHeader(); err != dnsmessage.ErrSectionDone {
		return query{}, false
	}
	if _, err := p.AuthorityHeader(); err != dnsmessage.ErrSectionDone {
		return query{}, false
	}
	for i := 0; ; i++ {
		h, err := p.AdditionalHeader()
		if err == dnsmessage.ErrSectionDone {
			return q, true
		}
		if err != nil || i == 2 || p.SkipAdditional() != nil {
			return query{}, false
		}
		if h.Type == dnsmessage.TypeOPT {
			// the OPT's class is the client's UDP payload size
			q.edns, q.size = true, max(minUDPSize, int(h.Class))
		}
	}
}

// local answers q from berth's names, or returns nil when the query is to
// be forwarded. The answer is appended to buf.
func (s *Server) local(buf []byte, client netip.Addr, q *query) []byte {
	if q.hdr.OpCode != 0 { // not QUERY
		b, _ := reply(buf, q, dnsmessage.RCodeNotImplemented, nil)
		return b
	}
	if q.q.Class != dnsmessage.ClassINET {
		return nil
	}
	rh := dnsmessage.ResourceHeader{Name: q.q.Name, Class: dnsmessage.ClassINET, TTL: ttl}
	if q.q.Type == dnsmessage.TypePTR {
		ip, ok := arpaAddr(q.q.Name.String())
		if !ok {
			return nil
		}
		name, ok := s.r.Reverse(client, ip)
		if !ok {
			return nil
		}
		ptr, err := dnsmessage.NewName(strings.TrimSuffix(name, ".") + ".")
		if err != nil {
			return nil
		}
		// a name that does not pack (an empty or too long label) is
		// forwarded like an unknown one
		b, _ := reply(buf, q, dnsmessage.RCodeSuccess, func(b *dnsmessage.Builder) error {
			return b.PTRResource(rh, dnsmessage.PTRResource{PTR: ptr})
		})
		return b
	}
	// Names compare in ASCII case only (RFC 4343): strings.ToLower would
	// also turn some other letters into ASCII ones (the Kelvin sign into k).
	lower := q.q.Name
	for i, c := range lower.Data[:lower.Length] {
		if 'A' <= c && c <= 'Z' {
			lower.Data[i] = c + 'a' - 'A'
		}
	}
	name := strings.TrimSuffix(lower.String(), ".")
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
	var answers []netip.Addr
	for _, a := range addrs {
		switch {
		case q.q.Type == dnsmessage.TypeA && a.Unmap().Is4():
			answers = append(answers, a.Unmap())
		case q.q.Type == dnsmessage.TypeAAAA && a.Is6() && !a.Is4In6():
			answers = append(answers, a)
		}
	}
	// Clients mostly take the first address: shuffling spreads them over
	// the containers sharing an alias, as docker does.
	rand.Shuffle(len(answers), func(i, j int) { answers[i], answers[j] = answers[j], answers[i] })
	b, _ := reply(buf, q, dnsmessage.RCodeSuccess, func(b *dnsmessage.Builder) error {
		for _, a := range answers {
			var err error
			if a.Is4() {
				err = b.AResource(rh, dnsmessage.AResource{A: a.As4()})
			} else {
				err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	return b
}

// reply appends berth's own answer to q to buf: rcode, the records add
// adds (none when nil: a failure, or NODATA), and an OPT record when the
// query had one. Answers of berth's names (NOERROR) are authoritative.
func reply(buf []byte, q *query, rcode dnsmessage.RCode, add func(*dnsmessage.Builder) error) ([]byte, error) {
	h := dnsmessage.Header{
		ID:                 q.hdr.ID,
		Response:           true,
		OpCode:             q.hdr.OpCode,
		Authoritative:      rcode == dnsmessage.RCodeSuccess,
		RecursionAvailable: true,
		RCode:              rcode,
	}
	if q.hdr.OpCode == 0 {
		h.RecursionDesired, h.CheckingDisabled = q.hdr.RecursionDesired, q.hdr.CheckingDisabled
	}
	// Without compression: the names are the question's (berth's are
	// short), and it would cost a map and its keys an answer. fit
	// compresses an answer that does not fit.
	b := dnsmessage.NewBuilder(buf, h)
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q.q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if add != nil {
		if err := add(&b); err != nil {
			return nil, err
		}
	}
	if q.edns {
		if err := b.StartAdditionals(); err != nil {
			return nil, err
		}
		var opt dnsmessage.ResourceHeader
		opt.SetEDNS0(ednsSize, dnsmessage.RCodeSuccess, false)
		if err := b.OPTResource(opt, dnsmessage.OPTResource{}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// fit returns msg when it is at most size bytes, or else the most of its
// records that fit, compressed: answers first, then authorities and
// additionals, an OPT record kept, TC set when any is left out. nil when
// msg cannot be cut (it is then no message dnsmessage can build again:
// the header and question are sent, with TC).
func fit(msg []byte, size int) []byte {
	if len(msg) <= size {
		return msg
	}
	var m dnsmessage.Message
	if err := m.Unpack(msg); err != nil {
		// records dnsmessage does not take, such as a label with a dot
		var p dnsmessage.Parser
		h, err := p.Start(msg)
		if err != nil {
			return nil
		}
		qs, err := p.AllQuestions()
		if err != nil {
			return nil
		}
		h.Truncated = true
		m = dnsmessage.Message{Header: h, Questions: qs}
	}
	var extra, opt []dnsmessage.Resource
	for _, r := range m.Additionals {
		if r.Header.Type == dnsmessage.TypeOPT {
			opt = append(opt, r)
		} else {
			extra = append(extra, r)
		}
	}
	records := slices.Concat(m.Answers, m.Authorities, extra)
	na, nns := len(m.Answers), len(m.Authorities)
	pack := func(k int) []byte {
		c := m
		c.Answers = records[:min(k, na)]
		c.Authorities = records[min(k, na):min(k, na+nns)]
		c.Additionals = slices.Concat(records[na+nns:max(k, na+nns)], opt)
		c.Header.Truncated = m.Header.Truncated || k < len(records)
		b, err := c.Pack()
		if err != nil || len(b) > size {
			return nil
		}
		return b
	}
	// the most records that fit: fewer fit too
	k := sort.Search(len(records)+1, func(k int) bool { return pack(k) == nil }) - 1
	if k < 0 {
		return nil
	}
	return pack(k)
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

// forward asks client's upstreams for q (raw, as the client sent it) in
// turn within forwardTimeout, over TCP when the client asked over TCP or
// an upstream's UDP answer is truncated, and returns the first answer that
// is not a failure, as the upstream sent it but for the client's ID;
// REFUSED without upstreams, SERVFAIL when none answered, nil when the
// server is closing. raw is the forward's to change.
func (s *Server) forward(client netip.Addr, q *query, raw []byte, tcp bool) []byte {
	var ups []netip.AddrPort
	for _, u := range s.r.Upstreams(client) {
		if a, ok := s.upstream(u); ok {
			ups = append(ups, a)
		}
	}
	if len(ups) == 0 {
		b, _ := reply(nil, q, dnsmessage.RCodeRefused, nil)
		return b
	}
	ctx, cancel := context.WithTimeout(s.ctx, forwardTimeout)
	defer cancel()
	// The upstream sees a fresh ID, not the client's: it is the client's
	// answer only once relayed. Random, as a spoofed answer must guess it.
	var id [2]byte
	crand.Read(id[:])
	copy(raw, id[:])
	for i, up := range ups {
		deadline, _ := ctx.Deadline()
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		per := min(left, max(left/time.Duration(len(ups)-i), upstreamTimeout))
		if r := exchange(ctx, raw, q, up, tcp, per); r != nil {
			binary.BigEndian.PutUint16(r, q.hdr.ID)
			return r
		}
	}
	if s.ctx.Err() != nil {
		return nil
	}
	b, _ := reply(nil, q, dnsmessage.RCodeServerFailure, nil)
	return b
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

// exchange sends msg, the query q with the upstream's ID, to up within
// timeout and returns the answer; nil when it failed or is a failure
// (SERVFAIL, REFUSED: the next upstream may do better).
func exchange(ctx context.Context, msg []byte, q *query, up netip.AddrPort, tcp bool, timeout time.Duration) []byte {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var r []byte
	var h dnsmessage.Header
	if tcp {
		r, h = askUpstream(ctx, "tcp", up, msg, q)
	} else {
		r, h = askUpstream(ctx, "udp", up, msg, q)
		if h.Truncated {
			// The whole answer, or the truncated one if TCP fails: the
			// client may still make do with it, or ask over TCP itself.
			if full, fh := askUpstream(ctx, "tcp", up, msg, q); full != nil {
				r, h = full, fh
			}
		}
	}
	if r == nil || h.RCode == dnsmessage.RCodeServerFailure || h.RCode == dnsmessage.RCodeRefused {
		return nil
	}
	return r
}

// errNotOurs is an answer to another query than the one asked.
var errNotOurs = errors.New("dns: not the answer to the query")

// askUpstream sends msg to up over network ("udp" or "tcp") and returns the
// answer and its header: nil when there is none (over UDP, with the
// header's TC set when the answer was longer than the query allowed).
func askUpstream(ctx context.Context, network string, up netip.AddrPort, msg []byte, q *query) ([]byte, dnsmessage.Header) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, up.String())
	if err != nil {
		return nil, dnsmessage.Header{}
	}
	defer c.Close()
	// The deadline bounds the exchange, and Close ends it by closing the
	// socket.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if deadline, ok := ctx.Deadline(); ok {
		c.SetDeadline(deadline)
	}
	id := binary.BigEndian.Uint16(msg)
	if network == "tcp" {
		var l [2]byte
		binary.BigEndian.PutUint16(l[:], uint16(len(msg)))
		if _, err := (&net.Buffers{l[:], msg}).WriteTo(c); err != nil {
			return nil, dnsmessage.Header{}
		}
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return nil, dnsmessage.Header{}
		}
		r := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, r); err != nil {
			return nil, dnsmessage.Header{}
		}
		h, err := check(r, id, q)
		if err != nil {
			return nil, dnsmessage.Header{}
		}
		return r, h
	}
	if _, err := c.Write(msg); err != nil {
		return nil, dnsmessage.Header{}
	}
	// The upstream got the client's OPT, if any: its answer is at most
	// q.size, a byte more shows a longer one.
	buf := make([]byte, q.size+1)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, dnsmessage.Header{}
		}
		if n > q.size {
			return nil, dnsmessage.Header{Truncated: true}
		}
		h, err := check(buf[:n], id, q)
		if errors.Is(err, errNotOurs) {
			continue // a late answer to an earlier query, or spoofed: wait for ours
		}
		if err != nil {
			return nil, dnsmessage.Header{}
		}
		return buf[:n], h
	}
}

// check parses an upstream's answer to q, asked with id: a response with
// that ID and q's question, and a whole message, as it is relayed.
func check(msg []byte, id uint16, q *query) (dnsmessage.Header, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return h, err
	}
	if h.ID != id || !h.Response {
		return h, errNotOurs
	}
	a, err := p.Question()
	if err != nil {
		return h, err
	}
	if a.Type != q.q.Type || a.Class != q.q.Class || !bytes.EqualFold(a.Name.Data[:a.Name.Length], q.q.Name.Data[:q.q.Name.Length]) || p.SkipQuestion() != dnsmessage.ErrSectionDone {
		return h, errNotOurs
	}
	if err := p.SkipAllAnswers(); err != nil {
		return h, err
	}
	if err := p.SkipAllAuthorities(); err != nil {
		return h, err
	}
	if err := p.SkipAllAdditionals(); err != nil {
		return h, err
	}
	return h, nil
}
