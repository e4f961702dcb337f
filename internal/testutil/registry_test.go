package testutil

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// busyboxArchive writes a one-layer busybox docker-archive for registry tests.
func busyboxArchive(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "busybox.tar")
	if _, err := DockerArchive(out, []string{"busybox:test"}, []string{"sh"}, BusyboxRootfs(t)); err != nil {
		t.Fatal(err)
	}
	return out
}

func requireSkopeo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo is not installed (apt-get install skopeo)")
	}
}

// skopeoInspect runs skopeo inspect with args before the image reference
// and returns the image's digest and layer count.
func skopeoInspect(ref string, args ...string) (digest string, layers int, err error) {
	cmd := exec.Command("skopeo", append(append([]string{"inspect", "--retry-times", "0"}, args...), "docker://"+ref)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = errors.New(string(ee.Stderr))
		}
		return "", 0, err
	}
	var v struct {
		Digest string
		Layers []string
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return "", 0, err
	}
	return v.Digest, len(v.Layers), nil
}

func wantInspect(t *testing.T, ref string, args ...string) {
	t.Helper()
	digest, layers, err := skopeoInspect(ref, args...)
	if err != nil {
		t.Fatalf("skopeo inspect %s %v: %v", ref, args, err)
	}
	if !strings.HasPrefix(digest, "sha256:") || layers != 1 {
		t.Fatalf("skopeo inspect %s: digest %q, %d layers; want a sha256 digest and 1 layer", ref, digest, layers)
	}
}

func wantInspectFails(t *testing.T, ref, why string, args ...string) {
	t.Helper()
	_, _, err := skopeoInspect(ref, args...)
	if err == nil {
		t.Fatalf("skopeo inspect %s %v succeeded; want it refused (%s)", ref, args, why)
	}
	if !strings.Contains(err.Error(), why) {
		t.Fatalf("skopeo inspect %s %v: %v; want an error mentioning %q", ref, args, err, why)
	}
}

