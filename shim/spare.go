package shim

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Spares keeps one shim process started ahead of need: a shim's start is a
// Go process start (about 4 ms of the berth binary here), which a
// container's start would otherwise wait for. The spare blocks reading its
// arguments from a pipe; Start hands them over and starts the next spare
// in the background. When the owner goes (Close, or the daemon dies), the
// pipe closes and the waiting spare exits without doing anything.
type Spares struct {
	// Deferred: the next spare is started by Refill, not by the take.
	Deferred bool
	// Dir (NewSparesIn), when set, is a directory on the file system of
	// the state dirs (their parent) where a spare makes its log, pid file
	// and socket while it waits, and renames them into its state dir when
	// it gets it: a new inode in the churning state dirs cost 0.06-0.2 ms
	// each on ext4, on the start's path.
	Dir string

	bin    string
	tag    []string
	mu     sync.Mutex
	next   *spare
	closed bool
}

type spare struct {
	proc  *os.Process
	args  *os.File // write end: the shim's arguments, then EOF
	ready *os.File // read end of the shim's ready pipe
	done  chan struct{}
}

// NewSpares starts a spare shim of bin (the berth binary or berth-shim).
// tag goes on the spares' command line after `shim --spare`, for people and
// tools that tell shims apart in ps (the daemon puts its exec root there);
// a shim's working directory is its state dir, spare or not.
func NewSpares(bin string, tag ...string) *Spares { return NewSparesIn("", bin, tag...) }

// NewSparesIn is NewSpares with Dir set (see Spares).
func NewSparesIn(dir, bin string, tag ...string) *Spares {
	s := &Spares{bin: bin, tag: tag, Dir: dir}
	go s.refill()
	return s
}

// Binary is the executable the spares run.
func (s *Spares) Binary() string { return s.bin }

// take returns the spare, if there is one of bin, and starts the next
// unless the owner does (Deferred).
func (s *Spares) take(bin string) *spare {
	if s == nil || bin != s.bin {
		return nil
	}
	s.mu.Lock()
	sp := s.next
	s.next = nil
	s.mu.Unlock()
	if !s.Deferred {
		go s.refill()
	}
	return sp
}

// Refill starts the next spare if there is none, in the background. An
// owner that set Deferred calls it once a start is done: the next spare's
// Go start (~3 ms of CPU) otherwise competes with the container's create
// for this host's two cores.
func (s *Spares) Refill() { go s.refill() }

func (s *Spares) refill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.next != nil {
		return
	}
	sp, err := startSpare(s.bin, s.tag, s.Dir)
	if err != nil {
		return // Start falls back to starting a shim itself
	}
	s.next = sp
}

// Close ends the waiting spare and starts no more.
func (s *Spares) Close() {
	s.mu.Lock()
	s.closed = true
	sp := s.next
	s.next = nil
	s.mu.Unlock()
	if sp == nil {
		return
	}
	sp.args.Close()
	sp.ready.Close()
	select {
	case <-sp.done:
	case <-time.After(5 * time.Second):
		sp.proc.Kill()
	}
}

func startSpare(bin string, tag []string, dir string) (*spare, error) {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyW.Close()
	argsR, argsW, err := os.Pipe()
	if err != nil {
		readyR.Close()
		return nil, err
	}
	defer argsR.Close()
	args := []string{"shim", "--spare"}
	var ahead *os.File
	if dir != "" {
		if ahead, err = os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY, 0); err == nil {
			defer ahead.Close()
			args = append(args, aheadFlag)
		}
	}
	cmd := exec.Command(bin, append(args, tag...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{readyW, argsR} // fds 3 and 4
	if ahead != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, ahead) // fd 5
	}
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		readyR.Close()
		argsW.Close()
		return nil, err
	}
	sp := &spare{proc: cmd.Process, args: argsW, ready: readyR, done: make(chan struct{})}
	go func() { cmd.Wait(); close(sp.done) }()
	return sp, nil
}

// hand gives the spare its shim arguments and the file its stdout and
// stderr go to.
func (sp *spare) hand(logPath string, args []string) error {
	_, err := io.WriteString(sp.args, logPath+"\x00"+strings.Join(args, "\x00"))
	sp.args.Close()
	return err
}

// spareArgs is the spare's side: it waits for its arguments (fd 4), points
// stdout and stderr at the log they name and moves into its directory,
// and returns the arguments; nil when its owner went away without giving
// any. The files it made ahead (premake) are renamed into that directory.
func spareArgs(ahead bool) []string {
	var a *aheadFiles
	if ahead {
		a = premake()
	}
	f := os.NewFile(4, "args")
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil || len(b) == 0 {
		a.remove()
		return nil
	}
	parts := strings.Split(string(b), "\x00")
	dir := filepath.Dir(parts[0])
	if !a.move(dir, parts[0]) {
		if log, err := os.OpenFile(parts[0], os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
			unix.Dup3(int(log.Fd()), 1, 0)
			unix.Dup3(int(log.Fd()), 2, 0)
			log.Close()
		}
	}
	os.Chdir(dir)
	return parts[1:]
}

// aheadFiles are a spare's log, pid file and listening socket, made in a
// directory of their own under the spares' Dir (fd 5) while it waits.
type aheadFiles struct {
	dir string
	log *os.File
	ln  *net.UnixListener
}

// aheadFlag follows --spare when fd 5 is the spares' Dir.
const aheadFlag = "--ahead"

// premake makes the files in <Dir>/.spare-<pid>; nil when it cannot.
func premake() *aheadFiles {
	parent, err := os.Readlink("/proc/self/fd/5")
	unix.Close(5)
	if err != nil {
		return nil
	}
	a := &aheadFiles{dir: filepath.Join(parent, ".spare-"+strconv.Itoa(os.Getpid()))}
	if err := os.Mkdir(a.dir, 0o700); err != nil {
		return nil
	}
	if a.log, err = os.OpenFile(filepath.Join(a.dir, LogName), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600); err == nil {
		err = os.WriteFile(filepath.Join(a.dir, PidName), []byte(strconv.Itoa(os.Getpid())), 0o644)
	}
	if err == nil {
		a.ln, err = listenPrivate(filepath.Join(a.dir, SocketName))
	}
	if err != nil {
		a.remove()
		return nil
	}
	return a
}

// move renames the files into dir (the log as log) and points stdout and
// stderr at the log; false leaves the shim to make its own.
func (a *aheadFiles) move(dir, log string) bool {
	if a == nil {
		return false
	}
	err := os.Rename(filepath.Join(a.dir, LogName), log)
	if err == nil {
		err = os.Rename(filepath.Join(a.dir, PidName), filepath.Join(dir, PidName))
	}
	if err == nil {
		err = os.Rename(filepath.Join(a.dir, SocketName), filepath.Join(dir, SocketName))
	}
	if err != nil {
		os.Remove(log)
		os.Remove(filepath.Join(dir, PidName))
		a.remove()
		return false
	}
	os.Remove(a.dir)
	unix.Dup3(int(a.log.Fd()), 1, 0)
	unix.Dup3(int(a.log.Fd()), 2, 0)
	a.log.Close()
	premade = a.ln
	return true
}

func (a *aheadFiles) remove() {
	if a == nil {
		return
	}
	if a.ln != nil {
		a.ln.Close()
	}
	if a.log != nil {
		a.log.Close()
	}
	os.RemoveAll(a.dir)
}

// premade is the listener a spare made ahead, now on the state dir's
// socket path; setup takes it.
var premade *net.UnixListener
