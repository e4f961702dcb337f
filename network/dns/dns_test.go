package dns

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"berth.dev/berth/internal/testutil"
	"golang.org/x/sys/unix"

	"github.com/miekg/dns"
)

// resolver is the test's Resolver: names (lower case) to addresses, each
// name visible to every client unless only says which client sees it.
type resolver struct {
	names   map[string][]netip.Addr
	only    map[string]netip.Addr
	reverse map[netip.Addr]string

	mu        sync.Mutex
	upstreams []string
}

func (r *resolver) Lookup(client netip.Addr, name string) ([]netip.Addr, bool) {
	if c, ok := r.only[name]; ok && c != client {
		return nil, false
	}
	a, ok := r.names[name]
	return a, ok
}

func (r *resolver) Reverse(client, ip netip.Addr) (string, bool) {
	n, ok := r.reverse[ip]
	return n, ok
}

func (r *resolver) Upstreams(client netip.Addr) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.upstreams)
}

func (r *resolver) setUpstreams(u ...string) {
	r.mu.Lock()
	r.upstreams = u
	r.mu.Unlock()
}

var (
	web  = netip.MustParseAddr("10.89.0.2")
	db   = netip.MustParseAddr("10.89.0.3")
	db6  = netip.MustParseAddr("fd00:89::3")
	only = netip.MustParseAddr("fd00:89::4")
)

func newResolver() *resolver {
	many := make([]netip.Addr, 8)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{10, 89, 1, byte(i + 1)})
	}
	lots := make([]netip.Addr, 100)
	for i := range lots {
		lots[i] = netip.AddrFrom4([4]byte{10, 89, 2, byte(i + 1)})
	}
	return &resolver{
		names: map[string][]netip.Addr{
			"web":     {web},
			"www":     {web}, // an alias
			"db":      {db, db6},
			"v6only":  {only},
			"many":    many,
			"lots":    lots,
			"private": {web},
			"kube":    {web},
		},
		only:    map[string]netip.Addr{"private": netip.MustParseAddr("127.0.0.9")},
		reverse: map[netip.Addr]string{web: "web", db6: "db.net1"},
	}
}

// start runs a server for r on loopback and closes it with the test.
func start(t testing.TB, r Resolver) (*Server, string) {
	t.Helper()
	s, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"), r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s, fmt.Sprintf("127.0.0.1:%d", s.Port())
}

// ask sends one question to addr over network and returns the answer.
func ask(t testing.TB, network, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	r, err := exchange1(network, addr, m)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	return r
}

func exchange1(network, addr string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: 10 * time.Second}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

func addrs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		case *dns.PTR:
			out = append(out, rr.Ptr)
		default:
			out = append(out, rr.String())
		}
	}
	return out
}

func both(t *testing.T, f func(t *testing.T, network string)) {
	for _, n := range []string{"udp", "tcp"} {
		t.Run(n, func(t *testing.T) { f(t, n) })
	}
}

func TestNames(t *testing.T) {
	_, addr := start(t, newResolver())
	both(t, func(t *testing.T, network string) {
		for _, tc := range []struct {
			name  string
			qtype uint16
			want  []string
		}{
			{"web.", dns.TypeA, []string{"10.89.0.2"}},
			{"WeB.", dns.TypeA, []string{"10.89.0.2"}},
			{"www.", dns.TypeA, []string{"10.89.0.2"}},
			{"db.", dns.TypeA, []string{"10.89.0.3"}},
			{"db.", dns.TypeAAAA, []string{"fd00:89::3"}},
			// known, but no address of the family: NODATA
			{"web.", dns.TypeAAAA, nil},
			{"v6only.", dns.TypeA, nil},
			{"v6only.", dns.TypeAAAA, []string{"fd00:89::4"}},
			// known, other types: NODATA too
			{"web.", dns.TypeMX, nil},
			{"web.", dns.TypeTXT, nil},
		} {
			m := new(dns.Msg)
			m.SetQuestion(tc.name, tc.qtype)
			m.Id = 4242
			r, err := exchange1(network, addr, m)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, dns.TypeToString[tc.qtype], err)
			}
			if r.Rcode != dns.RcodeSuccess || r.Id != 4242 || !r.Response || !r.Authoritative || !r.RecursionAvailable {
				t.Errorf("%s %s: header %+v, want NOERROR id 4242 qr aa ra", tc.name, dns.TypeToString[tc.qtype], r.MsgHdr)
			}
			if got := addrs(r); !slices.Equal(got, tc.want) {
				t.Errorf("%s %s: %q, want %q", tc.name, dns.TypeToString[tc.qtype], got, tc.want)
			}
			for _, rr := range r.Answer {
				if h := rr.Header(); h.Ttl != ttl || h.Name != tc.name {
					t.Errorf("%s: answer %s, want ttl %d and owner %s", tc.name, rr, ttl, tc.name)
				}
			}
		}
	})
}

