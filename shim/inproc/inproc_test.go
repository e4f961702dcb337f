package inproc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/berth/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestOwnRuntime(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if got, ok := ownRuntime([]string{self, "runtime", "--root", root}); !ok || got != root {
		t.Errorf("own runtime not recognised: %q %v", got, ok)
	}
	// A copy is another binary (another version, maybe): its CLI decides.
	other := filepath.Join(t.TempDir(), "berth")
	if err := os.Symlink("/bin/true", other); err != nil {
		t.Fatal(err)
	}
	for _, rt := range [][]string{
		{other, "runtime", "--root", root},
		{"/usr/sbin/runc", "--root", root},
		{self, "runtime", "--root", root, "--debug"},
		{self, "runtime", "--root", ""},
		{self},
	} {
		if _, ok := ownRuntime(rt); ok {
			t.Errorf("%q taken for berth's own runtime", rt)
		}
	}
}

// A container with hooks goes to the runtime's CLI from its create on, so
// that the runtime waits for its hook processes outside the shim's reaper.
func TestHooksGoToTheCLI(t *testing.T) {
	bundle := t.TempDir()
	cfg := `{"ociVersion":"1.2.1","root":{"path":"rootfs"},"hooks":{"poststop":[{"path":"/bin/true"}]}}`
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &runner{root: t.TempDir()}
	log := filepath.Join(t.TempDir(), "runtime.log")
	for _, args := range [][]string{
		{"create", "--bundle", bundle, "--pid-file", "p", "c1"},
		{"start", "c1"},
		{"delete", "--force", "c1"},
	} {
		if handled, err := r.run(nil, log, args); handled || err != nil {
			t.Errorf("%q: handled %v, %v; want it left to the CLI", args, handled, err)
		}
	}
	// Without hooks, in process: a delete of nothing with --force is done.
	r = &runner{root: t.TempDir()}
	if handled, err := r.run(nil, log, []string{"delete", "--force", "nothing"}); !handled || err != nil {
		t.Errorf("delete --force of a missing container: handled %v, %v", handled, err)
	}
	if _, err := os.Stat(log); !os.IsNotExist(err) {
		t.Errorf("runtime log made by a step that logged nothing: %v", err)
	}
	if handled, _ := r.run(nil, log, []string{"exec", "--detach", "c1"}); handled {
		t.Error("exec taken in process")
	}
	if handled, err := r.run(nil, log, []string{"kill", "nothing", "9"}); !handled || err == nil {
		t.Errorf("kill of a missing container: handled %v, %v; want an error", handled, err)
	}
	// The runtime's log is made for its first line.
	if b, err := os.ReadFile(log); err != nil || !strings.Contains(string(b), "nothing") {
		t.Errorf("runtime log after a failed kill: %q, %v", b, err)
	}
}

// hasHooks reads the plain form without reflection and leaves any other
// to encoding/json: both must see the same hooks.
func TestHasHooks(t *testing.T) {
	for cfg, want := range map[string]bool{
		`{"ociVersion":"1.2.1","hooks":{"poststop":[{"path":"/bin/true"}]}}`:         true,
		`{"ociVersion":"1.2.1","hooks":{"createRuntime":[{"path":"/bin/true"}]}}`:    true,
		`{"ociVersion":"1.2.1","hooks":{}}`:                                          false,
		`{"ociVersion":"1.2.1","root":{"path":"rootfs"}}`:                            false,
		`{"OCIVersion":"1.2.1","Hooks":{"poststop":[{"path":"/bin/true"}]}}`:         true, // encoding/json's
		`{"OCIVersion":"1.2.1","process":{"scheduler":{"policy":"x"}},"hooks":null}`: false,
	} {
		bundle := t.TempDir()
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := hasHooks(bundle); err != nil || got != want {
			t.Errorf("%s: hooks %v, %v; want %v", cfg, got, err, want)
		}
	}
	bundle := t.TempDir()
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(`{"hooks":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := hasHooks(bundle); err == nil {
		t.Error("a config.json cut short: no error")
	}
}
