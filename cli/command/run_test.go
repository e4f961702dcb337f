package command_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth.dev/berth/internal/testutil"
)

// ids are container IDs (in the daemons' errors) and hostnames (a
// container's default hostname is its short ID).
var ids = regexp.MustCompile(`\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b`)

// cliCase is one command line, with what its stdin reads.
type cliCase struct {
	stdin string
	args  []string
}

// TestRunSameAsDocker runs containers with berth's run, create, start -a
// and exec and with docker's, against the same daemon: output, errors and
// exit codes must agree (IDs normalised).
func TestRunSameAsDocker(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte("# comment\nFROMFILE=1\n\n  SPACED=two words\nBERTH_TEST_FROM_ENV\nBERTH_TEST_UNSET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	labelFile := filepath.Join(dir, "labels")
	if err := os.WriteFile(labelFile, []byte("a=1\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BERTH_TEST_FROM_ENV", "env value")
	t.Setenv("BERTH_TEST_E", "e value")
	img := "berthtest/one:v1"
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			berth := func(stdin []byte, args ...string) result { return run(t, stdin, bin, d.host, args...) }
			docker := func(stdin []byte, args ...string) result { return run(t, stdin, dockerCLI, d.host, args...) }
			if r := berth(nil, "load", "-i", one); r.code != 0 {
				t.Fatalf("load: %s", r)
			}
			names := []string{"up", "c5"}
			t.Cleanup(func() { docker(nil, append([]string{"rm", "-f"}, names...)...) })
			if r := docker(nil, "run", "-d", "--name", "up", img, "sleep", "1000"); r.code != 0 {
				t.Fatalf("docker run -d: %s", r)
			}
			cases := []cliCase{
				{"", []string{"run", "--rm", img, "echo", "hi"}},
				{"", []string{"run", "--rm", img, "sh", "-c", "echo out; echo err >&2; exit 3"}},
				{"", []string{"run", "--rm", img, "true"}},
				{"", []string{"run", "--rm", img, "nosuchcmd"}},
				{"", []string{"run", "--rm", img, "/etc"}},
				{"", []string{"run", "--rm", "--pull", "never", "berthtest/nosuch"}},
				{"", []string{"run", "--rm", "--pull", "never", "berthtest/nosuch:v2"}},
				{"", []string{"run", "--rm", "-e", "A=1", "-e", "BERTH_TEST_E", "-e", "BERTH_TEST_E_UNSET", "--env-file", envFile, img, "env"}},
				{"", []string{"run", "--rm", "-w", "/tmp", "-u", "1:2", img, "sh", "-c", "pwd; id"}},
				{"", []string{"run", "--rm", "--workdir=/nonexistent/dir", img, "pwd"}},
				{"", []string{"run", "--rm", "-u", "nobody", img, "id"}},
				{"", []string{"run", "--rm", "--entrypoint", "echo", img, "a", "b"}},
				{"", []string{"run", "--rm", "--entrypoint=", img, "echo", "c"}},
				{"", []string{"run", "--rm", "-h", "box", img, "hostname"}},
				{"", []string{"run", "--rm", "--read-only", img, "touch", "/x"}},
				{"", []string{"run", "--rm", "--tmpfs", "/scratch", img, "sh", "-c", "touch /scratch/x && echo ok"}},
				{"", []string{"run", "--rm", "--mount", "type=tmpfs,destination=/m", img, "sh", "-c", "grep -c ' /m ' /proc/mounts"}},
				{"", []string{"run", "--rm", "--ulimit", "nofile=100:200", img, "sh", "-c", "ulimit -n; ulimit -Hn"}},
				{"", []string{"run", "--rm", "--cap-drop", "ALL", img, "sh", "-c", "grep CapEff /proc/self/status"}},
				{"", []string{"run", "--rm", "--network", "none", "--stop-signal", "USR1", "--stop-timeout", "3", "-l", "x=y", "--label-file", labelFile, img, "true"}},
				{"", []string{"run", "--rm", "-t", img, "sh", "-c", "echo tty; echo err >&2"}},
				{"hello\nworld\n", []string{"run", "--rm", "-i", img, "cat"}},
				{"", []string{"run", "--rm", "-a", "stdout", img, "sh", "-c", "echo o; echo e >&2"}},
				{"", []string{"run", "--rm", "-a", "STDERR", img, "sh", "-c", "echo o; echo e >&2"}},
				// errors: flags, the daemon's, the terminal
				{"", []string{"run"}},
				{"", []string{"run", "--bogus", img}},
				{"", []string{"run", "-m", "12x", img}},
				{"", []string{"run", "--cpus", "0.0000000001", img}},
				{"", []string{"run", "--cpus", "x", img}},
				{"", []string{"run", "--ulimit", "bogus", img}},
				{"", []string{"run", "-e", "=x", img}},
				{"", []string{"run", "-a", "bogus", img}},
				{"", []string{"run", "-l", "=x", img}},
				{"", []string{"run", "--mount", "type=tmpfs", img}},
				{"", []string{"run", "--security-opt", "bogus", img}},
				{"", []string{"run", "--restart", "on-failure:x", img}},
				{"", []string{"run", "--rm", "--restart", "always", img}},
				{"", []string{"run", "--health-interval", "-1s", img}},
				{"", []string{"run", "--no-healthcheck", "--health-cmd", "true", img}},
				{"", []string{"run", "--pull", "bogus", img}},
				{"", []string{"run", "--name", "bad name", img}},
				{"", []string{"run", "--name", "up", img}},
				{"", []string{"run", "-it", img, "sh"}},
				{"", []string{"run", "-d", "-a", "stdout", img}},
				{"", []string{"run", "--env-file", "/nonexistent", img}},
				{"", []string{"create", "--name", "bad name", img}},
				{"", []string{"create", "-m", "12x", img}},
				{"", []string{"create", "--pull", "never", "berthtest/nosuch"}},
				{"", []string{"create"}},
				// exec
				{"", []string{"exec", "up", "echo", "hi"}},
				{"", []string{"exec", "up", "sh", "-c", "echo o; echo e >&2; exit 4"}},
				{"", []string{"exec", "-e", "A=b", "-w", "/tmp", "-u", "5", "up", "sh", "-c", "echo $A; pwd; id -u"}},
				{"", []string{"exec", "-t", "up", "sh", "-c", "echo tty; echo err >&2"}},
				{"in\n", []string{"exec", "-i", "up", "cat"}},
				{"", []string{"exec", "-d", "up", "true"}},
				{"", []string{"exec", "up", "/etc"}},
				{"", []string{"exec", "-it", "up", "sh"}},
				{"", []string{"exec", "nosuch", "true"}},
				{"", []string{"exec", "up"}},
				{"", []string{"exec", "--bogus", "up", "true"}},
				{"", []string{"attach", "nosuch"}},
				{"", []string{"attach", "--no-stdin", "up", "extra"}},
				{"", []string{"start", "-a", "nosuch"}},
				{"", []string{"start", "-a", "up", "c5"}},
			}
			if dd.name == "berth" {
				cases = append(cases,
					// dockerd's runc says 126 here where the error says
					// "not found" (docker reads its status, not its words)
					cliCase{"", []string{"exec", "up", "nosuchcmd"}},
					// a missing image is pulled ("Unable to find image
					// 'x:latest' locally"), from a registry that is not
					// there (tests reach loopback only)
					cliCase{"", []string{"run", "--rm", "127.0.0.1:1/berthtest/nosuch"}},
					cliCase{"", []string{"create", "-q", "127.0.0.1:1/berthtest/nosuch:v3"}})
			}
			for _, c := range cases {
				var in []byte
				if c.stdin != "" {
					in = []byte(c.stdin)
				}
				b, k := berth(in, c.args...), docker(in, c.args...)
				if c.args[len(c.args)-1] == "env" {
					b.out, k.out = sortedLines(b.out), sortedLines(k.out) // docker's -e order is a map's
				}
				if ids.ReplaceAllString(b.out, "ID") != ids.ReplaceAllString(k.out, "ID") || b.code != k.code ||
					ids.ReplaceAllString(normalize(b.err), "ID") != ids.ReplaceAllString(normalize(k.err), "ID") {
					t.Errorf("%s: berth and docker differ\nberth: %s\ndocker: %s", strings.Join(c.args, " "), b, k)
				}
			}

			// run -d and create print the ID; start -a runs it attached and
			// gives its code; --rm leaves nothing; --cidfile has the ID.
			hex64 := regexp.MustCompile(`^[0-9a-f]{64}\n$`)
			for _, cli := range []func([]byte, ...string) result{berth, docker} {
				r := cli(nil, "run", "-d", img, "sleep", "1000")
				if r.code != 0 || !hex64.MatchString(r.out) || r.err != "" {
					t.Fatalf("run -d: %s", r)
				}
				if s := docker(nil, "inspect", "-f", "{{.State.Running}}", strings.TrimSpace(r.out)); s.out != "true\n" {
					t.Errorf("run -d: not running: %s", s)
				}
				docker(nil, "rm", "-f", strings.TrimSpace(r.out))
				r = cli(nil, "create", "--name", "c5", img, "sh", "-c", "echo started; echo e >&2; exit 5")
				if r.code != 0 || !hex64.MatchString(r.out) || r.err != "" {
					t.Fatalf("create: %s", r)
				}
				for i := 0; i < 2; i++ {
					if s := cli(nil, "start", "-a", "c5"); s.code != 5 || s.out != "started\n" || s.err != "e\n" {
						t.Errorf("start -a: %s", s)
					}
				}
				if s := cli([]byte("x"), "start", "-ai", "c5"); s.code != 5 || s.out != "started\n" {
					t.Errorf("start -ai: %s", s)
				}
				docker(nil, "rm", "c5")
				cid := filepath.Join(t.TempDir(), "cid")
				r = cli(nil, "run", "--rm", "--cidfile", cid, "--name", "gone", img, "true")
				b, err := os.ReadFile(cid)
				if r.code != 0 || err != nil || len(b) != 64 {
					t.Errorf("run --cidfile: %s, %q %v", r, b, err)
				}
				if r := cli(nil, "run", "--rm", "--cidfile", cid, img, "true"); r.code != 125 || !strings.Contains(r.err, "container ID file found") {
					t.Errorf("run --cidfile of an existing file: %s", r)
				}
				if s := docker(nil, "ps", "-a", "--filter", "name=gone", "--format", "{{.Names}}"); s.out != "" {
					t.Errorf("run --rm left %q", s.out)
				}
			}
		})
	}
}

