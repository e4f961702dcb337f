// Command berth-shim is `berth shim` and `berth init-reaper` alone: the same
// code as in the berth binary, without the rest of the engine, whose
// package initialisation (compiled regexps, tables) and size every
// per-container process would otherwise pay for. Invoked as berth-shim it
// runs the shim (`berth-shim [shim] [flags] -- RUNTIME ...`, so that
// shim.Options.Binary may name it); `berth-shim init-reaper -- CMD` is the
// reaper, statically linked, fit to be bind-mounted into any container.
package main

import (
	"os"
	"runtime"

	"berth.dev/berth/shim"
)

// No heap profiling: its bucket table is more than a shim's whole heap.
func init() { runtime.MemProfileRate = 0 }

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "shim" || os.Args[1] == "init-reaper") {
		os.Exit(shim.Main(os.Args[1:]))
	}
	os.Exit(shim.Main(append([]string{"shim"}, os.Args[1:]...)))
}
