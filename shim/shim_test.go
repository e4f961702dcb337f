package shim_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
	"berth.dev/berth/shim"
	"berth.dev/berth/shim/inproc"
	"berth.dev/berth/shim/logs"
)

func TestMain(m *testing.M) {
	if os.Getenv("BERTH_SHIM_HELPER") != "" {
		os.Exit(helperMain())
	}
	leakcheck.Main(cleanRun{m})
}

// cleanRun removes the berth-shim build after the tests.
type cleanRun struct{ m *testing.M }

func (c cleanRun) Run() int {
	code := c.m.Run()
	if smallBin != "" {
		os.RemoveAll(filepath.Dir(smallBin))
	}
	return code
}

// helperMain starts a shim from the options in $BERTH_SHIM_HELPER and
// exits: a daemon that dies right after starting a container.
func helperMain() int {
	var o shim.Options
	if err := json.Unmarshal([]byte(os.Getenv("BERTH_SHIM_HELPER")), &o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c, err := shim.Start(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(c.Pid())
	select {} // until the test kills us with SIGKILL
}

// shimBinary is the berth binary, or berth-shim (built once) when
// $BERTH_TEST_SHIM=small: the tests pass with both.
func shimBinary(t *testing.T) string {
	if os.Getenv("BERTH_TEST_SHIM") != "small" {
		return testutil.BerthBinary(t)
	}
	smallOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-shim-bin-")
		if err != nil {
			smallErr = err
			return
		}
		smallBin = filepath.Join(dir, "berth-shim")
		gobin, err := exec.LookPath("go")
		if err != nil {
			gobin = "/usr/local/go/bin/go"
		}
		out, err := exec.Command(gobin, "build", "-o", smallBin, "berth.dev/berth/shim/cmd/berth-shim").CombinedOutput()
		if err != nil {
			smallErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if smallErr != nil {
		t.Fatal(smallErr)
	}
	return smallBin
}

var (
	smallOnce sync.Once
	smallBin  string
	smallErr  error
)

type runtimeKind string

const (
	berthRT runtimeKind = "berth"
	runcRT  runtimeKind = "runc"
	crunRT  runtimeKind = "crun"
)

type env struct {
	t      *testing.T
	id     string
	dir    string // state dir
	bundle string
	rootfs string
	opts   shim.Options
}

func newEnv(t *testing.T, rt runtimeKind, spec *specs.Spec) *env {
	t.Helper()
	testutil.RequireRoot(t)
	t.Cleanup(testutil.KeepHostCgroups())
	root := t.TempDir()
	// berth's runtime keeps a read-only bind of its binary in its root
	// (made once, reused); this root goes with the test.
	t.Cleanup(func() {
		ms, _ := filepath.Glob(filepath.Join(root, "runtime", ".berth-*"))
		for _, m := range ms {
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
	})
	if rt == crunRT && spec != nil {
		spec.Version = "1.0.2" // Debian's crun 1.8 knows no later one
	}
	rootfs := testutil.BusyboxRootfs(t)
	var b [4]byte
	rand.Read(b[:])
	id := "shimtest-" + hex.EncodeToString(b[:])
	e := &env{t: t, id: id, dir: filepath.Join(root, "containers", id), bundle: testutil.Bundle(t, rootfs, spec), rootfs: rootfs}
	bin := testutil.BerthBinary(t)
	e.opts = shim.Options{ID: id, Bundle: e.bundle, StateDir: e.dir, Binary: shimBinary(t),
		Runtime: []string{bin, "runtime", "--root", filepath.Join(root, "runtime")},
		Log:     logs.Config{Path: filepath.Join(root, "container.log")}}
	switch rt {
	case runcRT, crunRT:
		p, err := exec.LookPath(string(rt))
		if err != nil {
			t.Skipf("%s is not installed", rt)
		}
		e.opts.Runtime = []string{p, "--root", filepath.Join(root, string(rt))}
	}
	return e
}

// start starts a shim and makes sure the test ends it, its container and
// everything they left.
func (e *env) start() *shim.Client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := shim.Start(ctx, e.opts)
	if err != nil && strings.Contains(err.Error(), "hybrid mode not supported") {
		e.t.Skipf("crun refuses this host now: %v", err) // something enabled cgroup2 controllers
	}
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { e.end(c.Pid()) })
	return c
}

// end kills the container, shuts the shim down, and kills the shim by pid
// if that fails.
func (e *env) end(pid int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := shim.Connect(e.dir)
	if err != nil {
		return // gone already
	}
	if st, err := c.State(ctx, ""); err == nil && st.Status == shim.StatusRunning {
		c.Kill(ctx, "", syscall.SIGKILL, true)
		c.Wait(ctx, "")
	}
	if err := c.Shutdown(ctx); err != nil {
		b, _ := os.ReadFile(filepath.Join(e.dir, shim.LogName))
		e.t.Errorf("shutdown: %v\nshim log: %s", err, b)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	waitGone(e.t, pid)
}

func waitGone(t *testing.T, pid int) {
	for i := 0; i < 1000; i++ {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("shim %d still there", pid)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func readLog(t *testing.T, cfg logs.Config, o logs.ReadOptions) []logs.Message {
	t.Helper()
	var ms []logs.Message
	err := logs.Read(context.Background(), cfg, o, func(m logs.Message) error {
		ms = append(ms, m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

var runtimes = []runtimeKind{berthRT, runcRT, crunRT}

func TestRunExitCodeAndLog(t *testing.T) {
	for _, rt := range runtimes {
		t.Run(string(rt), func(t *testing.T) {
			e := newEnv(t, rt, testutil.Spec("sh", "-c", `echo out; echo err >&2; printf partial; exit 3`))
			c := e.start()
			st, err := c.State(ctx(t), "")
			if err != nil || st.Status != shim.StatusCreated || st.Pid <= 0 {
				t.Fatalf("state after create: %+v, %v", st, err)
			}
			if fi, err := os.Stat(filepath.Join(e.dir, shim.SocketName)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("control socket: %v %v, want mode 0600", fi.Mode(), err)
			}
			if err := c.Start(ctx(t), ""); err != nil {
				t.Fatal(err)
			}
			ex, err := c.Wait(ctx(t), "")
			if err != nil {
				t.Fatal(err)
			}
			if ex.ExitCode != 3 || ex.FinishedAt.Before(ex.StartedAt) || ex.StartedAt.IsZero() {
				t.Fatalf("exit %+v, want code 3 with times", ex)
			}
			rec, err := shim.ReadExit(e.dir)
			if err != nil || rec.ExitCode != 3 || !rec.FinishedAt.Equal(ex.FinishedAt) {
				t.Fatalf("exit.json %+v, %v", rec, err)
			}
			if err := c.Start(ctx(t), ""); !errdefs.Is(err, errdefs.KindConflict) {
				t.Errorf("start after exit: %v, want a conflict", err)
			}
			// The raw file is docker's json-file format.
			raw, err := os.ReadFile(e.opts.Log.Path)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
			if len(lines) != 3 {
				t.Fatalf("log has %d lines:\n%s", len(lines), raw)
			}
			got := map[string]string{}
			for _, l := range lines {
				var m map[string]string
				if err := json.Unmarshal([]byte(l), &m); err != nil || len(m) != 3 {
					t.Fatalf("log line %q: %v", l, err)
				}
				if _, err := time.Parse(time.RFC3339Nano, m["time"]); err != nil {
					t.Errorf("time %q: %v", m["time"], err)
				}
				got[m["log"]] = m["stream"]
			}
			want := map[string]string{"out\n": "stdout", "err\n": "stderr", "partial": "stdout"}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("log %q: stream %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
			ms := readLog(t, e.opts.Log, logs.ReadOptions{Tail: -1})
			if len(ms) != 3 || !ms[len(ms)-1].Partial && string(ms[len(ms)-1].Line) == "partial" {
				t.Errorf("reader: %+v", ms)
			}
			if err := c.Shutdown(ctx(t)); err != nil {
				t.Fatal(err)
			}
			waitGone(t, c.Pid())
			if _, err := os.Stat(filepath.Join(e.dir, shim.SocketName)); !os.IsNotExist(err) {
				t.Errorf("socket left after shutdown: %v", err)
			}
			if _, err := shim.Connect(e.dir); !errdefs.Is(err, errdefs.KindNotFound) {
				t.Errorf("connect after shutdown: %v, want not found", err)
			}
		})
	}
}

func TestCreateFails(t *testing.T) {
	e := newEnv(t, berthRT, testutil.Spec("/does/not/exist"))
	c := e.start()
	err := c.Start(ctx(t), "")
	if err == nil {
		ex, _ := c.Wait(ctx(t), "")
		if ex == nil || ex.ExitCode == 0 {
			t.Fatalf("a missing program started and exited %+v", ex)
		}
		return
	}
	if !strings.Contains(err.Error(), "exist") {
		t.Errorf("start error does not say why: %v", err)
	}
	// An invalid bundle is refused at create, with the runtime's reason.
	e2 := newEnv(t, berthRT, testutil.Spec("true"))
	os.WriteFile(filepath.Join(e2.bundle, "config.json"), []byte("{"), 0o644)
	c2, err := shim.Start(ctx(t), e2.opts)
	if err == nil {
		e2.end(c2.Pid())
		t.Fatal("a broken bundle was created")
	}
	t.Logf("broken bundle: %v", err)
	if !strings.Contains(err.Error(), "config.json") && !strings.Contains(err.Error(), "JSON") && !strings.Contains(err.Error(), "json") {
		t.Errorf("create error does not say why: %v", err)
	}
	// The shim that failed is gone and left no socket.
	if _, err := os.Stat(filepath.Join(e2.dir, shim.SocketName)); !os.IsNotExist(err) {
		t.Errorf("socket after a failed create: %v", err)
	}
}

func TestLogRotationAndFollow(t *testing.T) {
	e := newEnv(t, berthRT, testutil.Spec("sh", "-c",
		`i=0; while [ $i -lt 400 ]; do echo "line $i $(printf %040d 0)"; i=$((i+1)); usleep 3000; done`))
	e.opts.Log.MaxSize, e.opts.Log.MaxFiles = 8192, 3
	c := e.start()
	stop := make(chan struct{})
	var followed []string
	var ferr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ferr = logs.Read(context.Background(), e.opts.Log, logs.ReadOptions{Tail: -1, Follow: true, Stop: stop, Poll: 5 * time.Millisecond},
			func(m logs.Message) error {
				followed = append(followed, string(m.Line))
				return nil
			})
	}()
	if err := c.Start(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	if ex, err := c.Wait(ctx(t), ""); err != nil || ex.ExitCode != 0 {
		t.Fatalf("wait: %+v %v", ex, err)
	}
	close(stop)
	wg.Wait()
	if ferr != nil {
		t.Fatal(ferr)
	}
	line := func(i int) string { return fmt.Sprintf("line %d %040d\n", i, 0) }
	if len(followed) != 400 {
		t.Errorf("follow across rotation saw %d lines, want 400", len(followed))
	}
	for i, l := range followed {
		if l != line(i) {
			t.Fatalf("followed line %d is %q", i, l)
		}
	}
	for i, name := range []string{"", ".1", ".2"} {
		st, err := os.Stat(e.opts.Log.Path + name)
		if err != nil {
			t.Fatalf("log file %d: %v", i, err)
		}
		if st.Size() > 8192 {
			t.Errorf("%s is %d bytes, over max-size", name, st.Size())
		}
	}
	if _, err := os.Stat(e.opts.Log.Path + ".3"); !os.IsNotExist(err) {
		t.Errorf("a fourth file: %v", err)
	}
	all := readLog(t, e.opts.Log, logs.ReadOptions{Tail: -1})
	if n := len(all); n == 0 || n >= 400 || string(all[n-1].Line) != line(399) {
		t.Fatalf("after rotation %d lines kept, last %q", n, all[len(all)-1].Line)
	}
	first := 400 - len(all)
	for i, m := range all {
		if string(m.Line) != line(first+i) {
			t.Fatalf("kept line %d is %q", i, m.Line)
		}
	}
	tail := readLog(t, e.opts.Log, logs.ReadOptions{Tail: 5})
	if len(tail) != 5 || string(tail[0].Line) != line(395) {
		t.Errorf("tail 5: %v", tail)
	}
	mid := all[len(all)/2].Time
	since := readLog(t, e.opts.Log, logs.ReadOptions{Tail: -1, Since: mid})
	until := readLog(t, e.opts.Log, logs.ReadOptions{Tail: -1, Until: mid})
	if len(since)+len(until) != len(all) || len(since) == 0 || len(until) == 0 || since[0].Time.Before(mid) {
		t.Errorf("since/until split %d lines into %d and %d", len(all), len(since), len(until))
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for i := 0; i < 1500; i++ {
		if f() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestAttachStdin(t *testing.T) {
	for _, rt := range []runtimeKind{berthRT, runcRT} {
		t.Run(string(rt), func(t *testing.T) {
			e := newEnv(t, rt, testutil.Spec("sh", "-c", `cat; echo done >&2`))
			e.opts.Stdin = true
			c := e.start()
			inR, inW := io.Pipe()
			var out, errOut, other syncBuf
			a, err := c.Attach(ctx(t), shim.AttachOptions{Stdin: inR, Stdout: &out, Stderr: &errOut, CloseStdin: true})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			// A second client sees the same output; only one may feed stdin.
			b, err := c.Attach(ctx(t), shim.AttachOptions{Stdout: &other})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if _, err := c.Attach(ctx(t), shim.AttachOptions{Stdin: strings.NewReader("x")}); !errdefs.Is(err, errdefs.KindConflict) {
				t.Errorf("second stdin attach: %v, want a conflict", err)
			}
			if err := c.Start(ctx(t), ""); err != nil {
				t.Fatal(err)
			}
			io.WriteString(inW, "hello\n")
			eventually(t, "the echo of stdin", func() bool { return out.String() == "hello\n" })
			io.WriteString(inW, "world\n")
			inW.Close() // stdin ends: cat ends
			ex, err := c.Wait(ctx(t), "")
			if err != nil || ex.ExitCode != 0 {
				t.Fatalf("wait: %+v %v", ex, err)
			}
			if err := a.Wait(); err != nil {
				t.Fatal(err)
			}
			b.Wait()
			if out.String() != "hello\nworld\n" || errOut.String() != "done\n" || other.String() != out.String() {
				t.Errorf("stdout %q, stderr %q, other client %q", out.String(), errOut.String(), other.String())
			}
		})
	}
}

func TestTTYResize(t *testing.T) {
	for _, rt := range []runtimeKind{berthRT, runcRT} {
		t.Run(string(rt), func(t *testing.T) {
			spec := testutil.Spec("sh", "-c", `stty size; read x; stty size; exit 4`)
			spec.Process.Terminal = true
			e := newEnv(t, rt, spec)
			e.opts.Tty, e.opts.Stdin, e.opts.Height, e.opts.Width = true, true, 30, 100
			c := e.start()
			inR, inW := io.Pipe()
			defer inW.Close()
			var out syncBuf
			a, err := c.Attach(ctx(t), shim.AttachOptions{Stdin: inR, Stdout: &out})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if err := c.Start(ctx(t), ""); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the first size", func() bool { return strings.Contains(out.String(), "30 100") })
			if err := c.Resize(ctx(t), "", 41, 123); err != nil {
				t.Fatal(err)
			}
			io.WriteString(inW, "go\n")
			ex, err := c.Wait(ctx(t), "")
			if err != nil || ex.ExitCode != 4 {
				t.Fatalf("wait: %+v %v", ex, err)
			}
			a.Wait()
			if !strings.Contains(out.String(), "41 123") {
				t.Errorf("after resize the container saw %q", out.String())
			}
			// Terminal output is logged as stdout.
			ms := readLog(t, e.opts.Log, logs.ReadOptions{Tail: -1})
			var logged strings.Builder
			for _, m := range ms {
				if m.Stream != "stdout" {
					t.Errorf("tty log stream %q", m.Stream)
				}
				logged.Write(m.Line)
			}
			if !strings.Contains(logged.String(), "30 100\r\n") {
				t.Errorf("log %q", logged.String())
			}
		})
	}
}

func TestExecAndKill(t *testing.T) {
	for _, rt := range []runtimeKind{berthRT, runcRT} {
		t.Run(string(rt), func(t *testing.T) {
			e := newEnv(t, rt, testutil.Spec("sleep", "1000"))
			c := e.start()
			if err := c.Start(ctx(t), ""); err != nil {
				t.Fatal(err)
			}
			proc := testutil.Spec().Process
			proc.Args = []string{"sh", "-c", "read x; echo got $x; echo oops >&2; exit 7"}
			if err := c.Exec(ctx(t), "e1", proc, true); err != nil {
				t.Fatal(err)
			}
			if err := c.Exec(ctx(t), "e1", proc, true); !errdefs.Is(err, errdefs.KindConflict) {
				t.Errorf("a second exec e1: %v", err)
			}
			var out, errOut syncBuf
			a, err := c.Attach(ctx(t), shim.AttachOptions{Exec: "e1", Stdin: strings.NewReader("hi\n"), Stdout: &out, Stderr: &errOut})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(ctx(t), "e1"); err != nil {
				t.Fatal(err)
			}
			ex, err := c.Wait(ctx(t), "e1")
			if err != nil || ex.ExitCode != 7 {
				t.Fatalf("exec wait: %+v %v", ex, err)
			}
			a.Wait()
			if out.String() != "got hi\n" || errOut.String() != "oops\n" {
				t.Errorf("exec stdout %q stderr %q", out.String(), errOut.String())
			}
			// A terminal exec.
			proc.Terminal = true
			proc.Args = []string{"sh", "-c", "tty; exit 2"}
			if err := c.Exec(ctx(t), "e2", proc, false); err != nil {
				t.Fatal(err)
			}
			out = syncBuf{}
			a, err = c.Attach(ctx(t), shim.AttachOptions{Exec: "e2", Stdout: &out})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(ctx(t), "e2"); err != nil {
				t.Fatal(err)
			}
			if ex, err := c.Wait(ctx(t), "e2"); err != nil || ex.ExitCode != 2 {
				t.Fatalf("tty exec wait: %+v %v", ex, err)
			}
			a.Wait()
			if !strings.HasPrefix(out.String(), "/dev/pts/") {
				t.Errorf("tty exec output %q", out.String())
			}
			if err := c.DeleteExec(ctx(t), "e1"); err != nil {
				t.Fatal(err)
			}
			// An exec deleted before its start ends its waiters.
			if err := c.Exec(ctx(t), "never", proc, true); err != nil {
				t.Fatal(err)
			}
			type waitResult struct {
				ex  *shim.Exit
				err error
			}
			waited := make(chan waitResult, 1)
			go func() { ex, err := c.Wait(ctx(t), "never"); waited <- waitResult{ex, err} }()
			time.Sleep(50 * time.Millisecond) // the wait is asked first (a late one finds it gone)
			if err := c.DeleteExec(ctx(t), "never"); err != nil {
				t.Fatal(err)
			}
			if w := <-waited; !errdefs.Is(w.err, errdefs.KindNotFound) && (w.ex == nil || w.ex.ExitCode != -1) {
				t.Errorf("wait on a deleted exec: %+v %v", w.ex, w.err)
			}
			if _, err := c.State(ctx(t), "e1"); !errdefs.Is(err, errdefs.KindNotFound) {
				t.Errorf("state of a deleted exec: %v", err)
			}
			if err := c.Exec(ctx(t), "../x", proc, false); !errdefs.Is(err, errdefs.KindInvalid) {
				t.Errorf("exec ID ../x: %v", err)
			}
			// The init runs on; exec output is not in the container's log.
			if st, _ := c.State(ctx(t), ""); st.Status != shim.StatusRunning {
				t.Fatalf("container %+v", st)
			}
			if ms := readLog(t, e.opts.Log, logs.ReadOptions{Tail: -1}); len(ms) != 0 {
				t.Errorf("exec output logged: %v", ms)
			}
			if err := c.Kill(ctx(t), "", syscall.SIGKILL, false); err != nil {
				t.Fatal(err)
			}
			ex, err = c.Wait(ctx(t), "")
			if err != nil || ex.ExitCode != 137 || ex.Signal != 9 {
				t.Fatalf("killed: %+v %v", ex, err)
			}
			if err := c.Kill(ctx(t), "", syscall.SIGKILL, false); !errdefs.Is(err, errdefs.KindConflict) {
				t.Errorf("kill after exit: %v", err)
			}
			if err := c.Exec(ctx(t), "e3", proc, false); !errdefs.Is(err, errdefs.KindConflict) {
				t.Errorf("exec in a stopped container: %v", err)
			}
		})
	}
}

// TestDaemonGone starts the shim from a process that exits at once (a
// daemon killed with -9), reconnects, lets the container exit with nobody
// connected, and finds the exit code afterwards.
func TestDaemonGone(t *testing.T) {
	e := newEnv(t, berthRT, testutil.Spec("sh", "-c", `echo up; while [ ! -e /go ]; do usleep 10000; done; exit 42`))
	opts, _ := json.Marshal(e.opts)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), "BERTH_SHIM_HELPER="+string(opts))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	_, err = fmt.Fscan(stdout, &pid)
	// The "daemon" dies with SIGKILL while its container runs on.
	cmd.Process.Kill()
	cmd.Wait()
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	t.Cleanup(func() { e.end(pid) })
	// The shim's comm is its binary's name (BERTH_BINARY may name it otherwise), cut to 15 bytes.
	comm := filepath.Base(testutil.BerthBinary(t))
	comm = comm[:min(len(comm), 15)]
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(b), "("+comm+")") {
		t.Fatalf("shim %d did not outlive its starter: %q", pid, b)
	}
	c, err := shim.Connect(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Pid() != pid {
		t.Errorf("connect: shim pid %d, want %d", c.Pid(), pid)
	}
	if err := c.Start(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	var o syncBuf
	a, err := c.Attach(ctx(t), shim.AttachOptions{Stdout: &o})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.State(ctx(t), "")
	if err != nil || st.Status != shim.StatusRunning {
		t.Fatalf("state %+v %v", st, err)
	}
	a.Close() // the daemon goes away again
	c.Close()
	if err := os.WriteFile(filepath.Join(e.rootfs, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "exit.json", func() bool { _, err := shim.ReadExit(e.dir); return err == nil })
	c, err = shim.Connect(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err = c.State(ctx(t), "")
	if err != nil || st.Status != shim.StatusStopped || st.ExitCode != 42 {
		t.Fatalf("state after exit: %+v %v", st, err)
	}
	ex, err := c.Wait(ctx(t), "")
	if err != nil || ex.ExitCode != 42 {
		t.Fatalf("wait after exit: %+v %v", ex, err)
	}
	if ms := readLog(t, e.opts.Log, logs.ReadOptions{Tail: -1}); len(ms) != 1 || string(ms[0].Line) != "up\n" {
		t.Errorf("log %v", ms)
	}
}

func TestExitTimeout(t *testing.T) {
	e := newEnv(t, berthRT, testutil.Spec("true"))
	e.opts.ExitTimeout = 300 * time.Millisecond
	c := e.start()
	if err := c.Start(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c.Pid())
	if ex, err := shim.ReadExit(e.dir); err != nil || ex.ExitCode != 0 {
		t.Fatalf("exit.json: %+v %v", ex, err)
	}
	if _, err := shim.Connect(e.dir); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("connect: %v", err)
	}
}

func TestInitReaper(t *testing.T) {
	bin := shimBinary(t) // berth, or berth-shim: both have init-reaper
	script := `sh -c 'sleep 0.2 &'; sh -c 'sleep 0.1 & exit 0'; sleep 0.6
for f in /proc/[0-9]*/stat; do read -r l < $f && echo "$l"; done
trap 'echo term; exit 9' TERM; echo ready; while true; do usleep 10000; done`
	spec := testutil.Spec("/sbin/berth-init", "init-reaper", "--", "sh", "-c", script)
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/sbin/berth-init", Type: "bind", Source: bin,
		Options: []string{"bind", "ro"}})
	e := newEnv(t, berthRT, spec)
	os.WriteFile(filepath.Join(e.rootfs, "sbin", "berth-init"), nil, 0o755)
	c := e.start()
	var out syncBuf
	a, err := c.Attach(ctx(t), shim.AttachOptions{Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ready", func() bool { return strings.Contains(out.String(), "ready") })
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) > 3 && strings.HasSuffix(f[1], ")") && f[2] == "Z" {
			t.Errorf("zombie in the container: %s", l)
		}
		if strings.HasPrefix(l, "1 ") && !strings.Contains(l, "(berth-init)") {
			t.Errorf("pid 1 is not the reaper: %s", l)
		}
	}
	if err := c.Kill(ctx(t), "", syscall.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	ex, err := c.Wait(ctx(t), "")
	if err != nil || ex.ExitCode != 9 {
		t.Fatalf("wait: %+v %v (output %q)", ex, err, out.String())
	}
	a.Wait()
	if !strings.Contains(out.String(), "term") {
		t.Errorf("SIGTERM did not reach the child: %q", out.String())
	}
}

// TestLongStateDir puts the state dir deeper than a socket address can
// reach: the control and console sockets go through /proc/.../fd.
func TestLongStateDir(t *testing.T) {
	spec := testutil.Spec("sh", "-c", "echo tty-ok; exit 5")
	spec.Process.Terminal = true
	e := newEnv(t, berthRT, spec)
	e.dir = filepath.Join(e.dir, strings.Repeat("d", 60), strings.Repeat("e", 60))
	e.opts.StateDir, e.opts.Tty = e.dir, true
	c := e.start()
	var out syncBuf
	a, err := c.Attach(ctx(t), shim.AttachOptions{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	if ex, err := c.Wait(ctx(t), ""); err != nil || ex.ExitCode != 5 {
		t.Fatalf("wait: %+v %v", ex, err)
	}
	a.Wait()
	if !strings.Contains(out.String(), "tty-ok") {
		t.Errorf("output %q", out.String())
	}
}

func TestCloseStdin(t *testing.T) {
	e := newEnv(t, berthRT, testutil.Spec("sh", "-c", "cat; echo eof"))
	e.opts.Stdin = true
	c := e.start()
	var out syncBuf
	a, err := c.Attach(ctx(t), shim.AttachOptions{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	// An attach whose stdin ends without CloseStdin leaves the process's
	// stdin open for the next one.
	b, err := c.Attach(ctx(t), shim.AttachOptions{Stdin: strings.NewReader("one\n")})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "one", func() bool { return out.String() == "one\n" })
	b.Close()
	if st, _ := c.State(ctx(t), ""); st.Status != shim.StatusRunning {
		t.Fatalf("stdin closed by a detaching attach: %+v", st)
	}
	if err := c.CloseStdin(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	if ex, err := c.Wait(ctx(t), ""); err != nil || ex.ExitCode != 0 {
		t.Fatalf("wait: %+v %v", ex, err)
	}
	a.Wait()
	if out.String() != "one\neof\n" {
		t.Errorf("output %q", out.String())
	}
}

// TestStartCanceled gives up on a create that takes long (a createRuntime
// hook sleeps): the shim deletes the container it made and exits.
func TestStartCanceled(t *testing.T) {
	spec := testutil.Spec("true")
	spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "1"}}}}
	e := newEnv(t, berthRT, spec)
	c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := shim.Start(c, e.opts); err == nil {
		e.end(0)
		t.Fatal("Start returned before the create it waited for")
	}
	// The shim goes once the hook is done (its pid file may come and go
	// before we look, so find it by its command line).
	eventually(t, "the shim to exit", func() bool { return shimOf(e.id) == 0 })
	rt := e.opts.Runtime
	out, err := exec.Command(rt[0], append(rt[1:], "state", e.id)...).CombinedOutput()
	if err == nil {
		e.end(0)
		t.Fatalf("the container is still there: %s", out)
	}
	if _, err := os.Stat(filepath.Join(e.dir, shim.SocketName)); !os.IsNotExist(err) {
		t.Errorf("socket left: %v", err)
	}
}

// shimOf is the pid of a live shim of container id, or 0.
func shimOf(id string) int {
	ms, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, m := range ms {
		b, _ := os.ReadFile(m)
		if strings.Contains(string(b), "\x00--id\x00"+id+"\x00") {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(m)))
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z ") {
				return pid
			}
		}
	}
	return 0
}

// TestSpares starts containers from shims started ahead of need: each
// start takes the waiting spare (its pid was known before the start) and a
// new one takes its place; Close ends the last spare.
func TestSpares(t *testing.T) {
	spec := testutil.Spec("sh", "-c", "echo from-spare; exit 6")
	e := newEnv(t, berthRT, spec)
	spares := shim.NewSpares(e.opts.Binary, "--test", e.id)
	defer spares.Close()
	e.opts.Spares = spares
	for i := 0; i < 2; i++ {
		spare := waitSpare(t, e.id)
		c := e.start()
		if c.Pid() != spare {
			t.Fatalf("start %d: shim %d, the spare was %d", i, c.Pid(), spare)
		}
		if err := c.Start(ctx(t), ""); err != nil {
			t.Fatal(err)
		}
		ex, err := c.Wait(ctx(t), "")
		if err != nil || ex.ExitCode != 6 {
			t.Fatalf("exit: %+v %v", ex, err)
		}
		e.end(c.Pid())
		// The same container again, from the next spare.
	}
	if raw, err := os.ReadFile(e.opts.Log.Path); err != nil || strings.Count(string(raw), `"from-spare\n"`) != 2 {
		t.Fatalf("log: %v %s", err, raw)
	}
	spare := waitSpare(t, e.id)
	spares.Close()
	waitGone(t, spare)
}

// TestSparesDeferred: with Deferred, a start takes the spare and the next
// one waits for the owner's Refill.
func TestSparesDeferred(t *testing.T) {
	e := newEnv(t, berthRT, testutil.Spec("true"))
	spares := shim.NewSpares(e.opts.Binary, "--test", e.id)
	spares.Deferred = true
	defer spares.Close()
	e.opts.Spares = spares
	spare := waitSpare(t, e.id)
	c := e.start()
	if c.Pid() != spare {
		t.Fatalf("shim %d, the spare was %d", c.Pid(), spare)
	}
	if err := c.Start(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	e.end(c.Pid())
	if next := spareOf(e.id); next != 0 {
		t.Fatalf("spare %d started before the owner's Refill", next)
	}
	spares.Refill()
	for deadline := time.Now().Add(10 * time.Second); spare == c.Pid() || spare == 0; time.Sleep(10 * time.Millisecond) {
		if spare = spareOf(e.id); time.Now().After(deadline) {
			t.Fatal("no spare after Refill")
		}
	}
	spares.Close()
	waitGone(t, spare)
}

// TestSparesAhead: spares with a Dir make their log, pid file and socket
// there while they wait, in a directory of their own, and move them into
// the state dir they are given; an unused spare removes its directory.
func TestSparesAhead(t *testing.T) {
	e := newEnv(t, berthRT, testutil.Spec("sh", "-c", "echo ahead"))
	dir := filepath.Dir(e.opts.StateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	spares := shim.NewSparesIn(dir, e.opts.Binary, "--test", e.id)
	defer spares.Close()
	e.opts.Spares = spares
	ahead := func(pid int) string { return filepath.Join(dir, ".spare-"+strconv.Itoa(pid)) }
	var spare int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if spare = spareOf(e.id); spare != 0 {
			if _, err := os.Stat(filepath.Join(ahead(spare), shim.SocketName)); err == nil {
				break
			}
		}
	}
	for _, name := range []string{shim.LogName, shim.PidName, shim.SocketName} {
		if _, err := os.Stat(filepath.Join(ahead(spare), name)); err != nil {
			t.Fatalf("spare %d made no %s ahead: %v", spare, name, err)
		}
	}
	c := e.start()
	if c.Pid() != spare {
		t.Fatalf("shim %d, the spare was %d", c.Pid(), spare)
	}
	if _, err := os.Stat(ahead(spare)); !os.IsNotExist(err) {
		t.Errorf("the spare's own directory after the start: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(e.opts.StateDir, shim.PidName)); err != nil || string(b) != strconv.Itoa(spare) {
		t.Errorf("pid file: %q %v", b, err)
	}
	if err := c.Start(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	e.end(c.Pid())
	if raw, err := os.ReadFile(e.opts.Log.Path); err != nil || !strings.Contains(string(raw), `"ahead\n"`) {
		t.Fatalf("log: %v %s", err, raw)
	}
	next := 0
	for deadline := time.Now().Add(10 * time.Second); next == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		next = spareOf(e.id)
	}
	if next == 0 {
		t.Fatal("no spare after the start")
	}
	spares.Close()
	waitGone(t, next)
	if _, err := os.Stat(ahead(next)); !os.IsNotExist(err) {
		t.Errorf("an unused spare's directory after Close: %v", err)
	}
}

// waitSpare waits (10 s at most) for a spare shim whose command line has
// tag, and returns its pid.
func waitSpare(t *testing.T, tag string) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if pid := spareOf(tag); pid != 0 {
			return pid
		}
	}
	t.Fatal("no spare shim started")
	return 0
}

// spareOf is the pid of a spare shim whose command line has tag.
func spareOf(tag string) int {
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), "\x00--spare\x00") || !strings.Contains(string(b), tag) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat")); err == nil && !strings.Contains(string(st), ") Z ") {
			pid, _ := strconv.Atoi(ent.Name())
			return pid
		}
	}
	return 0
}

// childOf is the one child of pid, or 0.
func childOf(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	f := strings.Fields(string(b))
	if len(f) != 1 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

// TestSpareInit: a spare shim of the berth binary, told the runtime's root,
// starts a spare container init while it waits; a container born the way
// the spare was (a new pid namespace, the C init) gets it as its init, one
// that is not (the host's pid namespace) a forked one while the spare goes,
// and Close takes the last spare shim and its init away.
func TestSpareInit(t *testing.T) {
	if os.Getenv("BERTH_TEST_SHIM") == "small" {
		t.Skip("berth-shim runs no runtime in process")
	}
	spec := testutil.Spec("sh", "-c", "echo pid $$; exit 3")
	e := newEnv(t, berthRT, spec)
	spares := shim.NewSpares(e.opts.Binary, "--test", e.id, inproc.SpareRootFlag, e.opts.Runtime[3])
	defer spares.Close()
	e.opts.Spares = spares
	spareInit := func() (shimPid, initPid int) {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if shimPid = spareOf(e.id); shimPid != 0 {
				if initPid = childOf(shimPid); initPid != 0 {
					return shimPid, initPid
				}
			}
		}
		t.Fatal("no spare shim with a spare init")
		return 0, 0
	}
	run := func() (*shim.State, *shim.Exit) {
		c := e.start()
		if err := c.Start(ctx(t), ""); err != nil {
			t.Fatal(err)
		}
		st, err := c.State(ctx(t), "")
		if err != nil {
			t.Fatal(err)
		}
		ex, err := c.Wait(ctx(t), "")
		if err != nil || ex.ExitCode != 3 {
			t.Fatalf("exit: %+v %v", ex, err)
		}
		e.end(c.Pid())
		return st, ex
	}

	_, spare := spareInit()
	if st, _ := run(); st.Pid != spare {
		t.Fatalf("the container's init is %d, the spare init was %d", st.Pid, spare)
	}

	// In the host's pid namespace: not the spare's way.
	spec.Linux.Namespaces = slices.DeleteFunc(spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.PIDNamespace })
	e.bundle = testutil.Bundle(t, e.rootfs, spec)
	e.opts.Bundle = e.bundle
	_, spare = spareInit()
	if st, _ := run(); st.Pid == spare {
		t.Fatal("a container in the host's pid namespace got the spare init")
	}
	waitGone(t, spare)
	if raw, err := os.ReadFile(e.opts.Log.Path); err != nil || strings.Count(string(raw), `"pid 1\n"`) != 1 {
		t.Fatalf("log: %v %s", err, raw)
	}

	// A spare init that died while it waited: the create forks one.
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
	e.bundle = testutil.Bundle(t, e.rootfs, spec)
	e.opts.Bundle = e.bundle
	_, spare = spareInit()
	syscall.Kill(spare, syscall.SIGKILL)
	if st, _ := run(); st.Pid == spare {
		t.Fatal("the container's init is the killed spare")
	}
	if raw, err := os.ReadFile(e.opts.Log.Path); err != nil || strings.Count(string(raw), `"pid 1\n"`) != 2 {
		t.Fatalf("log: %v %s", err, raw)
	}

	shimPid, spare := spareInit()
	spares.Close()
	waitGone(t, shimPid)
	waitGone(t, spare)
}
