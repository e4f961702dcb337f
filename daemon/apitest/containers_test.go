package apitest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"berth.dev/berth/internal/testutil"
)

// containerDaemon is a started daemon with busybox:latest loaded.
func containerDaemon(t *testing.T) *daemon {
	t.Helper()
	d := newDaemon(t)
	d.start()
	archive, _ := busyboxArchive(t, "busybox:latest")
	d.mustDocker("load", "-i", archive)
	return d
}

// rmAll removes every container the daemon has (the tests' cleanup), and
// checks that no shim of this daemon is left.
func (d *daemon) rmAll() {
	d.t.Helper()
	out, err := d.docker("ps", "-aq")
	if err != nil {
		d.t.Errorf("docker ps -aq: %v\n%s", err, out)
		return
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		if out, err := d.docker(append([]string{"rm", "-f"}, ids...)...); err != nil {
			d.t.Errorf("docker rm -f: %v\n%s", err, out)
		}
	}
	// The shim of an --rm container ends after the run's answer (the
	// removal's files go in the background): give it time to.
	deadline := time.Now().Add(10 * time.Second)
	for len(d.shimPids()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if pids := d.shimPids(); len(pids) > 0 {
		d.t.Errorf("shims left 10s after rm: %v", pids)
	}
}

// shimPids lists the live shim processes of this daemon's exec root.
func (d *daemon) shimPids() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		// A shim's working directory is its state dir; a spare's (a shim
		// started ahead of need, not yet any container's) is "/".
		args := strings.Split(string(b), "\x00")
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if len(args) > 1 && args[1] == "shim" && strings.HasPrefix(cwd, d.execRoot+"/") {
			if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && !strings.Contains(string(st), ") Z ") {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// exitCode runs docker and returns its output and exit status.
func (d *daemon) exitCode(args ...string) (string, int) {
	d.t.Helper()
	out, err := d.docker(args...)
	if err == nil {
		return out, 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return out, ee.ExitCode()
	}
	d.t.Fatalf("docker %v: %v", args, err)
	return "", -1
}

func TestContainerRunRm(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()

	out := d.mustDocker("run", "--rm", "busybox", "echo", "hi")
	if out != "hi\n" {
		t.Fatalf("docker run --rm busybox echo hi: %q", out)
	}
	if out := d.mustDocker("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("--rm left a container: %q", out)
	}
	if out, code := d.exitCode("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"); code != 3 ||
		!strings.Contains(out, "out\n") || !strings.Contains(out, "err\n") {
		t.Fatalf("exit 3: code %d, %q", code, out)
	}
	out, code := d.exitCode("run", "--rm", "busybox", "no-such-command")
	if code != 127 {
		t.Fatalf("missing command: code %d, %q", code, out)
	}
	out, code = d.exitCode("run", "--rm", "busybox", "/etc/passwd")
	if code != 126 {
		t.Fatalf("not executable: code %d, %q", code, out)
	}
	if out := d.mustDocker("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("--rm left a container after failed starts: %q", out)
	}
	// stdin piped with -i.
	out, err := d.dockerIn([]byte("piped\ninput\n"), "run", "--rm", "-i", "busybox", "cat")
	if err != nil || out != "piped\ninput\n" {
		t.Fatalf("docker run -i cat: %v %q", err, out)
	}
}

func TestContainerLifecycle(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()

	if out, code := d.exitCode("run", "--name", "three", "busybox", "sh", "-c", "exit 3"); code != 3 {
		t.Fatalf("exit 3: %d %q", code, out)
	}
	if out := d.mustDocker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.Name}}", "three"); out != "exited 3 /three\n" {
		t.Fatalf("inspect three: %q", out)
	}
	id := strings.TrimSpace(d.mustDocker("run", "-d", "--name", "x1", "busybox", "sh", "-c", "echo started; exec sleep 100"))
	if len(id) != 64 {
		t.Fatalf("run -d: %q", id)
	}
	out := d.mustDocker("ps", "--format", "{{.Names}} {{.Status}}")
	if !strings.HasPrefix(out, "x1 Up") || strings.Contains(out, "three") {
		t.Fatalf("docker ps: %q", out)
	}
	waitFor(t, "logs", func() bool { return d.mustDocker("logs", "x1") == "started\n" })
	if out := d.mustDocker("inspect", "-f", "{{.State.Running}} {{.State.Pid}}", "x1"); !strings.HasPrefix(out, "true ") || strings.HasSuffix(out, " 0\n") {
		t.Fatalf("inspect x1: %q", out)
	}
	d.mustDocker("stop", "-t", "1", "x1")
	code := strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.State.ExitCode}}", "x1"))
	if code != "137" && code != "143" {
		t.Fatalf("exit code after stop: %q", code)
	}
	out = d.mustDocker("ps", "-a", "--format", "{{.Names}} {{.Status}}")
	mustContain(t, "ps -a", out, "x1 Exited (", "three Exited (3)")
	if out := d.mustDocker("ps", "-a", "--filter", "exited=3", "--format", "{{.Names}}"); out != "three\n" {
		t.Fatalf("filter exited=3: %q", out)
	}
	if out := d.mustDocker("ps", "-a", "--filter", "name=thr", "-q"); len(strings.TrimSpace(out)) != 12 {
		t.Fatalf("filter name: %q", out)
	}
	// Start again: a fresh shim, the same container.
	d.mustDocker("start", "x1")
	if out := d.mustDocker("inspect", "-f", "{{.State.Status}}", "x1"); out != "running\n" {
		t.Fatalf("after start: %q", out)
	}
	waitFor(t, "second start's log", func() bool { return d.mustDocker("logs", "x1") == "started\nstarted\n" })
	if out := d.mustDocker("logs", "--tail", "1", "-t", "x1"); !strings.HasSuffix(out, "Z started\n") {
		t.Fatalf("logs --tail 1 -t: %q", out)
	}
	// wait returns the code of a kill.
	waitOut := make(chan string, 1)
	go func() { out, _ := d.docker("wait", "x1"); waitOut <- out }()
	time.Sleep(200 * time.Millisecond)
	d.mustDocker("kill", "-s", "KILL", "x1") // PID 1 ignores signals it has no handler for
	select {
	case out := <-waitOut:
		if strings.TrimSpace(out) != "137" {
			t.Fatalf("docker wait after SIGKILL: %q", out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("docker wait did not return")
	}
	if out, err := d.docker("rm", "x1", "three"); err != nil {
		t.Fatalf("rm: %v %q", err, out)
	}
	d.mustDocker("run", "-d", "--name", "y1", "busybox", "sleep", "100")
	if out, err := d.docker("rm", "y1"); err == nil || !strings.Contains(out, "container is running") {
		t.Fatalf("rm of a running container: %v %q", err, out)
	}
	d.mustDocker("rm", "-f", "y1")
	if out := d.mustDocker("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("containers left: %q", out)
	}
	if pids := d.shimPids(); len(pids) > 0 {
		t.Fatalf("shims left: %v", pids)
	}
}

func TestContainerConfig(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()

	out := d.mustDocker("run", "--rm", "-e", "A=1", "-w", "/tmp", "-u", "1000:1000", "--memory", "64m", "--pids-limit", "50",
		"--hostname", "box1", "busybox", "sh", "-c",
		`id; pwd; echo A=$A; echo PATH=$PATH; hostname; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; grep box1 /etc/hosts; ls /sys/class/net`)
	for _, want := range []string{"uid=1000(", "gid=1000(", "/tmp\n", "A=1\n", "PATH=/usr/local/sbin:", "box1\n", "67108864\n", "50\n", "\tbox1\n", "eth0\nlo\n"} {
		mustContain(t, "config from inside", out, want)
	}
	// User names resolve in the image's /etc/passwd; the hostname is the short ID.
	out = d.mustDocker("run", "--rm", "-u", "nobody", "busybox", "sh", "-c", "id -u; hostname")
	if f := strings.Fields(out); len(f) != 2 || f[0] != "65534" || len(f[1]) != 12 {
		t.Fatalf("-u nobody: %q", out)
	}
	if out, code := d.exitCode("run", "--rm", "-u", "nosuchuser", "busybox", "true"); code != 125 || !strings.Contains(out, "unable to find user nosuchuser") {
		t.Fatalf("unknown user: %d %q", code, out)
	}

	// Binds, read-only binds and a read-only root.
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "hello"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out = d.mustDocker("run", "--rm", "-v", host+":/data", "busybox", "sh", "-c", "cat /data/hello; echo back > /data/out")
	if out != "from host\n" {
		t.Fatalf("bind: %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(host, "out")); err != nil || string(b) != "back\n" {
		t.Fatalf("bind write: %v %q", err, b)
	}
	if out, code := d.exitCode("run", "--rm", "-v", host+":/data:ro", "busybox", "touch", "/data/x"); code == 0 || !strings.Contains(out, "Read-only") {
		t.Fatalf("ro bind: %d %q", code, out)
	}
	out = d.mustDocker("run", "--rm", "--mount", "type=bind,src="+host+",dst=/m,readonly", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m",
		"busybox", "sh", "-c", "cat /m/hello; touch /m/no 2>&1; grep ' /t ' /proc/mounts")
	mustContain(t, "--mount", out, "from host\n", "Read-only", "tmpfs /t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k")
	if out, code := d.exitCode("run", "--rm", "--read-only", "--tmpfs", "/scratch", "busybox", "sh", "-c", "touch /scratch/ok && touch /x"); code == 0 || !strings.Contains(out, "Read-only") {
		t.Fatalf("--read-only: %d %q", code, out)
	}
	out = d.mustDocker("run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_RAW", "busybox", "grep", "CapEff", "/proc/self/status")
	if !strings.Contains(out, "0000000000002000") {
		t.Fatalf("caps: %q", out)
	}

	// Seccomp: the default profile is on (a new user namespace is refused
	// by it, though the kernel would allow one); seccomp=unconfined and
	// --privileged run without (custom profiles: seccomp_test.go).
	out, code := d.exitCode("run", "--rm", "busybox", "sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true && echo unshared; true")
	if code != 0 || !strings.Contains(out, "Seccomp:\t2") || strings.Contains(out, "unshared") {
		t.Fatalf("default seccomp: %d %q", code, out)
	}
	out = d.mustDocker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true && echo unshared")
	mustContain(t, "seccomp=unconfined", out, "Seccomp:\t0", "unshared")
	out = d.mustDocker("run", "--rm", "--privileged", "busybox", "grep", "Seccomp:", "/proc/self/status")
	mustContain(t, "--privileged seccomp", out, "Seccomp:\t0")

	// --init: the reaper is PID 1, the command its child, the exit code passed on.
	out, code = d.exitCode("run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 5")
	if code != 5 || !strings.HasPrefix(out, "/sbin/berth-init init-reaper -- sh -c") {
		t.Fatalf("--init: %d %q", code, out)
	}

	// --privileged: every capability, the host's devices, /sys writable.
	out = d.mustDocker("run", "--rm", "--privileged", "busybox", "sh", "-c", "grep CapEff /proc/self/status; ls /dev/loop-control; grep ' /sys ' /proc/mounts")
	mustContain(t, "--privileged", out, "CapEff:\t"+hostCapBnd(t), "/dev/loop-control", "sysfs /sys sysfs rw")
	// --network host shares the host's interfaces.
	// (Other tests' links come and go: the daemon's own bridge tells.)
	out = d.mustDocker("run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net")
	if !slices.Contains(strings.Fields(out), d.bridge) {
		t.Fatalf("--network host: %q has not the host's %s", out, d.bridge)
	}

	// Another OCI runtime by name (docker info lists runc when installed).
	if _, err := exec.LookPath("runc"); err == nil {
		if out := d.mustDocker("run", "--rm", "--runtime", "runc", "busybox", "echo", "via-runc"); out != "via-runc\n" {
			t.Fatalf("--runtime runc: %q", out)
		}
	}

	// A terminal: under script(1), docker run -t gives the process a tty.
	if _, err := exec.LookPath("script"); err == nil {
		cmd := exec.Command("script", "-qec", dockerCLI+" run --rm -t busybox sh -c 'tty; stty size'", "/dev/null")
		cmd.Env = append(dockerEnv(t), "DOCKER_HOST=unix://"+d.sock)
		b, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(b), "/dev/pts/0") {
			t.Fatalf("run -t: %v %q", err, b)
		}
	}
}

// TestContainerRestore kills the daemon while containers run: a new daemon
// finds them running (stop works), and one that exited meanwhile shows its
// exit code.
func TestContainerRestore(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	d.mustDocker("run", "-d", "--name", "long", "busybox", "sleep", "1000")
	d.mustDocker("run", "-d", "--name", "short", "busybox", "sh", "-c", "read x < /dev/null; sleep 3; exit 7")
	d.mustDocker("run", "-d", "--rm", "--name", "gone", "busybox", "sh", "-c", "sleep 3")
	shims := d.shimPids()
	if len(shims) != 3 {
		t.Fatalf("want 3 shims, have %v", shims)
	}
	d.kill9()
	time.Sleep(4 * time.Second) // short and gone exit while no daemon runs
	d.start()
	out := d.mustDocker("ps", "-a", "--format", "{{.Names}} {{.State}}")
	mustContain(t, "ps after restart", out, "long running", "short exited")
	if strings.Contains(out, "gone") {
		t.Fatalf("--rm container that exited while the daemon was down is still listed: %q", out)
	}
	if code := strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.State.ExitCode}}", "short")); code != "7" {
		t.Fatalf("exit code of short: %q", code)
	}
	d.mustDocker("stop", "-t", "1", "long")
	if out := d.mustDocker("inspect", "-f", "{{.State.Status}}", "long"); out != "exited\n" {
		t.Fatalf("long after stop: %q", out)
	}
	d.mustDocker("rm", "long", "short")
	if pids := d.shimPids(); len(pids) > 0 {
		t.Fatalf("shims left: %v", pids)
	}

	// Without live restore, a daemon's shutdown stops its containers.
	d.stop()
	d.start("--live-restore=false")
	d.mustDocker("run", "-d", "--name", "stops", "--stop-timeout", "1", "busybox", "sleep", "1000")
	d.stop()
	if pids := d.shimPids(); len(pids) > 0 {
		t.Fatalf("shims left after a shutdown without live restore: %v", pids)
	}
	d.start()
	if st := d.mustDocker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "stops"); st != "exited 137\n" && st != "exited 143\n" {
		t.Fatalf("after shutdown without live restore: %q", st)
	}
}

