package bridge

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"berth.dev/berth/internal/testutil"
)

// sleeper runs a process in a new network namespace; it ends with the test.
func sleeper(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("unshare", "-n", "sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// unshare execs sleep once the namespace is made.
	for i := 0; ; i++ {
		if exe, _ := exec.Command("readlink", fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid)).Output(); strings.Contains(string(exe), "sleep") {
			break
		}
		if i > 500 {
			t.Fatal("unshare did not exec sleep")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
}

func inNS(t *testing.T, nsPath string, args ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + nsPath}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
	return string(out)
}

func TestAttach(t *testing.T) {
	testutil.RequireRoot(t)
	br := "bt" + randomHex(4)
	t.Cleanup(func() {
		if err := Delete(br); err != nil {
			t.Error(err)
		}
	})
	gw4, gw6 := netip.MustParsePrefix("10.250.7.1/24"), netip.MustParsePrefix("fd00:be:7::1/64")
	if err := Ensure(br, 1400, []netip.Prefix{gw4, gw6}); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(br, 1400, []netip.Prefix{gw4, gw6}); err != nil { // again: adopts it
		t.Fatal(err)
	}
	ns := sleeper(t)
	n, err := OpenNamespace(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.LoopbackUp(); err != nil {
		t.Fatal(err)
	}
	mac := RandomMAC()
	host, err := n.Attach(Endpoint{Bridge: br, IfName: "eth0", MAC: mac,
		Addrs:    []netip.Prefix{netip.MustParsePrefix("10.250.7.2/24"), netip.MustParsePrefix("fd00:be:7::2/64")},
		Gateways: []netip.Addr{gw4.Addr(), gw6.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	link := inNS(t, ns, "ip", "-o", "link", "show", "eth0")
	if !strings.Contains(link, "mtu 1400") || !strings.Contains(link, mac.String()) || !strings.Contains(link, "state UP") {
		t.Errorf("eth0: %s", link)
	}
	if r := inNS(t, ns, "ip", "route"); !strings.Contains(r, "default via 10.250.7.1 dev eth0") {
		t.Errorf("routes: %s", r)
	}
	if r := inNS(t, ns, "ip", "-6", "route"); !strings.Contains(r, "default via fd00:be:7::1 dev eth0") {
		t.Errorf("v6 routes: %s", r)
	}
	if lo := inNS(t, ns, "ip", "-o", "link", "show", "lo"); !strings.Contains(lo, "UP") {
		t.Errorf("lo: %s", lo)
	}
	// The gateway answers from inside, over both families.
	inNS(t, ns, "busybox", "ping", "-c1", "-W2", "10.250.7.1")
	inNS(t, ns, "busybox", "ping", "-c1", "-W2", "fd00:be:7::1")
	if m, err := exec.Command("ip", "-o", "link", "show", host).Output(); err != nil || !strings.Contains(string(m), "master "+br) {
		t.Errorf("host end %s: %s %v", host, m, err)
	}
	if ls, err := n.Links(); err != nil || len(ls) != 1 || ls[0] != "eth0" {
		t.Errorf("links: %v %v", ls, err)
	}
	// A second endpoint with the same inside name fails and leaves nothing.
	if _, err := n.Attach(Endpoint{Bridge: br, IfName: "eth0"}); err == nil {
		t.Error("a second eth0 was made")
	}
	if err := n.Detach("eth0"); err != nil {
		t.Fatal(err)
	}
	if Exists(host) {
		t.Errorf("host end %s outlived its pair", host)
	}
	if out, _ := exec.Command("ip", "-o", "link", "show", "master", br).Output(); len(out) != 0 {
		t.Errorf("left on the bridge: %s", out)
	}
}

func TestPairGoesWithNamespace(t *testing.T) {
	testutil.RequireRoot(t)
	br := "bt" + randomHex(4)
	t.Cleanup(func() { _ = Delete(br) })
	if err := Ensure(br, 0, []netip.Prefix{netip.MustParsePrefix("10.250.8.1/24")}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "-n", "sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	time.Sleep(50 * time.Millisecond)
	n, err := OpenNamespace(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	host, err := n.Attach(Endpoint{Bridge: br, IfName: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.250.8.2/24")}})
	n.Close()
	if err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	for i := 0; Exists(host); i++ {
		if i > 500 {
			t.Fatalf("%s outlived its namespace by 5s", host)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRoutes(t *testing.T) {
	testutil.RequireRoot(t)
	rs, err := Routes()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rs {
		found = found || r == netip.MustParsePrefix("127.0.0.0/8")
		if r.Bits() == 0 {
			t.Errorf("default route %s listed", r)
		}
	}
	if !found {
		t.Errorf("127.0.0.0/8 (lo's address) not in %v", rs)
	}
}
