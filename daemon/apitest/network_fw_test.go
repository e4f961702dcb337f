package apitest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// udpEcho builds a static UDP echo server (busybox's nc has no -u) to
// bind-mount into containers as /udpecho; it answers "echo: " + what it
// got on the port its first argument names.
func udpEcho(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := `package main

import (
	"net"
	"os"
)

func main() {
	c, err := net.ListenPacket("udp", ":"+os.Args[1])
	if err != nil {
		panic(err)
	}
	b := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(b)
		if err != nil {
			return
		}
		c.WriteTo(append([]byte("echo: "), b[:n]...), from)
	}
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "udpecho")
	cmd := exec.Command("go", "build", "-o", bin, "main.go")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build udpecho: %v\n%s", err, out)
	}
	return bin
}

// httpGet sends a bare HTTP request to addr and returns the body's last
// line ("" when the connection fails).
func httpGet(addr string) string {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprint(c, "GET / HTTP/1.0\r\n\r\n")
	b, _ := io.ReadAll(bufio.NewReader(c))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func udpAsk(addr, msg string) string {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return ""
	}
	defer c.Close()
	b := make([]byte, 1500)
	for i := 0; i < 3; i++ { // udp: the first may race the server's start
		_ = c.SetDeadline(time.Now().Add(time.Second))
		fmt.Fprint(c, msg)
		if n, err := c.Read(b); err == nil {
			return string(b[:n])
		}
	}
	return ""
}

const httpdCmd = "mkdir -p /www && echo hello > /www/index.html && httpd -p 80 -h /www && "

// TestNetworkPublish: published tcp and udp ports reach the container
// from the host's loopback and its other addresses, from other containers
// and from the container itself (hairpin); -P and ephemeral ports; a port
// taken twice is refused; a stopped container's ports are free again and
// its rules gone.
func TestNetworkPublish(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	echo := udpEcho(t)
	d.mustDocker("run", "-d", "--name", "srv", "-v", echo+":/udpecho:ro", "-p", "18181:80", "-p", "18181:53/udp",
		"-p", "127.0.0.1::80", "--expose", "7000", "-P", "busybox", "sh", "-c", httpdCmd+"(nc -ll -p 7000 -e echo seven &) && exec /udpecho 53")
	gw := strings.TrimSpace(d.mustDocker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "bridge"))
	for _, addr := range []string{"127.0.0.1:18181", gw + ":18181"} {
		if got := httpGet(addr); got != "hello" {
			t.Errorf("tcp %s: %q", addr, got)
		}
	}
	if got := udpAsk("127.0.0.1:18181", "ping"); got != "echo: ping" {
		t.Errorf("udp 127.0.0.1:18181: %q", got)
	}
	ports := d.mustDocker("port", "srv")
	mustContain(t, "docker port", ports, "80/tcp -> 0.0.0.0:18181", "53/udp -> 0.0.0.0:18181", "80/tcp -> 127.0.0.1:", "7000/tcp -> 0.0.0.0:")
	eph := strings.TrimSpace(d.mustDocker("port", "srv", "7000"))
	if got := httpGet(strings.Replace(eph, "0.0.0.0", "127.0.0.1", 1)); got != "seven" {
		t.Errorf("-P's port %s: %q", eph, got)
	}
	for _, l := range strings.Split(ports, "\n") {
		if strings.HasPrefix(l, "80/tcp -> 127.0.0.1:") {
			if got := httpGet(strings.TrimPrefix(l, "80/tcp -> ")); got != "hello" {
				t.Errorf("ephemeral loopback port %s: %q", l, got)
			}
		}
	}
	req := `printf "GET / HTTP/1.0\r\n\r\n" | nc ` + gw + ` 18181 | tail -1`
	if out := d.mustDocker("run", "--rm", "busybox", "sh", "-c", req); strings.TrimSpace(out) != "hello" {
		t.Errorf("from another container: %q", out)
	}
	if out := d.mustDocker("exec", "srv", "sh", "-c", req); strings.TrimSpace(out) != "hello" {
		t.Errorf("hairpin: %q", out)
	}
	if out, err := d.docker("run", "-d", "-p", "18181:80", "busybox", "sleep", "1"); err == nil || !strings.Contains(out, "port is already allocated") {
		t.Errorf("a port taken twice: %v %s", err, out)
	}
	d.mustDocker("stop", "-t", "0", "srv")
	if got := httpGet("127.0.0.1:18181"); got != "" {
		t.Errorf("a stopped container's port answers: %q", got)
	}
	if out, _ := exec.Command("nft", "list", "chain", "inet", "berth-"+d.bridge, "ports").CombinedOutput(); strings.Contains(string(out), "dnat") {
		t.Errorf("rules left after stop:\n%s", out)
	}
	d.mustDocker("run", "-d", "--name", "srv2", "-p", "18181:80", "busybox", "sh", "-c", httpdCmd+"sleep 300")
	waitFor(t, "the second container's port", func() bool { return httpGet("127.0.0.1:18181") == "hello" })

	// Ranges pair up; a host range for one port takes a free one of it.
	d.mustDocker("run", "-d", "--name", "ranges", "-p", "18190-18191:7001-7002", "-p", "18195-18199:7003", "busybox", "sh", "-c",
		"(nc -ll -p 7001 -e echo one &); (nc -ll -p 7002 -e echo two &); nc -ll -p 7003 -e echo three")
	for addr, want := range map[string]string{"127.0.0.1:18190": "one", "127.0.0.1:18191": "two"} {
		waitFor(t, addr, func() bool { return httpGet(addr) == want })
	}
	three := strings.Replace(strings.TrimSpace(d.mustDocker("port", "ranges", "7003")), "0.0.0.0", "127.0.0.1", 1)
	if !strings.HasPrefix(three, "127.0.0.1:1819") || httpGet(three) != "three" {
		t.Errorf("a host range for one port: %q", three)
	}

	// -P publishes the image's EXPOSE too.
	d.mustDocker("commit", "--change", "EXPOSE 7070", "srv2", "exposing:1")
	d.mustDocker("run", "-d", "--name", "exp", "-P", "exposing:1", "sh", "-c", "nc -ll -p 7070 -e echo exposed")
	addr := strings.Replace(strings.TrimSpace(d.mustDocker("port", "exp", "7070")), "0.0.0.0", "127.0.0.1", 1)
	waitFor(t, "the image's exposed port", func() bool { return httpGet(addr) == "exposed" })
}

// TestNetworkIsolation: containers on different user networks cannot
// reach each other; an internal network has no way out of its subnet.
func TestNetworkIsolation(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	for _, n := range [][]string{{"--subnet", "10.213.11.0/24", "iso1"}, {"--subnet", "10.213.12.0/24", "iso2"},
		{"--internal", "--subnet", "10.213.13.0/24", "inner"}} {
		d.mustDocker(append([]string{"network", "create"}, n...)...)
		defer d.docker("network", "rm", n[len(n)-1])
	}
	d.mustDocker("run", "-d", "--name", "a1", "--network", "iso1", "busybox", "sh", "-c", httpdCmd+"sleep 300")
	d.mustDocker("run", "-d", "--name", "i1", "--network", "inner", "busybox", "sh", "-c", httpdCmd+"sleep 300")
	a1, i1 := d.ip("a1", "iso1").String(), d.ip("i1", "inner").String()
	get := func(ip string) string { return `printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 ` + ip + ` 80 | tail -1` }
	if out := d.mustDocker("run", "--rm", "--network", "iso1", "busybox", "sh", "-c", get(a1)); strings.TrimSpace(out) != "hello" {
		t.Errorf("same network: %q", out)
	}
	for _, c := range []struct{ from, to string }{{"iso2", a1}, {"iso1", i1}, {"iso2", i1}} {
		if out, _ := d.docker("run", "--rm", "--network", c.from, "busybox", "sh", "-c", get(c.to)); strings.Contains(out, "hello") {
			t.Errorf("from %s reached %s: %q", c.from, c.to, out)
		}
	}
	out := d.mustDocker("run", "--rm", "--network", "inner", "busybox", "sh", "-c", "ip route; "+get(i1))
	if strings.Contains(out, "default") || !strings.Contains(out, "hello") {
		t.Errorf("internal network: a default route, or no way to its peer:\n%s", out)
	}
	if out, _ := d.docker("run", "--rm", "--network", "inner", "busybox", "sh", "-c", get(a1)); strings.Contains(out, "hello") {
		t.Errorf("the internal network reached iso1: %q", out)
	}
}

// TestNetworkNoICC: with --icc=false containers on the default bridge
// reach each other only on a linked container's exposed ports.
func TestNetworkNoICC(t *testing.T) {
	d := newDaemon(t)
	d.start("--icc=false", "--mtu", "1400")
	archive, _ := busyboxArchive(t, "busybox:latest")
	d.mustDocker("load", "-i", archive)
	defer d.rmAll()
	d.mustDocker("run", "-d", "--name", "db", "--expose", "80", "busybox", "sh", "-c", httpdCmd+"(nc -ll -p 81 -e echo other &) && sleep 300")
	ip := d.ip("db", "bridge").String()
	if out := d.mustDocker("exec", "db", "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, "mtu 1400") {
		t.Errorf("--mtu 1400: %s", out)
	}
	get := func(port string) string {
		return `printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 ` + ip + ` ` + port + ` | tail -1`
	}
	if out, _ := d.docker("run", "--rm", "busybox", "sh", "-c", get("80")); strings.Contains(out, "hello") {
		t.Errorf("--icc=false: reached without a link: %q", out)
	}
	out := d.mustDocker("run", "--rm", "--link", "db", "busybox", "sh", "-c", get("80")+"; "+get("81")+"; echo end")
	if !strings.Contains(out, "hello") || strings.Contains(out, "other") {
		t.Errorf("--icc=false with a link: the exposed port only:\n%s", out)
	}
}

// TestNetworkDNS: on user-defined networks names and aliases resolve
// through berth's server, only among the networks the asker is on; other
// names go to the container's --dns server (a test server on loopback).
func TestNetworkDNS(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	upstream := &dns.Server{Addr: "127.213.0.53:53", Net: "udp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		switch {
		case q.Question[0].Name != "outside.test.":
			m.Rcode = dns.RcodeNameError
		case q.Question[0].Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "outside.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
				A: net.IPv4(10, 1, 2, 3)})
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	upstream.NotifyStartedFunc = func() { close(started) }
	go func() { _ = upstream.ListenAndServe() }()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("test DNS server did not start")
	}
	defer upstream.Shutdown()

	for _, n := range []string{"dns1", "dns2"} {
		d.mustDocker("network", "create", n)
		defer d.docker("network", "rm", n)
	}
	d.mustDocker("run", "-d", "--name", "alpha", "--network", "dns1", "--network-alias", "svc", "busybox", "sleep", "300")
	d.mustDocker("run", "-d", "--name", "beta", "--network", "dns1", "--network-alias", "svc", "busybox", "sleep", "300")
	a, b := d.ip("alpha", "dns1").String(), d.ip("beta", "dns1").String()
	out := d.mustDocker("run", "--rm", "--network", "dns1", "--dns", "127.213.0.53", "busybox", "sh", "-c",
		"cat /etc/resolv.conf; nslookup alpha; nslookup SVC; nslookup outside.test; ping -c1 -W2 beta")
	mustContain(t, "names on dns1", out, "options ndots:0", "Name:\talpha\nAddress: "+a, "Address: "+b, "Name:\toutside.test\nAddress: 10.1.2.3", "1 packets received")
	if strings.Count(out, "Name:\tSVC") != 2 && strings.Count(out, "Name:\tsvc") != 2 {
		t.Errorf("the alias svc should have both addresses:\n%s", out)
	}
	out, _ = d.docker("run", "--rm", "--network", "dns2", "--dns", "127.213.0.53", "busybox", "nslookup", "alpha")
	if strings.Contains(out, a) {
		t.Errorf("a container on dns2 resolved alpha of dns1:\n%s", out)
	}
	// Connected to dns1 too, it resolves alpha.
	d.mustDocker("run", "-d", "--name", "gamma", "--network", "dns2", "busybox", "sleep", "300")
	d.mustDocker("network", "connect", "dns1", "gamma")
	if out := d.mustDocker("exec", "gamma", "nslookup", "alpha"); !strings.Contains(out, a) {
		t.Errorf("after connect to dns1, alpha does not resolve:\n%s", out)
	}
	// The default bridge has no names: the host's resolvers only.
	if out := d.mustDocker("run", "--rm", "busybox", "cat", "/etc/resolv.conf"); strings.Contains(out, "ndots:0") {
		t.Errorf("default bridge resolv.conf: %q", out)
	}
}

// TestNetworkNoFirewall: with --iptables=false containers still get
// bridges, addresses and names (the DNS server then listens on the
// gateway's port 53 itself); no table is made; ports are refused, not
// silently unpublished.
func TestNetworkNoFirewall(t *testing.T) {
	d := newDaemon(t)
	d.start("--iptables=false")
	archive, _ := busyboxArchive(t, "busybox:latest")
	d.mustDocker("load", "-i", archive)
	defer d.rmAll()
	d.mustDocker("network", "create", "plain")
	defer d.docker("network", "rm", "plain")
	d.mustDocker("run", "-d", "--name", "named", "--network", "plain", "busybox", "sleep", "300")
	a := d.ip("named", "plain").String()
	out := d.mustDocker("run", "--rm", "--network", "plain", "busybox", "sh", "-c", "nslookup named; ping -c1 -W2 named")
	mustContain(t, "names without a firewall", out, "Address: "+a, "1 packets received")
	if out, _ := exec.Command("nft", "list", "tables").CombinedOutput(); strings.Contains(string(out), "berth-"+d.bridge) {
		t.Errorf("--iptables=false made tables:\n%s", out)
	}
	if out, err := d.docker("run", "--rm", "-p", "18484:80", "busybox", "true"); err == nil || !strings.Contains(out, "cannot publish ports") {
		t.Errorf("-p without a firewall: %v %s", err, out)
	}
}