// TestRunSignalProxy: without a terminal, a signal to the CLI goes to the
// container (--sig-proxy), and the CLI exits with the container's code.
func TestRunSignalProxy(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	d := startBerthd(t)
	if r := run(t, nil, bin, d.host, "load", "-i", one); r.code != 0 {
		t.Fatalf("load: %s", r)
	}
	t.Cleanup(func() { run(t, nil, dockerCLI, d.host, "rm", "-f", "sig") })
	for _, tc := range []struct {
		args []string
		sig  syscall.Signal
		code int
		out  string
	}{
		{[]string{"run", "--rm", "--name", "sig"}, syscall.SIGTERM, 7, "ready\ngot TERM\n"},
		{[]string{"run", "--rm", "--name", "sig"}, syscall.SIGUSR1, 8, "ready\ngot USR1\n"},
		// --sig-proxy=false: the CLI itself ends (128+15), the container runs on
		{[]string{"run", "--sig-proxy=false", "--name", "sig"}, syscall.SIGTERM, 143, "ready\n"},
	} {
		cmd := exec.Command(bin, append(append([]string{"-H", d.host}, tc.args...),
			"berthtest/one:v1", "sh", "-c", `trap "echo got TERM; exit 7" TERM; trap "echo got USR1; exit 8" USR1; echo ready; while true; do sleep 0.1; done`)...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		rd := bufio.NewReader(out)
		line, err := rd.ReadString('\n')
		if err != nil || line != "ready\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("%v: first line %q, %v", tc.args, line, err)
		}
		_ = cmd.Process.Signal(tc.sig)
		rest, _ := readAll(rd)
		err = cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tc.code || line+rest != tc.out {
			t.Errorf("%v: exit %d (want %d), output %q (want %q)", tc.args, code, tc.code, line+rest, tc.out)
		}
	}
	if r := run(t, nil, dockerCLI, d.host, "inspect", "-f", "{{.State.Running}} {{.State.Status}} {{.State.ExitCode}} {{.State.Error}}", "sig"); !strings.HasPrefix(r.out, "true") {
		t.Errorf("--sig-proxy=false: container not running on: %s", r)
	}
}

