package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/runtime/cgroups"
	"berth.dev/berth/runtime/seccomp"
)

// CreateOpts are the options of create and run.
type CreateOpts struct {
	Bundle        string
	ConsoleSocket string // unix socket that receives the pty master
	// ConsoleConn, instead of ConsoleSocket, is a connected socket that
	// receives the pty master (run in the foreground uses a socketpair).
	ConsoleConn  *os.File
	PidFile      string
	NoPivot      bool
	NoNewKeyring bool
	PreserveFds  int // fds 3..3+n-1 go to the container's process
	// Spec, when set, is bundle/config.json already read by the caller.
	Spec *specs.Spec
	// File, when Spec is not set, is bundle/config.json already read by
	// the caller (ReadSpec).
	File *SpecFile
	// Spare, when set, is a spare init (NewSpare) to adopt if it fits;
	// Create discards it otherwise.
	Spare  *Spare
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Run is for a start that follows the create at once (run): the exec
	// fifo is opened as soon as it exists, so the init goes on to the
	// user's process once it is ready instead of waiting for Start, and
	// Created.Start only waits for the exec (or its error).
	Run bool
}

// validate checks what must hold before anything is created.
func validate(s *specs.Spec) error {
	if s.Version == "" {
		return errdefs.Invalid("config.json: ociVersion is required")
	}
	if s.Root == nil || s.Root.Path == "" {
		return errdefs.Invalid("config.json: root.path is required")
	}
	if s.Linux == nil {
		return errdefs.Invalid("config.json: linux section is required on linux")
	}
	// process is optional until start (the spec: start fails without it).
	if p := s.Process; p != nil {
		if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
			return errdefs.Invalid("config.json: process.cwd must be an absolute path, got %q", p.Cwd)
		}
		if err := checkRlimits(p.Rlimits); err != nil {
			return errdefs.Invalid("config.json: %v", err)
		}
		if err := checkCaps(p); err != nil {
			return errdefs.Invalid("config.json: %v", err)
		}
	}
	if err := validateEarly(earlyOf(s)); err != nil {
		return err
	}
	if (s.Hostname != "" || s.Domainname != "") && !hasNS(s, specs.UTSNamespace) {
		return errdefs.Invalid("config.json: hostname and domainname need a uts namespace")
	}
	return nil
}

// validateEarly checks what forking the init relies on.
func validateEarly(e earlySpec) error {
	if e.Linux == nil {
		return errdefs.Invalid("config.json: linux section is required on linux")
	}
	l := e.linux()
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range l.Namespaces {
		if _, ok := nsFlag[ns.Type]; !ok {
			return errdefs.Invalid("config.json: unknown namespace type %q", ns.Type)
		}
		if seen[ns.Type] {
			return errdefs.Invalid("config.json: namespace %q listed twice", ns.Type)
		}
		seen[ns.Type] = true
	}
	if (len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0) && !seen[specs.UserNamespace] {
		return errdefs.Invalid("config.json: uid/gid mappings need a user namespace")
	}
	return nil
}

func hasNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

func hasNewNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}

// Created is a container whose init waits for start, and the init's process
// (run waits on it): Cmd when this call forked it, else (an adopted spare)
// Process alone.
type Created struct {
	*Container
	Cmd     *exec.Cmd
	Process *os.Process
	// run is the exec fifo's read end and the init's pidfd, opened at
	// create for CreateOpts.Run.
	run *runRelease
}

type runRelease struct {
	fifo      *os.File // the fifo's fd, for Read (not Fd, which would make it blocking)
	fd, pidfd int
}

func (r *runRelease) close() {
	if r != nil {
		r.fifo.Close()
		if r.pidfd >= 0 {
			unix.Close(r.pidfd)
		}
	}
}

// Start starts the container: for CreateOpts.Run, whose init went on
// once ready, it waits for the exec; else as Container.Start.
func (c *Created) Start() error {
	if c.run == nil {
		return c.Container.Start()
	}
	defer c.run.close()
	err := c.released(c.run.fifo, c.run.fd, c.run.pidfd)
	c.run = nil
	return err
}