func TestClientsAreToldApart(t *testing.T) {
	_, addr := start(t, newResolver())
	both(t, func(t *testing.T, network string) {
		from := func(src string) *dns.Msg {
			var local net.Addr = &net.UDPAddr{IP: net.ParseIP(src)}
			if network == "tcp" {
				local = &net.TCPAddr{IP: net.ParseIP(src)}
			}
			c := &dns.Client{Net: network, Dialer: &net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}}
			m := new(dns.Msg)
			m.SetQuestion("private.", dns.TypeA)
			r, _, err := c.Exchange(m, addr)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := from("127.0.0.9"); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("from the client that sees it: %v", r)
		}
		// the others don't know it, and have no upstreams
		if r := from("127.0.0.10"); r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
			t.Errorf("from another client: %v", r)
		}
	})
}

func TestPTR(t *testing.T) {
	_, addr := start(t, newResolver())
	both(t, func(t *testing.T, network string) {
		for _, tc := range []struct {
			name  string
			rcode int
			want  []string
		}{
			{"2.0.89.10.in-addr.arpa.", dns.RcodeSuccess, []string{"web."}},
			{"2.0.89.10.IN-ADDR.ARPA.", dns.RcodeSuccess, []string{"web."}},
			{mustReverse(db6), dns.RcodeSuccess, []string{"db.net1."}},
			// unknown addresses and names that are no address are
			// forwarded: no upstreams, REFUSED
			{"3.0.89.10.in-addr.arpa.", dns.RcodeRefused, nil},
			{"0.89.10.in-addr.arpa.", dns.RcodeRefused, nil},
		} {
			r := ask(t, network, addr, tc.name, dns.TypePTR)
			if r.Rcode != tc.rcode || !slices.Equal(addrs(r), tc.want) {
				t.Errorf("%s: %s %q, want %s %q", tc.name, dns.RcodeToString[r.Rcode], addrs(r), dns.RcodeToString[tc.rcode], tc.want)
			}
		}
	})
}

// udpSize returns the size of the UDP answer to an A query for name
// without EDNS0.
func udpSize(t *testing.T, addr, name string) int {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	b, _ := m.Pack()
	c.Write(b)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustReverse(a netip.Addr) string {
	n, err := dns.ReverseAddr(a.String())
	if err != nil {
		panic(err)
	}
	return n
}

func TestArpaAddr(t *testing.T) {
	for _, a := range []string{"10.89.0.2", "0.0.0.0", "255.255.255.255", "fd00:89::3", "::1", "2001:db8:ffff::abcd"} {
		ip := netip.MustParseAddr(a)
		got, ok := arpaAddr(strings.ToUpper(mustReverse(ip)))
		if !ok || got != ip {
			t.Errorf("arpaAddr(%s) = %v %v, want %v", mustReverse(ip), got, ok, ip)
		}
	}
	for _, n := range []string{
		"in-addr.arpa.", "1.2.3.in-addr.arpa.", "1.2.3.4.5.in-addr.arpa.", "256.1.1.1.in-addr.arpa.",
		"01.1.1.1.in-addr.arpa.", "-1.1.1.1.in-addr.arpa.", "a.1.1.1.in-addr.arpa.", "1..1.1.in-addr.arpa.",
		"1.2.3.4.example.", "ip6.arpa.", strings.Repeat("0.", 31) + "ip6.arpa.",
		strings.Repeat("0.", 31) + "g.ip6.arpa.", strings.Repeat("0.", 31) + ":.ip6.arpa.",
		"1:2::3.in-addr.arpa.", "4.3.2.1%eth0.in-addr.arpa.", "1.0.0.127.ip6.arpa.", strings.Repeat("0.", 30) + "00.ip6.arpa.",
	} {
		if got, ok := arpaAddr(n); ok {
			t.Errorf("arpaAddr(%s) = %v, want none", n, got)
		}
	}
}

func TestShuffled(t *testing.T) {
	_, addr := start(t, newResolver())
	firsts := map[string]bool{}
	var want []string
	for i := range 8 {
		want = append(want, fmt.Sprintf("10.89.1.%d", i+1))
	}
	for range 40 {
		got := addrs(ask(t, "udp", addr, "many.", dns.TypeA))
		firsts[got[0]] = true
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("many: %q, want all of %q", got, want)
		}
	}
	// 40 answers leading with the same one of 8: 8^-39 if shuffled
	if len(firsts) < 2 {
		t.Errorf("40 answers all start with %v: not shuffled", firsts)
	}
}

