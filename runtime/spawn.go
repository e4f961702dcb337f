package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/runtime/cgroups"
	"berth.dev/berth/runtime/nsenter"
)

// initConfig is what the parent sends the init over its config pipe.
type initConfig struct {
	ID      string         `json:"id"`
	Spec    *initSpec      `json:"spec,omitempty"` // what the init uses of the spec, root made absolute
	Process *specs.Process `json:"process"`
	Exec    bool           `json:"exec,omitempty"` // an exec into a running container
	NoPivot bool           `json:"no_pivot,omitempty"`
	// NoNewKeyring keeps the caller's session keyring instead of a new one.
	NoNewKeyring bool `json:"no_new_keyring,omitempty"`
	// Seccomp is the compiled filter (seccomp.Filter.Bytes), nil for none.
	Seccomp []byte `json:"seccomp,omitempty"`
	// NewUTS says the init has a UTS namespace of its own (new or joined),
	// where it may set the hostname; NewUser that it is in a new user namespace.
	NewUTS  bool `json:"new_uts,omitempty"`
	NewUser bool `json:"new_user,omitempty"`
	// CgroupTasks are v1 cgroup dirs the init moves its main thread into
	// ("0" > tasks: no threadgroup lock) before anything else; the thread
	// that execs the user's process takes them along. CgroupProcs are
	// joined by the whole process. UnshareCgroupNS then makes the cgroup
	// namespace, rooted at the container's cgroups.
	CgroupTasks []string `json:"cgroup_tasks,omitempty"`
	// joined: the C init's prelude made and joined the CgroupTasks
	// (cgroupPrelude); the program need not.
	joined          bool
	CgroupProcs     []string `json:"cgroup_procs,omitempty"`
	UnshareCgroupNS bool     `json:"unshare_cgroupns,omitempty"`
	// NoHooksPhase: the parent has neither limits to set once the rootfs is
	// made nor prestart/createRuntime hooks, so the init does not stop for
	// them ("hooks" / "hooks-done").
	NoHooksPhase bool `json:"no_hooks_phase,omitempty"`
	// HostPid is the init's pid as the parent sees it, for hook state.
	HostPid int         `json:"host_pid"`
	State   specs.State `json:"state"`
	Fds     initFds     `json:"fds"`
}

// initFds are the descriptor numbers of the init's private files.
type initFds struct {
	Sync    int `json:"sync"`
	Fifo    int `json:"fifo,omitempty"`    // O_PATH fd of exec.fifo (create)
	Console int `json:"console,omitempty"` // connection to the console socket
	// Preserve is how many fds from 3 up the user process inherits.
	Preserve int `json:"preserve,omitempty"`
}

// syncMsg is one message on the sync socket (SOCK_SEQPACKET keeps boundaries).
type syncMsg struct {
	Type  string `json:"type"` // "hooks", "hooks-done", "ready", "error"
	Error string `json:"error,omitempty"`
}

const (
	envInitPipe = "_BERTH_INITPIPE"
	maxSyncMsg  = 1 << 16
)

func writeSync(f *os.File, m syncMsg) error {
	b, err := marshalWire(m)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return err
}

// syncBufs hold readSync's reads. A message may take maxSyncMsg bytes, and
// a buffer that size in readSync's frame grew the calling goroutine's
// stack to 256 KB, copied over at each doubling (the create's main path).
var syncBufs = sync.Pool{New: func() any { return new([maxSyncMsg]byte) }}

func readSync(f *os.File) (syncMsg, error) {
	b := syncBufs.Get().(*[maxSyncMsg]byte)
	defer syncBufs.Put(b)
	buf := b[:]
	n, err := f.Read(buf)
	if err != nil {
		return syncMsg{}, err
	}
	if n == 0 {
		return syncMsg{}, io.EOF
	}
	var m syncMsg
	if err := unmarshalWire(buf[:n], &m); err != nil {
		return syncMsg{}, fmt.Errorf("bad sync message: %w", err)
	}
	return m, nil
}

// nsFlag maps spec namespace types to clone flags.
var nsFlag = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// procNsName maps spec namespace types to their /proc/<pid>/ns/ names.
var procNsName = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace:     "pid",
	specs.NetworkNamespace: "net",
	specs.MountNamespace:   "mnt",
	specs.IPCNamespace:     "ipc",
	specs.UTSNamespace:     "uts",
	specs.UserNamespace:    "user",
	specs.CgroupNamespace:  "cgroup",
	specs.TimeNamespace:    "time",
}

