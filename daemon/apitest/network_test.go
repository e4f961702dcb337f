package apitest

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// hostLinks are the host's links enslaved to bridge.
func hostLinks(t *testing.T, bridge string) []string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show", "master", bridge).CombinedOutput()
	if err != nil {
		return nil // no such bridge: nothing on it
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			names = append(names, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	return names
}

func (d *daemon) ip(container, network string) netip.Addr {
	d.t.Helper()
	out := strings.TrimSpace(d.mustDocker("inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).IPAddress}}", network), container))
	a, err := netip.ParseAddr(out)
	if err != nil {
		d.t.Fatalf("address of %s on %s: %q", container, network, out)
	}
	return a
}

// TestNetworkDefaultBridge: containers on the default bridge get an
// address of its subnet, a default route through its gateway, loopback
// up, their address in /etc/hosts, and reach each other; their veth pairs
// go when they stop.
func TestNetworkDefaultBridge(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	d.mustDocker("run", "-d", "--name", "one", "busybox", "sleep", "300")
	a := d.ip("one", "bridge")
	gw := strings.TrimSpace(d.mustDocker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "bridge"))
	subnet := netip.MustParsePrefix(strings.TrimSpace(d.mustDocker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "bridge")))
	if !subnet.Contains(a) {
		t.Fatalf("address %s outside the bridge's subnet %s", a, subnet)
	}
	if links := hostLinks(t, d.bridge); len(links) != 1 || !strings.HasPrefix(links[0], "veth") {
		t.Fatalf("links on %s: %v", d.bridge, links)
	}
	out := d.mustDocker("run", "--rm", "--hostname", "two", "busybox", "sh", "-c",
		"ip -o -4 addr show eth0; ip route; ip -o link show lo; cat /etc/hosts; ping -c1 -W2 "+a.String())
	mustContain(t, "second container", out, "default via "+gw+" dev eth0", "LOOPBACK,UP", "\ttwo\n", "1 packets received")
	if !strings.Contains(out, "inet "+subnet.Addr().String()[:strings.LastIndex(subnet.Addr().String(), ".")]) {
		t.Errorf("second container's address not in %s:\n%s", subnet, out)
	}
	// The /etc files from --dns*, --add-host (host-gateway is the
	// bridge's gateway), --domainname; --mac-address.
	out = d.mustDocker("run", "--rm", "--hostname", "web", "--domainname", "example.com", "--dns", "10.1.1.1", "--dns-search", "a.test",
		"--dns-option", "ndots:2", "--add-host", "db:10.0.0.9", "--add-host", "gw:host-gateway", "--mac-address", "02:42:ac:11:00:99",
		"busybox", "sh", "-c", "cat /etc/resolv.conf /etc/hosts; ip -o link show eth0")
	mustContain(t, "/etc files", out, "nameserver 10.1.1.1\nsearch a.test\noptions ndots:2\n", "10.0.0.9\tdb\n", gw+"\tgw\n",
		"\tweb.example.com web\n", "link/ether 02:42:ac:11:00:99")
	if got := d.mustDocker("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "bridge"); strings.TrimSpace(got) != fmt.Sprintf("one %s/%d", a, subnet.Bits()) {
		t.Errorf("network inspect's containers: %q", got)
	}
	d.mustDocker("rm", "-f", "one")
	waitFor(t, "the veth pairs to go", func() bool { return len(hostLinks(t, d.bridge)) == 0 })
}

