package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
	"github.com/moby/moby/api/types/registry"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// original is a config.json as docker and its plugins leave it: keys berth
// does not know, at the top and in an auths entry, must survive a write.
const original = `{
	"auths": {
		"https://index.docker.io/v1/": {"auth": "aHViOmh1YnBhc3M=", "email": "hub@example.com"},
		"http://legacy.example:5000/v1/": {"auth": "b2xkOm9sZHBhc3M="}
	},
	"psFormat": "table {{.ID}}",
	"proxies": {"default": {"httpProxy": "http://proxy:3128"}},
	"plugins": {"x": {"y": "z"}},
	"features": {"hooks": "true"}
}`

func decode(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	return m
}

func TestFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, []byte(original), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	hub, err := f.Get(IndexServer)
	if err != nil || hub.Username != "hub" || hub.Password != "hubpass" || hub.ServerAddress != IndexServer {
		t.Fatalf("hub: %+v %v", hub, err)
	}
	// An entry under an old URL key is found by host, as docker finds it.
	if old, err := f.Get("legacy.example:5000"); err != nil || old.Username != "old" || old.Password != "oldpass" {
		t.Fatalf("legacy: %+v %v", old, err)
	}
	if none, err := f.Get("nosuch:1"); err != nil || none != (registry.AuthConfig{}) {
		t.Fatalf("none: %+v %v", none, err)
	}

	plain, err := f.Store(registry.AuthConfig{Username: "alice", Password: "pa:ss", ServerAddress: "127.0.0.1:5000"})
	if err != nil || !plain {
		t.Fatalf("store: %v %v", plain, err)
	}
	if plain, err := f.Store(registry.AuthConfig{Username: "alice", Password: "pa:ss", ServerAddress: "127.0.0.1:5000"}); err != nil || plain {
		t.Fatalf("the same credentials again: %v %v (want no write)", plain, err)
	}
	if _, err := f.Store(registry.AuthConfig{Username: "bob", IdentityToken: "tok", ServerAddress: "tok.example"}); err != nil {
		t.Fatal(err)
	}
	// The hub entry's password changes; its email stays.
	if _, err := f.Store(registry.AuthConfig{Username: "hub", Password: "new", ServerAddress: IndexServer}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", st.Mode(), err)
	}
	got := decode(t, path)
	var want map[string]any
	if err := json.Unmarshal([]byte(original), &want); err != nil {
		t.Fatal(err)
	}
	auths := want["auths"].(map[string]any)
	auths["127.0.0.1:5000"] = map[string]any{"auth": "YWxpY2U6cGE6c3M="} // alice:pa:ss
	auths["tok.example"] = map[string]any{"auth": "Ym9iOg==", "identitytoken": "tok"}
	auths[IndexServer] = map[string]any{"auth": "aHViOm5ldw==", "email": "hub@example.com"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("config.json:\n got %v\nwant %v", got, want)
	}

	g, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := g.Get("127.0.0.1:5000"); err != nil || a.Username != "alice" || a.Password != "pa:ss" {
		t.Fatalf("reloaded: %+v %v", a, err)
	}
	if a, err := g.Get("tok.example"); err != nil || a.IdentityToken != "tok" || a.Password != "" {
		t.Fatalf("identity token: %+v %v", a, err)
	}
	if err := g.Erase("127.0.0.1:5000"); err != nil {
		t.Fatal(err)
	}
	if err := g.Erase("never.stored"); err != nil {
		t.Fatalf("erase of nothing: %v", err)
	}
	got = decode(t, path)
	if _, ok := got["auths"].(map[string]any)["127.0.0.1:5000"]; ok || got["psFormat"] != "table {{.ID}}" {
		t.Fatalf("after erase: %v", got)
	}
	// Nothing but config.json: the temporary files were renamed.
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("files left: %v", ents)
	}
}