func readAll(r *bufio.Reader) (string, error) {
	var sb strings.Builder
	_, err := r.WriteTo(&sb)
	return sb.String(), err
}

// tmux drives a terminal: a private tmux server with one session.
type tmux struct {
	t    *testing.T
	sock string
}

func newTmux(t *testing.T) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	dir, err := os.MkdirTemp("", "berth-tmux-")
	if err != nil {
		t.Fatal(err)
	}
	m := &tmux{t: t, sock: filepath.Join(dir, "sock")}
	t.Cleanup(func() {
		_ = exec.Command("tmux", "-S", m.sock, "kill-server").Run()
		os.RemoveAll(dir)
	})
	return m
}

func (m *tmux) run(args ...string) string {
	m.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", m.sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("tmux %v: %v: %s", args, err, out)
	}
	return string(out)
}

// window starts command in a new window (the first makes the session,
// 100x30); when command ends, its exit code is in the returned file.
func (m *tmux) window(name, command string) (exitFile string) {
	m.t.Helper()
	exitFile = filepath.Join(filepath.Dir(m.sock), name+".exit")
	sh := command + "; echo $? > " + exitFile + ".tmp; mv " + exitFile + ".tmp " + exitFile + "; sleep 600"
	if _, err := os.Stat(m.sock); err != nil {
		m.run("new-session", "-d", "-x", "100", "-y", "30", "-s", "s", "-n", name, sh)
		return exitFile
	}
	m.run("new-window", "-t", "s", "-n", name, sh)
	return exitFile
}