// Wait waits for the init to exit.
func (c *Created) Wait() (*os.ProcessState, error) {
	if c.Cmd != nil {
		err := c.Cmd.Wait()
		return c.Cmd.ProcessState, err
	}
	return c.Process.Wait()
}

// Create makes container id from the bundle and leaves its init waiting for
// start, as the spec's create operation.
//
// The init is forked as soon as what its birth needs is known (earlySpec):
// the spec is decoded and checked, the state written and the seccomp filter
// made while it boots the Go runtime; a spec found invalid then kills it.
func (r *Runtime) Create(id string, o CreateOpts) (*Created, error) {
	c, err := r.create(id, o)
	if errors.Is(err, errSpareUnfit) {
		trace("spare unfit: create again")
		o.Spare = nil
		return r.create(id, o)
	}
	return c, err
}

func (r *Runtime) create(id string, o CreateOpts) (_ *Created, retErr error) {
	defer o.Spare.Discard() // when not adopted
	if err := checkID(id); err != nil {
		return nil, err
	}
	trace("create")
	warmPidfd()
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	spec, file := o.Spec, o.File
	var early earlySpec
	if spec != nil {
		early = earlyOf(spec)
	} else {
		if file == nil {
			if file, err = ReadSpec(bundle); err != nil {
				return nil, err
			}
		}
		early = file.early
	}
	trace("spec read")
	if err := validateEarly(early); err != nil {
		return nil, err
	}
	el := early.linux()
	newUser := early.newNS(specs.UserNamespace)
	// On v1 the C init makes and joins its cgroups itself from a prelude
	// (cgroupPrelude), else they are made while the init starts (see
	// startCgroups below) and it joins them once it has its config. On v2
	// they come first: the init is cloned into its cgroup.
	// The init creates the spec's device nodes, which the spec's device
	// rules may deny: then the cgroup starts open and limits are set once
	// the rootfs is made, before any of the user's code runs (as runc
	// does). Without such nodes (the default devices are always allowed)
	// the final device policy goes in now, off the path of the start.
	devicesEarly := len(el.Devices) == 0
	policy := []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	if devicesEarly {
		policy = el.devicePolicy()
	}
	var cg cgroups.Manager
	cgc := make(chan error, 1)
	cgWork := func() {
		m, err := cgroups.New(el.CgroupsPath, id, &specs.LinuxResources{Devices: policy})
		if err != nil {
			cgc <- errdefs.Mark(errdefs.KindOf(err), fmt.Errorf("cgroups: %w", err))
			return
		}
		cg = m
		trace("cgroups resolved (goroutine)")
		if err := m.Apply(-1); err != nil {
			cgc <- fmt.Errorf("create cgroup: %w", err)
			return
		}
		trace("cgroups made (goroutine)")
		cgc <- nil
	}
	// startCgroups starts making the cgroups, on a goroutine (async) or
	// in line. A goroutine runs beside this one only while the fork holds
	// this thread (a vfork, until the child's exec): the other P's
	// thread is not woken sooner. So the cgroups are made on a goroutine
	// started just before a fork with more than one P, and otherwise (one
	// P, as in a shim; an adopted spare init, no fork) in line once the
	// init is on its way.
	cgStarted := false
	startCgroups := func(async bool) {
		if cgStarted {
			return
		}
		cgStarted = true
		if async {
			go cgWork()
		} else {
			cgWork()
		}
	}
	waitCgroup := func() error {
		startCgroups(false)
		if cgc == nil {
			return nil
		}
		err := <-cgc
		cgc = nil
		return err
	}
	dir := r.dir(id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, errdefs.Conflict("container %q already exists", id)
		}
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	trace("state dir made")
	var cmd *exec.Cmd
	var proc *os.Process
	// spare is the adopted spare init, whose process handle may still be
	// on its way (Spare.process): proc is taken from it when needed.
	var spare *Spare
	var c *Container
	defer func() {
		if retErr == nil {
			return
		}
		if cgStarted {
			waitCgroup()
		}
		if proc == nil && spare != nil {
			proc = spare.process()
		}
		if proc != nil {
			proc.Kill()
			if cmd != nil {
				cmd.Wait()
			} else {
				proc.Wait()
			}
		}
		if cg != nil {
			destroyCgroup(cg, early.newNS(specs.PIDNamespace))
		}
		if c != nil {
			c.unmountShared()
		}
		os.RemoveAll(dir)
	}()
	// Only what the init needs at its birth comes before it: the exec fifo,
	// the binary, its files (and on v2 its cgroup).
	if err := unix.Mkfifo(filepath.Join(dir, execFifoCreating), 0o600); err != nil {
		return nil, fmt.Errorf("create exec fifo: %w", err)
	}
	trace("fifo made")
	var run *runRelease
	if o.Run {
		// Non-blocking: a blocking open would wait for the init's.
		fd, err := unix.Open(filepath.Join(dir, execFifoCreating), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open exec fifo: %w", err)
		}
		run = &runRelease{fifo: os.NewFile(uintptr(fd), execFifo), fd: fd, pidfd: -1}
		defer func() {
			if retErr != nil {
				run.close()
			}
		}()
	}
	// The init opens it as the container's root, which a user namespace may map elsewhere.
	if newUser {
		uid, gid := hostID(el.UIDMappings, 0), hostID(el.GIDMappings, 0)
		if err := os.Chown(filepath.Join(dir, execFifoCreating), int(uid), int(gid)); err != nil {
			return nil, fmt.Errorf("chown exec fifo: %w", err)
		}
	}
	exe, err := r.initBinary()
	if err != nil {
		return nil, fmt.Errorf("protect init binary: %w", err)
	}
	trace("init binary checked")
	fifo, err := os.OpenFile(filepath.Join(dir, execFifoCreating), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer fifo.Close()
	cfg := &initConfig{ID: id, NoPivot: o.NoPivot, NoNewKeyring: o.NoNewKeyring, NewUser: newUser}
	// On a v2 host the init is cloned straight into its cgroup, which must
	// exist first. On v1 the init starts at once and boots while the cgroups
	// are made, then moves its own main thread in (initConfig.CgroupTasks).
	// In a new user namespace it could not: the host's cgroup files are not
	// its to write.
	lateCgroups := cgroups.HostMode() != cgroups.ModeV2 && !newUser
	cgfd, cgTasks := -1, []string(nil)
	if !lateCgroups {
		if err := waitCgroup(); err != nil {
			return nil, err
		}
		trace("cgroup created")
		if cgfd, cgTasks, err = cgroupPlacement(cg); err != nil {
			return nil, err
		}
		if cgfd >= 0 {
			defer unix.Close(cgfd)
		}
	}
	files, err := newInitFiles(&cfg.Fds, o.PreserveFds, fifo, early.Process != nil && early.Process.Terminal, o.ConsoleSocket, o.ConsoleConn)
	if err != nil {
		return nil, err
	}
	defer files.close()
	sp := &spawn{
		exe: exe, args: r.initArgs(), ns: el.Namespaces,
		uidMap: el.UIDMappings, gidMap: el.GIDMappings,
		cgroupFD: cgfd, cgroupTasks: cgTasks, lateCgroupNS: lateCgroups, extra: files.extra,
		stdin: o.Stdin, stdout: o.Stdout, stderr: o.Stderr,
		cinit: cinitEarly(early, early.Process != nil && early.Process.Terminal, o.NoPivot),
	}
	// The C init makes and joins its cgroups first thing, from a prelude
	// written to its pipe once it is on its way (it starts or unshares
	// meanwhile); the Go init, should it come to that, joins them again.
	prelude := lateCgroups && sp.cinit
	adopted := sp.fits(o.Spare, r.Root)
	if adopted {
		if err = sp.adopt(o.Spare); err != nil {
			// Gone (killed, or it could not make its namespaces): fork.
			trace("spare init unusable: " + err.Error())
			adopted = false
		} else {
			spare = o.Spare
			trace("init adopted")
		}
	}
	if !adopted {
		if !prelude && goruntime.GOMAXPROCS(0) > 1 {
			startCgroups(true)
		}
		if cmd, err = sp.start(); err != nil {
			return nil, err
		}
		proc = cmd.Process
		trace("init started")
	}
	files.started()
	if prelude {
		if p := newPrelude(el.CgroupsPath, id, policy); p.m != nil {
			if err := files.sendPrelude(cgroupPrelude(cfg.Fds.Sync, p.steps, p.dirs)); err != nil {
				return nil, files.initError(fmt.Errorf("send the init its cgroups: %w", err))
			}
			cg, cgStarted, cgc, cfg.joined = p.m, true, nil, true
			trace("cgroups sent")
		}
	}
	startCgroups(false)
	var pid int
	if spare != nil {
		pid = spare.pid
	} else {
		pid = proc.Pid
	}
	if run != nil {
		// Before the init can exec and exit (see Container.Start).
		if run.pidfd, err = unix.PidfdOpen(pid, 0); err != nil {
			return nil, fmt.Errorf("open init process: %w", err)
		}
		// Before the config too: once ready the init goes on to the
		// user's process, and a run that cannot write its pid file must
		// fail before that, as it does without Run.
		if o.PidFile != "" {
			if err := writePidFile(o.PidFile, pid); err != nil {
				return nil, err
			}
			defer func() {
				if retErr != nil {
					os.Remove(o.PidFile)
				}
			}()
		}
	}
	if spec == nil {
		if spec, err = file.Decode(); err != nil {
			return nil, err
		}
	}
	trace("spec decoded")
	if err := validate(spec); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(spec.Root.Path) {
		spec.Root.Path = filepath.Join(bundle, spec.Root.Path)
	}
	if fi, err := os.Stat(spec.Root.Path); err != nil || !fi.IsDir() {
		return nil, errdefs.Invalid("root.path %s is not a directory", spec.Root.Path)
	}
	c = &Container{rt: r, Saved: Saved{
		ID: id, Bundle: bundle, Rootfs: spec.Root.Path, Created: time.Now().UTC(),
		Owner: currentUser(), Annotations: spec.Annotations, Status: StatusCreating,
		HostMountNS: !hasNS(spec, specs.MountNamespace),
	}, spec: spec}
	if c.Saved.HostMountNS {
		if c.Saved.RootMountsBefore, err = mountsAt(spec.Root.Path); err != nil {
			return nil, err
		}
	}
	if !lateCgroups {
		cgState := cg.State()
		c.Saved.Cgroup = &cgState
	}
	cfg.Spec, cfg.Process, cfg.NewUTS = toInitSpec(spec), spec.Process, hasNS(spec, specs.UTSNamespace)
	c.Saved.Pid = pid
	c.Saved.StartTime, _, _ = procStartTime(pid)
	c.Saved.Namespaces = make([]specs.LinuxNamespace, 0, len(spec.Linux.Namespaces))
	for _, ns := range spec.Linux.Namespaces {
		c.Saved.Namespaces = append(c.Saved.Namespaces, specs.LinuxNamespace{
			Type: ns.Type, Path: fmt.Sprintf("/proc/%d/ns/%s", pid, procNsName[ns.Type]),
		})
	}
	if cfg.Seccomp, err = r.seccompFilter(spec); err != nil {
		return nil, err
	}
	trace("seccomp compiled")
	limits := specs.LinuxResources{}
	if spec.Linux.Resources != nil {
		limits = *spec.Linux.Resources
	}
	if limits.Devices == nil {
		limits.Devices = []specs.LinuxDeviceCgroup{} // deny all but the defaults
	}
	finalPolicy := limits.Devices
	if devicesEarly {
		limits.Devices = nil // in place since the cgroup was made
	}
	//lint:ignore SA1019 deprecated, but the spec still has runtimes run prestart hooks
	cfg.NoHooksPhase = reflect.ValueOf(limits).IsZero() && (spec.Hooks == nil || len(spec.Hooks.Prestart)+len(spec.Hooks.CreateRuntime) == 0)
	// The C init's program is made while the cgroups are (its joins last).
	var prog []byte
	if sp.cinit {
		var why error
		if prog, why = compileCInit(cfg, spec); why != nil {
			trace(why.Error())
		}
		trace("C init compiled")
	}
	if adopted && prog == nil {
		return nil, errSpareUnfit
	}
	if lateCgroups {
		if err := waitCgroup(); err != nil {
			return nil, err
		}
		cgState := cg.State()
		c.Saved.Cgroup = &cgState
		trace("cgroup created")
		for k, dir := range cg.Paths() {
			if k != "" {
				cfg.CgroupTasks = append(cfg.CgroupTasks, dir)
			} else if needsUnified(spec.Linux.Resources) {
				// The v2 half of a hybrid host only matters for its limits;
				// joining it moves the whole process (the slow lock).
				cfg.CgroupProcs = append(cfg.CgroupProcs, dir)
			}
		}
		cfg.UnshareCgroupNS = hasNewNS(spec, specs.CgroupNamespace)
	}
	cfg.HostPid = pid
	cfg.State = c.State()
	cfg.State.Pid = pid
	// Hooks of the create phase see the state start will find: created.
	cfg.State.Status = StatusCreated
	if prog != nil {
		prog = linkCInit(cfg, prog)
	}
	if err := files.sendConfig(cfg, sp.cinit, prog); err != nil {
		return nil, files.initError(fmt.Errorf("send config to init: %w", err))
	}
	trace("config sent")
	// The one write of the state file, after the config (the init may be
	// waiting for it): it records the device policy the hooks phase
	// installs (before any of the user's code runs, or create fails and
	// removes it all), not the open one the cgroup may have now.
	if c.Saved.Spec, err = savedSpec(spec, file); err != nil {
		return nil, err
	}
	c.Saved.Cgroup.Devices = finalPolicy
	if err := c.save(); err != nil {
		return nil, err
	}
	trace("state written")
	for {
		m, err := readSync(files.sync)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errInitExited
			}
			return nil, fmt.Errorf("wait for container init: %w", err)
		}
		switch m.Type {
		case "error":
			return nil, errors.New(m.Error)
		case "hooks":
			trace("init: rootfs ready")
			reply := syncMsg{Type: "hooks-done"}
			if err := c.hooksPhase(cg, &limits, spec, cfg.State); err != nil {
				reply = syncMsg{Type: "error", Error: err.Error()}
			}
			if err := writeSync(files.sync, reply); err != nil {
				return nil, err
			}
			if reply.Type == "error" {
				return nil, errors.New(reply.Error)
			}
			continue
		case "ready":
		default:
			return nil, fmt.Errorf("unexpected message %q from container init", m.Type)
		}
		break
	}
	trace("init: ready")
	// The state file was written once, when the init had its config; the
	// fifo's name says created now.
	if err := os.Rename(filepath.Join(dir, execFifoCreating), filepath.Join(dir, execFifo)); err != nil {
		return nil, fmt.Errorf("mark created: %w", err)
	}
	c.Saved.Status = StatusCreated
	if o.PidFile != "" && run == nil {
		if err := writePidFile(o.PidFile, pid); err != nil {
			return nil, err
		}
	}
	if spare != nil {
		proc = spare.process()
	}
	return &Created{Container: c, Cmd: cmd, Process: proc, run: run}, nil
}