// TestContainerInteractive runs `docker run -it` on a terminal (script(1))
// and types into it; then detaches from a second one with ctrl-p ctrl-q.
func TestContainerInteractive(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) not installed")
	}
	d := containerDaemon(t)
	defer d.rmAll()
	run := func(input, cmdline string) string {
		cmd := exec.Command("script", "-qec", cmdline, "/dev/null")
		cmd.Env = append(dockerEnv(t), "DOCKER_HOST=unix://"+d.sock)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Typed slowly, as a person would: after the shell is up.
		time.Sleep(1500 * time.Millisecond)
		for _, line := range strings.SplitAfter(input, "\n") {
			stdin.Write([]byte(line))
			time.Sleep(300 * time.Millisecond)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("%s did not end; output %q", cmdline, out.String())
		}
		stdin.Close()
		return out.String()
	}
	out := run("echo typed-$((40+2))\nexit 4\n", dockerCLI+" run --rm -it busybox sh; echo code=$?")
	mustContain(t, "run -it", out, "typed-42", "code=4")

	out = run("\x10\x11", dockerCLI+" run -it --name det busybox sh; echo code=$?")
	mustContain(t, "detach", out, "code=0")
	if st := d.mustDocker("inspect", "-f", "{{.State.Status}}", "det"); st != "running\n" {
		t.Fatalf("after detach: %q (%q)", st, out)
	}
	// A terminal's log is raw: no stream frames.
	if logs := d.mustDocker("logs", "det"); !strings.Contains(logs, "BusyBox") || logs[0] < ' ' && logs[0] != '\r' && logs[0] != '\n' {
		t.Fatalf("tty logs: %q", logs)
	}
}