// lateNSFlags are the new namespaces the init makes itself (see start).
const lateNSFlags = unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWNS

// childJoined are the namespaces only a single-threaded process can join: the
// init's C constructor (package nsenter) joins them.
func childJoined(t specs.LinuxNamespaceType) bool {
	return t == specs.MountNamespace || t == specs.UserNamespace || t == specs.TimeNamespace
}

// spawn describes one init process to start.
type spawn struct {
	exe    string
	args   []string
	ns     []specs.LinuxNamespace // new (no path) and joined (path) namespaces
	uidMap []specs.LinuxIDMapping
	gidMap []specs.LinuxIDMapping
	// The child is born in its cgroups: cgroupFD (cgroup2, -1 for none) by
	// CLONE_INTO_CGROUP, and the v1 dirs in cgroupTasks by moving the
	// forking thread there first (see start).
	cgroupFD    int
	cgroupTasks []string
	// lateCgroupNS leaves a new cgroup namespace to the init, which makes
	// it once it has joined its cgroups (initConfig.UnshareCgroupNS).
	lateCgroupNS bool
	// cinit offers the init's C constructor a program (cinit.go): the
	// config pipe then starts with a magic saying which init runs.
	cinit  bool
	extra  []*os.File
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// birth is how an init is born: its clone flags, the namespaces its
// forking thread joins, and what its C constructor reads from the
// environment (beyond GOMAXPROCS, GOGC and BERTH_TRACE).
type birth struct {
	cloneflags  uintptr
	threadJoins []specs.LinuxNamespace
	// late are the new namespaces the init's constructor makes itself
	// (nsenter.UnshareEnvVar, not in env).
	late uintptr
	env  []string
}

// birth works out how s's init is born. Namespaces with a path that a
// multi-threaded process may join are joined by the forking thread; the
// rest go to the child's C constructor.
func (s *spawn) birth() (birth, error) {
	var b birth
	var childJoins []specs.LinuxNamespace
	for _, ns := range s.ns {
		flag, ok := nsFlag[ns.Type]
		if !ok {
			return b, fmt.Errorf("unknown namespace type %q", ns.Type)
		}
		switch {
		case ns.Path == "" && ns.Type == specs.CgroupNamespace && s.lateCgroupNS:
		case ns.Path == "":
			b.cloneflags |= flag
		case childJoined(ns.Type):
			childJoins = append(childJoins, ns)
		default:
			b.threadJoins = append(b.threadJoins, ns)
		}
	}
	if s.cinit {
		b.env = append(b.env, envCInit+"=1")
	}
	if len(childJoins) > 0 {
		var parts []string
		// The user namespace goes last: once in it we may lack rights over the others.
		for _, want := range []specs.LinuxNamespaceType{specs.TimeNamespace, specs.MountNamespace, specs.UserNamespace} {
			for _, ns := range childJoins {
				if ns.Type == want {
					parts = append(parts, procNsName[ns.Type]+"="+ns.Path)
				}
			}
		}
		b.env = append(b.env, nsenter.EnvVar+"="+strings.Join(parts, ","))
	}
	// The new namespaces a process may make for itself are left to the
	// init's constructor (nsenter): made by clone they hold the parent in
	// the fork for most of its cost (a network namespace's above all),
	// made there they overlap with the parent's work until the config.
	// The pid (and time) namespace only takes effect for children, and a
	// new user namespace owns the others: those stay with clone.
	if late := b.cloneflags & lateNSFlags; late != 0 && b.cloneflags&unix.CLONE_NEWUSER == 0 {
		b.cloneflags &^= late
		b.late = late
	}
	b.env = append(b.env, envInitPipe+"="+strconv.Itoa(3+len(s.extra)-1))
	return b, nil
}

func unshareEnv(flags uintptr) string {
	return nsenter.UnshareEnvVar + "=" + strconv.FormatUint(uint64(flags), 10)
}

// start forks and execs the init, on a locked thread that dies afterwards
// when it must join namespaces or cgroups first, so the child inherits them.
func (s *spawn) start() (*exec.Cmd, error) {
	b, err := s.birth()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.exe, s.args[1:]...)
	cmd.Args = s.args
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.stdin, s.stdout, s.stderr
	cmd.ExtraFiles = s.extra
	cmd.Env = []string{"GOMAXPROCS=1", "GOGC=off"}
	if tracing {
		cmd.Env = append(cmd.Env, "BERTH_TRACE=1")
	}
	cmd.Env = append(cmd.Env, b.env...)
	if b.late != 0 {
		cmd.Env = append(cmd.Env, unshareEnv(b.late))
	}
	attr := &syscall.SysProcAttr{Cloneflags: b.cloneflags}
	threadJoins := b.threadJoins
	if attr.Cloneflags&unix.CLONE_NEWUSER != 0 {
		for _, m := range s.uidMap {
			attr.UidMappings = append(attr.UidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		for _, m := range s.gidMap {
			attr.GidMappings = append(attr.GidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		attr.GidMappingsEnableSetgroups = true
		// Exec as the namespace's root, or the init would lose its
		// capabilities at execve as an unmapped user.
		attr.Credential = &syscall.Credential{Uid: rootID(s.uidMap), Gid: rootID(s.gidMap)}
	}
	if s.cgroupFD >= 0 {
		attr.UseCgroupFD = true
		attr.CgroupFD = s.cgroupFD
	}
	cmd.SysProcAttr = attr

	// Nothing to change on the forking thread (the common case: new
	// namespaces only, v1 cgroups joined by the init): fork from here,
	// without a thread made for it and thrown away.
	if len(threadJoins) == 0 && len(s.cgroupTasks) == 0 {
		trace("forking")
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start container init: %w", err)
		}
		return cmd, nil
	}
	errc := make(chan error, 1)
	var thread, movedAfter bool
	go func() {
		// Never unlocked: after setns this thread must not run other goroutines,
		// and a goroutine that exits locked takes its thread with it.
		goruntime.LockOSThread()
		for _, ns := range threadJoins {
			if err := setnsPath(ns); err != nil {
				errc <- err
				return
			}
		}
		// cgroup v1 has no CLONE_INTO_CGROUP. Moving the child after fork
		// takes the global threadgroup lock, whose RCU grace period cost
		// milliseconds per hierarchy here; moving the current thread
		// ("0" into tasks) skips that lock, and the child inherits the
		// thread's cgroups. Never the main thread: Go keeps it when its
		// goroutine exits locked, and it would stay in the container's
		// cgroups (and freeze with them).
		if unix.Gettid() == unix.Getpid() {
			movedAfter = true
		} else {
			thread = true
		}
		for _, dir := range s.cgroupTasks {
			if !thread {
				break
			}
			if err := os.WriteFile(dir+"/tasks", []byte("0"), 0); err != nil {
				errc <- fmt.Errorf("enter cgroup %s: %w", dir, err)
				return
			}
		}
		trace("cgroups entered")
		errc <- cmd.Start()
	}()
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("start container init: %w", err)
	}
	if movedAfter {
		for _, dir := range s.cgroupTasks {
			if err := os.WriteFile(dir+"/cgroup.procs", []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				return nil, fmt.Errorf("move init into cgroup %s: %w", dir, err)
			}
		}
	}
	return cmd, nil
}

// cgroupPlacement says how a child is born into m's cgroups: an fd for
// CLONE_INTO_CGROUP (v2, or the v2 half of a hybrid host; the caller closes
// it) and the v1 dirs the forking thread enters.
func cgroupPlacement(m cgroups.Manager) (int, []string, error) {
	if fd := m.IntoCgroupFD(); fd >= 0 {
		return fd, nil, nil
	}
	fd := -1
	var tasks []string
	for k, dir := range m.Paths() {
		if k == "" {
			f, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return -1, nil, fmt.Errorf("open cgroup %s: %w", dir, err)
			}
			fd = f
			continue
		}
		tasks = append(tasks, dir)
	}
	return fd, tasks, nil
}

// hostID maps a container id to the host, or returns it unchanged.
func hostID(m []specs.LinuxIDMapping, id uint32) uint32 {
	for _, e := range m {
		if id >= e.ContainerID && id-e.ContainerID < e.Size {
			return e.HostID + id - e.ContainerID
		}
	}
	return id
}

// rootID is the lowest container-side id of a mapping: 0 when it maps root.
func rootID(m []specs.LinuxIDMapping) uint32 {
	if len(m) == 0 {
		return 0
	}
	low := m[0]
	for _, e := range m {
		if e.ContainerID < low.ContainerID {
			low = e
		}
	}
	return low.ContainerID
}

func setnsPath(ns specs.LinuxNamespace) error {
	fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s namespace %s: %w", ns.Type, ns.Path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, int(nsFlag[ns.Type])); err != nil {
		return fmt.Errorf("join %s namespace %s: %w", ns.Type, ns.Path, err)
	}
	return nil
}

