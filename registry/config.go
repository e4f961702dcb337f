package registry

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"berth.dev/berth/errdefs"
)

// Docker Hub's names: references say docker.io, its API is served by
// registry-1.docker.io, credentials are stored under IndexServer.
const (
	DockerHub    = "docker.io"
	hubAPIHost   = "registry-1.docker.io"
	hubIndexHost = "index.docker.io"
	IndexServer  = "https://index.docker.io/v1/"
)

// DefaultCertsDir is where per-registry TLS files live, as docker's
// /etc/docker/certs.d: <host[:port]>/ca.crt (and any *.crt) are CA roots,
// <name>.cert with <name>.key a client certificate.
const DefaultCertsDir = "/etc/berth/certs.d"

// Config is how a Client reaches registries.
type Config struct {
	// CertsDir is the certs.d directory; "" means DefaultCertsDir.
	CertsDir string
	// Insecure are registries reached without TLS verification, falling
	// back to plain HTTP: CIDRs ("10.0.0.0/8") or host[:port]. 127.0.0.0/8
	// is always insecure, as in docker.
	Insecure []string
	// Mirrors are tried, in order, before Docker Hub for docker.io images.
	Mirrors []string
	// UserAgent is sent with every request.
	UserAgent string
}

// Client reaches registries. It is safe for concurrent use.
type Client struct {
	certsDir      string
	insecureNets  []*net.IPNet
	insecureHosts map[string]bool
	mirrors       []*url.URL
	userAgent     string

	mu         sync.Mutex
	transports map[string]*http.Transport // by host and TLS mode
	tokens     map[tokenKey]token
}

// New returns a client for cfg. Bad entries in cfg are errors (the daemon
// refuses to start with them, as dockerd does).
func New(cfg Config) (*Client, error) {
	c := &Client{
		certsDir:      cfg.CertsDir,
		insecureHosts: map[string]bool{},
		userAgent:     cfg.UserAgent,
		transports:    map[string]*http.Transport{},
		tokens:        map[tokenKey]token{},
	}
	if c.certsDir == "" {
		c.certsDir = DefaultCertsDir
	}
	if c.userAgent == "" {
		c.userAgent = "berth"
	}
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	c.insecureNets = append(c.insecureNets, loopback)
	for _, s := range cfg.Insecure {
		s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(s, "http://"), "https://"), "/")
		if _, n, err := net.ParseCIDR(s); err == nil {
			c.insecureNets = append(c.insecureNets, n)
			continue
		}
		if s == "" || strings.ContainsAny(s, "/ ") {
			return nil, errdefs.Invalid("insecure registry %q: not a CIDR or host[:port]", s)
		}
		c.insecureHosts[s] = true
	}
	for _, m := range cfg.Mirrors {
		u, err := url.Parse(m)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errdefs.Invalid("registry mirror %q: want an http:// or https:// URL", m)
		}
		if u.Path != "" && u.Path != "/" {
			return nil, errdefs.Invalid("registry mirror %q: a mirror is a host, without a path", m)
		}
		u.Path = ""
		c.mirrors = append(c.mirrors, u)
	}
	return c, nil
}

// endpoint is one place a registry's API may be served.
type endpoint struct {
	base     *url.URL // scheme and host
	insecure bool     // TLS without verification (or plain HTTP)
	mirror   bool
}

// endpoints lists where to reach domain's API, in the order to try.
func (c *Client) endpoints(domain string) []endpoint {
	if domain == DockerHub || domain == hubIndexHost {
		var eps []endpoint
		for _, m := range c.mirrors {
			eps = append(eps, endpoint{base: m, insecure: m.Scheme == "http" || c.insecureFor(m.Host), mirror: true})
		}
		return append(eps, endpoint{base: &url.URL{Scheme: "https", Host: hubAPIHost}})
	}
	if c.insecureFor(domain) {
		// As docker: TLS first (unverified), then plain HTTP.
		return []endpoint{
			{base: &url.URL{Scheme: "https", Host: domain}, insecure: true},
			{base: &url.URL{Scheme: "http", Host: domain}, insecure: true},
		}
	}
	if c.isInsecure(domain) {
		// Insecure by default (loopback) but with a CA in certs.d: TLS is
		// verified, and plain HTTP stays the fallback it is for docker.
		return []endpoint{
			{base: &url.URL{Scheme: "https", Host: domain}},
			{base: &url.URL{Scheme: "http", Host: domain}, insecure: true},
		}
	}
	return []endpoint{{base: &url.URL{Scheme: "https", Host: domain}}}
}

// isInsecure tells whether host[:port] is an insecure registry: named so,
// or an address (or a name resolving to one) in an insecure network.
func (c *Client) isInsecure(hostport string) bool {
	if c.insecureHosts[hostport] {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if c.insecureHosts[host] {
		return true
	}
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		if host == "localhost" {
			return true
		}
		addrs, err := net.LookupIP(host)
		if err != nil {
			return false
		}
		ips = addrs
	}
	for _, ip := range ips {
		for _, n := range c.insecureNets {
			if n.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// hasCerts tells whether certs.d has a directory for host[:port].
func (c *Client) hasCerts(hostport string) bool {
	fi, err := os.Stat(filepath.Join(c.certsDir, hostport))
	return err == nil && fi.IsDir()
}

// transport returns the HTTP transport for one endpoint: the system roots
// plus certs.d's CAs for the host, its client certificates, and no
// verification for an insecure registry.
func (c *Client) transport(ep endpoint) (*http.Transport, error) {
	key := ep.base.Scheme + "://" + ep.base.Host
	if ep.insecure {
		key += "#insecure"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.transports[key]; ok {
		return t, nil
	}
	tc, err := c.tlsConfig(ep.base.Host)
	if err != nil {
		return nil, err
	}
	tc.InsecureSkipVerify = ep.insecure
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ExpectContinueTimeout: time.Second,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		// Layers are gzip or zstd already; a transparent gzip would hide
		// the bytes whose digest is checked.
		DisableCompression: true,
	}
	c.transports[key] = t
	return t, nil
}

// tlsConfig reads certs.d/<host> (docker's layout: *.crt are CA roots,
// <name>.cert + <name>.key are client key pairs).
func (c *Client) tlsConfig(host string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	dir := filepath.Join(c.certsDir, host)
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return tc, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry %s: certs: %w", host, err)
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		switch {
		case strings.HasSuffix(name, ".crt"):
			pem, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("registry %s: %w", host, err)
			}
			if tc.RootCAs == nil {
				if tc.RootCAs, err = x509.SystemCertPool(); err != nil || tc.RootCAs == nil {
					tc.RootCAs = x509.NewCertPool()
				}
			}
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, errdefs.Invalid("registry %s: %s holds no PEM certificate", host, p)
			}
		case strings.HasSuffix(name, ".cert"):
			keyFile := strings.TrimSuffix(p, ".cert") + ".key"
			pair, err := tls.LoadX509KeyPair(p, keyFile)
			if err != nil {
				return nil, errdefs.Invalid("registry %s: client certificate %s: %v", host, p, err)
			}
			tc.Certificates = append(tc.Certificates, pair)
		case strings.HasSuffix(name, ".key"):
			if _, err := os.Stat(strings.TrimSuffix(p, ".key") + ".cert"); err != nil {
				return nil, errdefs.Invalid("registry %s: key %s has no matching .cert", host, p)
			}
		}
	}
	return tc, nil
}