func TestContainerEventsAndAPI(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()

	ev := exec.Command(dockerCLI, "events", "--filter", "type=container", "--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}")
	ev.Env = append(dockerEnv(t), "DOCKER_HOST=unix://"+d.sock)
	var evOut testutil.LockedBuffer
	ev.Stdout = &evOut
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ev.Process.Kill(); _ = ev.Wait() })
	waitFor(t, "events listener", func() bool {
		return strings.TrimSpace(d.mustDocker("info", "--format", "{{.NEventsListener}}")) == "1"
	})
	if _, code := d.exitCode("run", "--rm", "--name", "ev1", "busybox", "sh", "-c", "exit 2"); code != 2 {
		t.Fatalf("exit code %d", code)
	}
	waitFor(t, "destroy event", func() bool { return strings.Contains(evOut.String(), "destroy ev1") })
	got := strings.Split(strings.TrimSpace(evOut.String()), "\n")
	want := []string{"create ev1 <no value>", "attach ev1 <no value>", "start ev1 <no value>", "die ev1 2", "destroy ev1 <no value>"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events: %q, want %q", got, want)
	}

	// docker attach to a running container; docker start -a of a created one.
	d.mustDocker("run", "-d", "--name", "late", "busybox", "sh", "-c", "sleep 2; echo late; exit 6")
	if out, code := d.exitCode("attach", "late"); code != 6 || out != "late\n" {
		t.Fatalf("attach: %d %q", code, out)
	}
	d.mustDocker("create", "--name", "cr", "busybox", "sh", "-c", "echo from-start-a >&2; exit 9")
	if out, code := d.exitCode("start", "-a", "cr"); code != 9 || out != "from-start-a\n" {
		t.Fatalf("start -a: %d %q", code, out)
	}
	// attach?logs=1 replays the log (here without stream: the call ends).
	raw := d.curl("-X", "POST", "http://berth/containers/cr/attach?logs=1&stdout=1&stderr=1")
	if !strings.HasSuffix(raw, "from-start-a\n") || raw[0] != 2 {
		t.Fatalf("attach logs=1: %q", raw)
	}
	d.mustDocker("rm", "late", "cr")
	evOut.Reset()

	// Log rotation by docker's log options; logs reads across the files.
	d.mustDocker("run", "--name", "rot", "--log-opt", "max-size=1k", "--log-opt", "max-file=3", "busybox",
		"sh", "-c", "i=0; while [ $i -lt 60 ]; do echo line-$i-padding-padding; i=$((i+1)); done")
	logsOut := d.mustDocker("logs", "rot")
	if lines := strings.Split(strings.TrimSpace(logsOut), "\n"); len(lines) >= 60 || lines[len(lines)-1] != "line-59-padding-padding" {
		t.Fatalf("rotated logs: %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	cid := strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.Id}}", "rot"))
	if _, err := os.Stat(filepath.Join(d.dataRoot, "containers", cid, cid+"-json.log.1")); err != nil {
		t.Fatalf("no rotated file: %v", err)
	}
	if out, err := d.docker("run", "--rm", "--log-opt", "bogus=1", "busybox", "true"); err == nil || !strings.Contains(out, "unknown log opt") {
		t.Fatalf("bad log opt: %v %q", err, out)
	}
	d.mustDocker("rm", "rot")

	// logs -f follows until the container exits.
	d.mustDocker("run", "-d", "--name", "talker", "busybox", "sh", "-c", "echo a; sleep 1; echo b >&2; sleep 1")
	if out := d.mustDocker("logs", "-f", "talker"); out != "a\nb\n" {
		t.Fatalf("logs -f: %q", out)
	}
	out, err := exec.Command(dockerCLI, "-H", "unix://"+d.sock, "logs", "talker").Output() // stdout only
	if err != nil || string(out) != "a\n" {
		t.Fatalf("logs stdout: %v %q", err, out)
	}
	d.mustDocker("restart", "-t", "0", "talker")
	if st := d.mustDocker("inspect", "-f", "{{.State.Status}}", "talker"); st != "running\n" {
		t.Fatalf("after restart: %q", st)
	}
	if n := d.mustDocker("info", "--format", "{{.Containers}} {{.ContainersRunning}}"); n != "1 1\n" {
		t.Fatalf("info counts: %q", n)
	}

	// Errors and their statuses.
	mustContain(t, "inspect missing", d.curl("-i", "http://berth/containers/nosuch/json"), "HTTP/1.1 404", "No such container: nosuch")
	mustContain(t, "wait bad condition", d.curl("-i", "-X", "POST", "http://berth/containers/talker/wait?condition=bogus"), "HTTP/1.1 400")
	mustContain(t, "create missing image", d.curl("-i", "-X", "POST", "-H", "Content-Type: application/json",
		"-d", `{"Image":"nosuch:latest"}`, "http://berth/containers/create"), "HTTP/1.1 404")
	mustContain(t, "name in use", d.curl("-i", "-X", "POST", "-H", "Content-Type: application/json",
		"-d", `{"Image":"busybox"}`, "http://berth/containers/create?name=talker"), "HTTP/1.1 409", "is already in use")
	mustContain(t, "kill bad signal", d.curl("-i", "-X", "POST", "http://berth/containers/talker/kill?signal=NOPE"), "HTTP/1.1 400")
	mustContain(t, "remove running", d.curl("-i", "-X", "DELETE", "http://berth/containers/talker"), "HTTP/1.1 409")
	mustContain(t, "unknown runtime", d.curl("-i", "-X", "POST", "-H", "Content-Type: application/json",
		"-d", `{"Image":"busybox","HostConfig":{"Runtime":"nosuch"}}`, "http://berth/containers/create"), "HTTP/1.1 400")
	// An image with a running container is not removed, even by force.
	imgID := strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.Image}}", "talker"))
	if out, err := d.docker("rmi", "-f", imgID); err == nil || !strings.Contains(out, "running container") {
		t.Fatalf("rmi -f of a running container's image: %v %q", err, out)
	}
}

