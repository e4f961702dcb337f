package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var berthOnce struct {
	sync.Once
	path string
	err  error
}

// BerthBinary returns the path of a berth binary for tests that exec the CLI.
// When $BERTH_BINARY is set (CI sets it to bin/berth) that file is used.
// Otherwise cmd/berth is built once per test binary with `go build` (the
// environment's CGO_ENABLED, GOFLAGS and so on apply) into
// CacheDir()/bin/<module>/berth, replaced atomically so other test binaries
// running the previous build are not disturbed.
func BerthBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BERTH_BINARY"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(abs); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			t.Fatalf("BERTH_BINARY=%s is not an executable file (err %v)", p, err)
		}
		return abs
	}
	berthOnce.Do(func() { berthOnce.path, berthOnce.err = buildBerth() })
	if berthOnce.err != nil {
		t.Fatalf("build berth: %v", berthOnce.err)
	}
	return berthOnce.path
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
		return "/usr/local/go/bin/go"
	}
	return "go"
}

func buildBerth() (string, error) {
	gobin := goTool()
	out, err := exec.Command(gobin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the berth module (go env GOMOD is empty)")
	}
	modRoot := filepath.Dir(gomod)
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(modRoot))
	dir := filepath.Join(cache, "bin", hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lock(filepath.Join(dir, "build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	final := filepath.Join(dir, "berth")
	tmp := final + ".new"
	cmd := exec.Command(gobin, "build", "-tags", "netgo,osusergo", "-o", tmp, "./cmd/berth")
	cmd.Dir = modRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build ./cmd/berth in %s: %v\n%s", modRoot, err, out)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	return final, nil
}
