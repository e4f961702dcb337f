// Package nsenter joins the mount, user and time namespaces named in the
// environment before the Go runtime starts. Those three cannot be joined by a
// multi-threaded process, and every Go program is multi-threaded before main
// runs, so a C constructor does it while the process still has one thread.
// The other namespaces are joined by the parent on a locked OS thread before
// it forks the init, which then inherits them.
//
// The constructor then runs the C init (cinit.c) when the runtime offered
// it: a program of primitive steps the runtime compiled from the spec
// (runtime/cinit.go), ending in the execve of the container's process, so
// such an init never starts the Go runtime.
//
// Import it for its side effect in the binary that is re-executed as the
// container init.
package nsenter

/*
#cgo CFLAGS: -Wall -O2
#cgo LDFLAGS: -static -Wl,--wrap=pthread_create
#include <time.h>
extern void berth_spare(void);
extern void berth_cli_spare(void);
extern int berth_cli_spare_pid(void);
extern int berth_cli_spare_fd(void);
extern const char *berth_cli_spare_exe(void);
extern void berth_nsenter(void);
extern void berth_cinit(void);
static long long berth_start_ns;
void __attribute__((constructor)) berth_nsenter_init(void) {
	struct timespec ts;
	berth_spare();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	berth_start_ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	berth_nsenter();
	berth_cinit();
	berth_cli_spare();
}
static long long berth_start(void) { return berth_start_ns; }
*/
import "C"

// CLISpare is the spare init the runtime CLI's constructor started (pid,
// the socket it waits on, the executable it runs), if it did: pid 0.
// Ours to take once.
func CLISpare() (pid, fd int, exe string) {
	pid = int(C.berth_cli_spare_pid())
	if pid <= 0 {
		return 0, -1, ""
	}
	return pid, int(C.berth_cli_spare_fd()), C.GoString(C.berth_cli_spare_exe())
}

// StartNanos is the CLOCK_MONOTONIC time at which the C constructor ran,
// before the Go runtime started: for tracing a process's boot.
func StartNanos() int64 { return int64(C.berth_start()) }

// EnvVar names the variable that holds the namespaces to join: a
// comma-separated list of type=path (type one of mnt, user, time), joined in
// that order after all are opened.
const EnvVar = "_BERTH_NSENTER"

// UnshareEnvVar names the variable that holds clone flags (decimal) of new
// namespaces the constructor makes with unshare before it joins any.
const UnshareEnvVar = "_BERTH_UNSHARE"