func TestContainerPauseRenamePrune(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	d.mustDocker("run", "-d", "--name", "p1", "busybox", "sh", "-c", "while true; do date +%s%N > /tmp/t; usleep 50000; done")
	d.mustDocker("pause", "p1")
	if st := d.mustDocker("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "p1"); st != "paused true\n" {
		t.Fatalf("after pause: %q", st)
	}
	mustContain(t, "ps paused", d.mustDocker("ps", "--format", "{{.Status}}"), "(Paused)")
	if out, err := d.docker("pause", "p1"); err == nil {
		t.Fatalf("pause twice: %q", out)
	}
	d.mustDocker("unpause", "p1")
	if st := d.mustDocker("inspect", "-f", "{{.State.Status}}", "p1"); st != "running\n" {
		t.Fatalf("after unpause: %q", st)
	}
	d.mustDocker("exec", "p1", "dd", "if=/dev/zero", "of=/big", "bs=1k", "count=300")
	if sz := d.mustDocker("ps", "-s", "--format", "{{.Size}}"); !regexp.MustCompile(`^3[0-3][0-9]kB \(virtual [0-9.]+MB\)`).MatchString(sz) {
		t.Fatalf("ps -s: %q", sz)
	}
	if df := d.mustDocker("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}"); !strings.Contains(df, "Containers 1 1") {
		t.Fatalf("system df: %q", df)
	}
	d.mustDocker("pause", "p1")
	d.mustDocker("stop", "-t", "1", "p1") // a paused container stops too
	d.mustDocker("rename", "p1", "p2")
	if out, err := d.docker("inspect", "p1"); err == nil {
		t.Fatalf("old name still resolves: %q", out)
	}
	if n := d.mustDocker("inspect", "-f", "{{.Name}}", "p2"); n != "/p2\n" {
		t.Fatalf("renamed: %q", n)
	}
	d.mustDocker("create", "--name", "keep", "--label", "keep=1", "busybox", "true")
	d.mustDocker("run", "-d", "--name", "live", "busybox", "sleep", "100")
	out := d.mustDocker("container", "prune", "-f", "--filter", "label!=keep")
	mustContain(t, "prune", out, "Deleted Containers:")
	if names := d.mustDocker("ps", "-a", "--format", "{{.Names}}"); strings.Contains(names, "p2") || !strings.Contains(names, "keep") || !strings.Contains(names, "live") {
		t.Fatalf("after prune: %q", names)
	}
}