// preludeSteps are a C init's cgroup prelude: the manager, the steps that
// make its v1 cgroups and the dirs it joins; m is nil when the cgroups
// cannot be made that way (then they are made as for the Go init, which
// reports any error).
type preludeSteps struct {
	m     cgroups.Manager
	steps []cgroups.Step
	dirs  []string
}

func newPrelude(cgroupsPath, id string, policy []specs.LinuxDeviceCgroup) preludeSteps {
	m, err := cgroups.New(cgroupsPath, id, &specs.LinuxResources{Devices: policy})
	if err != nil {
		return preludeSteps{}
	}
	steps, ok := m.CreateSteps()
	if !ok {
		return preludeSteps{}
	}
	var dirs []string
	for k, dir := range m.Paths() {
		if k != "" {
			dirs = append(dirs, dir)
		}
	}
	return preludeSteps{m: m, steps: steps, dirs: dirs}
}

// savedSpec is the spec as the state file keeps it: config.json's own bytes
// when create read them (json.Marshal of a specs.Spec builds encoders for
// every type the spec reaches, 0.3 ms of a start), else the spec encoded.
// A relative root.path in them is made absolute again by Container.Spec.
func savedSpec(spec *specs.Spec, file *SpecFile) (json.RawMessage, error) {
	if file != nil {
		return file.raw, nil
	}
	return json.Marshal(spec)
}

