// Package client is berth's own Docker Engine API client: a thin layer over
// net/http speaking the API with the moby API types, for the berth CLI.
//
// It keeps the names and signatures of github.com/moby/moby/client for the
// calls the CLI makes, so the CLI reads the same, but links none of that
// module's dependencies (distribution/reference's regexps, OpenTelemetry,
// go-connections): every start of the berth binary paid their package
// initialisation.
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"
)

// The environment variables docker's CLI reads.
const (
	EnvOverrideHost       = "DOCKER_HOST"
	EnvOverrideAPIVersion = "DOCKER_API_VERSION"
	EnvOverrideCertPath   = "DOCKER_CERT_PATH"
	EnvTLSVerify          = "DOCKER_TLS_VERIFY"
)

// MaxAPIVersion is the highest API version the client speaks; MinAPIVersion
// the lowest daemon version it accepts when negotiating.
const (
	MaxAPIVersion = "1.56"
	MinAPIVersion = "1.40"
)

// dummyHost is the Host header over a unix socket, which has no host name.
const dummyHost = "api.moby.localhost"

// Client talks to one daemon.
type Client struct {
	host, proto, addr, basePath string
	scheme                      string
	userAgent                   *string
	tlsConfig                   *tls.Config
	http                        *http.Client
	transport                   *http.Transport // ours, closed by Close

	mu         sync.Mutex
	version    string
	negotiated bool // the version is fixed (by option or a ping)
}

type config struct {
	host, proto, addr, basePath string
	version                     string
	userAgent                   *string
	tlsConfig                   *tls.Config
	httpClient                  *http.Client
}

// Opt configures a Client in New.
type Opt func(*config) error

// New makes a client; with no options it talks to the default unix socket.
func New(opts ...Opt) (*Client, error) {
	cfg := &config{}
	if err := WithHost("unix:///var/run/docker.sock")(cfg); err != nil {
		return nil, err
	}
	for _, o := range opts {
		if err := o(cfg); err != nil {
			return nil, err
		}
	}
	c := &Client{host: cfg.host, proto: cfg.proto, addr: cfg.addr, basePath: cfg.basePath,
		userAgent: cfg.userAgent, tlsConfig: cfg.tlsConfig, scheme: "http"}
	if cfg.httpClient != nil {
		hc := *cfg.httpClient
		if t, ok := hc.Transport.(*http.Transport); ok {
			t = t.Clone()
			if t.TLSClientConfig != nil && c.tlsConfig == nil {
				c.tlsConfig = t.TLSClientConfig
			}
			if t.DialContext == nil && c.proto == "unix" {
				t.DialContext = c.dial
			}
			hc.Transport, c.transport = t, t
		}
		c.http = &hc
	} else {
		c.transport = &http.Transport{DialContext: c.dial, TLSClientConfig: c.tlsConfig,
			DisableCompression: true, IdleConnTimeout: 30 * time.Second}
		c.http = &http.Client{Transport: c.transport}
		if c.proto == "unix" {
			c.http.Transport = &connTransport{dial: c.dial, streams: c.transport}
		}
	}
	if c.tlsConfig != nil {
		c.scheme = "https"
	}
	if cfg.version != "" {
		c.version, c.negotiated = cfg.version, true
	}
	return c, nil
}

// dial connects to the daemon's address whatever the request's URL says
// (a unix socket's "host" is a path).
func (c *Client) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	proto := c.proto
	if proto != "unix" {
		proto = "tcp"
	}
	d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return d.DialContext(ctx, proto, c.addr)
}

// WithHost sets the daemon address: unix:///path or tcp://host:port[/base].
func WithHost(host string) Opt {
	return func(c *config) error {
		u, err := ParseHostURL(host)
		if err != nil {
			return err
		}
		switch u.Scheme {
		case "unix", "tcp", "http", "https":
		default:
			return fmt.Errorf("protocol not available")
		}
		c.host, c.proto, c.addr, c.basePath = host, u.Scheme, u.Host, u.Path
		return nil
	}
}

// ParseHostURL splits a daemon address as docker does.
func ParseHostURL(host string) (*url.URL, error) {
	proto, addr, ok := strings.Cut(host, "://")
	if !ok || addr == "" {
		return nil, fmt.Errorf("unable to parse docker host `%s`", host)
	}
	var base string
	if proto == "tcp" || proto == "http" || proto == "https" {
		u, err := url.Parse("tcp://" + addr)
		if err != nil {
			return nil, err
		}
		addr, base = u.Host, u.Path
	}
	return &url.URL{Scheme: proto, Host: addr, Path: base}, nil
}

// WithAPIVersion fixes the API version (no negotiation).
func WithAPIVersion(v string) Opt {
	return func(c *config) error {
		v = strings.TrimPrefix(strings.TrimSpace(v), "v")
		if v == "" {
			return nil
		}
		if !validVersion(v) {
			return fmt.Errorf("invalid API version (%s): must be formatted <major>.<minor>", v)
		}
		c.version = v
		return nil
	}
}