// socketpair returns a connected SOCK_SEQPACKET pair: parent's end, child's end.
func socketpair(name string) (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), name+"-parent"), os.NewFile(uintptr(fds[1]), name+"-child"), nil
}

var errInitExited = errors.New("container init exited before it was ready")

// initFiles are the files an init gets beyond its stdio, at the numbers its
// config names: the caller's preserved fds, the sync socket, the exec fifo
// (create only), the console connection, and last the config pipe (whose
// number the init reads from its environment).
type initFiles struct {
	extra  []*os.File // for spawn.extra, in fd order from 3
	sync   *os.File   // our end of the sync socket
	config *os.File   // our end of the config pipe
	theirs []*os.File // the init's ends, ours to close once it has them
}

func newInitFiles(fds *initFds, preserve int, fifo *os.File, terminal bool, consoleSocket string, given *os.File) (_ *initFiles, retErr error) {
	if consoleSocket != "" && !terminal {
		return nil, errdefs.Invalid("--console-socket given but the process has no terminal")
	}
	extra, err := preservedFiles(preserve)
	if err != nil {
		return nil, err
	}
	f := &initFiles{}
	defer func() {
		if retErr != nil {
			f.close()
		}
	}()
	syncP, syncC, err := socketpair("sync")
	if err != nil {
		return nil, err
	}
	f.sync = syncP
	f.theirs = append(f.theirs, syncC)
	fds.Preserve = preserve
	fds.Sync = 3 + len(extra)
	extra = append(extra, syncC)
	if fifo != nil {
		fds.Fifo = 3 + len(extra)
		extra = append(extra, fifo)
	}
	if terminal {
		conn, err := consoleConn(consoleSocket, given)
		if err != nil {
			return nil, err
		}
		f.theirs = append(f.theirs, conn)
		fds.Console = 3 + len(extra)
		extra = append(extra, conn)
	}
	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	f.config = pipeW
	f.theirs = append(f.theirs, pipeR)
	f.extra = append(extra, pipeR)
	return f, nil
}

