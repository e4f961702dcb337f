package runtime

import (
	"fmt"
	"os"
	"time"
)

// BERTH_TRACE=1 prints how long each step of create/start/delete takes, for
// finding what a container start spends its time on.
var (
	tracing = os.Getenv("BERTH_TRACE") != ""
	traceT0 = time.Now()
)

// Trace records a step for BERTH_TRACE (see trace).
func Trace(step string) { trace(step) }

func trace(step string) {
	if tracing {
		fmt.Fprintf(os.Stderr, "trace %d %8.3fms %s\n", os.Getpid(), float64(time.Since(traceT0).Microseconds())/1000, step)
	}
}
