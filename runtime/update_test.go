package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestUpdate: `runtime update -r -` (runc's form) sets new limits on a
// running container's cgroups; bad input and a container that is gone are
// errors.
func TestUpdate(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	s := spec("sleep", "100")
	s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: 10}}
	e.must("run", "--detach", "--bundle", e.bundle(s), id)
	defer e.try("delete", "--force", id)
	r, _ := json.Marshal(specs.LinuxResources{Pids: &specs.LinuxPids{Limit: 20}, Memory: &specs.LinuxMemory{Limit: ptr(int64(48 << 20))}})
	if out, errs, code := e.tryIn(r, "update", "-r", "-", id); code != 0 {
		t.Fatalf("update: %d %s %s", code, out, errs)
	}
	var ev struct {
		Data struct {
			Pids struct {
				Limit uint64 `json:"limit"`
			} `json:"pids"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(e.must("events", "--stats", id)), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Data.Pids.Limit != 20 {
		t.Fatalf("pids limit after update: %d", ev.Data.Pids.Limit)
	}
	pid := int(e.state(id)["pid"].(float64))
	found := false
	if b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.SplitN(line, ":", 3); len(f) == 3 && f[1] == "memory" {
				found = true
				got, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", f[2], "memory.limit_in_bytes"))
				if err != nil || strings.TrimSpace(string(got)) != "50331648" {
					t.Fatalf("memory limit after update: %q %v", got, err)
				}
			}
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err == nil && !found {
		t.Fatal("no v1 memory cgroup for the container")
	}
	if _, errs, code := e.tryIn([]byte("{not json"), "update", "-r", "-", id); code == 0 || !strings.Contains(errs, "decode resources") {
		t.Fatalf("bad JSON: %d %s", code, errs)
	}
	e.must("delete", "--force", id)
	if _, errs, code := e.tryIn(r, "update", "-r", "-", id); code == 0 || errs == "" {
		t.Fatalf("update of a deleted container: %d %s", code, errs)
	}
}
