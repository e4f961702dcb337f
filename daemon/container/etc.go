package container

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// WriteEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf into its directory; hostResolv is the host's
// resolv.conf (its 127.x nameservers are dropped, as docker does, since
// they cannot be reached from the container's network namespace).
func WriteEtcFiles(c *Container, hostname string, hostNetwork bool, hostResolv []byte) error {
	if err := os.WriteFile(c.HostnamePath(), []byte(hostname+"\n"), 0o644); err != nil {
		return fmt.Errorf("write hostname: %w", err)
	}
	var hosts []byte
	if hostNetwork {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = b
		}
	}
	if hosts == nil {
		hosts = []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
			"fe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n" +
			"127.0.0.1\t" + hostname + "\n")
	}
	if err := os.WriteFile(c.HostsPath(), hosts, 0o644); err != nil {
		return fmt.Errorf("write hosts: %w", err)
	}
	resolv := hostResolv
	if !hostNetwork {
		resolv = FilterResolvConf(hostResolv)
	}
	if err := os.WriteFile(c.ResolvConfPath(), resolv, 0o644); err != nil {
		return fmt.Errorf("write resolv.conf: %w", err)
	}
	return nil
}

// FilterResolvConf drops loopback nameservers; with none left it uses
// Google's public servers, as docker does.
func FilterResolvConf(b []byte) []byte {
	var out bytes.Buffer
	servers := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if strings.HasPrefix(f[1], "127.") || f[1] == "::1" {
				continue
			}
			servers++
		}
		out.WriteString(line + "\n")
	}
	if servers == 0 {
		out.WriteString("nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
	}
	return out.Bytes()
}
