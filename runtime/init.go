package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/berth/runtime/rootfs"
	"berth.dev/berth/runtime/seccomp"
)

// Init is the container init: the binary re-executed by create, run and exec
// as the container's first process (or the exec'd process) inside its
// namespaces. It never returns: it execs the user's process or exits 1.
func Init() {
	trace("init: main")
	goruntime.GOMAXPROCS(1)
	goruntime.LockOSThread()
	fd, err := strconv.Atoi(os.Getenv(envInitPipe))
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth init: not started by berth")
		os.Exit(1)
	}
	os.Unsetenv(envInitPipe)
	pipe := os.NewFile(uintptr(fd), "init-pipe")
	var cfg initConfig
	b, err := io.ReadAll(pipe)
	if err == nil && os.Getenv(envCInit) != "" {
		// Offered the C init, but no constructor took the offer (a binary
		// without runtime/nsenter): the magic is still ours to read.
		if bytes.HasPrefix(b, []byte(goMagic)) {
			b = b[len(goMagic):]
		} else {
			err = errors.New("the runtime sent a C init program, which this binary cannot run")
		}
	}
	if err == nil {
		err = unmarshalWire(b, &cfg)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth init: read config: %v\n", err)
		os.Exit(1)
	}
	pipe.Close()
	trace("init: config read")
	sync := os.NewFile(uintptr(cfg.Fds.Sync), "sync")
	in := &initProc{cfg: &cfg, spec: cfg.Spec.spec(cfg.Process), sync: sync}
	if cfg.Exec {
		err = in.execInit()
	} else {
		err = in.containerInit()
	}
	// Only failures get here.
	if in.fifo != nil {
		fmt.Fprintf(in.fifo, "%v", err)
	} else {
		writeSync(sync, syncMsg{Type: "error", Error: err.Error()})
	}
	os.Exit(1)
}

type initProc struct {
	cfg  *initConfig
	spec *specs.Spec // the spec as far as the init uses it (initSpec)
	sync *os.File
	fifo *os.File // exec.fifo opened for writing, once start has opened it
}

// containerInit sets up a new container and waits for start.
func (in *initProc) containerInit() error {
	spec := in.spec
	if spec == nil || spec.Linux == nil {
		return errors.New("init: no linux spec")
	}
	p := in.cfg.Process
	if err := in.joinCgroups(); err != nil {
		return err
	}
	trace("init: cgroups joined")
	if _, err := unix.Setsid(); err != nil && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("setsid: %w", err)
	}
	if in.cfg.NewUser {
		// Become the namespace's root so mounts and hostname are allowed.
		if err := unix.Setresgid(0, 0, 0); err != nil {
			return fmt.Errorf("setgid 0 in user namespace: %w", err)
		}
		if err := unix.Setresuid(0, 0, 0); err != nil {
			return fmt.Errorf("setuid 0 in user namespace: %w", err)
		}
	}
	if spec.Hostname != "" {
		if !in.cfg.NewUTS {
			return errors.New("hostname set without a uts namespace")
		}
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	if spec.Domainname != "" {
		if !in.cfg.NewUTS {
			return errors.New("domainname set without a uts namespace")
		}
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("set domainname: %w", err)
		}
	}
	hasMntNS := false
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.MountNamespace {
			hasMntNS = true
		}
	}
	opts := rootfs.Options{NoPivot: in.cfg.NoPivot, InUserNS: in.cfg.NewUser, HostMountNS: !hasMntNS}
	if err := rootfs.Prepare(spec, opts); err != nil {
		return fmt.Errorf("prepare rootfs: %w", err)
	}
	trace("init: rootfs prepared")
	// prestart and createRuntime hooks run in the runtime's namespace: the
	// parent runs them, and sets the limits, while we wait.
	if !in.cfg.NoHooksPhase {
		if err := writeSync(in.sync, syncMsg{Type: "hooks"}); err != nil {
			return err
		}
		m, err := readSync(in.sync)
		if err != nil {
			return fmt.Errorf("wait for hooks: %w", err)
		}
		if m.Type == "error" {
			return errors.New(m.Error)
		}
	}
	if spec.Hooks != nil {
		st := in.cfg.State
		st.Status = StatusCreated
		if err := runHooks("createContainer", spec.Hooks.CreateContainer, st, true); err != nil {
			return err
		}
	}
	var err error
	if hasMntNS {
		err = rootfs.Pivot(spec.Root.Path, in.cfg.NoPivot)
	} else {
		err = rootfs.Chroot(spec.Root.Path)
	}
	if err != nil {
		return fmt.Errorf("enter root: %w", err)
	}
	// Before Finalize: /proc/sys is usually among the read-only paths.
	if err := writeSysctls(spec.Linux.Sysctl); err != nil {
		return err
	}
	trace("init: pivoted")
	if err := rootfs.Finalize(spec); err != nil {
		return err
	}
	if p != nil {
		if err := in.setupProcess(p, true); err != nil {
			return err
		}
	}
	trace("init: process set up")
	if err := writeSync(in.sync, syncMsg{Type: "ready"}); err != nil {
		return err
	}
	in.sync.Close()
	// Block until start opens the fifo for reading.
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(in.cfg.Fds.Fifo), os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	trace("init: started")
	in.fifo = f
	unix.Close(in.cfg.Fds.Fifo)
	if spec.Hooks != nil {
		st := in.cfg.State
		st.Status = StatusCreated
		if err := runHooks("startContainer", spec.Hooks.StartContainer, st, true); err != nil {
			return err
		}
	}
	if p == nil {
		return errors.New("config.json has no process: there is nothing to start")
	}
	return in.finish(p)
}

