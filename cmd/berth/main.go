// Command berth is the berth container engine: CLI, daemon and OCI runtime in
// one binary. Invoked as berth-runtime it is the runtime alone, with runc's
// command line.
package main

import (
	"os"
	"path/filepath"
	goruntime "runtime"

	"berth.dev/berth/cli/command"
	"berth.dev/berth/cli/daemoncli"
	"berth.dev/berth/cli/runtimecli"
	"berth.dev/berth/runtime"
	_ "berth.dev/berth/runtime/nsenter" // joins namespaces before the Go runtime starts
	"berth.dev/berth/shim"
	"berth.dev/berth/shim/inproc"
)

// The main goroutine keeps the main thread: threads the runtime locks and
// moves into a container's cgroups to fork its init must be others, which
// Go ends when their goroutine exits (it keeps the main thread instead).
func init() { goruntime.LockOSThread() }

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.Init() // the container init: never returns
	}
	if len(os.Args) > 1 && (os.Args[1] == "shim" || os.Args[1] == "init-reaper") {
		shim.InProcess = inproc.New // berth's own runtime without a process per step
		shim.SpareInit = inproc.SpareInit
		os.Exit(shim.Main(os.Args[1:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "daemon" {
		os.Exit(daemoncli.Main(os.Args[2:]))
	}
	if filepath.Base(os.Args[0]) == "berth-runtime" {
		runtime.PrepareCLI()
		os.Exit(runtimecli.Main("berth-runtime", os.Args[1:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "runtime" {
		runtime.Trace("main")
		runtime.PrepareCLI()
		code := runtimecli.Main("berth runtime", os.Args[2:])
		runtime.Trace("exit")
		os.Exit(code)
	}
	// The CLI forks nothing: its main goroutine may run on any thread, so
	// that waiting for an answer hands over to the HTTP client's
	// goroutines on the same thread instead of waking a locked one.
	goruntime.UnlockOSThread()
	os.Exit(command.Main(os.Args[1:]))
}
