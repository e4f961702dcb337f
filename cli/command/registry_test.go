package command_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"berth.dev/berth/internal/testutil"
	"github.com/containerd/console"
	"github.com/moby/moby/api/types/registry"
)

// runEnv is run with more environment (DOCKER_CONFIG, PATH), killed after
// two minutes: a CLI waiting for input it will never get fails the test
// instead of outliving it.
func runEnv(t *testing.T, env []string, stdin []byte, bin, host string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-H", host}, args...)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Env = append(append(os.Environ(), "TZ=UTC"), env...)
	err := cmd.Run()
	r := result{out: out.String(), err: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return r
}

// progressNoise are the lines of a pull's progress whose presence depends
// on timing.
var progressNoise = regexp.MustCompile(`(?m)^[0-9a-f]{12}: (Verifying Checksum|Waiting|Download complete)\n`)

// refusedBlob is berth's daemon's error for a refused push: which of the
// blobs pushed at once is refused first varies.
var refusedBlob = regexp.MustCompile(`blob sha256:[0-9a-f]{64}: 401 Unauthorized`)

// TestRegistrySameAsDocker runs login, push, pull, logout with berth and
// with the docker CLI, each with a config directory of its own, against
// the same daemon and a registry with basic auth: the outputs, exit codes
// and config.json files must be the same, each CLI must pull with the
// credentials the other stored, and `create` of a missing image pulls it
// with the stored credentials.
func TestRegistrySameAsDocker(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Htpasswd: map[string]string{"alice": "s3cret"}})
	ref := reg.Addr + "/berthtest/one:v1"
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			cfg := map[string]string{"docker": t.TempDir(), "berth": t.TempDir()}
			cli := map[string]string{"docker": dockerCLI, "berth": bin}
			as := func(who string, stdin []byte, args ...string) result {
				return runEnv(t, []string{"DOCKER_CONFIG=" + cfg[who]}, stdin, cli[who], d.host, args...)
			}
			// same runs args with both and compares; prep runs before each.
			same := func(prep func(), stdin []byte, args ...string) result {
				t.Helper()
				var rs [2]result
				for i, who := range []string{"docker", "berth"} {
					if prep != nil {
						prep()
					}
					r := as(who, stdin, args...)
					for _, s := range []*string{&r.out, &r.err} {
						*s = strings.ReplaceAll(*s, cfg[who], "CONFIG")
						*s = strings.ReplaceAll(*s, "'berth logout' followed by 'berth login'", "'docker logout' followed by 'docker login'")
						*s = progressNoise.ReplaceAllString(*s, "")
						*s = refusedBlob.ReplaceAllString(*s, "blob sha256:...: 401 Unauthorized")
					}
					rs[i] = r
				}
				if rs[0] != rs[1] {
					t.Errorf("%v:\ndocker: %s\nberth: %s", args, rs[0], rs[1])
				}
				if os.Getenv("REGISTRY_TEST_LOG") != "" {
					t.Logf("%v: %s", args, rs[1])
				}
				return rs[1]
			}
			configs := func() {
				t.Helper()
				dj, _ := os.ReadFile(filepath.Join(cfg["docker"], "config.json"))
				bj, _ := os.ReadFile(filepath.Join(cfg["berth"], "config.json"))
				if !bytes.Equal(dj, bj) {
					t.Errorf("config.json:\ndocker: %s\nberth: %s", dj, bj)
				}
				st, err := os.Stat(filepath.Join(cfg["berth"], "config.json"))
				if err == nil && st.Mode().Perm() != 0o600 {
					t.Errorf("berth's config.json mode %v", st.Mode())
				}
			}

			if r := run(t, nil, bin, d.host, "load", "-i", one); r.code != 0 {
				t.Fatalf("load: %s", r)
			}
			if r := run(t, nil, bin, d.host, "tag", "berthtest/one:v1", ref); r.code != 0 {
				t.Fatalf("tag: %s", r)
			}
			rmi := func() { run(t, nil, bin, d.host, "rmi", ref) }

			same(nil, nil, "push", ref) // no credentials
			same(nil, nil, "login", reg.Addr)
			same(nil, []byte("wrong\n"), "login", "-u", "alice", "--password-stdin", reg.Addr)
			same(nil, []byte("s3cret\n"), "login", "-u", "alice", "--password-stdin", "--password", "x", reg.Addr)
			same(nil, []byte("s3cret\n"), "login", "--password-stdin", reg.Addr)
			if r := same(nil, []byte("s3cret\n"), "login", "-u", "alice", "--password-stdin", reg.Addr); r.code != 0 {
				t.Fatalf("login: %s", r)
			}
			configs()
			same(nil, nil, "login", reg.Addr) // with the stored credentials
			same(nil, []byte("s3cret\n"), "login", "-u", "alice", "--password-stdin", "http://"+reg.Addr+"/v2/")
			configs()

			// The first push uploads, the ones compared find the layers.
			if r := as("docker", nil, "push", ref); r.code != 0 {
				t.Fatalf("docker push: %s", r)
			}
			same(nil, nil, "push", ref)
			same(nil, nil, "image", "push", "-q", ref)
			same(nil, nil, "push", reg.Addr+"/berthtest/one") // latest: no such tag
			same(nil, nil, "push", "-a", ref)
			same(nil, nil, "push", "-a", "-q", reg.Addr+"/berthtest/one")
			same(nil, nil, "push", reg.Addr+"/berthtest/one@sha256:"+strings.Repeat("a", 64))

			if r := same(rmi, nil, "pull", ref); r.code != 0 || !strings.Contains(r.out, "Status: Downloaded newer image for "+ref) {
				t.Errorf("pull: %s", r)
			}
			same(rmi, nil, "image", "pull", "-q", ref)
			same(nil, nil, "pull", ref) // up to date
			same(nil, nil, "pull", "-a", reg.Addr+"/berthtest/one")
			same(nil, nil, "pull", "-a", ref)
			same(nil, nil, "pull", reg.Addr+"/berthtest/one:nosuch")
			same(nil, nil, "pull", reg.Addr+"/berthtest/one")
			same(nil, nil, "pull", reg.Addr+"/Upper")
			// dockerd cannot search a distribution registry (both CLIs
			// print its error); berth's daemon lists the catalog's matches.
			same(nil, nil, "search", reg.Addr+"/berthtest")
			same(nil, nil, "search", "--format", "{{.Name}} {{.StarCount}}", "--limit", "3", reg.Addr+"/one")

			// Each CLI pulls with the credentials the other wrote.
			for _, who := range []string{"docker", "berth"} {
				other := map[string]string{"docker": "berth", "berth": "docker"}[who]
				rmi()
				r := runEnv(t, []string{"DOCKER_CONFIG=" + cfg[other]}, nil, cli[who], d.host, "pull", "-q", ref)
				if r.code != 0 || r.out != ref+"\n" {
					t.Errorf("%s with %s's config: %s", who, other, r)
				}
			}

			// create of a missing image pulls it with the credentials.
			rmi()
			r := as("berth", nil, "create", "--network", "none", ref, "/bin/true")
			if r.code != 0 || !strings.Contains(r.err, "Unable to find image '"+ref+"' locally") || !strings.Contains(r.err, "Status: Downloaded newer image for "+ref) {
				t.Errorf("create: %s", r)
			} else {
				run(t, nil, bin, d.host, "rm", strings.TrimSpace(r.out))
			}

			same(nil, nil, "logout", reg.Addr)
			configs()
			same(nil, nil, "logout", reg.Addr)
			same(nil, nil, "logout")
			configs()
			same(rmi, nil, "pull", ref)
			// Refused, docker's search asks for credentials even with stdin
			// not a terminal (and waits for ever): berth's only.
			if r := as("berth", nil, "search", reg.Addr+"/berthtest"); r.code != 1 || r.out != "" || !strings.HasPrefix(r.err, "Error response from daemon: ") {
				t.Errorf("search without credentials: %s", r)
			}
			same(nil, []byte("s3cret"), "login", "--username", "alice", "--password-stdin", reg.Addr)
			same(nil, nil, "logout", "https://"+reg.Addr)
			configs()
		})
	}
}

