package testutil

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryBinary is the registry of Debian's docker-registry package
// (distribution 2.8).
const RegistryBinary = "/usr/bin/docker-registry"

// The token server's names, as the registry's auth.token config and the
// tokens carry them.
const (
	RegistryService = "berth-test-registry"
	TokenIssuer     = "berth-test-token-issuer"
)

// RegistryOptions chooses how the test registry serves.
type RegistryOptions struct {
	TLS      bool              // HTTPS with a server cert (127.0.0.1 and localhost SANs) from a fresh test CA
	Htpasswd map[string]string // user -> password: basic auth (bcrypt htpasswd file)
	Token    map[string]string // user -> password: bearer token auth via a token server run in the test process (non-nil, even empty for anonymous only, turns it on)
	// TokenAccess, when set, says which actions (pull, push) a token server
	// user gets on a repository; nil grants every user pull and push
	// everywhere. Anonymous token requests get what "" is granted.
	TokenAccess func(user, repo string) []string
	// ClientCerts (with TLS) makes the registry ask for a client
	// certificate the test CA issued; CertsDir then holds one
	// (client.cert, client.key, as docker's certs.d).
	ClientCerts bool
}

// TokenRequest is one request the token server answered (or refused for a
// wrong password: those are recorded too, with the user they claimed).
type TokenRequest struct {
	User    string // "" for anonymous
	Service string
	Scopes  []string // as asked, e.g. "repository:busybox:pull,push"
	Method  string   // GET (docker token spec) or POST (OAuth2 form)
	Granted bool     // false when the credentials were refused
}

// Registry is a running docker-registry on 127.0.0.1, with its own config,
// storage and (in token mode) token server.
type Registry struct {
	Addr   string // host:port, 127.0.0.1:NNNNN
	CACert string // PEM file of the test CA (TLS and token modes), alone in its directory; "" otherwise
	Dir    string // the registry's storage
	// Token server (Token mode): its URL, and every scope it was asked for,
	// in order (for tests of per-repository scopes).
	TokenURL      string
	TokenRequests func() []TokenRequest

	Root   string // everything of this registry: config, log, certs, storage
	Log    string // the registry's stderr and stdout
	Config string // the registry's config file

	opts   RegistryOptions
	cmd    *exec.Cmd
	exited chan struct{}
	client *http.Client

	tokenSrv  *http.Server
	tokenKey  *ecdsa.PrivateKey
	tokenCert []byte // DER, the x5c of every token
	mu        sync.Mutex
	requests  []TokenRequest
	refresh   map[string]string // refresh token -> user
}

// StartRegistry starts a registry for t; t.Cleanup stops it and removes its
// files. It skips t when docker-registry is not installed.
func StartRegistry(t *testing.T, o RegistryOptions) *Registry {
	t.Helper()
	if _, err := os.Stat(RegistryBinary); err != nil {
		t.Skipf("docker-registry is not installed (apt-get install docker-registry): %v", err)
	}
	r, err := NewRegistry(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("registry %s log (tail):\n%s", r.Addr, r.logTail())
		}
		if err := r.Close(); err != nil {
			t.Errorf("stop registry: %v", err)
		}
	})
	return r
}