// started closes our copies of the init's ends: EOF on the sync socket then
// means the init is gone (or exec'd).
func (f *initFiles) started() {
	for _, c := range f.theirs {
		c.Close()
	}
}

// sendPrelude writes a prelude of the C init's program ahead of the rest
// (cgroupPrelude).
func (f *initFiles) sendPrelude(b []byte) error {
	_, err := f.config.Write(b)
	return err
}

// sendConfig writes the init's config and closes the pipe: a C init
// program when prog is set, else the Go init's config, after goMagic when
// the C init was offered (cinit.go).
func (f *initFiles) sendConfig(cfg *initConfig, offered bool, prog []byte) error {
	b, err := prog, error(nil)
	if b == nil {
		b, err = marshalWire(cfg)
		if offered {
			b = append([]byte(goMagic), b...)
		}
	}
	if err == nil {
		_, err = f.config.Write(b)
	}
	f.config.Close()
	return err
}

// initError is the init's own account of its failure, when it gave one
// before it went (it may have died while we wrote to it), else err.
func (f *initFiles) initError(err error) error {
	pfd := []unix.PollFd{{Fd: int32(f.sync.Fd()), Events: unix.POLLIN}}
	if n, _ := unix.Poll(pfd, 1000); n != 1 {
		return err
	}
	if m, rerr := readSync(f.sync); rerr == nil && m.Type == "error" {
		return errors.New(m.Error)
	}
	return err
}

func (f *initFiles) close() {
	f.started()
	if f.sync != nil {
		f.sync.Close()
	}
	if f.config != nil {
		f.config.Close()
	}
}