// WithAPIVersionFromEnv fixes the API version from $DOCKER_API_VERSION.
func WithAPIVersionFromEnv() Opt { return WithAPIVersion(os.Getenv(EnvOverrideAPIVersion)) }

func validVersion(v string) bool {
	maj, min, ok := strings.Cut(v, ".")
	return ok && isDigits(maj) && isDigits(min)
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Opt {
	return func(c *config) error { c.userAgent = &ua; return nil }
}

// WithHTTPClient uses hc (its transport cloned) for requests.
func WithHTTPClient(hc *http.Client) Opt {
	return func(c *config) error {
		if hc != nil {
			c.httpClient = hc
		}
		return nil
	}
}

// WithTLSClientConfig verifies the daemon against caFile (if given) and
// presents certFile/keyFile (if given), TLS 1.2 at least.
func WithTLSClientConfig(caFile, certFile, keyFile string) Opt {
	return func(c *config) error {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return fmt.Errorf("configure TLS: could not read CA certificate %q: %w", caFile, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("configure TLS: failed to append certificates from PEM file: %q", caFile)
			}
			cfg.RootCAs = pool
		}
		if certFile != "" || keyFile != "" {
			kp, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return fmt.Errorf("configure TLS: could not load X509 key pair: %w", err)
			}
			cfg.Certificates = []tls.Certificate{kp}
		}
		c.tlsConfig = cfg
		return nil
	}
}

// Close releases idle connections.
func (c *Client) Close() error {
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
	return nil
}

// DaemonHost is the address the client talks to.
func (c *Client) DaemonHost() string { return c.host }

// ClientVersion is the API version requests use.
func (c *Client) ClientVersion() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version == "" {
		return MaxAPIVersion
	}
	return c.version
}

// negotiate pings the daemon once to settle the API version: the lower of
// the daemon's and ours. A failed ping leaves it to the next request.
func (c *Client) negotiate(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.negotiated {
		return
	}
	p, err := c.ping(ctx)
	if err != nil {
		return
	}
	c.fixVersion(p)
}

// fixVersion settles the version from the daemon's (p, "" when it gave
// none): the lower of it and ours. One too old or malformed settles
// nothing: requests go on at ours and are refused. c.mu is held.
func (c *Client) fixVersion(p string) {
	v := MaxAPIVersion
	if p != "" {
		if !validVersion(p) || versionLess(p, MinAPIVersion) {
			return
		}
		if versionLess(p, v) {
			v = p
		}
	}
	c.version, c.negotiated = v, true
}

// settle is the negotiation of a request made at version sent without a
// ping before it: every answer carries the daemon's version (Api-Version,
// what a ping reads), and a daemon older than sent refuses it with 400
// ("client version 1.56 is too new. Maximum supported API version is
// 1.41") before it reads anything. It says whether the request is to be
// made again, at the version now settled.
func (c *Client) settle(ctx context.Context, resp *http.Response, sent string) (again bool) {
	p := resp.Header.Get("Api-Version")
	c.mu.Lock()
	if !c.negotiated && p != "" {
		c.fixVersion(p)
	}
	c.mu.Unlock()
	if resp.StatusCode != http.StatusBadRequest {
		return false
	}
	if p == "" {
		c.negotiate(ctx) // no version in the refusal: ask for it
	}
	return c.ClientVersion() != sent
}

// ping asks /_ping (HEAD, then GET for old daemons) for the API version.
func (c *Client) ping(ctx context.Context) (string, error) {
	for _, m := range []string{http.MethodHead, http.MethodGet} {
		req, err := c.newRequest(ctx, m, path.Join(c.basePath, "/_ping"), nil, nil)
		if err != nil {
			return "", err
		}
		resp, err := c.do(req)
		if err != nil {
			return "", err
		}
		closeBody(resp)
		if resp.StatusCode == http.StatusOK || m == http.MethodGet {
			return resp.Header.Get("Api-Version"), nil
		}
	}
	return "", nil
}

// versionLess compares "major.minor" versions numerically.
func versionLess(a, b string) bool {
	am, an := splitVersion(a)
	bm, bn := splitVersion(b)
	return am < bm || am == bm && an < bn
}

func splitVersion(v string) (int, int) {
	var maj, min int
	fmt.Sscanf(v, "%d.%d", &maj, &min) //nolint:errcheck // validated before
	return maj, min
}

// negotiatedVersion is the API version after negotiating (if it can).
func (c *Client) negotiatedVersion(ctx context.Context) string {
	c.negotiate(ctx)
	return c.ClientVersion()
}

// requiresVersion refuses a feature the daemon's API version lacks.
func (c *Client) requiresVersion(ctx context.Context, version, feature string) error {
	if v := c.negotiatedVersion(ctx); versionLess(v, version) {
		return fmt.Errorf("%q requires API version %s, but the Docker daemon API version is %s", feature, version, v)
	}
	return nil
}
