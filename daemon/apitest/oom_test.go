package apitest

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestContainerOOMWhileRunning: the kernel's OOM killer kills a child of a
// container whose shell goes on; the `oom` event comes while the
// container still runs, and State.OOMKilled says true once it has exited
// (dockerd 20.10 does both so: OOMKilled is false while it runs, and true
// at the exit for any kill in the run, the init's or not).
func TestContainerOOMWhileRunning(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	since := strconv.FormatInt(time.Now().Unix()-1, 10) // replayed: the stream may subscribe late
	id := strings.TrimSpace(d.mustDocker("create", "--name", "oomchild", "-m", "8m", "--memory-swap", "8m",
		"busybox", "sh", "-c", "tail /dev/zero; sleep 30"))
	ev := exec.Command(dockerCLI, "events", "--since", since, "--filter", "container="+id, "--format", "{{.Action}}")
	ev.Env = append(dockerEnv(t), "DOCKER_HOST=unix://"+d.sock)
	out, err := ev.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ev.Process.Kill(); _ = ev.Wait() }()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	d.mustDocker("start", id)
	waitEvent(t, lines, "start")
	waitEvent(t, lines, "oom")
	if got := strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.State.Status}} {{.State.OOMKilled}}", id)); got != "running false" {
		t.Fatalf("after the oom event: %q (want the shell still running)", got)
	}
	d.mustDocker("kill", id)
	waitEvent(t, lines, "die")
	if got := strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", id)); got != "true 137" {
		t.Errorf("OOMKilled, ExitCode after the exit: %q", got)
	}
}
