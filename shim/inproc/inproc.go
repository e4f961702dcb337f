// Package inproc runs berth's own OCI runtime inside the shim: create,
// start, kill and delete become calls into package runtime instead of a
// `berth runtime ...` process each, which saves a Go process start (about
// 3 ms of the full binary here) per step of every container's life. The
// shim stays runtime-agnostic: it hands this package the runtime command
// line it was given, and anything this package does not do (exec, or a
// container with hooks) still goes to the runtime's CLI.
//
// Hooks stay on the CLI path because the runtime waits for its hook
// processes, and in the shim those are children that its wait4(-1) reaper
// would collect first.
package inproc

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/runtime"
	"berth.dev/berth/runtime/specjson"
	"berth.dev/berth/shim"
)

// New returns the Runner for rt when it is this binary's own runtime
// (`<this executable> runtime --root DIR`), else nil.
func New(rt []string) shim.Runner {
	root, ok := ownRuntime(rt)
	if !ok {
		spare.Discard()
		spare = nil
		return nil
	}
	r := &runner{root: root, spare: spare}
	spare = nil
	return r.run
}

// spare is the container init a spare shim started while it waited.
var spare *runtime.Spare

// SpareRootFlag names, in a spare shim's tag, the runtime state root its
// containers' inits are made for.
const SpareRootFlag = "--runtime-root"

// SpareInit (shim.SpareInit) starts a spare container init for the state
// root the tag names, which the shim's create adopts when the container
// fits (runtime.Spare): a spare shim's wait then covers the init's fork,
// exec and start too.
func SpareInit(tag []string) {
	for i := 0; i+1 < len(tag); i++ {
		if tag[i] == SpareRootFlag {
			spare, _ = runtime.NewSpare(tag[i+1]) // none: create forks one
			runtime.Warm()
			return
		}
	}
}

// ownRuntime says whether rt runs this very executable's runtime, and with
// which state root. Any global flag besides --root leaves it to the CLI.
func ownRuntime(rt []string) (string, bool) {
	if len(rt) != 4 || rt[1] != "runtime" || rt[2] != "--root" || rt[3] == "" {
		return "", false
	}
	self, err := os.Executable()
	if err != nil {
		return "", false
	}
	a, err1 := os.Stat(self)
	b, err2 := os.Stat(rt[0])
	if err1 != nil || err2 != nil || !os.SameFile(a, b) {
		return "", false
	}
	return rt[3], true
}

type runner struct {
	root  string
	spare *runtime.Spare // for the create, which adopts or discards it
	// cli is set once the container turns out to have hooks: every later
	// step goes to the runtime's CLI too, so that one runtime sees it all.
	cli bool
}

func (r *runner) run(stdio []*os.File, logPath string, args []string) (bool, error) {
	if r.cli || len(args) == 0 {
		return false, nil
	}
	switch args[0] {
	case "create", "start", "kill", "delete":
	default:
		return false, nil
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o runtime.CreateOpts
	var all, force bool
	switch args[0] {
	case "create":
		fs.StringVar(&o.Bundle, "bundle", "", "")
		fs.StringVar(&o.PidFile, "pid-file", "", "")
		fs.StringVar(&o.ConsoleSocket, "console-socket", "", "")
	case "kill":
		fs.BoolVar(&all, "all", false, "")
	case "delete":
		fs.BoolVar(&force, "force", false, "")
	}
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() < 1 {
		return false, nil // not a command line the shim makes: the CLI judges it
	}
	id := fs.Arg(0)
	if args[0] == "create" {
		hooks, err := hasHooks(o.Bundle)
		if err != nil {
			return true, err
		}
		if hooks {
			r.cli = true
			r.spare.Discard()
			r.spare = nil
			return false, nil
		}
	}

	// The shim keeps a tiny heap (GC at 25%, a 4 MiB soft limit), right
	// for its idle life but a collection every few hundred kB for the
	// runtime's burst of work (decoding the spec alone allocates more): the
	// collector is off for the step, and the shim settles afterwards.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))

	logf := &lazyLog{path: logPath}
	defer logf.close()
	log := slog.New(slog.NewJSONHandler(logf, nil))
	rt, err := runtime.New(r.root, log)
	if err != nil {
		return true, err
	}
	err = r.do(rt, args[0], id, fs.Args()[1:], o, stdio, all, force)
	if err != nil {
		log.Error(err.Error())
	}
	return true, err
}

func (r *runner) do(rt *runtime.Runtime, cmd, id string, rest []string, o runtime.CreateOpts, stdio []*os.File, all, force bool) error {
	if cmd == "create" {
		if len(stdio) == 3 {
			// Typed nils would not be nil interfaces: only set files.
			if stdio[0] != nil {
				o.Stdin = stdio[0]
			}
			if stdio[1] != nil {
				o.Stdout = stdio[1]
			}
			if stdio[2] != nil {
				o.Stderr = stdio[2]
			}
		}
		o.Spare, r.spare = r.spare, nil
		_, err := rt.Create(id, o)
		return err
	}
	c, err := rt.Load(id)
	if err != nil {
		if cmd == "delete" && force && errdefs.Is(err, errdefs.KindNotFound) {
			return nil
		}
		return err
	}
	switch cmd {
	case "start":
		return c.Start()
	case "kill":
		sig := syscall.SIGTERM
		if len(rest) > 0 {
			if sig, err = parseSignal(rest[0]); err != nil {
				return err
			}
		}
		return c.Kill(sig, all)
	default: // delete
		return c.Delete(force)
	}
}

// lazyLog is the runtime's log, made at its first line: the runtime
// writes there only when something goes wrong, and creating the file in
// the state dir cost every create 0.2 ms (ext4; a tmpfs exec root less).
// slog's handler serialises the writes.
type lazyLog struct {
	path string
	f    *os.File
	err  error
}

func (l *lazyLog) Write(b []byte) (int, error) {
	if l.f == nil && l.err == nil {
		l.f, l.err = os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o644)
	}
	if l.err != nil {
		return 0, fmt.Errorf("open runtime log: %w", l.err)
	}
	return l.f.Write(b)
}

func (l *lazyLog) close() {
	if l.f != nil {
		l.f.Close()
	}
}

// hasHooks reads the hooks of the bundle's config.json. The plain form
// every writer uses goes through specjson (~10 µs): encoding/json's first
// decode in a shim built its codecs first, 0.15-0.2 ms of every start.
func hasHooks(bundle string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return false, fmt.Errorf("read bundle config: %w", err)
	}
	var h *specs.Hooks
	if spec, ok := specjson.Decode(b); ok {
		h = spec.Hooks
	} else {
		var s struct {
			Hooks *specs.Hooks `json:"hooks"`
		}
		if err := json.Unmarshal(b, &s); err != nil {
			return false, errdefs.Invalid("config.json: %v", err)
		}
		h = s.Hooks
	}
	if h == nil {
		return false, nil
	}
	//lint:ignore SA1019 Prestart is deprecated but runtimes still run it.
	n := len(h.Prestart) + len(h.CreateRuntime) + len(h.CreateContainer) + len(h.StartContainer) + len(h.Poststart) + len(h.Poststop)
	return n > 0, nil
}

// parseSignal takes the shim's spelling: a number.
func parseSignal(s string) (syscall.Signal, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 64 {
		return 0, errdefs.Invalid("invalid signal %q", s)
	}
	return syscall.Signal(n), nil
}
