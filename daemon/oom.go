package daemon

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"berth.dev/berth/runtime/cgroups"
	"berth.dev/berth/shim"
	"golang.org/x/sys/unix"
)

// oomKills is how many processes of the container the kernel's OOM killer
// has killed: "oom_kill" in memory.oom_control on cgroup v1, in
// memory.events on v2. It must be read after the exit and before the
// runtime's delete removes the cgroup (the monitor does, before the
// shim's shutdown). 0 when the cgroup or the file is gone.
func oomKills(id string) uint64 {
	file := oomFile(id)
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

// oomFile is the file that counts the container's OOM kills. On the plain
// layouts (v1 controllers under /sys/fs/cgroup/<controller>, or v2 at
// /sys/fs/cgroup) the path is known without asking the cgroup library,
// whose look-up (mountinfo) cost every exit a millisecond here.
func oomFile(id string) string {
	rel := containerCgroup(id)
	if filepath.IsAbs(rel) {
		if st, err := os.Stat("/sys/fs/cgroup/memory"); err == nil && st.IsDir() {
			return filepath.Join("/sys/fs/cgroup/memory", rel, "memory.oom_control")
		}
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
			return filepath.Join("/sys/fs/cgroup", rel, "memory.events")
		}
	}
	m, err := cgroups.New(rel, id, nil)
	if err != nil {
		return ""
	}
	paths := m.Paths()
	if paths["memory"] != "" {
		return filepath.Join(paths["memory"], "memory.oom_control")
	}
	if paths[""] != "" {
		return filepath.Join(paths[""], "memory.events")
	}
	return ""
}

// initOOMKilled is State.OOMKilled: the OOM killer killed something in
// the container and its init died of SIGKILL (or, under --init, passed
// on a SIGKILL death as 137). dockerd 20.10 says true for any OOM kill
// in the container, even when the init survived it.
func initOOMKilled(ooms uint64, exit *shim.Exit) bool {
	return ooms > 0 && exit != nil && (exit.Signal == int(unix.SIGKILL) || exit.ExitCode == 128+int(unix.SIGKILL))
}