func TestRegistryPlain(t *testing.T) {
	requireSkopeo(t)
	r := StartRegistry(t, RegistryOptions{})
	if !strings.HasPrefix(r.Addr, "127.0.0.1:") || r.CACert != "" || r.TokenURL != "" {
		t.Fatalf("Addr %q CACert %q TokenURL %q; want 127.0.0.1:port and no CA or token server", r.Addr, r.CACert, r.TokenURL)
	}
	r.Push(t, "docker-archive:"+busyboxArchive(t), "library/busybox:1")
	wantInspect(t, r.Addr+"/library/busybox:1", "--tls-verify=false")
	if _, err := os.Stat(filepath.Join(r.Dir, "docker/registry/v2/repositories/library/busybox")); err != nil {
		t.Errorf("the push is not in the registry's storage: %v", err)
	}
	resp, err := r.Client().Get(r.URL() + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"library/busybox"`) {
		t.Errorf("GET /v2/_catalog: %s %s", resp.Status, b)
	}
}

func TestRegistryTLS(t *testing.T) {
	requireSkopeo(t)
	r := StartRegistry(t, RegistryOptions{TLS: true})
	if !strings.HasPrefix(r.URL(), "https://") || r.CACert == "" {
		t.Fatalf("URL %s, CACert %q: want https and a CA", r.URL(), r.CACert)
	}
	r.Push(t, "docker-archive:"+busyboxArchive(t), "busybox:1")
	certs := r.CertsDir(t)
	if _, err := os.Stat(filepath.Join(certs, r.Addr, "ca.crt")); err != nil {
		t.Fatalf("CertsDir: %v", err)
	}
	wantInspect(t, r.Addr+"/busybox:1", "--cert-dir", filepath.Join(certs, r.Addr))
	// localhost is in the certificate too.
	wantInspect(t, strings.Replace(r.Addr, "127.0.0.1", "localhost", 1)+"/busybox:1",
		"--cert-dir", filepath.Join(certs, r.Addr))
	// CACert's directory serves as a cert dir too.
	wantInspect(t, r.Addr+"/busybox:1", "--cert-dir", filepath.Dir(r.CACert))
	wantInspectFails(t, r.Addr+"/busybox:1", "certificate signed by unknown authority")
}

// TestRegistryHtpasswd: basic auth, over plain HTTP and over TLS.
func TestRegistryHtpasswd(t *testing.T) {
	requireSkopeo(t)
	archive := busyboxArchive(t)
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) {
			testRegistryHtpasswd(t, tls, archive)
		})
	}
}

func testRegistryHtpasswd(t *testing.T, tls bool, archive string) {
	r := StartRegistry(t, RegistryOptions{TLS: tls, Htpasswd: map[string]string{"alice": "wonderland", "bob": "builder"}})
	r.Push(t, "docker-archive:"+archive, "busybox:1")
	ref := r.Addr + "/busybox:1"
	conn := []string{"--tls-verify=false"}
	if tls {
		conn = []string{"--cert-dir", filepath.Join(r.CertsDir(t), r.Addr)}
	}
	wantInspect(t, ref, append(conn, "--creds", "bob:builder")...)
	wantInspectFails(t, ref, "unauthorized", append(conn, "--creds", "bob:wonderland")...)
	wantInspectFails(t, ref, "unauthorized", append(conn, "--no-creds")...)

	resp, err := r.Client().Get(r.URL() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("GET /v2/ without credentials: %s, WWW-Authenticate %q; want 401 and a Basic challenge",
			resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestRegistryToken: TLS and a token server whose users get different
// access per repository; skopeo pushes and pulls as each.
func TestRegistryToken(t *testing.T) {
	requireSkopeo(t)
	r := StartRegistry(t, RegistryOptions{
		TLS:   true,
		Token: map[string]string{"alice": "wonderland", "bob": "builder"},
		TokenAccess: func(user, repo string) []string {
			switch {
			case user == "alice":
				return []string{"pull", "push"}
			case user == "bob", strings.HasPrefix(repo, "public/"):
				return []string{"pull"}
			}
			return nil
		},
	})
	if !strings.HasPrefix(r.TokenURL, "https://127.0.0.1:") {
		t.Fatalf("TokenURL %q: want https on 127.0.0.1", r.TokenURL)
	}
	archive := busyboxArchive(t)
	r.Push(t, "docker-archive:"+archive, "busybox:1") // as alice, the one who may
	r.Push(t, "docker-archive:"+archive, "public/busybox:1")
	certs := filepath.Join(r.CertsDir(t), r.Addr)

	wantInspect(t, r.Addr+"/busybox:1", "--cert-dir", certs, "--creds", "bob:builder")
	wantInspect(t, r.Addr+"/public/busybox:1", "--cert-dir", certs, "--no-creds")
	wantInspectFails(t, r.Addr+"/busybox:1", "unauthorized", "--cert-dir", certs, "--no-creds")
	wantInspectFails(t, r.Addr+"/busybox:1", "invalid username/password", "--cert-dir", certs, "--creds", "bob:wonderland")
	if err := r.PushAs("bob", "docker-archive:"+archive, "busybox:2"); err == nil {
		t.Error("bob pushed busybox:2; his token grants only pull")
	}

	var alice, anon, wrong bool
	for _, q := range r.TokenRequests() {
		if q.Service != RegistryService || q.Method != http.MethodGet {
			t.Errorf("token request %+v: want GET for service %s", q, RegistryService)
		}
		switch {
		case q.User == "alice" && slices.Contains(q.Scopes, "repository:public/busybox:pull,push"):
			alice = true
		case q.User == "" && slices.Contains(q.Scopes, "repository:public/busybox:pull"):
			anon = true
		case q.User == "bob" && !q.Granted:
			wrong = true
		}
	}
	if !alice || !anon || !wrong {
		t.Errorf("token requests lack alice's push scope (%v), the anonymous pull (%v) or bob's refused password (%v): %+v",
			alice, anon, wrong, r.TokenRequests())
	}
}

// TestRegistryTokenHTTP drives a plain HTTP registry's token server by
// hand: the challenge, the GET and POST (OAuth2) forms, the tokens the
// registry accepts or refuses.
func TestRegistryTokenHTTP(t *testing.T) {
	requireSkopeo(t)
	r := StartRegistry(t, RegistryOptions{Token: map[string]string{"alice": "wonderland"}})
	if !strings.HasPrefix(r.TokenURL, "http://127.0.0.1:") || r.CACert == "" {
		t.Fatalf("TokenURL %q CACert %q: want http on 127.0.0.1 and the token signer's CA", r.TokenURL, r.CACert)
	}
	r.Push(t, "docker-archive:"+busyboxArchive(t), "busybox:1")
	c := r.Client()

	resp, err := c.Get(r.URL() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := `Bearer realm="` + r.TokenURL + `",service="` + RegistryService + `"`
	if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || got != want {
		t.Fatalf("GET /v2/: %s, WWW-Authenticate %q; want 401, %q", resp.Status, got, want)
	}

	tags := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", r.URL()+"/v2/busybox/tags/list", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	type answer struct {
		Token, AccessToken, RefreshToken string
		ExpiresIn                        int
		IssuedAt                         string
	}
	call := func(req *http.Request) (int, answer) {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var raw struct {
			Token        string `json:"token"`
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			ExpiresIn    int    `json:"expires_in"`
			IssuedAt     string `json:"issued_at"`
		}
		if resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, answer(raw)
	}
	get := func(user, pass, query string) (int, answer) {
		req, _ := http.NewRequest("GET", r.TokenURL+"?"+query, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		return call(req)
	}
	post := func(form url.Values) (int, answer) {
		req, _ := http.NewRequest("POST", r.TokenURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return call(req)
	}
	pull := "service=" + RegistryService + "&scope=repository:busybox:pull"

	code, a := get("alice", "wonderland", pull+"&offline_token=true")
	if code != 200 || a.Token == "" || a.Token != a.AccessToken || a.ExpiresIn <= 0 || a.IssuedAt == "" || a.RefreshToken == "" {
		t.Fatalf("GET token as alice: %d %+v", code, a)
	}
	if got := tags(a.Token); got != 200 {
		t.Errorf("tags/list with alice's token: %d", got)
	}
	// Every user, anonymous too, gets everything when TokenAccess is nil.
	if code, a := get("", "", pull); code != 200 || tags(a.Token) != 200 {
		t.Errorf("anonymous token: %d, or the registry refused it", code)
	}
	// A token for another repository does not open this one.
	if code, a := get("alice", "wonderland", "service="+RegistryService+"&scope=repository:other:pull"); code != 200 || tags(a.Token) != 401 {
		t.Errorf("a token for other: %d, or the registry accepted it for busybox", code)
	}
	if code, _ := get("alice", "nope", pull); code != 401 {
		t.Errorf("GET token with a wrong password: %d, want 401", code)
	}
	if code, _ := get("", "", "service=elsewhere&scope=repository:busybox:pull"); code != 400 {
		t.Errorf("GET token for another service: %d, want 400", code)
	}
	code, p := post(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"},
		"service": {RegistryService}, "scope": {"repository:busybox:pull repository:x:push"}, "access_type": {"offline"}})
	if code != 200 || tags(p.AccessToken) != 200 || p.RefreshToken == "" {
		t.Fatalf("POST password grant: %d %+v", code, p)
	}
	if code, p := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.RefreshToken},
		"service": {RegistryService}, "scope": {"repository:busybox:pull"}}); code != 200 || tags(p.AccessToken) != 200 {
		t.Errorf("POST refresh_token grant: %d %+v", code, p)
	}
	if code, _ := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"made-up"}, "service": {RegistryService}}); code != 401 {
		t.Errorf("POST with an unknown refresh token: %d, want 401", code)
	}
	reqs := r.TokenRequests()
	last := reqs[len(reqs)-3] // the password grant
	if last.Method != "POST" || last.User != "alice" || !slices.Equal(last.Scopes, []string{"repository:busybox:pull", "repository:x:push"}) {
		t.Errorf("recorded POST password grant: %+v", last)
	}
}

// TestRegistryClose: Close stops the registry and the token server and
// removes its files; a later push fails.
func TestRegistryClose(t *testing.T) {
	if _, err := os.Stat(RegistryBinary); err != nil {
		t.Skip("docker-registry is not installed")
	}
	r, err := NewRegistry(t.TempDir(), RegistryOptions{TLS: true, Token: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	pid := r.cmd.Process.Pid
	tokenAddr := strings.TrimSuffix(strings.TrimPrefix(r.TokenURL, "https://"), "/token")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{r.Addr, tokenAddr} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still answers after Close", a)
		}
	}
	if _, err := os.Stat(r.Root); !os.IsNotExist(err) {
		t.Errorf("%s is still there after Close: %v", r.Root, err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Errorf("registry process %d is still there after Close", pid)
	}
}

// TestRegistryStartFailure: when the registry cannot start, the error
// carries its log's tail.
func TestRegistryStartFailure(t *testing.T) {
	if _, err := os.Stat(RegistryBinary); err != nil {
		t.Skip("docker-registry is not installed")
	}
	root := t.TempDir()
	r := &Registry{Root: root, Log: filepath.Join(root, "registry.log"), Config: filepath.Join(root, "config.yml"),
		Addr: "127.0.0.1:1", client: &http.Client{Timeout: time.Second}}
	if err := os.WriteFile(r.Config, []byte(`{"version": "0.1", "storage": {"no-such-driver": {}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	err := r.run()
	if err == nil {
		r.stopProcess()
		t.Fatal("the registry started with an unknown storage driver")
	}
	if !strings.Contains(err.Error(), "no-such-driver") {
		t.Errorf("error %q lacks the registry's complaint", err)
	}
}

// TestRegistryPusher: Push picks, per repository, the first user that may push.
func TestRegistryPusher(t *testing.T) {
	r := &Registry{opts: RegistryOptions{
		Token: map[string]string{"alice": "a", "bob": "b", "carol": "c"},
		TokenAccess: func(user, repo string) []string {
			if user == "carol" || user == "bob" && strings.HasPrefix(repo, "team/") {
				return []string{"pull", "push"}
			}
			return []string{"pull"}
		},
	}}
	for ref, want := range map[string]string{
		"team/app:1":               "bob",
		"team/app":                 "bob",
		"team/app@sha256:0123abcd": "bob",
		"other:latest":             "carol",
		"nobody/may:1":             "carol",
	} {
		if got := r.pusher(ref); got != want {
			t.Errorf("pusher(%q) = %q, want %q", ref, got, want)
		}
	}
	r.opts.TokenAccess = nil
	if got := r.pusher("x:1"); got != "alice" {
		t.Errorf("pusher without TokenAccess = %q, want the first user, alice", got)
	}
	if got := (&Registry{}).pusher("x:1"); got != "" {
		t.Errorf("pusher without users = %q, want none", got)
	}
}

// TestRegistryClientCerts: with ClientCerts the registry wants the test
// CA's client certificate, which CertsDir holds (and Push uses).
func TestRegistryClientCerts(t *testing.T) {
	requireSkopeo(t)
	r := StartRegistry(t, RegistryOptions{TLS: true, ClientCerts: true})
	r.Push(t, "docker-archive:"+busyboxArchive(t), "busybox:1")
	certs := filepath.Join(r.CertsDir(t), r.Addr)
	for _, f := range []string{"ca.crt", "client.cert", "client.key"} {
		if _, err := os.Stat(filepath.Join(certs, f)); err != nil {
			t.Errorf("CertsDir: %v", err)
		}
	}
	wantInspect(t, r.Addr+"/busybox:1", "--cert-dir", certs)
	wantInspectFails(t, r.Addr+"/busybox:1", "certificate", "--cert-dir", filepath.Dir(r.CACert))
}