func (m *tmux) keys(win string, keys ...string) {
	m.t.Helper()
	m.run(append([]string{"send-keys", "-t", "s:" + win}, keys...)...)
}

func (m *tmux) pane(win string) string {
	m.t.Helper()
	return m.run("capture-pane", "-p", "-J", "-S", "-", "-t", "s:"+win)
}

// waitLine waits for a line of the pane to be line (the shell's echo of
// what was typed is another line).
func (m *tmux) waitLine(win, line string) {
	m.t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, l := range strings.Split(m.pane(win), "\n") {
			if strings.TrimRight(l, " ") == line {
				return
			}
		}
	}
	m.t.Fatalf("window %s: no line %q in:\n%s", win, line, m.pane(win))
}

// waitSize types `stty size` until the pane shows size: a resize reaches
// the container through the CLI's SIGWINCH and a request, which keys typed
// at once may overtake.
func (m *tmux) waitSize(win, size string) {
	m.t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		m.keys(win, "stty size", "Enter")
		for next := time.Now().Add(time.Second); time.Now().Before(next); time.Sleep(50 * time.Millisecond) {
			for _, l := range strings.Split(m.pane(win), "\n") {
				if strings.TrimRight(l, " ") == size {
					return
				}
			}
		}
	}
	m.t.Fatalf("window %s: the size never became %q:\n%s", win, size, m.pane(win))
}

func waitExit(t *testing.T, file string) string {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(file); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("%s: the command did not end", file)
	return ""
}

