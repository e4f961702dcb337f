package daemon

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"berth.dev/berth/runtime/cgroups"
)

// oomKills is how many processes of the container the kernel's OOM killer
// has killed: "oom_kill" in memory.oom_control on cgroup v1, in
// memory.events on v2. The monitor reads it on each OOM notification and
// last after the exit, before the runtime's delete removes the cgroup.
// 0 when the cgroup or the file is gone.
func oomKills(id string) uint64 {
	file, _ := oomFiles(id)
	if file == "" {
		return 0
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// oomFiles are the file that counts the container's OOM kills and, on
// cgroup v1, the memory cgroup's directory (where its cgroup.event_control
// is); both "" when the container has no memory cgroup. On the plain
// layouts (v1 controllers under /sys/fs/cgroup/<controller>, or v2 at
// /sys/fs/cgroup) the path is known without asking the cgroup library,
// whose look-up (mountinfo) cost every exit a millisecond here.
func oomFiles(id string) (counter, v1dir string) {
	rel := containerCgroup(id)
	if filepath.IsAbs(rel) {
		if st, err := os.Stat("/sys/fs/cgroup/memory"); err == nil && st.IsDir() {
			dir := filepath.Join("/sys/fs/cgroup/memory", rel)
			return filepath.Join(dir, "memory.oom_control"), dir
		}
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
			return filepath.Join("/sys/fs/cgroup", rel, "memory.events"), ""
		}
	}
	m, err := cgroups.New(rel, id, nil)
	if err != nil {
		return "", ""
	}
	paths := m.Paths()
	if dir := paths["memory"]; dir != "" {
		return filepath.Join(dir, "memory.oom_control"), dir
	}
	if dir := paths[""]; dir != "" {
		return filepath.Join(dir, "memory.events"), ""
	}
	return "", ""
}