func TestUDPAnswersAreBounded(t *testing.T) {
	_, addr := start(t, newResolver())
	// 100 addresses do not fit 512 bytes: truncated, TC set
	r := ask(t, "udp", addr, "lots.", dns.TypeA)
	if !r.Truncated || len(r.Answer) == 0 || len(r.Answer) >= 100 {
		t.Errorf("udp without EDNS0: tc %v, %d answers; want tc and some", r.Truncated, len(r.Answer))
	}
	if n := udpSize(t, addr, "lots."); n > 512 {
		t.Errorf("udp without EDNS0: %d bytes", n)
	}
	// EDNS0 makes room for them, and gets an OPT back
	m := new(dns.Msg)
	m.SetQuestion("lots.", dns.TypeA)
	m.SetEdns0(4096, false)
	r, err := exchange1("udp", addr, m)
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated || len(r.Answer) != 100 || r.IsEdns0() == nil {
		t.Errorf("udp with EDNS0 4096: tc %v, %d answers, opt %v", r.Truncated, len(r.Answer), r.IsEdns0())
	}
	if r := ask(t, "tcp", addr, "lots.", dns.TypeA); r.Truncated || len(r.Answer) != 100 {
		t.Errorf("tcp: tc %v, %d answers", r.Truncated, len(r.Answer))
	}
}

// upstream is a fake upstream server on loopback, on one port for udp and
// tcp, answering with h.
type upstream struct {
	addr  string
	mu    sync.Mutex
	asked []string // "udp" or "tcp", a query each
	ids   []uint16
}

func (u *upstream) log() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.asked)
}

func startUpstream(t testing.TB, h func(w dns.ResponseWriter, req *dns.Msg, network string)) *upstream {
	t.Helper()
	udp, tcp, err := listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: udp.LocalAddr().String()}
	for _, srv := range []*dns.Server{{PacketConn: udp}, {Listener: tcp}} {
		network := "udp"
		if srv.Listener != nil {
			network = "tcp"
		}
		srv.Handler = dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			u.mu.Lock()
			u.asked = append(u.asked, network)
			u.ids = append(u.ids, req.Id)
			u.mu.Unlock()
			h(w, req, network)
		})
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() { srv.ActivateAndServe(); close(done) }()
		<-started
		t.Cleanup(func() { srv.Shutdown(); <-done })
	}
	return u
}

// answering answers every A query with ip, over udp and tcp.
func answering(ip string) func(w dns.ResponseWriter, req *dns.Msg, network string) {
	return func(w dns.ResponseWriter, req *dns.Msg, network string) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.ParseIP(ip)}}
		w.WriteMsg(m)
	}
}

func rcode(code int) func(w dns.ResponseWriter, req *dns.Msg, network string) {
	return func(w dns.ResponseWriter, req *dns.Msg, network string) {
		m := new(dns.Msg)
		m.SetRcode(req, code)
		w.WriteMsg(m)
	}
}

// blackhole is an upstream address that takes queries and never answers:
// a udp socket nobody reads, a tcp listener nobody accepts on (the kernel
// completes the handshake).
func blackhole(t testing.TB) string {
	udp, tcp, err := listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close(); tcp.Close() })
	return udp.LocalAddr().String()
}

