package inproc

import (
	"os"
	"path/filepath"
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
	if handled, _ := r.run(nil, log, []string{"exec", "--detach", "c1"}); handled {
		t.Error("exec taken in process")
	}
	if handled, err := r.run(nil, log, []string{"kill", "nothing", "9"}); !handled || err == nil {
		t.Errorf("kill of a missing container: handled %v, %v; want an error", handled, err)
	}
}
