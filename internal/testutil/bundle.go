package testutil

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	ocispec "berth.dev/berth/runtime/spec"
)

// Spec returns berth's default spec (runc's, see package runtime/spec) with
// the terminal off, running args (default: sh). Tests change what they need.
func Spec(args ...string) *specs.Spec {
	if len(args) == 0 {
		args = []string{"sh"}
	}
	s := ocispec.Default()
	s.Process.Terminal = false
	s.Process.Args = args
	return s
}

// Bundle writes an OCI bundle for t into a fresh directory and returns it:
// config.json from spec (Spec() when nil) with root.path set to rootfs
// (BusyboxRootfs(t) when empty). The caller's spec is not modified. The
// directory is removed when t ends.
func Bundle(t testing.TB, rootfs string, spec *specs.Spec) string {
	t.Helper()
	if spec == nil {
		spec = Spec()
	}
	if rootfs == "" {
		rootfs = BusyboxRootfs(t)
	}
	s := *spec
	root := specs.Root{}
	if s.Root != nil {
		root = *s.Root
	}
	root.Path = rootfs
	s.Root = &root
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(&s, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
