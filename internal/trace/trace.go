// Package trace prints a timeline of one container's start and end across
// the processes that take part (CLI, daemon, shim) when BERTH_TRACE is set,
// for finding where `berth run --rm` spends its time. The lines have the
// runtime's BERTH_TRACE format (runtime/trace.go): the monotonic time, the
// pid, the process's CPU time and the step, so the lines of every process
// sort into one timeline.
//
// BERTH_TRACE=1 prints to stderr; BERTH_TRACE=/some/file appends there,
// one write per line, which is how a daemon and the shims it starts (whose
// stderr is their log) share one file. Processes started by a traced one
// inherit the variable.
package trace

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

var (
	setting = os.Getenv("BERTH_TRACE")
	// On tells whether steps are recorded (for callers that would build
	// an expensive step text).
	On = setting != ""

	once sync.Once
	out  *os.File
)

func output() *os.File {
	once.Do(func() {
		out = os.Stderr
		if strings.HasPrefix(setting, "/") {
			if f, err := os.OpenFile(setting, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
				out = f
			}
		}
	})
	return out
}

// Step records that step happens now.
func Step(step string) {
	if !On {
		return
	}
	var ts, cpu unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	_ = unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &cpu)
	line := fmt.Sprintf("trace %12.3fms %7d cpu %7.3fms %s\n", float64(ts.Nano())/1e6, os.Getpid(), float64(cpu.Nano())/1e6, step)
	_, _ = output().WriteString(line)
}

// Line writes one line of the runtime's format (ns and cpu in
// nanoseconds) where the steps go: the runtime's own steps join the
// timeline when BERTH_TRACE names a file.
func Line(ns, cpu int64, step string) {
	line := fmt.Sprintf("trace %12.3fms %7d cpu %7.3fms %s\n", float64(ns)/1e6, os.Getpid(), float64(cpu)/1e6, step)
	_, _ = output().WriteString(line)
}

// Stepf is Step with a format.
func Stepf(format string, args ...any) {
	if On {
		Step(fmt.Sprintf(format, args...))
	}
}