// hostCapBnd is this process's bounding set as /proc shows it.
func hostCapBnd(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no CapBnd")
	return ""
}

func TestContainerExec(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	d.mustDocker("run", "-d", "--name", "ex", "-e", "BASE=1", "busybox", "sleep", "1000")
	out := d.mustDocker("exec", "-e", "EXTRA=2", "-w", "/tmp", "-u", "nobody", "ex", "sh", "-c", "echo $BASE$EXTRA; pwd; id -u; cat /proc/1/cmdline")
	if out != "12\n/tmp\n65534\nsleep\x001000\x00" {
		t.Fatalf("exec: %q", out)
	}
	if out, code := d.exitCode("exec", "ex", "sh", "-c", "echo err >&2; exit 4"); code != 4 || out != "err\n" {
		t.Fatalf("exec exit: %d %q", code, out)
	}
	out, err := d.dockerIn([]byte("in\n"), "exec", "-i", "ex", "cat")
	if err != nil || out != "in\n" {
		t.Fatalf("exec -i: %v %q", err, out)
	}
	d.mustDocker("exec", "-d", "ex", "sh", "-c", "echo bg > /tmp/bg")
	waitFor(t, "detached exec", func() bool { out, _ := d.docker("exec", "ex", "cat", "/tmp/bg"); return out == "bg\n" })
	if out, code := d.exitCode("exec", "ex", "no-such-command"); code != 127 || !strings.Contains(out, "executable file not found") {
		t.Fatalf("exec of a missing command: %d %q", code, out)
	}
	if _, err := exec.LookPath("script"); err == nil {
		cmd := exec.Command("script", "-qec", dockerCLI+" exec -t ex tty", "/dev/null")
		cmd.Env = append(dockerEnv(t), "DOCKER_HOST=unix://"+d.sock)
		if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "/dev/pts/") {
			t.Fatalf("exec -t: %v %q", err, b)
		}
	}
	top := d.mustDocker("top", "ex")
	if lines := strings.Split(strings.TrimSpace(top), "\n"); len(lines) != 2 || !strings.Contains(lines[0], "PID") || !strings.HasSuffix(lines[1], "sleep 1000") {
		t.Fatalf("docker top: %q", top)
	}
	d.mustDocker("stop", "-t", "0", "ex")
	if out, err := d.docker("exec", "ex", "true"); err == nil || !strings.Contains(out, "is not running") {
		t.Fatalf("exec in a stopped container: %v %q", err, out)
	}
}

