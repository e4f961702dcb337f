package daemon

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"berth.dev/berth/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
)

// ContainerTop is GET /containers/{id}/top: the host's ps (with psArgs,
// default -ef) limited to the container's processes, found in its cgroup.
func (d *Daemon) ContainerTop(ctx context.Context, name, psArgs string) (*containertypes.TopResponse, error) {
	c, err := d.ctrs.store.Get(name)
	if err != nil {
		return nil, err
	}
	if d.runningOf(c.ID) == nil {
		return nil, errdefs.Conflict("Container %s is not running", c.ID)
	}
	pids := map[int]bool{}
	// cgroup v1 (pids controller) or v2 (the unified tree).
	for _, p := range []string{"/sys/fs/cgroup/pids/berth/" + c.ID + "/cgroup.procs", "/sys/fs/cgroup/berth/" + c.ID + "/cgroup.procs"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				pids[n] = true
			}
		}
		if len(pids) > 0 {
			break
		}
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	out, err := exec.CommandContext(ctx, "ps", strings.Fields(psArgs)...).Output()
	if err != nil {
		return nil, errdefs.Invalid("ps %s: %v", psArgs, err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	titles := strings.Fields(lines[0])
	col := -1
	for i, t := range titles {
		if t == "PID" {
			col = i
		}
	}
	if col < 0 {
		return nil, errdefs.Invalid("ps %s: no PID column in %q", psArgs, lines[0])
	}
	top := &containertypes.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) <= col {
			continue
		}
		pid, err := strconv.Atoi(f[col])
		if err != nil || !pids[pid] {
			continue
		}
		// The last column (the command) keeps its spaces.
		if len(f) > len(titles) {
			last := len(titles) - 1
			f = append(f[:last], strings.Join(f[last:], " "))
		}
		top.Processes = append(top.Processes, f)
	}
	return top, nil
}