// TestNetworkModes: none has loopback only; host shares the host's
// links; container:NAME shares another container's namespace (and needs
// it running).
func TestNetworkModes(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	if out := d.mustDocker("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"); strings.Count(out, "\n") != 1 || !strings.Contains(out, "lo: <LOOPBACK,UP") {
		t.Errorf("--network none: %q", out)
	}
	if out := d.mustDocker("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link", "show", d.bridge); !strings.Contains(out, d.bridge) {
		t.Errorf("--network host does not see %s: %q", d.bridge, out)
	}
	d.mustDocker("run", "-d", "--name", "base", "busybox", "sleep", "300")
	a := d.ip("base", "bridge")
	if out := d.mustDocker("run", "--rm", "--network", "container:base", "busybox", "ip", "-o", "-4", "addr", "show", "eth0"); !strings.Contains(out, " "+a.String()+"/") {
		t.Errorf("--network container:base has not base's address %s: %q", a, out)
	}
	if out, err := d.docker("run", "--rm", "--network", "container:nosuch", "busybox", "true"); err == nil || !strings.Contains(out, "joining network namespace of container: No such container: nosuch") {
		t.Errorf("container:nosuch: %v %s", err, out)
	}
	d.mustDocker("stop", "-t", "0", "base")
	if out, err := d.docker("run", "--rm", "--network", "container:base", "busybox", "true"); err == nil || !strings.Contains(out, "is not running") {
		t.Errorf("container:base stopped: %v %s", err, out)
	}
	if out, err := d.docker("run", "--rm", "--network", "nosuch", "busybox", "true"); err == nil || !strings.Contains(out, "failed to set up container networking: network nosuch not found") {
		t.Errorf("--network nosuch: %v %s", err, out)
	}
}

// TestNetworkUserDefined: a network with its own subnet, gateway and
// range; static addresses and aliases; connect and disconnect of a
// running container; removal refused while in use.
func TestNetworkUserDefined(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	id := strings.TrimSpace(d.mustDocker("network", "create", "--subnet", "10.213.7.0/24", "--gateway", "10.213.7.254",
		"--ip-range", "10.213.7.128/25", "--label", "app=t", "tnet"))
	defer d.docker("network", "rm", "tnet")
	bridge := "br-" + id[:12]
	if out, err := exec.Command("ip", "-o", "addr", "show", "dev", bridge).CombinedOutput(); err != nil || !strings.Contains(string(out), "10.213.7.254/24") {
		t.Fatalf("bridge %s: %v %s", bridge, err, out)
	}
	d.mustDocker("run", "-d", "--name", "web", "--network", "tnet", "--ip", "10.213.7.10", "--network-alias", "www", "busybox", "sleep", "300")
	if a := d.ip("web", "tnet"); a.String() != "10.213.7.10" {
		t.Fatalf("static address: %s", a)
	}
	out := d.mustDocker("run", "--rm", "--network", "tnet", "busybox", "sh", "-c", "ip -o -4 addr show eth0; ip route; ping -c1 -W2 10.213.7.10")
	mustContain(t, "client", out, "inet 10.213.7.128/24", "default via 10.213.7.254", "1 packets received")
	if out, err := d.docker("run", "--rm", "--network", "tnet", "--ip", "10.213.7.10", "busybox", "true"); err == nil || !strings.Contains(out, "Address already in use") {
		t.Errorf("a taken static address: %v %s", err, out)
	}
	if out, err := d.docker("run", "--rm", "--ip", "172.17.0.99", "busybox", "true"); err == nil || !strings.Contains(out, "user specified IP address is supported on user defined networks only") {
		t.Errorf("static address on the default bridge: %v %s", err, out)
	}
	if out, err := d.docker("network", "rm", "tnet"); err == nil || !strings.Contains(out, "active endpoints") {
		t.Errorf("rm of a network in use: %v %s", err, out)
	}
	if out, err := d.docker("network", "create", "--subnet", "10.213.7.0/25", "overlap"); err == nil || !strings.Contains(out, "Pool overlaps") {
		t.Errorf("overlapping subnet: %v %s", err, out)
	}
	if out, err := d.docker("network", "create", "tnet"); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("duplicate name: %v %s", err, out)
	}

	// Connect the running container to the default bridge too, then
	// disconnect it.
	d.mustDocker("network", "connect", "bridge", "web")
	out = d.mustDocker("exec", "web", "ip", "-o", "-4", "addr")
	mustContain(t, "after connect", out, "eth0", "10.213.7.10", "eth1")
	if out, err := d.docker("network", "connect", "tnet", "web"); err == nil || !strings.Contains(out, "already exists in network tnet") {
		t.Errorf("connect twice: %v %s", err, out)
	}
	d.mustDocker("network", "disconnect", "bridge", "web")
	if out := d.mustDocker("exec", "web", "ip", "-o", "link"); strings.Contains(out, "eth1") {
		t.Errorf("eth1 left after disconnect: %s", out)
	}
	if got := d.mustDocker("inspect", "-f", "{{len .NetworkSettings.Networks}}", "web"); strings.TrimSpace(got) != "1" {
		t.Errorf("networks after disconnect: %s", got)
	}
	d.mustDocker("rm", "-f", "web")
	d.mustDocker("network", "rm", "tnet")
	if _, err := exec.Command("ip", "link", "show", bridge).CombinedOutput(); err == nil {
		t.Errorf("bridge %s outlived its network", bridge)
	}
}

