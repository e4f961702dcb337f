package firewall

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/testutil"
	"github.com/google/nftables"
)

// lab is a test "host" namespace with two bridges, containers on them and
// an "outside" namespace behind a veth:
//
//	outside 10.66.0.2 fd66::2 ---- ext 10.66.0.1 fd66::1 (host)
//	brA 10.77.1.1 fd77:1::1: a1 .2 ::2, a2 .3 ::3
//	brB 10.77.2.1:           b1 .2
type lab struct {
	host, out, a1, a2, b1 *namespace
	fw                    *Firewall
}

// newLab makes the lab; brnf says whether switched frames pass the inet
// hooks (br_netfilter's per-namespace bridge-nf-call-ip(6)tables).
func newLab(t *testing.T, brnf bool) *lab {
	t.Helper()
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8)")
	}
	p := "bfw" + randHex(2)
	l := &lab{
		host: newNamespace(t, p+"-host"),
		out:  newNamespace(t, p+"-out"),
		a1:   newNamespace(t, p+"-a1"),
		a2:   newNamespace(t, p+"-a2"),
		b1:   newNamespace(t, p+"-b1"),
	}
	h := l.host
	h.sysctl(t, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	if !brnf {
		if out, err := exec.Command("ip", "netns", "exec", h.name, "sysctl", "-qw",
			"net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-ip6tables=0").CombinedOutput(); err != nil {
			t.Skipf("cannot turn br_netfilter off in a namespace: %v: %s", err, out)
		}
	} else if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
		t.Skip("no br_netfilter on this kernel")
	} else {
		h.sysctl(t, "net.bridge.bridge-nf-call-iptables=1", "net.bridge.bridge-nf-call-ip6tables=1")
	}
	// The other end: outside knows no route to the containers, so only
	// masqueraded traffic can be answered.
	h.ip(t, "link", "add", "ext", "type", "veth", "peer", "name", "eth0", "netns", l.out.name)
	h.ip(t, "addr", "add", "10.66.0.1/24", "dev", "ext")
	h.ip(t, "addr", "add", "fd66::1/64", "dev", "ext", "nodad")
	h.ip(t, "link", "set", "ext", "up")
	l.out.ip(t, "addr", "add", "10.66.0.2/24", "dev", "eth0")
	l.out.ip(t, "addr", "add", "fd66::2/64", "dev", "eth0", "nodad")
	l.out.ip(t, "link", "set", "eth0", "up")

	bridge := func(name, v4, v6 string) {
		h.ip(t, "link", "add", name, "type", "bridge")
		h.ip(t, "addr", "add", v4, "dev", name)
		if v6 != "" {
			h.ip(t, "addr", "add", v6, "dev", name, "nodad")
		}
		h.ip(t, "link", "set", name, "up")
	}
	bridge("brA", "10.77.1.1/24", "fd77:1::1/64")
	bridge("brB", "10.77.2.1/24", "")
	// What the daemon's bridge code does, for published ports at 127.0.0.1.
	h.sysctl(t, "net.ipv4.conf.brA.route_localnet=1")

	container := func(ns *namespace, br, host, v4, gw4, v6, gw6 string) {
		h.ip(t, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns.name)
		h.ip(t, "link", "set", host, "master", br, "up")
		// What the daemon's bridge code does so that a container reaches
		// its own published port when br_netfilter is on.
		h.ip(t, "link", "set", host, "type", "bridge_slave", "hairpin", "on")
		ns.ip(t, "addr", "add", v4, "dev", "eth0")
		if v6 != "" {
			ns.ip(t, "addr", "add", v6, "dev", "eth0", "nodad")
		}
		ns.ip(t, "link", "set", "eth0", "up")
		ns.ip(t, "route", "add", "default", "via", gw4)
		if v6 != "" {
			ns.ip(t, "-6", "route", "add", "default", "via", gw6)
		}
	}
	container(l.a1, "brA", "vA1", "10.77.1.2/24", "10.77.1.1", "fd77:1::2/64", "fd77:1::1")
	container(l.a2, "brA", "vA2", "10.77.1.3/24", "10.77.1.1", "fd77:1::3/64", "fd77:1::1")
	container(l.b1, "brB", "vB1", "10.77.2.2/24", "10.77.2.1", "", "")

	fw, err := New(InNetNS(int(h.h)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	l.fw = fw
	return l
}

var (
	netA = Network{
		Bridge:     "brA",
		Subnets:    []netip.Prefix{netip.MustParsePrefix("10.77.1.0/24"), netip.MustParsePrefix("fd77:1::/64")},
		Masquerade: true,
		ICC:        true,
	}
	netB = Network{
		Bridge:     "brB",
		Subnets:    []netip.Prefix{netip.MustParsePrefix("10.77.2.0/24")},
		Masquerade: true,
		ICC:        true,
	}
)

func (l *lab) set(t *testing.T, n Network) {
	t.Helper()
	if err := l.fw.SetNetwork(n); err != nil {
		t.Fatal(err)
	}
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// nftList is the host namespace's ruleset as nft(8) prints it, to show
// in failures.
func (l *lab) nftList(t *testing.T) string {
	out, _ := exec.Command("ip", "netns", "exec", l.host.name, "nft", "list", "ruleset").CombinedOutput()
	return string(out)
}

// TestTraffic proves the rules with connections between the lab's
// namespaces, with br_netfilter on (switched frames also pass the inet
// hooks) and off (they pass only the bridge family's).
func TestTraffic(t *testing.T) {
	for _, brnf := range []bool{true, false} {
		t.Run(fmt.Sprintf("br_netfilter=%v", brnf), func(t *testing.T) { testTraffic(t, brnf) })
	}
}

func testTraffic(t *testing.T, brnf bool) {
	l := newLab(t, brnf)
	l.set(t, netA)
	l.set(t, netB)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ruleset:\n%s", l.nftList(t))
		}
	})

	for _, ns := range []*namespace{l.a1, l.a2, l.b1, l.out} {
		ns.serve(t, "tcp", ":80")
		ns.serve(t, "tcp", ":81")
		ns.serve(t, "tcp", ":82")
		ns.serve(t, "udp", ":53")
	}

	t.Run("masquerade", func(t *testing.T) {
		l.a1.reaches(t, "tcp", "10.66.0.2:80", "10.66.0.1")
		l.a1.reaches(t, "udp", "10.66.0.2:53", "10.66.0.1")
		l.a1.reaches(t, "tcp", "[fd66::2]:80", "fd66::1")
		l.b1.reaches(t, "tcp", "10.66.0.2:80", "10.66.0.1")
	})

	t.Run("isolation", func(t *testing.T) {
		// The host reaches containers directly; other networks do not,
		// nor the outside even with a route.
		l.host.reaches(t, "tcp", "10.77.1.2:80", "10.77.1.1")
		l.host.reaches(t, "tcp", "10.77.2.2:80", "10.77.2.1")
		l.b1.blocked(t, "tcp", "10.77.1.2:80")
		l.a1.blocked(t, "tcp", "10.77.2.2:80")
		l.out.ip(t, "route", "add", "10.77.0.0/16", "via", "10.66.0.1")
		l.out.ip(t, "-6", "route", "add", "fd77::/16", "via", "fd66::1")
		l.out.blocked(t, "tcp", "10.77.1.2:80")
		l.out.blocked(t, "tcp", "[fd77:1::2]:80")
		// ICC on: containers of a bridge talk freely.
		l.a1.reaches(t, "tcp", "10.77.1.3:81", "10.77.1.2")
		l.a1.reaches(t, "tcp", "[fd77:1::3]:81", "fd77:1::2")
	})

	ports := []Port{
		{Proto: "tcp", HostPort: 8080, IP: ip("10.77.1.2"), Port: 80},
		{Proto: "udp", HostPort: 5300, IP: ip("10.77.1.2"), Port: 53},
		{Proto: "tcp", HostPort: 8080, IP: ip("fd77:1::2"), Port: 80},
		{Proto: "tcp", HostIP: ip("10.66.0.1"), HostPort: 8081, IP: ip("10.77.1.2"), Port: 81},
	}
	t.Run("icc off and links", func(t *testing.T) {
		off := netA
		off.ICC = false
		l.set(t, off)
		l.a1.blocked(t, "tcp", "10.77.1.3:80")
		l.a1.blocked(t, "tcp", "[fd77:1::3]:80")
		l.a2.blocked(t, "tcp", "10.77.1.2:80")
		links := []Link{
			{From: ip("10.77.1.2"), To: ip("10.77.1.3"), Proto: "tcp", Port: 80},
			{From: ip("fd77:1::2"), To: ip("fd77:1::3"), Proto: "tcp", Port: 80},
		}
		if err := l.fw.SetEndpoint("brA", "a1", ports, links); err != nil {
			t.Fatal(err)
		}
		l.a1.reaches(t, "tcp", "10.77.1.3:80", "10.77.1.2")
		l.a1.reaches(t, "tcp", "[fd77:1::3]:80", "fd77:1::2")
		l.a1.blocked(t, "tcp", "10.77.1.3:81")
		l.a2.blocked(t, "tcp", "10.77.1.2:82")
		// a1's published ports are open to its neighbours too.
		l.a2.reaches(t, "tcp", "10.77.1.2:80", "10.77.1.3")
		// Setting the network again keeps the endpoint's rules.
		l.set(t, off)
		l.a1.reaches(t, "tcp", "10.77.1.3:80", "10.77.1.2")
	})

	t.Run("published ports", func(t *testing.T) {
		// From outside: the container sees the client's own address.
		l.out.reaches(t, "tcp", "10.66.0.1:8080", "10.66.0.2")
		l.out.reaches(t, "udp", "10.66.0.1:5300", "10.66.0.2")
		l.out.reaches(t, "tcp", "[fd66::1]:8080", "fd66::2")
		l.out.reaches(t, "tcp", "10.66.0.1:8081", "10.66.0.2")
		// From the host itself, by loopback and by its own addresses.
		l.host.reaches(t, "tcp", "127.0.0.1:8080", "")
		l.host.reaches(t, "udp", "127.0.0.1:5300", "")
		l.host.reaches(t, "tcp", "10.66.0.1:8080", "")
		l.host.reaches(t, "tcp", "[fd66::1]:8080", "")
		// 8081 is published on 10.66.0.1 only, not at the host's other
		// addresses (outside has a route to brA's since "isolation").
		l.host.blocked(t, "tcp", "127.0.0.1:8081")
		l.out.blocked(t, "tcp", "10.77.1.1:8081")
		l.out.reaches(t, "tcp", "10.77.1.1:8080", "10.66.0.2")
		// Hairpin: the container itself, a neighbour despite ICC off, and
		// another network, by a host address.
		l.a1.reaches(t, "tcp", "10.66.0.1:8080", "10.77.1.1")
		l.a1.reaches(t, "tcp", "10.77.1.1:8080", "10.77.1.1")
		l.a1.reaches(t, "tcp", "[fd66::1]:8080", "fd77:1::1")
		l.a2.reaches(t, "tcp", "10.66.0.1:8080", "10.77.1.1")
		l.a2.reaches(t, "udp", "10.66.0.1:5300", "10.77.1.1")
		// (masqueraded by b1's network, as it leaves by another bridge)
		l.b1.reaches(t, "tcp", "10.66.0.1:8080", "10.77.1.1")
	})

	t.Run("no loopback v6", func(t *testing.T) {
		// Not NATed (see SetNetwork): refused here, not left hanging.
		l.host.blocked(t, "tcp", "[::1]:8080")
	})

	t.Run("dns redirect", func(t *testing.T) {
		// The "DNS server" listens at the gateway on its own port.
		l.host.serve(t, "udp", "10.77.1.1:5354")
		l.host.serve(t, "tcp", "10.77.1.1:5354")
		l.host.serve(t, "udp", "[fd77:1::1]:5354")
		l.a1.blocked(t, "udp", "10.77.1.1:53")
		n := netA
		n.ICC = false
		n.DNSPort = 5354
		l.set(t, n)
		l.a1.reaches(t, "udp", "10.77.1.1:53", "10.77.1.2")
		l.a1.reaches(t, "tcp", "10.77.1.1:53", "10.77.1.2")
		l.a1.reaches(t, "udp", "[fd77:1::1]:53", "fd77:1::2")
		// Only from the bridge.
		l.out.blocked(t, "udp", "10.77.1.1:53")
	})

	t.Run("internal", func(t *testing.T) {
		l.host.serve(t, "tcp", "10.77.2.1:7000")
		in := netB
		in.Internal = true
		l.set(t, in)
		l.b1.blocked(t, "tcp", "10.66.0.2:80")
		l.b1.blocked(t, "tcp", "10.77.1.2:80")
		l.out.blocked(t, "tcp", "10.77.2.2:80")
		l.b1.reaches(t, "tcp", "10.77.2.1:7000", "10.77.2.2")
	})

	t.Run("remove endpoint", func(t *testing.T) {
		// a2 publishes 8081 too, at another host address than a1.
		if err := l.fw.SetEndpoint("brA", "a2", []Port{
			{Proto: "tcp", HostPort: 9090, IP: ip("10.77.1.3"), Port: 81},
			{Proto: "tcp", HostIP: ip("127.0.0.1"), HostPort: 8081, IP: ip("10.77.1.3"), Port: 82},
		}, nil); err != nil {
			t.Fatal(err)
		}
		l.out.reaches(t, "tcp", "10.66.0.1:9090", "10.66.0.2")
		l.host.lands(t, "127.0.0.1:8081", "10.77.1.3")
		l.host.lands(t, "10.66.0.1:8081", "10.77.1.2")
		l.out.lands(t, "10.66.0.1:8080", "10.77.1.2")
		l.out.lands(t, "10.66.0.1:9090", "10.77.1.3")
		if err := l.fw.RemoveEndpoint("brA", "a1"); err != nil {
			t.Fatal(err)
		}
		l.out.blocked(t, "tcp", "10.66.0.1:8080")
		l.out.blocked(t, "udp", "10.66.0.1:5300")
		l.a1.blocked(t, "tcp", "10.77.1.3:80") // its link went too
		l.out.reaches(t, "tcp", "10.66.0.1:9090", "10.66.0.2")
		if err := l.fw.RemoveEndpoint("brA", "a1"); err != nil {
			t.Errorf("second RemoveEndpoint: %v", err)
		}
	})

	t.Run("delete network", func(t *testing.T) {
		if got, err := l.fw.Bridges(); err != nil || !slices.Equal(got, []string{"brA", "brB"}) {
			t.Fatalf("Bridges() = %v, %v; want [brA brB]", got, err)
		}
		if err := l.fw.DeleteNetwork("brA"); err != nil {
			t.Fatal(err)
		}
		if got, err := l.fw.Bridges(); err != nil || !slices.Equal(got, []string{"brB"}) {
			t.Fatalf("Bridges() = %v, %v; want [brB]", got, err)
		}
		l.out.blocked(t, "tcp", "10.66.0.1:9090")
		if err := l.fw.DeleteNetwork("brB"); err != nil {
			t.Fatal(err)
		}
		if err := l.fw.DeleteNetwork("brB"); err != nil {
			t.Errorf("deleting a deleted network: %v", err)
		}
		if s := strings.TrimSpace(l.nftList(t)); s != "" {
			t.Errorf("tables left after DeleteNetwork:\n%s", s)
		}
		if got, err := l.fw.Bridges(); err != nil || len(got) != 0 {
			t.Errorf("Bridges() = %v, %v; want none", got, err)
		}
	})
}