func TestContainerRestartPolicy(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	d.mustDocker("run", "-d", "--name", "onf", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3")
	waitFor(t, "on-failure retries", func() bool {
		return d.mustDocker("inspect", "-f", "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}", "onf") == "exited 2 3\n"
	})
	d.mustDocker("run", "-d", "--name", "alw", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2; exit 0")
	waitFor(t, "always restarts", func() bool {
		n, _ := strconv.Atoi(strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.RestartCount}}", "alw")))
		return n >= 2
	})
	d.mustDocker("stop", "-t", "1", "alw")
	time.Sleep(1 * time.Second)
	if st := d.mustDocker("inspect", "-f", "{{.State.Status}}", "alw"); st != "exited\n" {
		t.Fatalf("stopped always-container: %q", st)
	}
	// rm -f cancels a pending restart.
	d.mustDocker("run", "-d", "--name", "flap", "--restart", "always", "busybox", "false")
	waitFor(t, "flapping", func() bool {
		n, _ := strconv.Atoi(strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.RestartCount}}", "flap")))
		return n >= 3
	})
	d.mustDocker("rm", "-f", "flap")
	time.Sleep(2 * time.Second) // a restart that was pending would have fired
	if out := d.mustDocker("ps", "-a", "--format", "{{.Names}}"); strings.Contains(out, "flap") {
		t.Fatalf("flap came back: %q", out)
	}
	if out, err := d.docker("run", "--restart", "sometimes", "busybox", "true"); err == nil || !strings.Contains(out, "restart policy") {
		t.Fatalf("bad policy: %v %q", err, out)
	}
	mustContain(t, "bad policy (API)", d.curl("-i", "-X", "POST", "-H", "Content-Type: application/json",
		"-d", `{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}`, "http://berth/containers/create"), "HTTP/1.1 400", "unknown policy")
}

func TestContainerCommitExport(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	d.mustDocker("run", "--name", "cm", "busybox", "sh", "-c", "echo committed > /greeting")
	if diff := d.mustDocker("diff", "cm"); diff != "A /greeting\n" {
		t.Fatalf("docker diff: %q", diff)
	}
	out := d.mustDocker("commit", "-c", "CMD [\"cat\", \"/greeting\"]", "-m", "a message", "cm", "greeter:v1")
	if !strings.HasPrefix(out, "sha256:") {
		t.Fatalf("commit: %q", out)
	}
	if out := d.mustDocker("run", "--rm", "greeter:v1"); out != "committed\n" {
		t.Fatalf("run the committed image: %q", out)
	}
	tarPath := filepath.Join(t.TempDir(), "cm.tar")
	d.mustDocker("export", "-o", tarPath, "cm")
	list, err := exec.Command("tar", "-tf", tarPath).Output()
	if err != nil || !strings.Contains(string(list), "greeting") || !strings.Contains(string(list), "bin/busybox") {
		t.Fatalf("export: %v %d bytes", err, len(list))
	}
	d.mustDocker("rm", "cm")
	d.mustDocker("rmi", "greeter:v1")
}