// TestRegistryCredentialHelper: berth stores a login with a credential
// helper (credsStore), the docker CLI pulls with it from the same config,
// and berth's logout erases it from the helper.
func TestRegistryCredentialHelper(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Htpasswd: map[string]string{"alice": "s3cret"}})
	ref := reg.Addr + "/berthtest/one:v1"
	d := startDockerd(t)
	helperBin, store := testutil.CredentialHelper(t)
	cfg := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"credsStore":"testhelper","psFormat":"{{.ID}}"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_CONFIG=" + cfg, "HELPER_STORE=" + store, "PATH=" + helperBin + ":" + os.Getenv("PATH")}
	berth := func(stdin []byte, args ...string) result { return runEnv(t, env, stdin, bin, d.host, args...) }
	docker := func(args ...string) result { return runEnv(t, env, nil, dockerCLI, d.host, args...) }

	if r := berth(nil, "load", "-i", one); r.code != 0 {
		t.Fatal(r)
	}
	if r := berth(nil, "tag", "berthtest/one:v1", ref); r.code != 0 {
		t.Fatal(r)
	}
	if r := berth([]byte("s3cret\n"), "login", "-u", "alice", "--password-stdin", reg.Addr); r.code != 0 || r.out != "Login Succeeded\n" || r.err != "" {
		t.Fatalf("login: %s", r)
	}
	b, _ := os.ReadFile(filepath.Join(cfg, "config.json"))
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || fmt.Sprint(m["auths"]) != fmt.Sprintf("map[%s:map[]]", reg.Addr) || m["psFormat"] != "{{.ID}}" {
		t.Fatalf("config.json: %s %v", b, err)
	}
	if ents, _ := os.ReadDir(store); len(ents) != 1 {
		t.Fatalf("helper store: %v", ents)
	}
	if r := berth(nil, "push", "-q", ref); r.code != 0 || r.out != ref+"\n" {
		t.Fatalf("push: %s", r)
	}
	berth(nil, "rmi", ref)
	if r := docker("pull", "-q", ref); r.code != 0 {
		t.Fatalf("docker pull with berth's helper login: %s", r)
	}
	// --config names the directory over $DOCKER_CONFIG.
	other := []string{"DOCKER_CONFIG=" + t.TempDir(), "HELPER_STORE=" + store, "PATH=" + helperBin + ":" + os.Getenv("PATH")}
	if r := runEnv(t, other, nil, bin, d.host, "--config", cfg, "logout", reg.Addr); r.code != 0 || r.out != "Removing login credentials for "+reg.Addr+"\n" {
		t.Fatalf("logout: %s", r)
	}
	if ents, _ := os.ReadDir(store); len(ents) != 0 {
		t.Fatalf("helper store after logout: %v", ents)
	}
	berth(nil, "rmi", ref)
	if r := berth(nil, "pull", "-q", ref); r.code == 0 || !strings.Contains(r.err, "no basic auth credentials") {
		t.Fatalf("pull after logout: %s", r)
	}
}

