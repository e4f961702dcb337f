package runtime

import (
	"os"

	"golang.org/x/sys/unix"

	itrace "berth.dev/berth/internal/trace"
	"berth.dev/berth/runtime/nsenter"
)

// BERTH_TRACE=1 prints how long each step of create/start/delete takes, for
// finding what a container start spends its time on. Times are on the
// monotonic clock, so the lines of the CLI and of the init (which inherits
// the variable) merge into one timeline when sorted; the first line of each
// process is the moment its C constructor ran, before the Go runtime.
var tracing = os.Getenv("BERTH_TRACE") != ""

var traceStarted bool

// Trace records a step for BERTH_TRACE (see trace).
func Trace(step string) { trace(step) }

func trace(step string) {
	if !tracing {
		return
	}
	if !traceStarted {
		traceStarted = true
		traceLine(nsenter.StartNanos(), 0, "process start (C constructor)")
	}
	var ts, cpu unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &cpu)
	traceLine(ts.Nano(), cpu.Nano(), step)
}

// traceLine prints the monotonic time, the pid, the CPU time the process
// has used (which a busy machine does not inflate) and the step.
func traceLine(ns, cpu int64, step string) {
	itrace.Line(ns, cpu, step)
}