// rulesIn counts the rules of a chain; none if it does not exist.
func rulesIn(t *testing.T, fw *Firewall, tab *nftables.Table, chain string) int {
	t.Helper()
	var rs []*nftables.Rule
	err := fw.do(func(c *nftables.Conn) (err error) {
		rs, err = c.GetRules(tab, &nftables.Chain{Name: chain, Table: tab})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(rs)
}

// elementsIn counts the elements of one of a network's maps.
func elementsIn(t *testing.T, fw *Firewall, tab *nftables.Table, m vmap) int {
	t.Helper()
	var es []nftables.SetElement
	err := fw.do(func(c *nftables.Conn) (err error) {
		es, err = c.GetSetElements(m.in(tab))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// newNetNSFirewall returns a Firewall in a fresh namespace of its own.
func newNetNSFirewall(t testing.TB) *Firewall {
	t.Helper()
	testutil.RequireRoot(t)
	ns := newNamespace(t, "bfwr")
	fw, err := New(InNetNS(int(ns.h)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	return fw
}

func TestEndpointRules(t *testing.T) {
	fw := newNetNSFirewall(t)
	tabs := tablesOf("brA")
	count := func(tab *nftables.Table, kind, id string) int {
		return rulesIn(t, fw, tab, endpointChain(kind, id))
	}
	p1 := Port{Proto: "tcp", HostPort: 8080, IP: ip("10.77.1.2"), Port: 80}
	p2 := Port{Proto: "udp", HostPort: 5353, IP: ip("fd77:1::2"), Port: 53}
	link := Link{From: ip("10.77.1.2"), To: ip("10.77.1.3"), Proto: "tcp", Port: 80}

	if err := fw.SetEndpoint("brA", "e1", []Port{p1}, nil); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("SetEndpoint before SetNetwork = %v, want a not-found error", err)
	}
	if err := fw.RemoveEndpoint("brA", "e1"); err != nil {
		t.Errorf("RemoveEndpoint before SetNetwork = %v, want nil", err)
	}
	if err := fw.SetNetwork(netA); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]Port{
		{{Proto: "sctp", HostPort: 1, IP: ip("10.77.1.2"), Port: 1}},
		{{Proto: "tcp", HostPort: 1, Port: 1}},
		{{Proto: "tcp", HostPort: 0, IP: ip("10.77.1.2"), Port: 1}},
		{{Proto: "tcp", HostIP: ip("::1"), HostPort: 1, IP: ip("10.77.1.2"), Port: 1}},
	} {
		if err := fw.SetEndpoint("brA", "e1", append([]Port{p1}, bad...), nil); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("SetEndpoint(%+v) = %v, want an invalid-argument error", bad, err)
		}
	}
	if err := fw.SetEndpoint("brA", "e1", nil, []Link{{From: ip("10.77.1.2"), To: ip("fd77:1::3"), Proto: "tcp", Port: 1}}); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("SetEndpoint with a mixed-family link = %v, want an invalid-argument error", err)
	}
	if n := count(tabs.inet, chainPorts, "e1"); n != 0 {
		t.Fatalf("a rejected SetEndpoint left %d rules", n)
	}

	if err := fw.SetEndpoint("brA", "e1", []Port{p1, p2}, []Link{link}); err != nil {
		t.Fatal(err)
	}
	if err := fw.SetEndpoint("brA", "e2", []Port{{Proto: "tcp", HostPort: 9090, IP: ip("10.77.1.3"), Port: 80}}, nil); err != nil {
		t.Fatal(err)
	}
	// A host port is one endpoint's: the second is refused, and changes
	// nothing.
	if err := fw.SetEndpoint("brA", "e3", []Port{
		{Proto: "tcp", HostPort: 9091, IP: ip("10.77.1.4"), Port: 80},
		{Proto: "tcp", HostPort: 9090, IP: ip("10.77.1.4"), Port: 80},
	}, nil); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("SetEndpoint of a taken host port = %v, want a conflict", err)
	}
	if n := count(tabs.inet, chainPorts, "e3"); n != 0 {
		t.Errorf("a refused SetEndpoint left %d rules", n)
	}
	want := map[string][3]int{"e1": {2, 2*2 + 2, 2*2 + 2}, "e2": {1, 2, 2}}
	check := func(when string) {
		t.Helper()
		for id, w := range want {
			got := [3]int{count(tabs.inet, chainPorts, id), count(tabs.inet, chainLinks, id), count(tabs.br, chainLinks, id)}
			if got != w {
				t.Errorf("%s: endpoint %s has %v rules (inet ports, inet links, bridge links), want %v", when, id, got, w)
			}
		}
	}
	check("after SetEndpoint")
	if got, err := fw.Endpoints("brA"); err != nil || !slices.Equal(got, []string{"e1", "e2"}) {
		t.Errorf("Endpoints() = %v, %v; want [e1 e2]", got, err)
	}
	// SetNetwork rewrites the network's rules and keeps the endpoints'.
	if err := fw.SetNetwork(Network{Bridge: "brA", Subnets: netA.Subnets, DNSPort: 5354}); err != nil {
		t.Fatal(err)
	}
	check("after SetNetwork")
	// Setting again replaces.
	if err := fw.SetEndpoint("brA", "e1", []Port{p2}, nil); err != nil {
		t.Fatal(err)
	}
	want["e1"] = [3]int{1, 2, 2}
	check("after a second SetEndpoint")
	if err := fw.RemoveEndpoint("brA", "e1"); err != nil {
		t.Fatal(err)
	}
	want["e1"] = [3]int{}
	check("after RemoveEndpoint")
	if got, err := fw.Endpoints("brA"); err != nil || !slices.Equal(got, []string{"e2"}) {
		t.Errorf("Endpoints() = %v, %v; want [e2]", got, err)
	}
	if err := fw.RemoveEndpoint("brA", "e1"); err != nil {
		t.Errorf("RemoveEndpoint again = %v, want nil", err)
	}
	if err := fw.DeleteNetwork("brA"); err != nil {
		t.Fatal(err)
	}
	if got, err := fw.Bridges(); err != nil || len(got) != 0 {
		t.Errorf("Bridges() = %v, %v after DeleteNetwork, want none", got, err)
	}
}

// TestConcurrentEndpoints is the daemon starting and stopping many
// containers at once.
func TestConcurrentEndpoints(t *testing.T) {
	fw := newNetNSFirewall(t)
	if err := fw.SetNetwork(netA); err != nil {
		t.Fatal(err)
	}
	const n = 50
	each := func(f func(i int) error) {
		t.Helper()
		errs := make(chan error, n)
		for i := range n {
			go func() { errs <- f(i) }()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	}
	each(func(i int) error {
		a := netip.AddrFrom4([4]byte{10, 77, 1, byte(10 + i)})
		return fw.SetEndpoint("brA", fmt.Sprint("c", i), []Port{
			{Proto: "tcp", HostPort: uint16(20000 + i), IP: a, Port: 80},
			{Proto: "udp", HostPort: uint16(20000 + i), IP: a, Port: 53},
		}, nil)
	})
	inet := tablesOf("brA").inet
	if got := elementsIn(t, fw, inet, mapNATAny4); got != 2*n {
		t.Fatalf("%d published ports after %d concurrent SetEndpoint, want %d", got, n, 2*n)
	}
	if got := elementsIn(t, fw, inet, mapDst4); got != n {
		t.Fatalf("%d container addresses after %d concurrent SetEndpoint, want %d", got, n, n)
	}
	each(func(i int) error { return fw.RemoveEndpoint("brA", fmt.Sprint("c", i)) })
	for _, m := range []vmap{mapNATAny4, mapSrc4, mapDst4} {
		if got := elementsIn(t, fw, inet, m); got != 0 {
			t.Errorf("%d elements left in %s after removing every endpoint", got, m.name)
		}
	}
	if got := rulesIn(t, fw, inet, endpointChain(chainPorts, "c1")); got != 0 {
		t.Errorf("%d rules left in an endpoint's chain after its removal", got)
	}
	if err := fw.DeleteNetwork("brA"); err != nil {
		t.Fatal(err)
	}
}

func TestNewNotNetNS(t *testing.T) {
	testutil.RequireRoot(t)
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := New(InNetNS(int(f.Fd()))); err == nil || !strings.Contains(err.Error(), "nftables") {
		t.Errorf("New in a file that is no namespace = %v, want an error about nftables", err)
	}
}

// BenchmarkEndpoint measures SetEndpoint with two ports and RemoveEndpoint
// on a network that has 0, 50 or 500 other endpoints (the cost should not
// grow with them).
func BenchmarkEndpoint(b *testing.B) {
	for _, others := range []int{0, 50, 500} {
		b.Run(fmt.Sprint("others=", others), func(b *testing.B) { benchEndpoint(b, others) })
	}
}

func benchEndpoint(b *testing.B, others int) {
	fw := newNetNSFirewall(b)
	if err := fw.SetNetwork(netA); err != nil {
		b.Fatal(err)
	}
	for i := range others {
		a := netip.AddrFrom4([4]byte{10, 77, byte(2 + i/250), byte(1 + i%250)})
		if err := fw.SetEndpoint("brA", fmt.Sprint("other", i), []Port{{Proto: "tcp", HostPort: uint16(30000 + i), IP: a, Port: 80}}, nil); err != nil {
			b.Fatal(err)
		}
	}
	ports := []Port{
		{Proto: "tcp", HostPort: 8080, IP: ip("10.77.1.2"), Port: 80},
		{Proto: "udp", HostPort: 8080, IP: ip("10.77.1.2"), Port: 80},
	}
	b.Run("SetEndpoint", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := fw.SetEndpoint("brA", fmt.Sprint("e", i), ports, nil); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := fw.RemoveEndpoint("brA", fmt.Sprint("e", i)); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("RemoveEndpoint", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			if err := fw.SetEndpoint("brA", fmt.Sprint("e", i), ports, nil); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := fw.RemoveEndpoint("brA", fmt.Sprint("e", i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	if err := fw.DeleteNetwork("brA"); err != nil {
		b.Fatal(err)
	}
}

// TestPortRange is an endpoint publishing a range of 1000 ports: one
// batch of about 1.5MB, past the default netlink socket buffers.
func TestPortRange(t *testing.T) {
	fw := newNetNSFirewall(t)
	if err := fw.SetNetwork(netA); err != nil {
		t.Fatal(err)
	}
	var ports []Port
	for i := range 1000 {
		ports = append(ports, Port{Proto: "tcp", HostPort: uint16(40000 + i), IP: ip("10.77.1.2"), Port: uint16(40000 + i)})
	}
	inet := tablesOf("brA").inet
	for range 2 { // set, then replace
		start := time.Now()
		if err := fw.SetEndpoint("brA", "big", ports, nil); err != nil {
			t.Fatal(err)
		}
		t.Logf("SetEndpoint of 1000 ports: %v", time.Since(start))
		if got := elementsIn(t, fw, inet, mapNATAny4); got != len(ports) {
			t.Fatalf("%d published ports, want %d", got, len(ports))
		}
	}
	start := time.Now()
	if err := fw.RemoveEndpoint("brA", "big"); err != nil {
		t.Fatal(err)
	}
	t.Logf("RemoveEndpoint of 1000 ports: %v", time.Since(start))
	if got := elementsIn(t, fw, inet, mapNATAny4); got != 0 {
		t.Errorf("%d published ports left", got)
	}
	if err := fw.DeleteNetwork("brA"); err != nil {
		t.Fatal(err)
	}
}
