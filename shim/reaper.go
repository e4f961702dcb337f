package shim

import (
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// reaper collects every child of the shim: the runtime commands it starts
// and, as a child subreaper, the container's init and exec'd processes once
// the runtime that forked them has exited. The shim never calls Wait on a
// process itself (it would race with wait4(-1)); it asks for the status of
// a pid, which may have come before the pid was known (a quick exit).
type reaper struct {
	mu        sync.Mutex
	waiting   map[int]chan unix.WaitStatus
	unclaimed map[int]unix.WaitStatus
}

func newReaper() *reaper {
	r := &reaper{waiting: map[int]chan unix.WaitStatus{}, unclaimed: map[int]unix.WaitStatus{}}
	c := make(chan os.Signal, 8)
	signal.Notify(c, unix.SIGCHLD)
	go func() {
		for range c {
			r.reap()
		}
	}()
	return r
}

func (r *reaper) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		r.mu.Lock()
		if c, ok := r.waiting[pid]; ok {
			delete(r.waiting, pid)
			c <- ws
		} else if len(r.unclaimed) < 1024 {
			// Grandchildren of a container without a pid namespace end
			// here too; nobody asks for them, so the map is bounded.
			r.unclaimed[pid] = ws
		}
		r.mu.Unlock()
	}
}

// watch returns a channel that gets pid's wait status once.
func (r *reaper) watch(pid int) <-chan unix.WaitStatus {
	c := make(chan unix.WaitStatus, 1)
	r.mu.Lock()
	if ws, ok := r.unclaimed[pid]; ok {
		delete(r.unclaimed, pid)
		c <- ws
	} else {
		r.waiting[pid] = c
	}
	r.mu.Unlock()
	r.reap() // a SIGCHLD may have come before the signal handler was set
	return c
}

// exitCode is docker's: the status, or 128+signal.
func exitCode(ws unix.WaitStatus) (code, sig int) {
	if ws.Signaled() {
		return 128 + int(ws.Signal()), int(ws.Signal())
	}
	return ws.ExitStatus(), 0
}