// TestNetworkRestart: a running container keeps its address across a
// daemon killed with -9, the address stays taken, and is free again once
// the container is killed.
func TestNetworkRestart(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	d.mustDocker("network", "create", "--subnet", "10.213.8.0/24", "rnet")
	defer d.docker("network", "rm", "rnet")
	d.mustDocker("run", "-d", "--name", "keep", "--network", "rnet", "--ip", "10.213.8.5", "busybox", "sleep", "300")
	d.kill9()
	d.start()
	if a := d.ip("keep", "rnet"); a.String() != "10.213.8.5" {
		t.Fatalf("after restart: %s", a)
	}
	if out, err := d.docker("run", "--rm", "--network", "rnet", "--ip", "10.213.8.5", "busybox", "true"); err == nil || !strings.Contains(out, "Address already in use") {
		t.Errorf("the restored address was given again: %v %s", err, out)
	}
	out := d.mustDocker("run", "--rm", "--network", "rnet", "busybox", "ping", "-c1", "-W2", "10.213.8.5")
	mustContain(t, "ping the restored container", out, "1 packets received")
	d.mustDocker("kill", "keep")
	d.mustDocker("run", "--rm", "--network", "rnet", "--ip", "10.213.8.5", "busybox", "true")
	d.mustDocker("start", "keep")
	if a := d.ip("keep", "rnet"); a.String() != "10.213.8.5" {
		t.Fatalf("after start again: %s", a)
	}

	// Both die: the daemon, then the container (kill -9 of its init, which
	// the test started). The next daemon finds the container exited and
	// everything its network used gone or free.
	d.mustDocker("rm", "-f", "keep")
	d.mustDocker("run", "-d", "--name", "doomed", "--network", "rnet", "--ip", "10.213.8.6", "-p", "18282:80", "busybox", "sleep", "300")
	pid, err := strconv.Atoi(strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.State.Pid}}", "doomed")))
	if err != nil {
		t.Fatal(err)
	}
	bridge := "br-" + strings.TrimSpace(d.mustDocker("network", "inspect", "-f", "{{.ID}}", "rnet"))[:12]
	d.kill9()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.start()
	waitFor(t, "doomed to be seen exited", func() bool {
		return strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.State.Status}}", "doomed")) == "exited"
	})
	waitFor(t, "its veth to go", func() bool { return len(hostLinks(t, bridge)) == 0 })
	if out, _ := exec.Command("nft", "list", "chain", "inet", "berth-"+bridge, "ports").CombinedOutput(); strings.Contains(string(out), "dnat") {
		t.Errorf("its port's rule outlived it:\n%s", out)
	}
	d.mustDocker("run", "--rm", "--network", "rnet", "--ip", "10.213.8.6", "-p", "18282:80", "busybox", "true")
	if got := d.mustDocker("inspect", "-f", "{{json .NetworkSettings.Ports}} {{.NetworkSettings.Networks.rnet.IPAddress}}", "doomed"); strings.TrimSpace(got) != "{}" {
		t.Errorf("the exited container's network settings: %q", got)
	}
}