// warmPidfd has os run, on another thread, the check it makes before its
// first process start: that pidfds work, which forks and reaps a child
// (0.15 ms). Create forks the init after a few file operations that the
// check now overlaps.
func warmPidfd() {
	go func() {
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			p.Release()
		}
	}()
}

// seccompFilter compiles the spec's seccomp profile (cached on disk under
// the root), or returns nil without one.
func (r *Runtime) seccompFilter(spec *specs.Spec) ([]byte, error) {
	if spec.Linux == nil || spec.Linux.Seccomp == nil {
		return nil, nil
	}
	f, err := seccomp.Compile(spec.Linux.Seccomp, filepath.Join(r.Root, ".seccomp-cache"))
	if err != nil {
		return nil, errdefs.Invalid("seccomp: %v", err)
	}
	return f.Bytes(), nil
}

// needsUnified reports limits that live in the cgroup2 half of a hybrid host.
func needsUnified(r *specs.LinuxResources) bool {
	return r != nil && (len(r.HugepageLimits) > 0 || len(r.Unified) > 0)
}

// hooksPhase runs when the init has made the rootfs: set the cgroup limits,
// then the prestart and createRuntime hooks, in the runtime's namespace.
func (c *Container) hooksPhase(cg cgroups.Manager, limits *specs.LinuxResources, spec *specs.Spec, st specs.State) error {
	// Nothing to set is common: no limits but the device policy, which
	// went in with the cgroup.
	if !reflect.ValueOf(*limits).IsZero() {
		if err := cg.Set(limits); err != nil {
			return fmt.Errorf("set cgroup limits: %w", err)
		}
	}
	trace("limits set")
	cgState := cg.State()
	c.Saved.Cgroup = &cgState
	if spec.Hooks == nil {
		return nil
	}
	//lint:ignore SA1019 deprecated, but the spec still has runtimes run prestart hooks
	if err := runHooks("prestart", spec.Hooks.Prestart, st, true); err != nil {
		return err
	}
	return runHooks("createRuntime", spec.Hooks.CreateRuntime, st, true)
}

