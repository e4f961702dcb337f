// Package conformance runs outside conformance suites against berth: the OCI
// runtime-tools validation programs against `berth-runtime`.
package conformance

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"berth.dev/berth/internal/testutil"
	"berth.dev/berth/runtime"
)

// runcPasses is how many of the 58 programs runc 1.1.5 passes on this kind
// of machine (../shared/peers/README.md); berth must pass at least as many.
const runcPasses = 29

// TestRuntimeToolsValidation installs the OCI runtime-tools suite from the Go
// module proxy (cached) and runs all its programs against berth.
func TestRuntimeToolsValidation(t *testing.T) {
	testutil.RequireRoot(t)
	if testing.Short() {
		t.Skip("the suite takes over a minute")
	}
	cache, err := testutil.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs("../../.ci/peers/runtime-tools.sh")
	dir := filepath.Join(cache, "runtime-tools")
	if _, err := os.Stat(filepath.Join(dir, "runtimetest")); err != nil {
		out, err := exec.Command("bash", script, "install", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("install runtime-tools: %v\n%s", err, out)
		}
	}
	// The suite resolves symlinks, and berth answers as a runtime by its name.
	bin := filepath.Join(t.TempDir(), "berth-runtime")
	if err := os.Link(testutil.BerthBinary(t), bin); err != nil {
		copyBinary(t, testutil.BerthBinary(t), bin)
	}
	t.Cleanup(testutil.KeepHostCgroups())
	out := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(dir, "runtime-tools.sh"), "run", bin, out)
	cmd.Env = append(os.Environ(), "RT_DIR="+dir, "RT_REAP=1")
	log, err := cmd.CombinedOutput()
	t.Cleanup(func() {
		rt := &runtime.Runtime{Root: runtime.DefaultRoot}
		if err := rt.ReleaseInitBinary(); err != nil {
			t.Errorf("release init binary: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("runtime-tools run: %v\n%s", err, log)
	}
	pass, failing := readTotals(t, filepath.Join(out, "totals.txt"))
	t.Logf("runtime-tools: %d of 58 programs pass (runc: %d); failing: %s", pass, runcPasses, failing)
	if pass < runcPasses {
		summary, _ := os.ReadFile(filepath.Join(out, "summary.txt"))
		t.Fatalf("berth passes %d programs, fewer than runc's %d:\n%s", pass, runcPasses, summary)
	}
}

var totalRE = regexp.MustCompile(`TOTAL: (\d+) programs, (\d+) PASS`)

func readTotals(t *testing.T, path string) (int, string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pass, failing := -1, ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := totalRE.FindStringSubmatch(sc.Text()); m != nil {
			pass, _ = strconv.Atoi(m[2])
		}
		if rest, ok := strings.CutPrefix(sc.Text(), "FAILING: "); ok {
			failing = rest
		}
	}
	if pass < 0 {
		t.Fatalf("no TOTAL line in %s", path)
	}
	return pass, failing
}

func copyBinary(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