func TestForward(t *testing.T) {
	r := newResolver()
	_, addr := start(t, r)
	first := startUpstream(t, answering("192.0.2.1"))
	second := startUpstream(t, answering("192.0.2.2"))
	failing := startUpstream(t, rcode(dns.RcodeServerFailure))
	nx := startUpstream(t, rcode(dns.RcodeNameError))

	both(t, func(t *testing.T, network string) {
		check := func(what, want string, wantRcode int) {
			t.Helper()
			m := new(dns.Msg)
			m.SetQuestion("example.com.", dns.TypeA)
			m.Id = 777
			resp, err := exchange1(network, addr, m)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			var wantAddrs []string
			if want != "" {
				wantAddrs = []string{want}
			}
			if resp.Id != 777 || resp.Rcode != wantRcode || !slices.Equal(addrs(resp), wantAddrs) {
				t.Errorf("%s: id %d %s %q, want id 777 %s %q", what, resp.Id, dns.RcodeToString[resp.Rcode], addrs(resp), dns.RcodeToString[wantRcode], wantAddrs)
			}
		}
		r.setUpstreams(first.addr, second.addr)
		check("in order", "192.0.2.1", dns.RcodeSuccess)
		if got := first.log(); len(got) == 0 || got[len(got)-1] != network {
			t.Errorf("the upstream was asked over %q, want %s", got, network)
		}
		r.setUpstreams(failing.addr, second.addr)
		check("after a SERVFAIL", "192.0.2.2", dns.RcodeSuccess)
		r.setUpstreams(nx.addr, second.addr)
		check("NXDOMAIN is an answer", "", dns.RcodeNameError)
		r.setUpstreams("not an address", "127.0.0.1:0", blackhole(t), second.addr)
		begin := time.Now()
		check("after a dead one", "192.0.2.2", dns.RcodeSuccess)
		if d := time.Since(begin); d > forwardTimeout {
			t.Errorf("took %v", d)
		}
		r.setUpstreams(failing.addr)
		check("all failing", "", dns.RcodeServerFailure)
		r.setUpstreams()
		check("no upstreams", "", dns.RcodeRefused)
	})
	first.mu.Lock()
	defer first.mu.Unlock()
	for _, id := range first.ids {
		if id == 777 {
			// 1 in 65536 by chance
			t.Logf("the upstream saw the client's id")
		}
	}
}

func TestForwardTimeout(t *testing.T) {
	r := newResolver()
	_, addr := start(t, r)
	r.setUpstreams(blackhole(t), blackhole(t))
	both(t, func(t *testing.T, network string) {
		begin := time.Now()
		resp := ask(t, network, addr, "example.com.", dns.TypeA)
		d := time.Since(begin)
		if resp.Rcode != dns.RcodeServerFailure {
			t.Errorf("got %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
		}
		if d < forwardTimeout-500*time.Millisecond || d > forwardTimeout+time.Second {
			t.Errorf("SERVFAIL after %v, want about %v", d, forwardTimeout)
		}
	})
}

// fortyA returns 40 A records of name: more than fit 512 bytes.
func fortyA(name string) []dns.RR {
	var rrs []dns.RR
	for i := range 40 {
		rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, byte(i+1))})
	}
	return rrs
}

func TestForwardTruncated(t *testing.T) {
	r := newResolver()
	_, addr := start(t, r)
	// over udp: an empty truncated answer; over tcp: 40 addresses, more
	// than fit 512 bytes
	up := startUpstream(t, func(w dns.ResponseWriter, req *dns.Msg, network string) {
		m := new(dns.Msg)
		m.SetReply(req)
		if network == "udp" {
			m.Truncated = true
		} else {
			m.Answer = fortyA(req.Question[0].Name)
		}
		w.WriteMsg(m)
	})
	r.setUpstreams(up.addr)

	// EDNS0 makes room: the whole answer, fetched over tcp
	m := new(dns.Msg)
	m.SetQuestion("big.example.", dns.TypeA)
	m.SetEdns0(4096, false)
	resp, err := exchange1("udp", addr, m)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Truncated || len(resp.Answer) != 40 {
		t.Errorf("udp with EDNS0: tc %v, %d answers, want 40", resp.Truncated, len(resp.Answer))
	}
	if got := up.log(); !slices.Equal(got, []string{"udp", "tcp"}) {
		t.Errorf("upstream asked over %q, want udp then tcp", got)
	}
	// without EDNS0 it is cut to 512 bytes, TC set
	resp = ask(t, "udp", addr, "big.example.", dns.TypeA)
	if n := udpSize(t, addr, "big.example."); !resp.Truncated || len(resp.Answer) >= 40 || n > 512 {
		t.Errorf("udp: tc %v, %d answers, %d bytes; want tc and at most 512 bytes", resp.Truncated, len(resp.Answer), n)
	}
	// which makes the client ask over tcp, and so the server
	resp = ask(t, "tcp", addr, "big.example.", dns.TypeA)
	if resp.Truncated || len(resp.Answer) != 40 {
		t.Errorf("tcp: tc %v, %d answers", resp.Truncated, len(resp.Answer))
	}
	if got := up.log(); !slices.Equal(got[len(got)-1:], []string{"tcp"}) {
		t.Errorf("upstream asked over %q, want tcp last", got)
	}
}