// joinCgroups moves the init into the cgroups the parent made while it
// booted. Only this (main, locked) thread moves for v1: it is the one that
// forks hooks and execs the user's process, and the rest die at exec.
func (in *initProc) joinCgroups() error {
	for _, dir := range in.cfg.CgroupTasks {
		if err := os.WriteFile(dir+"/tasks", []byte("0"), 0); err != nil {
			return fmt.Errorf("join cgroup %s: %w", dir, err)
		}
	}
	for _, dir := range in.cfg.CgroupProcs {
		if err := os.WriteFile(dir+"/cgroup.procs", []byte("0"), 0); err != nil {
			return fmt.Errorf("join cgroup %s: %w", dir, err)
		}
	}
	if in.cfg.UnshareCgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("create cgroup namespace: %w", err)
		}
	}
	return nil
}

// execInit runs a process inside a running container: the namespaces were
// joined before Go started (nsenter) or inherited from the parent.
func (in *initProc) execInit() error {
	p := in.cfg.Process
	if _, err := unix.Setsid(); err != nil && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := in.setupProcess(p, false); err != nil {
		return err
	}
	return in.finish(p)
}

// setupProcess does the process setup that can fail early: console, rlimits,
// oom score, keyring, cwd, and the executable's lookup.
func (in *initProc) setupProcess(p *specs.Process, first bool) error {
	if p.ApparmorProfile != "" {
		return errors.New("apparmor profile requested but AppArmor is not supported by this kernel")
	}
	if p.SelinuxLabel != "" {
		return errors.New("selinux label requested but SELinux is not supported by this kernel")
	}
	if p.Terminal {
		if err := in.setupConsole(p, first); err != nil {
			return err
		}
	}
	for _, rl := range p.Rlimits {
		if err := setRlimit(rl); err != nil {
			return err
		}
	}
	if p.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("set oom_score_adj %d (lowering it needs CAP_SYS_RESOURCE): %w", *p.OOMScoreAdj, err)
		}
	}
	if first && !in.cfg.NoNewKeyring {
		name := "_ses." + in.cfg.ID
		if _, err := unix.KeyctlJoinSessionKeyring(name); err != nil && !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("join session keyring: %w", err)
		}
	}
	if p.Cwd != "" {
		if err := os.Chdir(p.Cwd); err != nil {
			// The target user may be the only one who can enter it: retry after switching.
			if !errors.Is(err, os.ErrPermission) {
				return fmt.Errorf("chdir to cwd %q set in config.json failed: %w", p.Cwd, err)
			}
		}
	}
	if len(p.Args) == 0 {
		return errors.New("process args must not be empty")
	}
	// The executable is looked up at start: a hook or the caller may still
	// put it in place between create and start.
	return nil
}

