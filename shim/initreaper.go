package shim

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"

	"golang.org/x/sys/unix"
)

// InitReaper is `berth init-reaper [--] CMD [ARGS...]`, the PID 1 that
// `--init` puts in a container (docker's tini): it runs CMD, forwards the
// signals it gets to it, reaps every orphan that the kernel hands to PID 1,
// and exits with CMD's status (128+n when a signal n killed it).
func InitReaper(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: berth init-reaper [--] CMD [ARGS...]")
		return 2
	}
	if os.Getpid() != 1 {
		// Outside a pid namespace, still collect our descendants.
		unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs) // everything; SIGCHLD means reap
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth init-reaper:", err)
		return 127
	}
	// The child gets the default signal dispositions back (execve resets
	// handled signals) and our stdio, session and terminal.
	proc, err := os.StartProcess(path, args, &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth init-reaper:", err)
		return 126
	}
	child := proc.Pid
	proc.Release() // reaped below with wait4(-1)
	for sig := range sigs {
		if sig != unix.SIGCHLD {
			if s, ok := sig.(unix.Signal); ok && s != unix.SIGURG { // SIGURG: Go's own preemption
				unix.Kill(child, s)
			}
			continue
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if pid <= 0 || err != nil {
				break
			}
			if pid == child {
				code, _ := exitCode(ws)
				return code
			}
		}
	}
	return 0
}
