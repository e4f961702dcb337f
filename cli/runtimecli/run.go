package runtimecli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"berth.dev/berth/runtime"
	"berth.dev/berth/runtime/seccomp"
	ocispec "berth.dev/berth/runtime/spec"
)

func (g *globals) runCmd() *cobra.Command {
	var f createFlags
	var detach, keep bool
	cmd := &cobra.Command{
		Use:   "run [flags] <container-id>",
		Short: "Create and start a container; wait for it unless --detach",
		Args:  exactArgs(1, "<container-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			runtime.Trace("cli: runtime")
			o := f.opts()
			// Catch signals before the container exists, so none is lost;
			// enabling handlers is slow enough to overlap with the create.
			sigc := make(chan os.Signal, 64)
			if !detach {
				// No signal.Stop: it waits for the signal loop to go idle,
				// which costs about a millisecond, and the process ends anyway.
				go signal.Notify(sigc, forwarded...)
			}
			// Read, not decoded: create decodes it while the init boots.
			file, err := runtime.ReadSpec(f.bundle)
			runtime.Trace("cli: spec read")
			if err != nil {
				return err
			}
			o.File = file
			terminal := file.Terminal()
			// The init goes on once ready, as the start follows at once;
			// with a terminal it waits for start, after the proxy is attached.
			o.Run = !terminal
			var term *ttyProxy
			if terminal && f.consoleSocket == "" {
				if detach {
					return errors.New("cannot run detached with a terminal without --console-socket")
				}
				if term, err = newTTYProxy(); err != nil {
					return err
				}
				defer term.close()
				o.ConsoleConn = term.theirs
			}
			created, err := rt.Create(args[0], o)
			if err != nil {
				return err
			}
			if term != nil {
				if err := term.attach(); err != nil {
					created.Delete(true)
					return err
				}
			}
			runtime.Trace("cli: created")
			// The init's mount namespace, held until it has exited: its
			// teardown (every mount, an RCU grace period) then runs beside
			// the delete instead of before the exit is reported.
			mntns := -1
			if !detach {
				mntns, _ = unix.Open(fmt.Sprintf("/proc/%d/ns/mnt", created.Saved.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			}
			if err := created.Start(); err != nil {
				if mntns >= 0 {
					unix.Close(mntns)
				}
				created.Delete(true)
				return err
			}
			if detach {
				return nil
			}
			runtime.Trace("cli: started")
			status := waitForwarding(created.Wait, created.Saved.Pid, sigc, term)
			runtime.Trace("cli: exited")
			if mntns >= 0 {
				go unix.Close(mntns)
			}
			if !keep {
				if err := created.Delete(true); err != nil {
					g.log.Warn("delete after run", "error", err)
				}
			}
			if status != 0 {
				return exitError(status)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "do not wait for the container")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the container's state after it exits")
	var ignored bool
	cmd.Flags().BoolVar(&ignored, "no-subreaper", false, "ignored")
	return cmd
}

// forwarded are the signals run and exec pass on to the container. Not every
// signal: enabling handlers for all 64 costs more than the rest of a
// container start's CLI work, and the others are not sent to a waiting
// runtime in practice.
var forwarded = []os.Signal{
	syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGUSR1,
	syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGCONT, syscall.SIGWINCH, syscall.SIGTSTP,
	syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGPWR, syscall.SIGXCPU, syscall.SIGXFSZ, syscall.SIGVTALRM,
}

// waitForwarding waits (wait), forwarding our signals to pid, and returns a
// shell-style exit status (128+signal when killed). The wait is this
// goroutine's own (the exit wakes this thread, no hand-over from another);
// signals go through a pidfd, which after the exit reaches nothing, where a
// pid might by then name another process.
func waitForwarding(wait func() (*os.ProcessState, error), pid int, sigc chan os.Signal, term *ttyProxy) int {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		pidfd = -1 // gone already: nothing to forward to
	}
	go func() {
		for s := range sigc {
			sig := s.(syscall.Signal)
			switch sig {
			case syscall.SIGCHLD, syscall.SIGURG, syscall.SIGPIPE:
				continue
			case syscall.SIGWINCH:
				if term != nil {
					term.resize()
				}
				continue
			}
			if pidfd >= 0 {
				unix.PidfdSendSignal(pidfd, sig, nil, 0)
			}
		}
	}()
	ps, _ := wait()
	if term != nil {
		term.drain()
	}
	return exitStatus(ps)
}

// exitStatus is a shell-style status: 255 when the wait itself failed.
func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return 255
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
	return ps.ExitCode()
}

// ttyProxy receives the container's pty master over a socketpair and copies
// between it and our terminal, which it puts in raw mode.
type ttyProxy struct {
	ours, theirs *os.File
	master       console.Console
	current      console.Console
	outDone      chan struct{}
}

func newTTYProxy() (*ttyProxy, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &ttyProxy{ours: os.NewFile(uintptr(fds[0]), "console-ours"), theirs: os.NewFile(uintptr(fds[1]), "console-theirs")}, nil
}

// attach takes the master the init sent and starts copying.
func (t *ttyProxy) attach() error {
	t.theirs.Close()
	f, err := recvFd(t.ours)
	if err != nil {
		return fmt.Errorf("receive pty master: %w", err)
	}
	master, err := console.ConsoleFromFile(f)
	if err != nil {
		return err
	}
	t.master = master
	if c, err := console.ConsoleFromFile(os.Stdin); err == nil {
		t.current = c
		t.current.SetRaw()
		t.resize()
	}
	go io.Copy(master, os.Stdin)
	t.outDone = make(chan struct{})
	go func() {
		io.Copy(os.Stdout, master)
		close(t.outDone)
	}()
	return nil
}

func (t *ttyProxy) resize() {
	if t.current == nil || t.master == nil {
		return
	}
	if ws, err := t.current.Size(); err == nil {
		t.master.Resize(ws)
	}
}

// drain waits briefly for the last output after the process exits.
func (t *ttyProxy) drain() {
	if t.outDone == nil {
		return
	}
	select {
	case <-t.outDone:
	case <-time.After(200 * time.Millisecond):
	}
}

func (t *ttyProxy) close() {
	if t.current != nil {
		t.current.Reset()
	}
	if t.master != nil {
		t.master.Close()
	}
	t.ours.Close()
	t.theirs.Close()
}

// recvFd reads one SCM_RIGHTS fd from a unix socket.
func recvFd(sock *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), name, oob, 0)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, errors.New("no file descriptor received")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("bad file descriptor message: %v", err)
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}

