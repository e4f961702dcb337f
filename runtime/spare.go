package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"berth.dev/berth/runtime/cgroups"
	"berth.dev/berth/runtime/nsenter"
)

// A Spare is a container init started before its container is known: the
// berth binary exec'd in a new pid namespace, its C constructor waiting
// on a socket for the files and environment a fork would have given it
// (nsenter.c, berth_spare). Create adopts it when the container's init
// would have been born the same way, and saves the fork, the exec of the
// binary and its start (0.4-1 ms of the path in a shim, where nothing
// else runs meanwhile); otherwise it discards it and forks as usual.
//
// A spare ends when its socket closes unused: Discard, or its owner's exit.
type Spare struct {
	root string // the state root it was made for
	exe  string
	args []string
	pid  int
	proc *os.Process
	// found gives proc when a goroutine looks it up (cliSpare): see process.
	found chan *os.Process
	sock  *os.File // our end of the socket the init waits on
	// made are the namespaces the spare made at its start (spareNS):
	// a container must want them new.
	made uintptr
}

// spareNS are the namespaces a spare makes while it waits, the ones every
// container of docker's defaults has new: a network namespace alone is
// ~0.3 ms of an init's start.
const spareNS = unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS

const (
	envSpare = "_BERTH_SPARE"
	// envSpareUnshare holds the clone flags (decimal) of the namespaces
	// a spare makes before it waits.
	envSpareUnshare = "_BERTH_SPARE_UNSHARE"
	// spareMagic starts the message that adopts a spare: NUL-separated
	// KEY=value settings for its environment, with its files attached
	// (SCM_RIGHTS) in the order of the descriptors they become, 0 up.
	spareMagic = "BSP1"
	// maxSpareFiles bounds the files one message hands over (the C side's
	// buffer).
	maxSpareFiles = 64
)

// errSpareUnfit says an adopted spare cannot run the container after all
// (it needs the Go init, whose environment a spare cannot be given): the
// create is made again with a forked init.
var errSpareUnfit = errors.New("the spare init cannot run this container")

// NewSpare starts a spare init for containers under the state root root.
func NewSpare(root string) (*Spare, error) {
	r, err := New(root, nil)
	if err != nil {
		return nil, err
	}
	exe, err := r.initBinary()
	if err != nil {
		return nil, fmt.Errorf("protect init binary: %w", err)
	}
	ours, theirs, err := socketpair("spare")
	if err != nil {
		return nil, err
	}
	defer theirs.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		ours.Close()
		return nil, err
	}
	defer null.Close()
	args := r.initArgs()
	cmd := exec.Command(exe, args[1:]...)
	cmd.Args = args
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Dir = "/"
	cmd.Env = []string{"GOMAXPROCS=1", "GOGC=off", envSpare + "=3", envSpareUnshare + "=" + strconv.Itoa(spareNS)}
	if tracing {
		cmd.Env = append(cmd.Env, "BERTH_TRACE=1")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID}
	if err := cmd.Start(); err != nil {
		ours.Close()
		return nil, fmt.Errorf("start spare init: %w", err)
	}
	return &Spare{root: r.Root, exe: exe, args: args, pid: cmd.Process.Pid, proc: cmd.Process, sock: ours, made: spareNS}, nil
}

var cliSpare = sync.OnceValue(func() *Spare {
	pid, fd, exe := nsenter.CLISpare()
	if pid <= 0 {
		return nil
	}
	// The spare is our child, so FindProcess cannot fail; but its first
	// call checks pidfd support by vfork'ing a child and waiting for it
	// to exit, which held the main thread for 0.7 ms of a 7 ms `berth
	// runtime run` here. It runs on another thread, beside the create,
	// which wants the handle only at its end.
	found := make(chan *os.Process, 1)
	go func() {
		proc, _ := os.FindProcess(pid)
		found <- proc
	}()
	exe = filepath.Clean(exe)
	return &Spare{root: filepath.Dir(exe), exe: exe, args: []string{"berth", "init"}, pid: pid, found: found,
		sock: os.NewFile(uintptr(fd), "spare"), made: spareNS}
})

// process is the spare's process, once the goroutine finding it is done.
func (s *Spare) process() *os.Process {
	if s.found != nil {
		s.proc = <-s.found
		s.found = nil
	}
	return s.proc
}

// PrepareCLI starts, in a CLI whose constructor started a spare init (a run
// or create), the lookup of its process handle (see cliSpare).
func PrepareCLI() { cliSpare() }

// CLISpare is the spare init the runtime CLI's C constructor started for
// this process's create (nsenter.CLISpare), or nil; only the first call
// gets it.
func CLISpare() *Spare {
	s := cliSpare()
	if s == nil || s.sock == nil {
		return nil
	}
	taken := *s
	s.sock = nil
	return &taken
}

// Warm does ahead what every create does first in a process (the host's
// cgroup layout), for a process that waits for its create.
func Warm() { cgroups.Warm() }

// Pid is the spare's pid.
func (s *Spare) Pid() int { return s.pid }

// Discard ends an unused spare and reaps it (a reaper of the caller's own,
// such as a shim's, may have reaped it first).
func (s *Spare) Discard() {
	if s == nil || s.sock == nil {
		return
	}
	s.sock.Close()
	s.sock = nil
	s.process().Kill()
	s.proc.Wait()
}

// fits says whether sp's init may be s: born the way sp would fork it,
// only its files and environment left to give.
func (sp *spawn) fits(s *Spare, root string) bool {
	if s == nil || s.sock == nil || s.root != root || s.exe != sp.exe || !slices.Equal(s.args, sp.args) {
		return false
	}
	// The C init only (see errSpareUnfit); v1 cgroups, which the init
	// joins itself (v2's CLONE_INTO_CGROUP is a fork's).
	if !sp.cinit || sp.cgroupFD >= 0 || len(sp.cgroupTasks) > 0 || len(sp.extra)+3 > maxSpareFiles {
		return false
	}
	for _, r := range []any{sp.stdin, sp.stdout, sp.stderr} {
		if f, ok := r.(*os.File); r != nil && (!ok || f == nil) {
			return false // a reader or writer exec would copy through a pipe
		}
	}
	b, err := sp.birth()
	return err == nil && b.cloneflags == unix.CLONE_NEWPID && len(b.threadJoins) == 0 && s.made&^b.late == 0
}

// adopt hands the spare its files and environment, as start would have
// given them to a forked init; it becomes the container's init.
func (sp *spawn) adopt(s *Spare) error {
	b, err := sp.birth()
	if err != nil {
		return err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	fds := make([]int, 0, 3+len(sp.extra))
	for _, r := range []any{sp.stdin, sp.stdout, sp.stderr} {
		f := null
		if r != nil {
			f = r.(*os.File)
		}
		fds = append(fds, int(f.Fd()))
	}
	for _, f := range sp.extra {
		fds = append(fds, int(f.Fd()))
	}
	env := b.env
	if rest := b.late &^ s.made; rest != 0 {
		env = append(env, unshareEnv(rest))
	}
	trace("adopting spare init")
	err = unix.Sendmsg(int(s.sock.Fd()), []byte(spareMagic+strings.Join(env, "\x00")), unix.UnixRights(fds...), nil, 0)
	s.sock.Close()
	s.sock = nil
	if err != nil {
		s.process().Kill()
		s.proc.Wait()
		return fmt.Errorf("hand the spare init its files: %w", err)
	}
	return nil
}
