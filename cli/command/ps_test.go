package command

import (
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// TestPorts checks the PORTS column on the port lists docker documents:
// the daemons under test run without a network, so no container has any.
func TestPorts(t *testing.T) {
	v4 := netip.MustParseAddr("0.0.0.0")
	v6 := netip.MustParseAddr("::")
	p := func(ip netip.Addr, pub, priv uint16, typ string) container.PortSummary {
		return container.PortSummary{IP: ip, PublicPort: pub, PrivatePort: priv, Type: typ}
	}
	for _, c := range []struct {
		ports []container.PortSummary
		want  string
	}{
		{nil, ""},
		{[]container.PortSummary{p(netip.Addr{}, 0, 82, "tcp"), p(netip.Addr{}, 0, 80, "tcp"), p(netip.Addr{}, 0, 81, "tcp"),
			p(netip.Addr{}, 0, 84, "tcp"), p(netip.Addr{}, 0, 90, "udp")}, "80-82/tcp, 84/tcp, 90/udp"},
		{[]container.PortSummary{p(v4, 8080, 80, "tcp")}, "0.0.0.0:8080->80/tcp"},
		{[]container.PortSummary{p(v4, 80, 80, "tcp"), p(v4, 81, 81, "tcp")}, "0.0.0.0:80-81->80-81/tcp"},
		{[]container.PortSummary{p(v6, 8080, 80, "tcp"), p(v4, 8080, 80, "tcp")}, "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"},
		{[]container.PortSummary{p(v4, 9000, 90, "udp"), p(netip.Addr{}, 0, 22, "tcp")}, "22/tcp, 0.0.0.0:9000->90/udp"},
	} {
		if got := (psRow{c: container.Summary{Ports: c.ports}}).Ports(); got != c.want {
			t.Errorf("Ports(%v) = %q, want %q", c.ports, got, c.want)
		}
	}
}
