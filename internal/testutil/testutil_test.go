package testutil

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/berth/internal/leakcheck"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func chrootSh(t *testing.T, root, script string) string {
	t.Helper()
	out, err := exec.Command("chroot", root, "/bin/sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("chroot %s /bin/sh -c %q: %v: %s", root, script, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestBusyboxRootfs(t *testing.T) {
	a := BusyboxRootfs(t)
	for _, f := range []string{"bin/sh", "bin/busybox", "etc/passwd", "etc/group", "proc", "tmp"} {
		if _, err := os.Lstat(filepath.Join(a, f)); err != nil {
			t.Errorf("busybox rootfs lacks /%s: %v", f, err)
		}
	}
	if target, _ := os.Readlink(filepath.Join(a, "bin", "sh")); target != "busybox" {
		t.Errorf("/bin/sh -> %q, want relative link to busybox", target)
	}
	// Each call is a private copy: writing into one changes neither the
	// next copy nor the cached template.
	if err := os.WriteFile(filepath.Join(a, "etc", "hostname"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := BusyboxRootfs(t)
	if a == b {
		t.Fatal("two calls returned the same directory")
	}
	if got, _ := os.ReadFile(filepath.Join(b, "etc", "hostname")); string(got) != "busybox\n" {
		t.Errorf("second copy has hostname %q", got)
	}
	if os.Geteuid() == 0 {
		if got := chrootSh(t, a, "echo ok"); got != "ok" {
			t.Errorf("chroot echo: %q", got)
		}
	}
}

func TestBusyboxTemplateCached(t *testing.T) {
	tmpl, err := busyboxTemplate()
	if err != nil {
		t.Fatal(err)
	}
	cache, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(tmpl) != cache || !strings.HasPrefix(filepath.Base(tmpl), "busybox-") {
		t.Fatalf("template %s is not cached under %s", tmpl, cache)
	}
	again, err := cachedBusyboxTemplate()
	if err != nil || again != tmpl {
		t.Fatalf("second lookup: %s, %v; want %s", again, err, tmpl)
	}
}

func TestDebianRootfs(t *testing.T) {
	a := DebianRootfs(t)
	for _, f := range []string{"usr/bin/dpkg", "bin/sh", "etc/debian_version", "var/lib/dpkg/status"} {
		if _, err := os.Lstat(filepath.Join(a, f)); err != nil {
			t.Errorf("Debian rootfs lacks /%s: %v", f, err)
		}
	}
	if v, _ := os.ReadFile(filepath.Join(a, "etc", "debian_version")); !strings.HasPrefix(string(v), "12") {
		t.Errorf("debian_version %q, want bookworm (12.x)", v)
	}
	if got := chrootSh(t, a, "dpkg --print-architecture >/dev/null && echo ok"); got != "ok" {
		t.Errorf("dpkg in chroot: %q", got)
	}
	// A private copy: changes do not reach the template or other copies.
	if err := os.Remove(filepath.Join(a, "usr", "bin", "dpkg")); err != nil {
		t.Fatal(err)
	}
	b := DebianRootfs(t)
	if _, err := os.Stat(filepath.Join(b, "usr", "bin", "dpkg")); err != nil {
		t.Fatalf("removing dpkg from one copy removed it from another: %v", err)
	}
	tmpl, _ := DebianTemplate()
	if _, err := os.Stat(filepath.Join(tmpl, "usr", "bin", "dpkg")); err != nil {
		t.Fatalf("template damaged: %v", err)
	}
}

func TestDebianRootfsCopyFallback(t *testing.T) {
	RequireRoot(t)
	if _, err := DebianTemplate(); err != nil {
		t.Skipf("no Debian rootfs: %v", err)
	}
	t.Setenv("BERTH_TEST_ROOTFS_COPY", "cp")
	a := DebianRootfs(t)
	if _, err := os.Stat(filepath.Join(a, "usr", "bin", "dpkg")); err != nil {
		t.Fatal(err)
	}
}

func TestBundle(t *testing.T) {
	spec := Spec("echo", "hi")
	dir := Bundle(t, "", spec)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got specs.Spec
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Root == nil || !filepath.IsAbs(got.Root.Path) {
		t.Fatalf("root %+v, want an absolute rootfs path", got.Root)
	}
	if _, err := os.Stat(filepath.Join(got.Root.Path, "bin", "sh")); err != nil {
		t.Errorf("rootfs of the bundle: %v", err)
	}
	if strings.Join(got.Process.Args, " ") != "echo hi" || got.Version != specs.Version {
		t.Errorf("process args %q, version %q", got.Process.Args, got.Version)
	}
	if spec.Root.Path != "rootfs" {
		t.Errorf("Bundle modified the caller's spec: root %q", spec.Root.Path)
	}
}

// TestBundleRunsWithRunc checks Spec and Bundle against the reference
// runtime, so a failure in berth's runtime is berth's, not the fixture's.
func TestBundleRunsWithRunc(t *testing.T) {
	RequireRoot(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed")
	}
	dir := Bundle(t, "", Spec("sh", "-c", "echo ok from $(hostname)"))
	id := "berth-testutil-" + filepath.Base(filepath.Dir(dir))
	cmd := exec.Command(runc, "--root", filepath.Join(t.TempDir(), "runc"), "run", "--bundle", dir, id)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("runc run: %v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "ok from berth" {
		t.Fatalf("runc run printed %q", got)
	}
}

func TestBerthBinary(t *testing.T) {
	p := BerthBinary(t)
	if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("%s: %v", p, err)
	}
	if os.Getenv("BERTH_BINARY") != "" {
		t.Setenv("BERTH_BINARY", "")
		built, err := buildBerth()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(built); err != nil {
			t.Fatal(err)
		}
	}
}
