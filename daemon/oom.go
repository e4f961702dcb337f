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
	m, err := cgroups.New(containerCgroup(id), id, nil)
	if err != nil {
		return 0
	}
	paths := m.Paths()
	file := filepath.Join(paths["memory"], "memory.oom_control")
	if paths["memory"] == "" {
		if paths[""] == "" {
			return 0
		}
		file = filepath.Join(paths[""], "memory.events")
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

// initOOMKilled is State.OOMKilled: the OOM killer killed something in
// the container and its init died of SIGKILL (or, under --init, passed
// on a SIGKILL death as 137). dockerd 20.10 says true for any OOM kill
// in the container, even when the init survived it.
func initOOMKilled(ooms uint64, exit *shim.Exit) bool {
	return ooms > 0 && exit != nil && (exit.Signal == int(unix.SIGKILL) || exit.ExitCode == 128+int(unix.SIGKILL))
}