func (r *Runtime) initArgs() []string {
	if len(r.InitArgs) > 0 {
		return append([]string{"berth"}, r.InitArgs...)
	}
	return []string{"berth", "init"}
}

// preservedFiles wraps our fds 3..3+n-1 for passing on.
func preservedFiles(n int) ([]*os.File, error) {
	out := make([]*os.File, 0, n+4)
	for i := 0; i < n; i++ {
		fd := 3 + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, errdefs.Invalid("--preserve-fds %d: fd %d is not open", n, fd)
		}
		out = append(out, os.NewFile(uintptr(fd), "preserved-"+strconv.Itoa(fd)))
	}
	return out, nil
}

// consoleConn returns the connection the init sends the pty master on.
func consoleConn(path string, conn *os.File) (*os.File, error) {
	if conn != nil {
		// The caller keeps its own; ours is closed after the start.
		fd, err := unix.FcntlInt(conn.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), "console"), nil
	}
	if path == "" {
		return nil, errdefs.Invalid("process.terminal is true: a console socket is required (--console-socket)")
	}
	return dialConsole(path)
}

func dialConsole(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect to console socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), "console-socket"), nil
}

// writePidFile writes pid atomically, as runc does, so readers never see it half written.
func writePidFile(path string, pid int) error {
	path, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return os.Rename(tmp, path)
}

// currentUser names the caller from /etc/passwd (no os/user: the binary is
// static and must not need NSS).
func currentUser() string {
	uid := strconv.Itoa(os.Getuid())
	if b, err := os.ReadFile("/etc/passwd"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Split(line, ":"); len(f) > 2 && f[2] == uid {
				return f[0]
			}
		}
	}
	return uid
}