// TestRegistryIdentityToken: a registry with a token server gives the
// login a refresh token (the daemon's IdentityToken), stored in place of
// the password as docker stores it, and used for a push and a pull.
// berth's daemon only: dockerd would need the test CA in /etc/docker.
func TestRegistryIdentityToken(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	alice := func(user, _ string) []string {
		if user == "alice" {
			return []string{"pull", "push"}
		}
		return nil
	}
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Token: map[string]string{"alice": "s3cret"}, TokenAccess: alice})
	ref := reg.Addr + "/alice/one:v1"
	d := startBerthdArgs(t, "--certs-dir", reg.CertsDir(t))
	cfg := map[string]string{"docker": t.TempDir(), "berth": t.TempDir()}
	cli := map[string]string{"docker": dockerCLI, "berth": bin}
	if r := run(t, nil, bin, d.host, "load", "-i", one); r.code != 0 {
		t.Fatal(r)
	}
	if r := run(t, nil, bin, d.host, "tag", "berthtest/one:v1", ref); r.code != 0 {
		t.Fatal(r)
	}
	entries := map[string]map[string]string{}
	for _, who := range []string{"docker", "berth"} {
		r := runEnv(t, []string{"DOCKER_CONFIG=" + cfg[who]}, []byte("s3cret\n"), cli[who], d.host, "login", "-u", "alice", "--password-stdin", reg.Addr)
		if r.code != 0 || r.out != "Login Succeeded\n" {
			t.Fatalf("%s login: %s", who, r)
		}
		b, err := os.ReadFile(filepath.Join(cfg[who], "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m struct{ Auths map[string]map[string]string }
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %s: %v", who, b, err)
		}
		e := m.Auths[reg.Addr]
		if e["identitytoken"] == "" {
			t.Fatalf("%s stored no identity token: %s", who, b)
		}
		e["identitytoken"] = "TOKEN"
		entries[who] = e
	}
	if fmt.Sprint(entries["docker"]) != fmt.Sprint(entries["berth"]) {
		t.Errorf("entries: docker %v berth %v", entries["docker"], entries["berth"])
	}
	env := []string{"DOCKER_CONFIG=" + cfg["berth"]}
	if r := runEnv(t, env, nil, bin, d.host, "push", "-q", ref); r.code != 0 || r.out != ref+"\n" {
		t.Fatalf("push with the identity token: %s", r)
	}
	run(t, nil, bin, d.host, "rmi", ref)
	if r := runEnv(t, env, nil, bin, d.host, "pull", "-q", ref); r.code != 0 || r.out != ref+"\n" {
		t.Fatalf("pull with the identity token: %s", r)
	}
	if r := runEnv(t, env, nil, bin, d.host, "logout", reg.Addr); r.code != 0 {
		t.Fatal(r)
	}
	run(t, nil, bin, d.host, "rmi", ref)
	if r := runEnv(t, env, nil, bin, d.host, "pull", "-q", ref); r.code == 0 {
		t.Fatalf("pull after logout: %s", r)
	}
}