// NewRegistry starts a registry whose files are in a new directory in
// parent ("" for the system's temp dir) and waits until it answers. Close
// stops it and removes that directory.
func NewRegistry(parent string, o RegistryOptions) (*Registry, error) {
	if len(o.Htpasswd) > 0 && len(o.Token) > 0 {
		return nil, errors.New("registry: Htpasswd and Token are exclusive")
	}
	root, err := os.MkdirTemp(parent, "berth-registry-")
	if err != nil {
		return nil, err
	}
	r := &Registry{
		Root:    root,
		Dir:     filepath.Join(root, "storage"),
		Log:     filepath.Join(root, "registry.log"),
		Config:  filepath.Join(root, "config.yml"),
		opts:    o,
		refresh: map[string]string{},
	}
	r.TokenRequests = r.tokenRequests
	if err := r.start(); err != nil {
		_ = r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Registry) start() error {
	if err := os.Mkdir(r.Dir, 0o755); err != nil {
		return err
	}
	tlsConf := &tls.Config{}
	var serverCert, serverKey string
	if r.opts.TLS || r.opts.Token != nil {
		ca, err := r.makeCerts()
		if err != nil {
			return fmt.Errorf("registry certificates: %w", err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		tlsConf.RootCAs = pool
		if r.opts.ClientCerts {
			pair, err := tls.LoadX509KeyPair(filepath.Join(r.Root, "client", "client.cert"), filepath.Join(r.Root, "client", "client.key"))
			if err != nil {
				return err
			}
			tlsConf.Certificates = []tls.Certificate{pair}
		}
		serverCert, serverKey = filepath.Join(r.Root, "server", "server.crt"), filepath.Join(r.Root, "server", "server.key")
	}
	r.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}

	auth := map[string]any{}
	if len(r.opts.Htpasswd) > 0 {
		file := filepath.Join(r.Root, "htpasswd")
		if err := writeHtpasswd(file, r.opts.Htpasswd); err != nil {
			return err
		}
		auth["htpasswd"] = map[string]any{"realm": "berth-test", "path": file}
	}
	if r.opts.Token != nil {
		if err := r.startTokenServer(serverCert, serverKey); err != nil {
			return err
		}
		auth["token"] = map[string]any{
			"realm":          r.TokenURL,
			"service":        RegistryService,
			"issuer":         TokenIssuer,
			"rootcertbundle": r.CACert,
		}
	}

	// The port is found free and then handed to the registry, which may
	// lose it to another process in between: try again then.
	var err error
	for range 3 {
		var port int
		if port, err = freePort(); err != nil {
			return err
		}
		r.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		httpConf := map[string]any{"addr": r.Addr, "secret": randomHex(16)}
		if r.opts.TLS {
			tlsConf := map[string]any{"certificate": serverCert, "key": serverKey}
			if r.opts.ClientCerts {
				tlsConf["clientcas"] = []string{r.CACert}
			}
			httpConf["tls"] = tlsConf
		}
		conf := map[string]any{
			"version": "0.1",
			"log":     map[string]any{"level": "info", "formatter": "text"},
			"storage": map[string]any{
				"filesystem": map[string]any{"rootdirectory": r.Dir},
				// Benches and tests clean repositories out between runs.
				"delete": map[string]any{"enabled": true},
				// Nothing to purge in a short-lived registry; saves a goroutine's disk walk.
				"maintenance": map[string]any{"uploadpurging": map[string]any{"enabled": false}},
			},
			"http": httpConf,
		}
		if len(auth) > 0 {
			conf["auth"] = auth
		}
		// JSON is YAML: no YAML writer needed, and paths need no quoting care.
		b, err := json.MarshalIndent(conf, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(r.Config, append(b, '\n'), 0o600); err != nil {
			return err
		}
		if err = r.run(); err == nil || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
	}
	return err
}

// run starts the registry on r.Config and waits until GET /v2/ answers.
func (r *Registry) run() error {
	logf, err := os.OpenFile(r.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	r.cmd = exec.Command(RegistryBinary, "serve", r.Config)
	// REGISTRY_* variables override the config file: none of the caller's.
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "REGISTRY_") {
			r.cmd.Env = append(r.cmd.Env, e)
		}
	}
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	// Its own process group: a terminal's ^C goes to the test, which stops it.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		r.cmd = nil
		return fmt.Errorf("start %s: %w", RegistryBinary, err)
	}
	r.exited = make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(r.exited) }()

	url := r.URL() + "/v2/"
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-r.exited:
			err := fmt.Errorf("registry exited (%v) at startup; log:\n%s", r.cmd.ProcessState, r.logTail())
			r.cmd = nil
			return err
		default:
		}
		resp, err := r.client.Get(url)
		if err != nil {
			continue
		}
		resp.Body.Close()
		// 401: up, and wants credentials.
		if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
			return nil
		}
	}
	r.stopProcess()
	return fmt.Errorf("registry did not answer GET %s in 30s; log:\n%s", url, r.logTail())
}