// TestInteractiveTmux types into `run -it`, `attach` and `exec -it` in a
// real terminal (tmux), through the berth CLI and through the docker CLI
// against berth daemon, and through the berth CLI against dockerd:
// arithmetic, the terminal's size and its change, ctrl-p ctrl-q detaching,
// re-attaching, and exit codes.
func TestInteractiveTmux(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	var d daemon
	for _, cli := range []struct {
		name, bin string
		start     func(*testing.T) daemon
	}{{"berth", bin, startBerthd}, {"docker", dockerCLI, nil}, {"berth-on-dockerd", bin, startDockerd}} {
		if cli.start != nil {
			d = cli.start(t)
			if r := run(t, nil, bin, d.host, "load", "-i", one); r.code != 0 {
				t.Fatalf("load: %s", r)
			}
		}
		t.Run(cli.name, func(t *testing.T) {
			m := newTmux(t)
			ctr, sleeper := cli.name+"-it", cli.name+"-sleeper"
			t.Cleanup(func() { run(t, nil, dockerCLI, d.host, "rm", "-f", ctr, sleeper) })
			c := cli.bin + " -H " + d.host

			exit := m.window("run", c+" run -it --name "+ctr+" berthtest/one:v1 sh")
			m.keys("run", "echo $((6*7))", "Enter")
			m.waitLine("run", "42")
			m.keys("run", "stty size", "Enter")
			m.waitLine("run", "30 100")
			m.run("resize-window", "-t", "s:run", "-x", "120", "-y", "40")
			m.waitSize("run", "40 120")
			m.keys("run", "C-p", "C-q")
			if code := waitExit(t, exit); code != "0" {
				t.Errorf("run -it detached: exit %s\n%s", code, m.pane("run"))
			}
			if r := run(t, nil, dockerCLI, d.host, "inspect", "-f", "{{.State.Running}}", ctr); r.out != "true\n" {
				t.Fatalf("after ctrl-p ctrl-q the container should run: %s", r)
			}

			// attach, detach again (docker's attach says so, exit 1), then
			// attach and exit 3
			exit = m.window("att1", c+" attach "+ctr)
			m.keys("att1", "echo again", "Enter")
			m.waitLine("att1", "again")
			m.keys("att1", "C-p", "C-q")
			if code := waitExit(t, exit); code != "1" || !strings.Contains(m.pane("att1"), "read escape sequence") {
				t.Errorf("attach detached: exit %s\n%s", code, m.pane("att1"))
			}
			exit = m.window("att2", c+" attach --detach-keys ctrl-x "+ctr)
			m.keys("att2", "stty size", "Enter")
			m.waitLine("att2", "30 100")
			m.keys("att2", "exit 3", "Enter")
			if code := waitExit(t, exit); code != "3" {
				t.Errorf("attach, exit 3: exit %s\n%s", code, m.pane("att2"))
			}
			if r := run(t, nil, dockerCLI, d.host, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", ctr); r.out != "exited 3\n" {
				t.Errorf("after exit 3: %s", r)
			}

			// exec -it into a running container
			if r := run(t, nil, dockerCLI, d.host, "run", "-d", "--name", sleeper, "berthtest/one:v1", "sleep", "1000"); r.code != 0 {
				t.Fatalf("run -d: %s", r)
			}
			exit = m.window("exec", c+" exec -it "+sleeper+" sh")
			// Keys typed before ash's prompt race its cursor-position query:
			// the terminal's answer lands in the line ("^[[7;5R42").
			m.waitLine("exec", "/ #")
			m.keys("exec", "echo $((6*7))", "Enter")
			m.waitLine("exec", "42")
			m.waitSize("exec", "30 100")
			m.run("resize-window", "-t", "s:exec", "-x", "90", "-y", "20")
			m.waitSize("exec", "20 90")
			m.keys("exec", "exit 3", "Enter")
			if code := waitExit(t, exit); code != "3" {
				t.Errorf("exec -it, exit 3: exit %s\n%s", code, m.pane("exec"))
			}
			// detach keys of an exec, and --rm with run -it
			exit = m.window("exec2", c+" exec -it --detach-keys ctrl-a,x "+sleeper+" sh")
			m.waitLine("exec2", "/ #")
			m.keys("exec2", "echo $((2*21))", "Enter")
			m.waitLine("exec2", "42")
			m.keys("exec2", "C-a", "x")
			if code := waitExit(t, exit); code != "1" || !strings.Contains(m.pane("exec2"), "read escape sequence") {
				t.Errorf("exec -it detached: exit %s\n%s", code, m.pane("exec2"))
			}
			exit = m.window("rm", c+" run --rm -it berthtest/one:v1 sh -c 'read x; echo got $x; exit 4'")
			m.keys("rm", "hello", "Enter")
			m.waitLine("rm", "got hello")
			if code := waitExit(t, exit); code != "4" {
				t.Errorf("run --rm -it: exit %s\n%s", code, m.pane("rm"))
			}
			if r := run(t, nil, dockerCLI, d.host, "ps", "-a", "--format", "{{.Names}}"); sortedLines(r.out) != sortedLines(ctr+"\n"+sleeper+"\n") {
				t.Errorf("run --rm -it left a container: %s", r)
			}
		})
	}
}