// searchStub is an Engine API server that answers /images/search with
// canned results and records the X-Registry-Auth of each search: no
// registry berth can reach searches (Docker Hub is out of reach, and
// distribution has no search), and the output under test is the CLI's.
type searchStub struct {
	mu    sync.Mutex
	auths []string
	query []string
}

func (s *searchStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", "1.45")
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/_ping":
		_, _ = w.Write([]byte("OK"))
	case strings.HasSuffix(r.URL.Path, "/images/search"):
		s.mu.Lock()
		s.auths = append(s.auths, r.Header.Get(registry.AuthHeader))
		s.query = append(s.query, r.URL.RawQuery)
		s.mu.Unlock()
		if r.URL.Query().Get("term") == "denied" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message":"unauthorized: authentication required"}`))
			return
		}
		res := []registry.SearchResult{
			{Name: "few", Description: "short", StarCount: 3},
			{Name: "library/busybox", Description: "Busybox base image.\nWith a second line\r\nand a third one, long enough to be cut", StarCount: 3300, IsOfficial: true},
			{Name: "wide", Description: "ünïcödé déscription that is longer than forty-five runes", StarCount: 3},
			{Name: "none", StarCount: 0},
		}
		_ = json.NewEncoder(w).Encode(res)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"page not found"}`))
	}
}

// TestSearchSameAsDocker: berth's search table, --no-trunc, --format,
// --limit and --filter against docker's, over the same answers, and the
// credentials both send for a registry.
func TestSearchSameAsDocker(t *testing.T) {
	if _, err := os.Stat(dockerCLI); err != nil {
		t.Skipf("docker CLI not at %s", dockerCLI)
	}
	bin := testutil.BerthBinary(t)
	stub := &searchStub{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: stub, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	host := "tcp://" + l.Addr().String()
	cfg := t.TempDir()
	conf := `{"auths":{"reg.example:5000":{"auth":"YWxpY2U6czNjcmV0"},"https://index.docker.io/v1/":{"auth":"aHViOmh1YnBhc3M="}}}`
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_CONFIG=" + cfg}
	for _, args := range [][]string{
		{"search", "busybox"},
		{"search", "--no-trunc", "busybox"},
		{"search", "--limit", "2", "-f", "stars=3", "--filter", "is-official=true", "busybox"},
		{"search", "--format", "{{.Name}}: {{.StarCount}} {{.IsOfficial}}", "busybox"},
		{"search", "--format", "table {{.Name}}\t{{.IsOfficial}}", "busybox"},
		{"search", "--format", "json", "busybox"},
		{"search", "--format", "table", "reg.example:5000/busybox"},
		{"search", "localhost/x"},
		{"search"},
	} {
		stub.mu.Lock()
		stub.auths, stub.query = nil, nil
		stub.mu.Unlock()
		k := runEnv(t, env, nil, dockerCLI, host, args...)
		b := runEnv(t, env, nil, bin, host, args...)
		if k.out != b.out || k.code != b.code || normalize(k.err) != normalize(b.err) {
			t.Errorf("%v:\ndocker: %s\nberth: %s", args, k, b)
		}
		stub.mu.Lock()
		auths, query := stub.auths, stub.query
		stub.mu.Unlock()
		if len(auths) == 2 {
			// The same query; the same credentials, decoded (docker's JSON
			// may order or space its fields otherwise).
			if query[0] != query[1] {
				t.Errorf("%v: query docker %q berth %q", args, query[0], query[1])
			}
			var ka, ba registry.AuthConfig
			for i, p := range []*registry.AuthConfig{&ka, &ba} {
				raw, err := base64.URLEncoding.DecodeString(auths[i])
				if err == nil {
					err = json.Unmarshal(raw, p)
				}
				if err != nil {
					t.Errorf("%v: X-Registry-Auth %q: %v", args, auths[i], err)
				}
			}
			if ka != ba {
				t.Errorf("%v: X-Registry-Auth docker %+v berth %+v", args, ka, ba)
			}
		}
	}
	// A refusal is the daemon's error, and berth does not ask for
	// credentials without a terminal (docker, asking, waits for ever).
	if r := runEnv(t, env, nil, bin, host, "search", "denied"); r.code != 1 || r.out != "" || r.err != "Error response from daemon: unauthorized: authentication required\n" {
		t.Errorf("search denied: %s", r)
	}
}

// TestLoginOnTerminal: without -u and -p on a terminal, login asks for the
// user name (echoed) and the password (not echoed), as docker does.
func TestLoginOnTerminal(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Htpasswd: map[string]string{"alice": "s3cret"}})
	d := startBerthd(t)
	pty, slave, err := console.NewPty()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer pty.Close()
	f, err := os.OpenFile(slave, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out testutil.LockedBuffer
	go func() { _, _ = bufio.NewReader(pty).WriteTo(&out) }()
	cfg := t.TempDir()
	cmd := exec.Command(bin, "-H", d.host, "login", reg.Addr)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, f
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(out.String(), s) {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("no %q on the terminal: %q", s, out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("Username: ")
	if _, err := pty.Write([]byte("alice\n")); err != nil {
		t.Fatal(err)
	}
	waitFor("Password: ")
	if _, err := pty.Write([]byte("s3cret\n")); err != nil {
		t.Fatal(err)
	}
	waitFor("Login Succeeded")
	if err := <-done; err != nil {
		t.Fatalf("login: %v: %q", err, out.String())
	}
	if s := out.String(); !strings.Contains(s, "Username: alice\r\n") || strings.Contains(s, "s3cret") {
		t.Fatalf("terminal: %q (want the user echoed, the password not)", s)
	}
	b, err := os.ReadFile(filepath.Join(cfg, "config.json"))
	if err != nil || !strings.Contains(string(b), `"auth": "YWxpY2U6czNjcmV0"`) {
		t.Fatalf("config.json: %s %v", b, err)
	}
}