func TestLoopGuard(t *testing.T) {
	r := newResolver()
	s, addr := start(t, r)
	good := startUpstream(t, answering("192.0.2.1"))
	// itself, and its address's port 53 (the firewall sends that to it)
	r.setUpstreams(addr, "127.0.0.1:53", fmt.Sprintf("[::ffff:127.0.0.1]:%d", s.Port()))
	begin := time.Now()
	if resp := ask(t, "udp", addr, "example.com.", dns.TypeA); resp.Rcode != dns.RcodeRefused {
		t.Errorf("upstreams all the server: %s, want REFUSED", dns.RcodeToString[resp.Rcode])
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("took %v", d)
	}
	r.setUpstreams(addr, good.addr)
	if resp := ask(t, "udp", addr, "example.com.", dns.TypeA); !slices.Equal(addrs(resp), []string{"192.0.2.1"}) {
		t.Errorf("after skipping itself: %v", resp)
	}
}

func TestMalformed(t *testing.T) {
	_, addr := start(t, newResolver())
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	pack := func(f func(m *dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion("web.", dns.TypeA)
		f(m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	valid := pack(func(*dns.Msg) {})
	for name, b := range map[string][]byte{
		"empty":         {},
		"short header":  valid[:5],
		"cut question":  valid[:len(valid)-3],
		"garbage":       bytes.Repeat([]byte{0xc0}, 300),
		"response":      pack(func(m *dns.Msg) { m.Response = true }),
		"two questions": pack(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }),
		"no question":   pack(func(m *dns.Msg) { m.Question = nil }),
		"answer records": pack(func(m *dns.Msg) {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "web.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(1, 2, 3, 4)}}
		}),
		"authority records": pack(func(m *dns.Msg) {
			m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "web.", Rrtype: dns.TypeNS, Class: dns.ClassINET}, Ns: "ns.web."}}
		}),
		"three additional records": pack(func(m *dns.Msg) {
			m.SetEdns0(1232, false)
			for range 2 {
				m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: "web.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(1, 2, 3, 4)})
			}
		}),
		"cut additional record": pack(func(m *dns.Msg) { m.SetEdns0(1232, false) })[:len(valid)+5],
		"too long":              append(slices.Clone(valid), make([]byte, udpBuffer)...),
	} {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 1024)
		if n, err := c.Read(buf); err == nil {
			t.Errorf("%s: answered %d bytes", name, n)
		}
	}
	// another opcode than QUERY: NOTIMP
	b := pack(func(m *dns.Msg) { m.Opcode = dns.OpcodeStatus })
	c.Write(b)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var m dns.Msg
	if err := m.Unpack(buf[:n]); err != nil || m.Rcode != dns.RcodeNotImplemented {
		t.Errorf("opcode STATUS: %v %v, want NOTIMP", m.Rcode, err)
	}
	// the server still answers
	if r := ask(t, "udp", addr, "web.", dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("after malformed queries: %v", r)
	}

	// over tcp a malformed query closes the connection
	tc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.Write([]byte{0, 4, 1, 2, 3, 4})
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := tc.Read(buf); err == nil {
		t.Errorf("tcp: answered %d bytes to garbage", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("tcp: connection left open after garbage")
	}
	if r := ask(t, "tcp", addr, "web.", dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("tcp after malformed queries: %v", r)
	}
}

// serverGoroutines counts the goroutines running this package's server.
func serverGoroutines() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "berth.dev/berth/network/dns.(*Server)") {
			n++
		}
	}
	return n
}

// waitGoroutines waits a little for the server's goroutines to be at most
// n: those of finished tests end a moment after their Close.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	for range 50 {
		if serverGoroutines() <= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%d server goroutines, want at most %d", serverGoroutines(), n)
}

func TestCloseLeavesNothing(t *testing.T) {
	waitGoroutines(t, 0)
	r := newResolver()
	s, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"), r)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", s.Port())
	// (goroutines just started may not show in stacks yet)
	for range 100 {
		if serverGoroutines() == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := serverGoroutines(); n != 2 {
		t.Errorf("idle: %d goroutines, want 2 (udp and tcp)", n)
	}
	// Close while a forward is in flight and a tcp connection is open.
	r.setUpstreams(blackhole(t))
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeA)
	b, _ := m.Pack()
	c.Write(b)
	tc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	for range 100 {
		if serverGoroutines() == 4 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := serverGoroutines(); n != 4 {
		t.Errorf("busy: %d goroutines, want 4", n)
	}
	begin := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if n := serverGoroutines(); n != 0 {
		t.Errorf("after Close: %d goroutines", n)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// the port is free again, for both
	s2, err := Listen(netip.MustParseAddrPort(addr), r)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	s2.Close()
}

func TestListenTakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := netip.MustParseAddrPort(l.Addr().String())
	if s, err := Listen(addr, newResolver()); err == nil {
		s.Close()
		t.Fatalf("listened on %s, whose tcp port is taken", addr)
	}
	// udp's socket was closed with the failure
	u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatalf("udp port left taken: %v", err)
	}
	u.Close()
}

