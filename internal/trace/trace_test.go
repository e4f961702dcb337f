package trace

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"berth.dev/berth/internal/leakcheck"
)

func TestMain(m *testing.M) {
	if os.Getenv("TRACE_HELPER") != "" { // a traced process: two steps
		Step("one")
		Stepf("two %d", 2)
		os.Exit(0)
	}
	leakcheck.Main(m)
}

// Processes given BERTH_TRACE=/file append their steps there, in the
// runtime's line format; without it nothing is written.
func TestStepsToFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "trace.log")
	for i := 0; i < 2; i++ {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "TRACE_HELPER=1", "BERTH_TRACE="+file)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
			t.Fatalf("helper: %v %q", err, out)
		}
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "TRACE_HELPER=1", "BERTH_TRACE=")
	if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
		t.Fatalf("untraced helper: %v %q", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	re := regexp.MustCompile(`^trace +[0-9]+\.[0-9]{3}ms +[0-9]+ cpu +[0-9]+\.[0-9]{3}ms (one|two 2)$`)
	if len(lines) != 4 {
		t.Fatalf("want 4 lines from two processes, got %q", lines)
	}
	for _, l := range lines {
		if !re.MatchString(l) {
			t.Errorf("line %q", l)
		}
	}
}
