package apitest

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// leftOf lists what a container that is not running must not have: a
// shim of this daemon, a mount of its root, a cgroup of its own.
func (d *daemon) leftOf(id string) []string {
	var left []string
	for _, pid := range d.shimPids() {
		left = append(left, "shim pid "+strconv.Itoa(pid))
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, id) {
				left = append(left, "mount: "+l)
			}
		}
	}
	for _, c := range []string{"memory", "pids", "unified"} {
		if _, err := os.Stat("/sys/fs/cgroup/" + c + "/berth/" + id); err == nil {
			left = append(left, "cgroup "+c+"/berth/"+id)
		}
	}
	return left
}

// A start that fails after the shim created the container (the command
// cannot be executed) tears down the shim, the root's mounts and the
// cgroups at once, while the container stays (exited, 127).
func TestContainerStartFailureTeardown(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	id := strings.TrimSpace(d.mustDocker("create", "--name", "bad", "-m", "64m", "busybox", "no-such-command"))
	for i := 0; i < 2; i++ {
		out, code := d.exitCode("start", "bad")
		if code == 0 || !strings.Contains(out, "no-such-command") {
			t.Fatalf("start of a missing command: exit %d: %s", code, out)
		}
		if left := d.leftOf(id); len(left) > 0 {
			t.Fatalf("failed start %d left:\n%s", i, strings.Join(left, "\n"))
		}
	}
	if got := strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "bad")); got != "exited 127" {
		t.Errorf("state after the failed start: %q", got)
	}
}

// A start request whose client goes away mid-start leaves no second shim
// and nothing after rm; the daemon keeps serving.
func TestContainerStartCancelled(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	for _, delay := range []time.Duration{0, time.Millisecond, 3 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond} {
		id := strings.TrimSpace(d.mustDocker("create", "-m", "64m", "busybox", "sleep", "100"))
		ctx, cancel := context.WithTimeout(context.Background(), delay)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://berth/containers/"+id+"/start", nil)
		if resp, err := d.client().Do(req); err == nil {
			resp.Body.Close()
		}
		cancel()
		// The job goes on without the client; a second start waits for it
		// (one operation at a time per container) and then starts the
		// container if the first did not.
		d.mustDocker("start", id)
		if n := len(d.shimPids()); n != 1 {
			t.Fatalf("delay %v: running with %d shims", delay, n)
		}
		d.mustDocker("rm", "-f", id)
		if left := d.leftOf(id); len(left) > 0 {
			t.Fatalf("delay %v: rm left:\n%s", delay, strings.Join(left, "\n"))
		}
	}
	d.mustDocker("run", "--rm", "busybox", "true")
}