// finish drops privileges and execs the user's process.
func (in *initProc) finish(p *specs.Process) error {
	var filter *seccomp.Filter
	if len(in.cfg.Seccomp) > 0 {
		f, err := seccomp.FromBytes(in.cfg.Seccomp)
		if err != nil {
			return fmt.Errorf("seccomp: %w", err)
		}
		filter = f
	}
	// Without no_new_privs the filter needs CAP_SYS_ADMIN: load it while we still have it.
	if filter != nil && !p.NoNewPrivileges {
		if err := in.loadSeccomp(filter); err != nil {
			return err
		}
		filter = nil
	}
	if err := setUserAndCaps(p); err != nil {
		return err
	}
	if p.Cwd != "" {
		if err := os.Chdir(p.Cwd); err != nil {
			return fmt.Errorf("chdir to cwd %q set in config.json failed: %w", p.Cwd, err)
		}
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	if filter != nil {
		if err := in.loadSeccomp(filter); err != nil {
			return err
		}
	}
	if err := closeExtraFds(3 + in.cfg.Fds.Preserve); err != nil {
		return err
	}
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return err
	}
	env := p.Env
	if env == nil {
		env = []string{}
	}
	if !hasEnv(env, "HOME") {
		env = append(env, "HOME="+homeDir(int(p.User.UID)))
	}
	// Every signal at its default action in the user's process, whatever
	// the init's parents ignored (a shim ignores SIGTERM, SIGHUP, SIGINT,
	// SIGPIPE; execve keeps ignored signals, and a non-interactive shell
	// cannot trap one ignored when it started): signals Go handles are
	// reset by execve, so Go handles them all from here on.
	signal.Notify(make(chan os.Signal, 1))
	trace("init: exec")
	err = unix.Exec(path, p.Args, env)
	return fmt.Errorf("exec %q: %w", p.Args[0], err)
}

func (in *initProc) loadSeccomp(f *seccomp.Filter) error {
	fd, err := f.Load()
	if err != nil {
		return fmt.Errorf("load seccomp filter: %w", err)
	}
	if fd >= 0 {
		defer unix.Close(fd)
		sp := in.spec
		if sp == nil || sp.Linux == nil || sp.Linux.Seccomp == nil || sp.Linux.Seccomp.ListenerPath == "" {
			return errors.New("seccomp notify action requires listenerPath")
		}
		st := in.cfg.State
		st.Pid = in.cfg.HostPid
		if err := seccomp.SendListener(sp.Linux.Seccomp.ListenerPath, fd, sp.Linux.Seccomp.ListenerMetadata, st); err != nil {
			return fmt.Errorf("send seccomp listener: %w", err)
		}
	}
	return nil
}

// closeExtraFds marks every fd from min up close-on-exec, so the user's
// process gets only its stdio and the fds it was meant to keep.
func closeExtraFds(min int) error {
	// One syscall since Linux 5.11; /proc/self/fd before that.
	if err := unix.CloseRange(uint(min), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < min {
			continue
		}
		unix.CloseOnExec(fd)
	}
	return nil
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}

// homeDir looks uid up in the container's /etc/passwd.
func homeDir(uid int) string {
	b, err := os.ReadFile("/etc/passwd")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 6 && f[2] == strconv.Itoa(uid) {
				return f[5]
			}
		}
	}
	return "/"
}

// lookPath finds file in the PATH of the process's environment (not ours).
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		if err := isExecutable(file); err != nil {
			return "", fmt.Errorf("exec: %q: %w", file, err)
		}
		return file, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			path = kv[5:]
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: %w", file, exec.ErrNotFound)
}

func isExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return syscall.EISDIR
	}
	if fi.Mode()&0o111 == 0 {
		return os.ErrPermission
	}
	return nil
}

// writeSysctls writes spec sysctls through the container's /proc/sys.
func writeSysctls(sysctls map[string]string) error {
	for k, v := range sysctls {
		if strings.Contains(k, "..") || strings.HasPrefix(k, "/") {
			return fmt.Errorf("invalid sysctl %q", k)
		}
		p := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return fmt.Errorf("set sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}