func TestFlood(t *testing.T) {
	r := newResolver()
	_, addr := start(t, r)
	r.setUpstreams(blackhole(t))
	waitGoroutines(t, 2)

	// UDP: a burst of queries to forward, to an upstream that never
	// answers: no more forwards than maxForwards at any time.
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var peak atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			n := int64(serverGoroutines())
			if n > peak.Load() {
				peak.Store(n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	m := new(dns.Msg)
	for i := range 5000 {
		m.SetQuestion(fmt.Sprintf("q%d.example.", i), dns.TypeA)
		b, _ := m.Pack()
		c.Write(b)
	}
	<-done
	if p := peak.Load(); p > maxForwards+2 {
		t.Errorf("%d goroutines during the flood, want at most %d", p, maxForwards+2)
	}
	t.Logf("peak goroutines during a udp flood: %d", peak.Load())
	// known names are still answered at once
	if r := ask(t, "udp", addr, "web.", dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("during the flood: %v", r)
	}

	// TCP: connections beyond maxTCPConns are closed at once.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range maxTCPConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("connection %d: %v, want closed", maxTCPConns+1, err)
	}
	extra.Close()
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	// and once they are gone, there is room again
	var resp *dns.Msg
	for range 50 {
		if resp, err = exchange1("tcp", addr, func() *dns.Msg { m := new(dns.Msg); return m.SetQuestion("web.", dns.TypeA) }()); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || len(resp.Answer) != 1 {
		t.Errorf("tcp after the flood: %v %v", resp, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// BenchmarkUDP measures queries a second for a known name over UDP, from
// as many clients as GOMAXPROCS.
func BenchmarkUDP(b *testing.B) {
	_, addr := start(b, newResolver())
	m := new(dns.Msg)
	m.SetQuestion("web.", dns.TypeA)
	q, _ := m.Pack()
	begin := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("udp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		buf := make([]byte, 512)
		for pb.Next() {
			if _, err := c.Write(q); err != nil {
				b.Error(err)
				return
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(begin).Seconds(), "queries/s")
}

// TestBusyboxNslookup asks the server with a real client, busybox's
// nslookup, which only talks to port 53: the server listens on
// 127.0.0.1:53 in a network namespace of the test's own, which goes away
// with the test's sockets and its locked thread.
func TestBusyboxNslookup(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := os.Stat(testutil.BusyboxBinary); err != nil {
		t.Skip("needs busybox-static:", err)
	}
	type result struct {
		out map[string]string // nslookup's output, by its arguments
		err error
	}
	res := make(chan result, 1)
	r := newResolver()
	// The upstream is on the host's loopback: the server's forwards run
	// on other threads than the locked one, in the host's namespace, as
	// the daemon's do.
	up := startUpstream(t, answering("192.0.2.1"))
	r.setUpstreams(up.addr)
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	go func() {
		// Never unlocked: the thread ends with this goroutine, and its
		// network namespace with it once the sockets are closed.
		runtime.LockOSThread()
		out := map[string]string{}
		err := func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
			if b, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
				return fmt.Errorf("ip link set lo up: %v: %s", err, b)
			}
			s, err := Listen(netip.MustParseAddrPort("127.0.0.1:53"), r)
			if err != nil {
				return err
			}
			closers = append(closers, func() { s.Close() })
			for _, args := range [][]string{
				{"web"}, {"WWW."}, {"-type=a", "db"}, {"-type=aaaa", "db"}, {"10.89.0.2"}, {"-type=a", "example.com"},
			} {
				cmd := exec.Command(testutil.BusyboxBinary, append(append([]string{"nslookup"}, args...), "127.0.0.1")...)
				b, err := cmd.CombinedOutput()
				if err != nil {
					return fmt.Errorf("nslookup %s: %v: %s", args, err, b)
				}
				out[strings.Join(args, " ")] = string(b)
			}
			return nil
		}()
		res <- result{out, err}
	}()
	got := <-res
	if got.err != nil {
		t.Fatal(got.err)
	}
	for args, want := range map[string][]string{
		"web":                 {"Name:\tweb\nAddress: 10.89.0.2\n"},
		"WWW.":                {"Address: 10.89.0.2\n"},
		"-type=a db":          {"Address: 10.89.0.3\n"},
		"-type=aaaa db":       {"Address: fd00:89::3\n"},
		"10.89.0.2":           {"2.0.89.10.in-addr.arpa\tname = web\n"},
		"-type=a example.com": {"Name:\texample.com\nAddress: 192.0.2.1\n"},
	} {
		for _, w := range want {
			if !strings.Contains(got.out[args], w) {
				t.Errorf("nslookup %s: %q, want %q in it", args, got.out[args], w)
			}
		}
	}
	t.Logf("nslookup web:\n%s", got.out["web"])
}

// TestASCIICase: names match in ASCII case only, as DNS compares them: the
// Kelvin sign is no k, though strings.ToLower makes it one.
func TestASCIICase(t *testing.T) {
	_, addr := start(t, newResolver())
	if r := ask(t, "udp", addr, "KuBe.", dns.TypeA); !slices.Equal(addrs(r), []string{"10.89.0.2"}) {
		t.Errorf("KuBe: %v", r)
	}
	// not berth's: forwarded, and without upstreams REFUSED
	if r := ask(t, "udp", addr, "\u212aube.", dns.TypeA); r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
		t.Errorf("\\u212aube: %s %q, want REFUSED", dns.RcodeToString[r.Rcode], addrs(r))
	}
}

// rawExchange sends the message q to addr over network and returns the
// answer's bytes.
func rawExchange(t *testing.T, network, addr string, q []byte) []byte {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if network == "udp" {
		if _, err := c.Write(q); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65536)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	if _, err := c.Write(append([]byte{byte(len(q) >> 8), byte(len(q))}, q...)); err != nil {
		t.Fatal(err)
	}
	l := make([]byte, 2)
	if _, err := io.ReadFull(c, l); err != nil {
		t.Fatal(err)
	}
	r := make([]byte, int(l[0])<<8|int(l[1]))
	if _, err := io.ReadFull(c, r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestForwardRelaysBytes: an upstream's answer reaches the client as it
// was sent but for the ID, records the server could not parse included (a
// label with a dot, a private type).
func TestForwardRelaysBytes(t *testing.T) {
	r := newResolver()
	_, addr := start(t, r)
	var mu sync.Mutex
	sent := map[string][]byte{}
	up := startUpstream(t, func(w dns.ResponseWriter, req *dns.Msg, network string) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Compress = true
		name := req.Question[0].Name
		m.Answer = []dns.RR{
			&dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: `a\.b.` + name},
			&dns.A{Hdr: dns.RR_Header{Name: `a\.b.` + name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 7)},
			&dns.RFC3597{Hdr: dns.RR_Header{Name: name, Rrtype: 65280, Class: dns.ClassINET, Ttl: 300}, Rdata: "c00c0102"},
		}
		b, err := m.Pack()
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		sent[network] = b
		mu.Unlock()
		w.Write(b)
	})
	r.setUpstreams(up.addr)
	both(t, func(t *testing.T, network string) {
		m := new(dns.Msg)
		m.SetQuestion("relay.example.", dns.TypeA)
		m.Id = 0xbeef
		q, _ := m.Pack()
		got := rawExchange(t, network, addr, q)
		mu.Lock()
		want := sent[network]
		mu.Unlock()
		if len(got) < 2 || got[0] != 0xbe || got[1] != 0xef {
			t.Fatalf("answer % x, want ID be ef", got)
		}
		if want == nil || !bytes.Equal(got[2:], want[2:]) {
			t.Errorf("relayed % x\nthe upstream sent % x", got, want)
		}
	})
}

// TestForwardStrayAnswers: over UDP, answers with another ID or question
// than the one asked (late ones, or spoofed) are passed over for the one
// that follows.
func TestForwardStrayAnswers(t *testing.T) {
	r := newResolver()
	_, addr := start(t, r)
	answer := func(req *dns.Msg, name, ip string, id uint16) []byte {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Id = id
		m.Question[0].Name = name
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.ParseIP(ip)}}
		b, _ := m.Pack()
		return b
	}
	up := startUpstream(t, func(w dns.ResponseWriter, req *dns.Msg, network string) {
		name := req.Question[0].Name
		w.Write(answer(req, name, "192.0.2.66", req.Id+1))
		w.Write(answer(req, "other.example.", "192.0.2.67", req.Id))
		w.Write(answer(req, strings.ToUpper(name), "192.0.2.1", req.Id)) // case may differ
	})
	r.setUpstreams(up.addr)
	if resp := ask(t, "udp", addr, "stray.example.", dns.TypeA); resp.Rcode != dns.RcodeSuccess || !slices.Equal(addrs(resp), []string{"192.0.2.1"}) {
		t.Errorf("got %s %q, want 192.0.2.1", dns.RcodeToString[resp.Rcode], addrs(resp))
	}
	if got := up.log(); !slices.Equal(got, []string{"udp"}) {
		t.Errorf("upstream asked over %q, want udp", got)
	}
}

// TestForwardOversizeUDP: an upstream's UDP answer longer than the query
// allowed (512 bytes without EDNS0), without TC, is fetched again over TCP
// and cut for the client.
func TestForwardOversizeUDP(t *testing.T) {
	r := newResolver()
	_, addr := start(t, r)
	up := startUpstream(t, func(w dns.ResponseWriter, req *dns.Msg, network string) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Answer = fortyA(req.Question[0].Name)
		w.WriteMsg(m)
	})
	r.setUpstreams(up.addr)
	resp := ask(t, "udp", addr, "big.example.", dns.TypeA)
	if resp.Rcode != dns.RcodeSuccess || !resp.Truncated || len(resp.Answer) == 0 || len(resp.Answer) >= 40 {
		t.Errorf("got %s tc %v with %d answers, want NOERROR tc and some", dns.RcodeToString[resp.Rcode], resp.Truncated, len(resp.Answer))
	}
	if got := up.log(); !slices.Equal(got, []string{"udp", "tcp"}) {
		t.Errorf("upstream asked over %q, want udp then tcp", got)
	}
}

func TestFit(t *testing.T) {
	msg := func(f func(m *dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion("fit.example.", dns.TypeA)
		m.Response = true
		f(m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := func(name string, i int) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, byte(i))}
	}
	unpack := func(b []byte) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatalf("fit made no message: %v", err)
		}
		return m
	}

	small := msg(func(m *dns.Msg) { m.Answer = []dns.RR{a("fit.example.", 1)} })
	if got := fit(small, 512); &got[0] != &small[0] || len(got) != len(small) {
		t.Errorf("a message that fits was not returned as it is")
	}

	// 100 answers, an authority and an OPT: the answers that fit, in
	// order, the OPT kept, TC set
	big := msg(func(m *dns.Msg) {
		for i := range 100 {
			m.Answer = append(m.Answer, a("fit.example.", i))
		}
		m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "ns.example."}}
		m.SetEdns0(1232, false)
	})
	got := fit(big, 512)
	m := unpack(got)
	// a compressed A record is 16 bytes: one more would not fit
	if len(got) > 512 || len(got)+16 <= 512 || !m.Truncated || m.IsEdns0() == nil || len(m.Ns) != 0 {
		t.Errorf("cut to %d bytes: tc %v, %d answers, %d authorities, opt %v", len(got), m.Truncated, len(m.Answer), len(m.Ns), m.IsEdns0())
	}
	for i, rr := range m.Answer {
		if want := net.IPv4(192, 0, 2, byte(i)); !rr.(*dns.A).A.Equal(want) {
			t.Errorf("answer %d is %s, want %s", i, rr, want)
		}
	}

	// too long only uncompressed: all of it, compressed, no TC
	long := strings.Repeat("abcdefghij.", 5) + "example."
	compressible := msg(func(m *dns.Msg) {
		m.Question[0].Name = long
		for i := range 8 {
			m.Answer = append(m.Answer, a(long, i))
		}
	})
	if len(compressible) <= 512 {
		t.Fatalf("the uncompressed message is %d bytes, want more than 512", len(compressible))
	}
	if m := unpack(fit(compressible, 512)); m.Truncated || len(m.Answer) != 8 {
		t.Errorf("compressed: tc %v, %d answers, want all 8 and no tc", m.Truncated, len(m.Answer))
	}

	// records dnsmessage does not parse (a label with a dot): the header
	// and question, TC set
	dotted := msg(func(m *dns.Msg) {
		for i := range 40 {
			m.Answer = append(m.Answer, a(`a\.b.fit.example.`, i))
		}
	})
	m = unpack(fit(dotted, 512))
	if !m.Truncated || len(m.Answer) != 0 || len(m.Question) != 1 || m.Question[0].Name != "fit.example." {
		t.Errorf("undecodable records: %v", m)
	}

	if got := fit(bytes.Repeat([]byte{0xc0}, 600), 512); got != nil {
		t.Errorf("not a message: % x", got)
	}
}