// TestNetworkConcurrentStarts: 50 containers started at once on one
// network get distinct addresses, and each reaches the gateway.
func TestNetworkConcurrentStarts(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	d.mustDocker("network", "create", "--subnet", "10.213.9.0/24", "many")
	defer d.docker("network", "rm", "many")
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := d.docker("run", "-d", "--name", fmt.Sprintf("c%02d", i), "--network", "many", "busybox", "sleep", "300"); err != nil {
				errs <- fmt.Errorf("c%02d: %v: %s", i, err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	seen := map[netip.Addr]string{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("c%02d", i)
		a := d.ip(name, "many")
		if other, dup := seen[a]; dup {
			t.Errorf("%s and %s both have %s", name, other, a)
		}
		seen[a] = name
	}
	for i := 0; i < n; i++ {
		if out, err := d.docker("exec", fmt.Sprintf("c%02d", i), "ping", "-c1", "-W2", "10.213.9.1"); err != nil {
			t.Errorf("c%02d cannot reach the gateway: %v %s", i, err, out)
		}
	}
	if got := len(hostLinks(t, "br-"+strings.TrimSpace(d.mustDocker("network", "inspect", "-f", "{{.ID}}", "many"))[:12])); got != n {
		t.Errorf("%d veths on the bridge, want %d", got, n)
	}
}

// TestNetworkLegacyLinks: --link on the default bridge gives the linked
// container's name in /etc/hosts and docker's environment.
func TestNetworkLegacyLinks(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	d.mustDocker("run", "-d", "--name", "db", "--expose", "5432", "-e", "PGUSER=app", "busybox", "sleep", "300")
	a := d.ip("db", "bridge").String()
	out := d.mustDocker("run", "--rm", "--link", "db:database", "-e", "DATABASE_ENV_PGUSER=mine", "busybox", "sh", "-c",
		"grep database /etc/hosts; env | grep ^DATABASE_ | sort; ping -c1 -W2 database")
	mustContain(t, "linked", out, a+"\tdatabase db ", "DATABASE_NAME=/", "DATABASE_PORT=tcp://"+a+":5432",
		"DATABASE_PORT_5432_TCP_ADDR="+a, "DATABASE_PORT_5432_TCP_PORT=5432", "DATABASE_PORT_5432_TCP_PROTO=tcp",
		"DATABASE_ENV_PGUSER=mine", "1 packets received")
	if strings.Contains(out, "DATABASE_ENV_PGUSER=app") || strings.Contains(out, "DATABASE_ENV_PATH") {
		t.Errorf("the container's own variable must win, PATH is not passed:\n%s", out)
	}
	d.mustDocker("stop", "-t", "0", "db")
	if out, err := d.docker("run", "--rm", "--link", "db", "busybox", "true"); err == nil || !strings.Contains(out, "cannot link to a non running container") {
		t.Errorf("link to a stopped container: %v %s", err, out)
	}
}

// TestNetworkIPv6: a network made with --ipv6 gives containers an IPv6
// address and route too, usable at once (no duplicate address detection
// to wait out).
func TestNetworkIPv6(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	d.mustDocker("network", "create", "--ipv6", "--subnet", "fd00:b5:1::/64", "--subnet", "10.213.10.0/24", "six")
	defer d.docker("network", "rm", "six")
	d.mustDocker("run", "-d", "--name", "v6", "--network", "six", "--ip6", "fd00:b5:1::99", "busybox", "sleep", "300")
	got := strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.NetworkSettings.Networks.six.GlobalIPv6Address}} {{.NetworkSettings.Networks.six.IPv6Gateway}}", "v6"))
	if got != "fd00:b5:1::99 fd00:b5:1::1" {
		t.Fatalf("IPv6 address and gateway: %q", got)
	}
	out := d.mustDocker("run", "--rm", "--network", "six", "busybox", "sh", "-c", "ip -6 route; ping -6 -c1 -W2 fd00:b5:1::99")
	mustContain(t, "IPv6 peer", out, "default via fd00:b5:1::1", "1 packets received")
	if out, err := d.docker("run", "--rm", "--ip6", "fd00:b5:1::5", "busybox", "true"); err == nil {
		t.Errorf("--ip6 on the default bridge (no IPv6) was accepted: %s", out)
	}
	// A published port answers on the host's IPv6 addresses too.
	d.mustDocker("run", "-d", "--network", "six", "-p", "18383:80", "busybox", "sh", "-c", httpdCmd+"sleep 300")
	for _, addr := range []string{"[fd00:b5:1::1]:18383", "127.0.0.1:18383"} {
		waitFor(t, "the port at "+addr, func() bool { return httpGet(addr) == "hello" })
	}
}
