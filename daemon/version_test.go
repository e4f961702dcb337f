package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"berth.dev/berth/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestAPIVersionMatchesModule: CurrentAPIVersion is the version of the
// moby API module whose types the server writes.
func TestAPIVersionMatchesModule(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/moby/moby/api").Output()
	if err != nil {
		t.Skipf("go list: %v (no go tool?)", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "swagger.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^  version: "([0-9.]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no version in swagger.yaml")
	}
	if string(m[1]) != CurrentAPIVersion {
		t.Fatalf("CurrentAPIVersion %s, moby/moby/api module speaks %s", CurrentAPIVersion, m[1])
	}
}
