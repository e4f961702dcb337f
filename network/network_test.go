package network

import (
	"net/netip"
	"slices"
	"testing"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
	nettypes "github.com/moby/moby/api/types/network"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// open opens a manager on a fresh root with a default bridge of the
// test's own and no firewall; Close at the end takes the bridges away.
func open(t *testing.T) *Manager {
	t.Helper()
	testutil.RequireRoot(t)
	m, err := Open(Config{Root: t.TempDir(), Bridge: testutil.BridgeName(), BIP: netip.MustParsePrefix("10.214.0.1/24"), ICC: true, IPMasq: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestCreateChecks(t *testing.T) {
	m := open(t)
	pfx := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	addr := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	yes := true
	ok, err := m.Create(nettypes.CreateRequest{Name: "good", IPAM: &nettypes.IPAM{Config: []nettypes.IPAMConfig{{Subnet: pfx("10.214.1.0/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Remove(ok.ID)
	for _, c := range []struct {
		name string
		req  nettypes.CreateRequest
		kind errdefs.Kind
	}{
		{"taken name", nettypes.CreateRequest{Name: "good"}, errdefs.KindConflict},
		{"no name", nettypes.CreateRequest{}, errdefs.KindInvalid},
		{"driver", nettypes.CreateRequest{Name: "x1", Driver: "overlay"}, errdefs.KindNotFound},
		{"second host", nettypes.CreateRequest{Name: "x2", Driver: "host"}, errdefs.KindForbidden},
		{"overlap", nettypes.CreateRequest{Name: "x3", IPAM: &nettypes.IPAM{Config: []nettypes.IPAMConfig{{Subnet: pfx("10.214.1.128/25")}}}}, errdefs.KindForbidden},
		{"overlaps the default", nettypes.CreateRequest{Name: "x4", IPAM: &nettypes.IPAM{Config: []nettypes.IPAMConfig{{Subnet: pfx("10.214.0.0/16")}}}}, errdefs.KindForbidden},
		{"gateway outside", nettypes.CreateRequest{Name: "x5", IPAM: &nettypes.IPAM{Config: []nettypes.IPAMConfig{{Subnet: pfx("10.214.2.0/24"), Gateway: addr("10.214.3.1")}}}}, errdefs.KindInvalid},
		{"range outside", nettypes.CreateRequest{Name: "x6", IPAM: &nettypes.IPAM{Config: []nettypes.IPAMConfig{{Subnet: pfx("10.214.2.0/24"), IPRange: pfx("10.214.3.0/25")}}}}, errdefs.KindInvalid},
		{"host bits", nettypes.CreateRequest{Name: "x7", IPAM: &nettypes.IPAM{Config: []nettypes.IPAMConfig{{Subnet: pfx("10.214.2.5/24")}}}}, errdefs.KindInvalid},
		{"IPv6 subnet, IPv6 off", nettypes.CreateRequest{Name: "x8", IPAM: &nettypes.IPAM{Config: []nettypes.IPAMConfig{{Subnet: pfx("fd00:9::/64")}}}}, errdefs.KindInvalid},
		{"two IPv4 subnets", nettypes.CreateRequest{Name: "x9", IPAM: &nettypes.IPAM{Config: []nettypes.IPAMConfig{{Subnet: pfx("10.214.4.0/24")}, {Subnet: pfx("10.214.5.0/24")}}}}, errdefs.KindInvalid},
		{"bad MTU", nettypes.CreateRequest{Name: "x10", Options: map[string]string{OptMTU: "9"}}, errdefs.KindInvalid},
		{"swarm", nettypes.CreateRequest{Name: "x11", Scope: "swarm"}, errdefs.KindInvalid},
		{"IPAM driver", nettypes.CreateRequest{Name: "x12", IPAM: &nettypes.IPAM{Driver: "dhcp"}}, errdefs.KindNotFound},
		{"long bridge name", nettypes.CreateRequest{Name: "x13", Options: map[string]string{OptBridgeName: "a-very-long-bridge-name"}}, errdefs.KindInvalid},
		{"ipv6 and ipv4 off", nettypes.CreateRequest{Name: "x14", EnableIPv4: new(bool)}, errdefs.KindInvalid},
	} {
		if _, err := m.Create(c.req); !errdefs.Is(err, c.kind) {
			t.Errorf("%s: %v, want %v", c.name, err, c.kind)
		}
	}
	// A refused create leaves no network and no bridge.
	if n := len(m.List()); n != 4 {
		t.Errorf("%d networks after refused creates, want 4", n)
	}
	v6, err := m.Create(nettypes.CreateRequest{Name: "six", EnableIPv6: &yes})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Remove(v6.ID)
	r, err := m.Find("six")
	if err != nil || len(r.IPAM.Config) != 2 || !r.IPAM.Config[1].Subnet.Addr().Is6() || r.IPAM.Config[1].Subnet.Bits() != 64 {
		t.Fatalf("--ipv6 without a subnet: %+v %v", r, err)
	}
	for _, name := range []string{NameBridge, NameHost, NameNone} {
		if err := m.Remove(name); !errdefs.Is(err, errdefs.KindForbidden) {
			t.Errorf("remove %s: %v", name, err)
		}
	}
	if _, err := m.Find(ok.ID[:5]); err != nil {
		t.Errorf("find by prefix: %v", err)
	}
	if _, err := m.Find("nosuch"); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("find nosuch: %v", err)
	}
}

// TestReopen: records survive, the default bridge's subnet is kept, and
// a changed --bip makes it again.
func TestReopen(t *testing.T) {
	testutil.RequireRoot(t)
	root, br := t.TempDir(), testutil.BridgeName()
	m, err := Open(Config{Root: root, Bridge: br})
	if err != nil {
		t.Fatal(err)
	}
	created, err := m.Create(nettypes.CreateRequest{Name: "kept", Labels: map[string]string{"a": "b"}})
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	before, _ := m.Find(NameBridge)
	m.Close()
	m, err = Open(Config{Root: root, Bridge: br})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := m.Find(NameBridge)
	kept, err := m.Find("kept")
	if err != nil || kept.ID != created.ID || kept.Labels["a"] != "b" || after.ID != before.ID ||
		after.IPAM.Config[0].Subnet != before.IPAM.Config[0].Subnet {
		t.Errorf("after reopening: %+v %v; bridge %+v, was %+v", kept, err, after, before)
	}
	m.Close()
	m, err = Open(Config{Root: root, Bridge: br, BIP: netip.MustParsePrefix("10.214.9.1/24")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer m.Remove("kept")
	if r, _ := m.Find(NameBridge); r.IPAM.Config[0].Subnet.String() != "10.214.9.0/24" || r.IPAM.Config[0].Gateway.String() != "10.214.9.1" {
		t.Errorf("--bip changed: %+v", r.IPAM.Config)
	}
}

// TestResolver: names answer among the user networks the asker is on.
func TestResolver(t *testing.T) {
	m := &Manager{nets: map[string]*nw{}}
	mk := func(id, name string, eps ...*Endpoint) *nw {
		n := &nw{Record: Record{Network: nettypes.Network{ID: id, Name: name, Driver: DriverBridge, Options: map[string]string{}}}, eps: map[string]*Endpoint{}}
		for _, ep := range eps {
			n.eps[ep.Container] = ep
		}
		m.nets[id] = n
		return n
	}
	ep := func(ctr, name, ip string, aliases ...string) *Endpoint {
		return &Endpoint{Container: ctr + "0123456789abcdef", Name: name, IPv4: netip.PrefixFrom(netip.MustParseAddr(ip), 24), Aliases: aliases}
	}
	a1 := mk("n1", "one", ep("aa", "web", "10.0.1.2", "svc"), ep("bb", "db", "10.0.1.3", "svc"))
	mk("n2", "two", ep("cc", "other", "10.0.2.2"), ep("aa", "web", "10.0.2.3"))
	def := mk("n0", "bridge", ep("dd", "legacy", "10.0.0.2"))
	def.Options[OptDefaultBridge] = "true"
	r := &resolver{m: m, n: a1}
	web := netip.MustParseAddr("10.0.1.2")
	for _, c := range []struct {
		name string
		want []string
		ok   bool
	}{
		{"DB", []string{"10.0.1.3"}, true},
		{"db.", []string{"10.0.1.3"}, true},
		{"svc", []string{"10.0.1.2", "10.0.1.3"}, true},
		{"other", []string{"10.0.2.2"}, true}, // web is on two too
		{"bb0123456789", []string{"10.0.1.3"}, true},
		{"legacy", nil, false}, // the default bridge has no names
		{"nosuch", nil, false},
	} {
		got, ok := r.Lookup(web, c.name)
		var s []string
		for _, a := range got {
			s = append(s, a.String())
		}
		slices.Sort(s)
		if ok != c.ok || !slices.Equal(s, c.want) {
			t.Errorf("lookup %s: %v %v, want %v %v", c.name, s, ok, c.want, c.ok)
		}
	}
	db := netip.MustParseAddr("10.0.1.3") // only on one
	if _, ok := r.Lookup(db, "other"); ok {
		t.Error("db resolved a container of a network it is not on")
	}
	if name, ok := r.Reverse(web, netip.MustParseAddr("10.0.2.2")); !ok || name != "other.two" {
		t.Errorf("reverse: %q %v", name, ok)
	}
	if _, ok := r.Lookup(netip.MustParseAddr("10.9.9.9"), "db"); ok {
		t.Error("a stranger's query was answered")
	}
}