func (g *globals) execCmd() *cobra.Command {
	var (
		consoleSocket, cwd, user, processPath, pidFile, label, apparmor string
		env, caps, gids                                                 []string
		tty, detach, noNewPrivs, ignorePaused                           bool
		preserveFds                                                     int
	)
	cmd := &cobra.Command{
		Use:   "exec [flags] <container-id> [command [args...]]",
		Short: "Run a process in a running container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			var p *specs.Process
			if processPath != "" {
				b, err := os.ReadFile(processPath)
				if err != nil {
					return err
				}
				p = &specs.Process{}
				if err := json.Unmarshal(b, p); err != nil {
					return fmt.Errorf("bad process file %s: %w", processPath, err)
				}
			} else {
				if len(args) < 2 {
					return errors.New("exec: a command is required (or --process)")
				}
				spec, err := c.Spec()
				if err != nil {
					return err
				}
				if spec.Process == nil {
					return errors.New("exec: the container's config has no process to start from: use --process")
				}
				// A copy: the container's own process stays as created.
				pc := *spec.Process
				p = &pc
				p.Env = slices.Clone(p.Env)
				p.User.AdditionalGids = slices.Clone(p.User.AdditionalGids)
				if p.Capabilities != nil {
					cc := *p.Capabilities
					cc.Bounding, cc.Effective, cc.Permitted = slices.Clone(cc.Bounding), slices.Clone(cc.Effective), slices.Clone(cc.Permitted)
					p.Capabilities = &cc
				}
				p.Args = args[1:]
				p.Terminal = tty
				p.ConsoleSize = nil
				if cwd != "" {
					p.Cwd = cwd
				}
				p.Env = append(p.Env, env...)
				if user != "" {
					uid, gid, err := parseUser(user)
					if err != nil {
						return err
					}
					p.User.UID, p.User.GID = uid, gid
				}
				for _, g := range gids {
					n, err := strconv.ParseUint(g, 10, 32)
					if err != nil {
						return fmt.Errorf("invalid additional gid %q", g)
					}
					p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
				}
				if len(caps) > 0 && p.Capabilities != nil {
					for _, cp := range caps {
						p.Capabilities.Bounding = append(p.Capabilities.Bounding, cp)
						p.Capabilities.Effective = append(p.Capabilities.Effective, cp)
						p.Capabilities.Permitted = append(p.Capabilities.Permitted, cp)
					}
				}
				if noNewPrivs {
					p.NoNewPrivileges = true
				}
				if label != "" {
					p.SelinuxLabel = label
				}
				if apparmor != "" {
					p.ApparmorProfile = apparmor
				}
			}
			o := runtime.ExecOpts{
				Process: p, ConsoleSocket: consoleSocket, PidFile: pidFile, PreserveFds: preserveFds,
				Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
			}
			var term *ttyProxy
			if p.Terminal && consoleSocket == "" {
				if detach {
					return errors.New("cannot exec detached with a terminal without --console-socket")
				}
				if term, err = newTTYProxy(); err != nil {
					return err
				}
				defer term.close()
				o.ConsoleConn = term.theirs
			}
			sigc := make(chan os.Signal, 64)
			if !detach {
				signal.Notify(sigc, forwarded...)
			}
			_ = ignorePaused
			proc, err := c.Exec(o)
			if err != nil {
				return err
			}
			if term != nil {
				if err := term.attach(); err != nil {
					return err
				}
			}
			if detach {
				return nil
			}
			wait := func() (*os.ProcessState, error) {
				err := proc.Wait()
				return proc.ProcessState, err
			}
			if status := waitForwarding(wait, proc.Process.Pid, sigc, term); status != 0 {
				return exitError(status)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.StringVar(&consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	fl.StringVar(&cwd, "cwd", "", "working directory in the container")
	fl.StringArrayVarP(&env, "env", "e", nil, "set an environment variable (KEY=value)")
	fl.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.StringVarP(&user, "user", "u", "", "uid[:gid]")
	fl.StringArrayVarP(&gids, "additional-gids", "g", nil, "additional gids")
	fl.StringVarP(&processPath, "process", "p", "", "path to a process.json")
	fl.BoolVarP(&detach, "detach", "d", false, "do not wait for the process")
	fl.StringVar(&pidFile, "pid-file", "", "file to write the process's pid to")
	fl.StringVar(&label, "process-label", "", "SELinux label (not supported by this kernel)")
	fl.StringVar(&apparmor, "apparmor", "", "AppArmor profile (not supported by this kernel)")
	fl.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
	fl.StringArrayVarP(&caps, "cap", "c", nil, "add a capability")
	fl.IntVar(&preserveFds, "preserve-fds", 0, "pass this many fds after stdio to the process")
	fl.BoolVar(&ignorePaused, "ignore-paused", false, "ignored")
	return cmd
}

func parseUser(s string) (uint32, uint32, error) {
	u, gs, _ := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid --user %q: want uid[:gid]", s)
	}
	gid := uint64(0)
	if gs != "" {
		if gid, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("invalid --user %q: want uid[:gid]", s)
		}
	}
	return uint32(uid), uint32(gid), nil
}

func (g *globals) psCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [flags] <container-id> [ps options]",
		Short: "List the processes of a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			pids, err := c.Pids()
			if err != nil {
				return err
			}
			if format == "json" {
				if pids == nil {
					pids = []int{}
				}
				return json.NewEncoder(os.Stdout).Encode(pids)
			}
			if format != "table" {
				return fmt.Errorf("invalid --format %q: use table or json", format)
			}
			psArgs := args[1:]
			if len(psArgs) == 0 {
				psArgs = []string{"-ef"}
			}
			out, err := exec.Command("ps", psArgs...).Output()
			if err != nil {
				return fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
			}
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			pidCol := -1
			for i, h := range strings.Fields(lines[0]) {
				if h == "PID" {
					pidCol = i
				}
			}
			if pidCol < 0 {
				return errors.New("ps output has no PID column")
			}
			in := map[int]bool{}
			for _, p := range pids {
				in[p] = true
			}
			fmt.Println(lines[0])
			for _, l := range lines[1:] {
				f := strings.Fields(l)
				if len(f) > pidCol {
					if p, err := strconv.Atoi(f[pidCol]); err == nil && in[p] {
						fmt.Println(l)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}

func (g *globals) specCmd() *cobra.Command {
	var bundle string
	var rootless bool
	cmd := &cobra.Command{
		Use:   "spec",
		Short: "Write a default config.json into the bundle",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s := ocispec.Default()
			if rootless {
				ocispec.Rootless(s, uint32(os.Geteuid()), uint32(os.Getegid()))
			}
			path := filepath.Join(bundle, "config.json")
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("file %s exists: remove it first", path)
			}
			b, err := json.MarshalIndent(s, "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(path, append(b, '\n'), 0o666)
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "bundle directory")
	cmd.Flags().BoolVar(&rootless, "rootless", false, "a spec for an unprivileged user")
	return cmd
}

func (g *globals) featuresCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "features",
		Short: "Print what this runtime implements (JSON)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return printJSON(runtime.Features(seccomp.Actions(), seccomp.Operators(), seccomp.Archs(), seccomp.Flags()))
		},
	}
}

func (g *globals) eventsCmd() *cobra.Command {
	var stats bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "events [flags] <container-id>",
		Short: "Print container stats (and OOM notices) as JSON",
		Args:  exactArgs(1, "<container-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			emit := func() error {
				s, err := c.Stats()
				if err != nil {
					return err
				}
				return json.NewEncoder(os.Stdout).Encode(map[string]any{"type": "stats", "id": c.ID(), "data": s})
			}
			if stats {
				return emit()
			}
			if interval <= 0 {
				return errors.New("--interval must be positive")
			}
			sigc := make(chan os.Signal, 1)
			signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				if c.Status() == runtime.StatusStopped {
					return nil
				}
				if err := emit(); err != nil {
					return err
				}
				select {
				case <-t.C:
				case <-sigc:
					return nil
				}
			}
		},
	}
	cmd.Flags().BoolVar(&stats, "stats", false, "print stats once and exit")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "stats interval")
	return cmd
}
