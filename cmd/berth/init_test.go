package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestInitAllocs: every start of the binary (each CLI call, each runtime
// step) runs the init of every package in it, so berth's own packages build
// nothing at init that only some invocations need (regexps, tables, buffers
// are made on first use). Measured in bytes allocated, which unlike time does
// not depend on the machine's load. Before this rule they allocated ~90 KB.
func TestInitAllocs(t *testing.T) {
	bin := testutil.BerthBinary(t)
	cmd := exec.Command(bin, "runtime", "--version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("berth runtime --version: %v\n%s", err, out)
	}
	const perPackage, total = 4 << 10, 16 << 10
	sum, seen := 0, 0
	for line := range strings.Lines(string(out)) {
		// init berth.dev/berth/volume @0.51 ms, 0.001 ms clock, 1312 bytes, 12 allocs
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != "init" || f[8] != "bytes," {
			continue
		}
		seen++
		if !strings.HasPrefix(f[1], "berth.dev/berth/") {
			continue
		}
		n, err := strconv.Atoi(f[7])
		if err != nil {
			t.Fatalf("bad inittrace line %q", line)
		}
		sum += n
		if n > perPackage {
			t.Errorf("%s allocates %d bytes at init (at most %d): make what it builds lazy (internal/lazyregexp, sync.OnceValue) or constant", f[1], n, perPackage)
		}
	}
	if seen < 100 {
		t.Fatalf("only %d inittrace lines in:\n%s", seen, out)
	}
	if sum > total {
		t.Errorf("berth's packages allocate %d bytes at init, at most %d", sum, total)
	}
}

// TestNoDistributionReference: berth's packages parse image references with
// image/reference; github.com/distribution/reference compiles a dozen
// regexps at init (~0.5 ms and 400 KB at every start). Nor may the binary
// link it (or the moby client, OpenTelemetry, go-connections) through a
// dependency.
func TestNoDistributionReference(t *testing.T) {
	out, err := exec.Command(goTool(), "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "berth.dev/berth/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	pkgs := 0
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pkgs++
		for _, imp := range f[1:] {
			if imp == "github.com/distribution/reference" {
				t.Errorf("%s imports %s: use berth.dev/berth/image/reference", f[0], imp)
			}
		}
	}
	if pkgs < 20 {
		t.Fatalf("go list found only %d packages:\n%s", pkgs, out)
	}
	// Nor does the binary link them through a dependency: the moby client
	// brings distribution/reference, OpenTelemetry and go-connections,
	// whose package inits every start of berth paid (berth.dev/berth/client
	// replaces it; its leaf package jsonmessage is kept).
	deps, err := exec.Command(goTool(), "list", "-deps", "berth.dev/berth/cmd/berth").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, deps)
	}
	n := 0
	for dep := range strings.Lines(string(deps)) {
		dep = strings.TrimSpace(dep)
		n++
		for _, banned := range []string{"github.com/distribution/reference", "github.com/moby/moby/client", "go.opentelemetry.io/", "github.com/docker/go-connections/"} {
			if (dep == banned || strings.HasPrefix(dep, strings.TrimSuffix(banned, "/")+"/")) && dep != "github.com/moby/moby/client/pkg/jsonmessage" {
				t.Errorf("cmd/berth links %s", dep)
			}
		}
	}
	if n < 100 {
		t.Fatalf("go list -deps found only %d packages:\n%s", n, deps)
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}
