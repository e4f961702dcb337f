package container

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// EtcOptions are what a container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf are made of.
type EtcOptions struct {
	Hostname, Domainname string
	HostNetwork          bool   // the host's /etc/hosts and resolv.conf, as they are
	HostResolv           []byte // the host's resolv.conf
	// IPs are the container's addresses: its own line in /etc/hosts.
	IPs []netip.Addr
	// ExtraHosts are --add-host's "name:ip" (or "name=ip") and legacy
	// links' "ip\tname alias..." lines, the latter as they are.
	ExtraHosts []string
	LinkLines  []string
	// Nameservers replace the host's (--dns, or the network's embedded
	// server); Search and Options add to them (--dns-search,
	// --dns-option).
	Nameservers []netip.Addr
	Search      []string
	Options     []string
	// Embedded says the nameserver is berth's own: names are never
	// tried with the search domains first (docker's ndots:0).
	Embedded bool
}

// WriteEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf into its directory, rewriting the files in place: they
// are bind-mounted into a created container before its network is known.
func WriteEtcFiles(c *Container, o EtcOptions) error {
	if err := os.WriteFile(c.HostnamePath(), []byte(o.Hostname+"\n"), 0o644); err != nil {
		return fmt.Errorf("write hostname: %w", err)
	}
	if err := WriteHosts(c, o); err != nil {
		return err
	}
	if err := os.WriteFile(c.ResolvConfPath(), ResolvConf(o), 0o644); err != nil {
		return fmt.Errorf("write resolv.conf: %w", err)
	}
	return nil
}

// WriteHosts rewrites the container's /etc/hosts alone, in place.
func WriteHosts(c *Container, o EtcOptions) error {
	if err := os.WriteFile(c.HostsPath(), Hosts(o), 0o644); err != nil {
		return fmt.Errorf("write hosts: %w", err)
	}
	return nil
}

// Hosts is a container's /etc/hosts.
func Hosts(o EtcOptions) []byte {
	var b bytes.Buffer
	if o.HostNetwork {
		if h, err := os.ReadFile("/etc/hosts"); err == nil {
			b.Write(h)
		}
	}
	if b.Len() == 0 {
		b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
			"fe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	}
	for _, h := range o.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if i := strings.IndexByte(h, '='); i >= 0 && (!ok || i < len(name)) {
			name, ip = h[:i], h[i+1:]
		}
		ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
		fmt.Fprintf(&b, "%s\t%s\n", ip, name)
	}
	for _, l := range o.LinkLines {
		b.WriteString(l + "\n")
	}
	if o.HostNetwork {
		return b.Bytes()
	}
	names := o.Hostname
	if o.Domainname != "" {
		names = o.Hostname + "." + o.Domainname + " " + o.Hostname
	}
	if len(o.IPs) == 0 {
		fmt.Fprintf(&b, "127.0.0.1\t%s\n", names)
	}
	for _, ip := range o.IPs {
		fmt.Fprintf(&b, "%s\t%s\n", ip, names)
	}
	return b.Bytes()
}

// ResolvConf is a container's /etc/resolv.conf: the host's (without its
// loopback nameservers, unreachable from another network namespace),
// with o's nameservers, search domains and options in place of or added
// to the host's.
func ResolvConf(o EtcOptions) []byte {
	if o.HostNetwork && len(o.Nameservers) == 0 && len(o.Search) == 0 && len(o.Options) == 0 {
		return o.HostResolv
	}
	var servers, search, options, other []string
	sc := bufio.NewScanner(bytes.NewReader(o.HostResolv))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 2 && f[0] == "nameserver":
			if o.HostNetwork || !strings.HasPrefix(f[1], "127.") && f[1] != "::1" {
				servers = append(servers, f[1])
			}
		case len(f) >= 2 && (f[0] == "search" || f[0] == "domain"):
			search = f[1:]
		case len(f) >= 2 && f[0] == "options":
			options = append(options, f[1:]...)
		case len(f) > 0 && !strings.HasPrefix(f[0], "#") && !strings.HasPrefix(f[0], ";"):
			other = append(other, sc.Text())
		}
	}
	if len(o.Nameservers) > 0 {
		servers = servers[:0]
		for _, a := range o.Nameservers {
			servers = append(servers, a.String())
		}
	}
	if len(servers) == 0 {
		servers = []string{"8.8.8.8", "8.8.4.4"} // docker's fallback
	}
	if len(o.Search) > 0 {
		search = o.Search
		if len(search) == 1 && search[0] == "." {
			search = nil
		}
	}
	if len(o.Options) > 0 {
		options = o.Options
	}
	if o.Embedded && !hasPrefixed(options, "ndots:") {
		options = append([]string{"ndots:0"}, options...)
	}
	var b bytes.Buffer
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if len(search) > 0 {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	if len(options) > 0 {
		b.WriteString("options " + strings.Join(options, " ") + "\n")
	}
	for _, l := range other {
		b.WriteString(l + "\n")
	}
	return b.Bytes()
}

// HostNameservers are the nameservers of a resolv.conf, loopback ones too
// (the daemon, on the host, can reach them for the embedded server).
func HostNameservers(resolv []byte) []netip.Addr {
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(resolv))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil {
				out = append(out, a)
			}
		}
	}
	return out
}

func hasPrefixed(ss []string, prefix string) bool {
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