func (r *Registry) logTail() string {
	b, _ := os.ReadFile(r.Log)
	return tail(string(b), 30)
}

// URL is the registry's base URL: http://Addr or https://Addr.
func (r *Registry) URL() string {
	if r.opts.TLS {
		return "https://" + r.Addr
	}
	return "http://" + r.Addr
}

// Client is an HTTP client that trusts the test CA.
func (r *Registry) Client() *http.Client { return r.client }

// Close stops the registry and the token server and removes every file.
func (r *Registry) Close() error {
	r.stopProcess()
	if r.tokenSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = r.tokenSrv.Shutdown(ctx)
		cancel()
	}
	if r.client != nil {
		r.client.CloseIdleConnections()
	}
	return os.RemoveAll(r.Root)
}

func (r *Registry) stopProcess() {
	if r.cmd == nil {
		return
	}
	terminate(r.cmd.Process, r.exited, 10*time.Second)
	r.cmd = nil
}

// CertsDir returns a fresh directory laid out like /etc/docker/certs.d:
// <Addr>/ca.crt (empty of certificates when the registry has no CA).
func (r *Registry) CertsDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := r.writeCertsDir(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (r *Registry) writeCertsDir(dir string) error {
	sub := filepath.Join(dir, r.Addr)
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return err
	}
	if r.CACert == "" {
		return nil
	}
	files := map[string]string{"ca.crt": r.CACert}
	if r.opts.ClientCerts {
		for _, f := range []string{"client.cert", "client.key"} {
			files[f] = filepath.Join(r.Root, "client", f)
		}
	}
	for name, from := range files {
		b, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(sub, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Users returns the users of the registry's auth (htpasswd or token), sorted.
func (r *Registry) Users() []string {
	m := r.opts.Htpasswd
	if len(m) == 0 {
		m = r.opts.Token
	}
	users := make([]string, 0, len(m))
	for u := range m {
		users = append(users, u)
	}
	sort.Strings(users)
	return users
}

// Creds returns "user:password" of user for skopeo --creds and the like.
func (r *Registry) Creds(user string) string {
	if p, ok := r.opts.Htpasswd[user]; ok {
		return user + ":" + p
	}
	return user + ":" + r.opts.Token[user]
}

// Push copies src (a containers/image reference such as
// "docker-archive:/x.tar" or "oci:/dir:tag") to docker://<Addr>/<ref> with
// skopeo, trusting the CA and, when the registry wants credentials, as the
// first user (sorted) that may push to the repository.
func (r *Registry) Push(t testing.TB, src, ref string) {
	t.Helper()
	if err := r.PushAs(r.pusher(ref), src, ref); err != nil {
		t.Fatal(err)
	}
}

func (r *Registry) pusher(ref string) string {
	users := r.Users()
	if len(users) == 0 {
		return ""
	}
	repo, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	if r.opts.Token != nil && r.opts.TokenAccess != nil {
		for _, u := range users {
			if slices.Contains(r.opts.TokenAccess(u, repo), "push") {
				return u
			}
		}
	}
	return users[0]
}

// PushAs is Push as user ("" for no credentials), returning the error; it
// needs no testing.TB, for benches.
func (r *Registry) PushAs(user, src, ref string) error {
	args := []string{"--insecure-policy", "copy", "--quiet", "--retry-times", "0"}
	if r.opts.TLS {
		certs, err := os.MkdirTemp(r.Root, "certs.d-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(certs)
		if err := r.writeCertsDir(certs); err != nil {
			return err
		}
		args = append(args, "--dest-cert-dir", filepath.Join(certs, r.Addr))
	} else {
		// Plain HTTP: containers/image only falls back to it when not verifying TLS.
		args = append(args, "--dest-tls-verify=false")
	}
	if user != "" {
		args = append(args, "--dest-creds", r.Creds(user))
	}
	args = append(args, src, "docker://"+r.Addr+"/"+ref)
	var out bytes.Buffer
	cmd := exec.Command("skopeo", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("skopeo %s: %v: %s", strings.Join(args, " "), err, out.String())
	}
	return nil
}

func writeHtpasswd(file string, users map[string]string) error {
	var b strings.Builder
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	for _, u := range names {
		// The lowest cost bcrypt allows: every request checks the password.
		h, err := bcrypt.GenerateFromPassword([]byte(users[u]), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("htpasswd for %s: %w", u, err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	return os.WriteFile(file, []byte(b.String()), 0o600)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// makeCerts writes a fresh CA (ca/ca.crt), a server certificate for
// 127.0.0.1 and localhost (server/server.crt, server.key) and keeps a token
// signing key whose certificate the CA issued. It returns the CA.
func (r *Registry) makeCerts() (*x509.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now().Add(-time.Hour) // clock skew between the test and the registry's checks
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "berth test CA"},
		NotBefore:             now,
		NotAfter:              now.Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	issue := func(serial int64, tmpl *x509.Certificate) (*ecdsa.PrivateKey, []byte, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now, now.Add(48*time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		return key, der, err
	}
	serverKey, serverDER, err := issue(2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, err
	}
	clientKey, clientDER, err := issue(4, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "berth test client"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	clientKeyDER, err := x509.MarshalECPrivateKey(clientKey)
	if err != nil {
		return nil, err
	}
	r.tokenKey, r.tokenCert, err = issue(3, &x509.Certificate{
		Subject:  pkix.Name{CommonName: "berth test token signer"},
		KeyUsage: x509.KeyUsageDigitalSignature,
	})
	if err != nil {
		return nil, err
	}
	serverKeyDER, err := x509.MarshalECPrivateKey(serverKey)
	if err != nil {
		return nil, err
	}
	// The CA alone in its directory, which is then a cert dir for skopeo
	// or containers/image (a .key there would be taken for a client key).
	r.CACert = filepath.Join(r.Root, "ca", "ca.crt")
	for _, d := range []string{"ca", "server", "client"} {
		if err := os.Mkdir(filepath.Join(r.Root, d), 0o755); err != nil {
			return nil, err
		}
	}
	for file, block := range map[string]*pem.Block{
		r.CACert: {Type: "CERTIFICATE", Bytes: caDER},
		filepath.Join(r.Root, "server", "server.crt"):  {Type: "CERTIFICATE", Bytes: serverDER},
		filepath.Join(r.Root, "server", "server.key"):  {Type: "EC PRIVATE KEY", Bytes: serverKeyDER},
		filepath.Join(r.Root, "client", "client.cert"): {Type: "CERTIFICATE", Bytes: clientDER},
		filepath.Join(r.Root, "client", "client.key"):  {Type: "EC PRIVATE KEY", Bytes: clientKeyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

// startTokenServer serves the docker token spec on 127.0.0.1: over TLS
// with the registry's server certificate when the registry has TLS.
func (r *Registry) startTokenServer(cert, key string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("token server: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", r.serveToken)
	r.tokenSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if r.opts.TLS {
		scheme = "https"
		go func() { _ = r.tokenSrv.ServeTLS(l, cert, key) }()
	} else {
		go func() { _ = r.tokenSrv.Serve(l) }()
	}
	r.TokenURL = scheme + "://" + l.Addr().String() + "/token"
	return nil
}

func (r *Registry) tokenRequests() []TokenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// serveToken answers GET (docker token spec: optional basic auth, service,
// repeated scope, offline_token) and POST (OAuth2 password and
// refresh_token grants, as docker uses with an identity token).
func (r *Registry) serveToken(w http.ResponseWriter, req *http.Request) {
	var (
		user, service string
		scopes        []string
		authorized    = true
		offline       bool
	)
	switch req.Method {
	case http.MethodGet:
		q := req.URL.Query()
		service = q.Get("service")
		scopes = splitScopes(q["scope"])
		offline = q.Get("offline_token") == "true"
		if u, p, ok := req.BasicAuth(); ok {
			user = u
			want, known := r.opts.Token[u]
			authorized = known && want == p
		}
	case http.MethodPost:
		if err := req.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		service = req.PostForm.Get("service")
		scopes = splitScopes(req.PostForm["scope"])
		switch req.PostForm.Get("grant_type") {
		case "password":
			user = req.PostForm.Get("username")
			want, known := r.opts.Token[user]
			authorized = known && want == req.PostForm.Get("password")
			offline = req.PostForm.Get("access_type") == "offline"
		case "refresh_token":
			r.mu.Lock()
			u, ok := r.refresh[req.PostForm.Get("refresh_token")]
			r.mu.Unlock()
			user, authorized = u, ok
		default:
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
			return
		}
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.mu.Lock()
	r.requests = append(r.requests, TokenRequest{User: user, Service: service, Scopes: scopes, Method: req.Method, Granted: authorized})
	r.mu.Unlock()
	if !authorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="berth-test-token"`)
		http.Error(w, `{"details":"incorrect username or password"}`, http.StatusUnauthorized)
		return
	}
	if service != RegistryService {
		http.Error(w, fmt.Sprintf(`{"details":"unknown service %q"}`, service), http.StatusBadRequest)
		return
	}
	token, err := r.signToken(user, r.grant(user, scopes))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	resp := map[string]any{
		"token": token, "access_token": token, "expires_in": 300,
		"issued_at": time.Now().UTC().Format(time.RFC3339),
	}
	if offline && user != "" {
		rt := randomHex(16)
		r.mu.Lock()
		r.refresh[rt] = user
		r.mu.Unlock()
		resp["refresh_token"] = rt
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// splitScopes takes scope parameters, repeated or space-separated.
func splitScopes(params []string) []string {
	var scopes []string
	for _, p := range params {
		scopes = append(scopes, strings.Fields(p)...)
	}
	return scopes
}

type resourceActions struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// grant returns the access user gets of the scopes: what was asked and is
// allowed. Scopes other than repository ones are granted only when every
// user may do everything (TokenAccess nil).
func (r *Registry) grant(user string, scopes []string) []resourceActions {
	var access []resourceActions
	for _, s := range scopes {
		// type:name:actions; a name may hold a port's colon, the actions cannot.
		typ, rest, ok1 := strings.Cut(s, ":")
		i := strings.LastIndex(rest, ":")
		if !ok1 || i < 0 {
			continue
		}
		name, actions := rest[:i], strings.Split(rest[i+1:], ",")
		allowed := []string{"pull", "push", "*"}
		if r.opts.TokenAccess != nil {
			allowed = nil
			if typ == "repository" {
				allowed = r.opts.TokenAccess(user, name)
			}
		}
		var got []string
		for _, a := range actions {
			if slices.Contains(allowed, a) || slices.Contains(allowed, "*") {
				got = append(got, a)
			}
		}
		if len(got) > 0 {
			access = append(access, resourceActions{Type: typ, Name: name, Actions: got})
		}
	}
	return access
}

// signToken makes the JWT distribution 2.8 verifies: ES256, x5c holding
// the signing certificate that chains to the rootcertbundle (the test CA),
// a single-string aud.
func (r *Registry) signToken(user string, access []resourceActions) (string, error) {
	header, err := json.Marshal(map[string]any{
		"typ": "JWT", "alg": "ES256",
		"x5c": []string{base64.StdEncoding.EncodeToString(r.tokenCert)},
	})
	if err != nil {
		return "", err
	}
	now := time.Now()
	if access == nil {
		access = []resourceActions{}
	}
	claims, err := json.Marshal(map[string]any{
		"iss": TokenIssuer, "sub": user, "aud": RegistryService,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": randomHex(12), "access": access,
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signed))
	rr, ss, err := ecdsa.Sign(rand.Reader, r.tokenKey, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	// JWS ES256: R and S as two 32-byte big-endian halves.
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return signed + "." + enc.EncodeToString(sig), nil
}