// TestFileSymlinkAndNew: a config.json that is a link is written through
// (dotfile managers link it); a missing one is made, with its directory.
func TestFileSymlinkAndNew(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "docker.json")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte(`{"detachKeys":"ctrl-x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgDir := filepath.Join(dir, "cfg")
	if err := os.Mkdir(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(cfgDir, FileName)); err != nil {
		t.Fatal(err)
	}
	f, err := Load(cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Store(registry.AuthConfig{Username: "u", Password: "p", ServerAddress: "r.example"}); err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(filepath.Join(cfgDir, FileName)); err != nil || l != real {
		t.Fatalf("link replaced: %q %v", l, err)
	}
	if m := decode(t, real); m["detachKeys"] != "ctrl-x" || m["auths"] == nil {
		t.Fatalf("through the link: %v", m)
	}

	fresh := filepath.Join(dir, "new", "sub")
	f, err = Load(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Store(registry.AuthConfig{Username: "u", Password: "p", ServerAddress: "r.example"}); err != nil {
		t.Fatal(err)
	}
	if m := decode(t, filepath.Join(fresh, FileName)); !reflect.DeepEqual(m, map[string]any{"auths": map[string]any{"r.example": map[string]any{"auth": "dTpw"}}}) {
		t.Fatalf("new file: %v", m)
	}
}

func TestKeys(t *testing.T) {
	for in, want := range map[string]string{
		"": IndexServer, "docker.io": IndexServer, IndexServer: IndexServer,
		"127.0.0.1:5000": "127.0.0.1:5000", "https://reg.example:443/v2/": "reg.example:443",
		"http://reg.example/": "reg.example", "reg.example/some/path": "reg.example",
	} {
		if got := ServerKey(in); got != want {
			t.Errorf("ServerKey(%q) = %q, want %q", in, got, want)
		}
	}
	if AuthKey("docker.io") != IndexServer || AuthKey("index.docker.io") != IndexServer || AuthKey("localhost:5000") != "localhost:5000" {
		t.Error("AuthKey")
	}
}

// InstallTestHelper writes docker-credential-testhelper into a new
// directory put first on PATH, with its store in another; it returns the
// store.
func installTestHelper(t *testing.T) string {
	t.Helper()
	bin, store := testutil.CredentialHelper(t)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("HELPER_STORE", store)
	return store
}

func TestCredentialHelper(t *testing.T) {
	store := installTestHelper(t)
	dir := t.TempDir()
	// The default store is the helper, but other.example keeps its
	// credentials in the file: credHelpers names the helper per registry,
	// and an empty name there is the file.
	cfg := `{"credsStore":"testhelper","credHelpers":{"file.example":"","broken.example":"testhelper"},"auths":{"file.example":{"auth":"Zjpw"}}}`
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := f.Get("127.0.0.1:5000"); err != nil || a != (registry.AuthConfig{}) {
		t.Fatalf("nothing stored yet: %+v %v", a, err)
	}
	plain, err := f.Store(registry.AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: "127.0.0.1:5000"})
	if err != nil || plain {
		t.Fatalf("store: %v %v", plain, err)
	}
	if _, err := f.Store(registry.AuthConfig{Username: "bob", IdentityToken: "idtok", ServerAddress: IndexServer}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(store); len(ents) != 2 {
		t.Fatalf("helper store: %v", ents)
	}
	// The file has the registries, not the secrets (docker's layout).
	m := decode(t, filepath.Join(dir, FileName))
	wantAuths := map[string]any{"127.0.0.1:5000": map[string]any{}, IndexServer: map[string]any{}, "file.example": map[string]any{"auth": "Zjpw"}}
	if !reflect.DeepEqual(m["auths"], wantAuths) || m["credsStore"] != "testhelper" {
		t.Fatalf("config.json: %v", m)
	}
	g, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := g.Get("127.0.0.1:5000"); err != nil || a.Username != "alice" || a.Password != "s3cret" || a.ServerAddress != "127.0.0.1:5000" {
		t.Fatalf("get: %+v %v", a, err)
	}
	// An identity token goes to the helper as the "<token>" user.
	if a, err := g.Get(IndexServer); err != nil || a.IdentityToken != "idtok" || a.Username != "" || a.Password != "" {
		t.Fatalf("token: %+v %v", a, err)
	}
	if a, err := g.Get("file.example"); err != nil || a.Username != "f" || a.Password != "p" {
		t.Fatalf("file registry: %+v %v", a, err)
	}
	list, err := HelperList("testhelper")
	if err != nil || !reflect.DeepEqual(list, map[string]string{"127.0.0.1:5000": "alice", IndexServer: "<token>"}) {
		t.Fatalf("list: %v %v", list, err)
	}
	if _, err := g.Get("broken.example"); err == nil || !strings.Contains(err.Error(), "the keychain is locked") {
		t.Fatalf("a failing helper: %v", err)
	}
	if err := g.Erase("127.0.0.1:5000"); err != nil {
		t.Fatal(err)
	}
	if a, err := g.Get("127.0.0.1:5000"); err != nil || a != (registry.AuthConfig{}) {
		t.Fatalf("after erase: %+v %v", a, err)
	}
	if _, ok := decode(t, filepath.Join(dir, FileName))["auths"].(map[string]any)["127.0.0.1:5000"]; ok {
		t.Fatal("the file's entry stayed")
	}
	if err := g.Erase("127.0.0.1:5000"); err == nil || !strings.Contains(err.Error(), "credentials not found") {
		t.Fatalf("erase of nothing through a helper: %v", err)
	}

	t.Setenv("PATH", t.TempDir())
	if _, err := g.Get("127.0.0.1:5000"); err == nil || !strings.Contains(err.Error(), "docker-credential-testhelper") {
		t.Fatalf("no helper program: %v", err)
	}
}
