package runtime

import (
	"fmt"
	"os"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// newNetNS makes a network namespace on a thread of its own and sends it. Making one is the costliest of the init's clone flags (0.4 ms here,
// where the others together take 0.2): create makes it while it goes on, and
// the thread that forks the init joins it (spawn.netnsFD) instead.
func newNetNS() <-chan nsResult {
	c := make(chan nsResult, 1)
	go func() {
		// Never unlocked: the thread is in the new namespace now, and a
		// goroutine that exits locked takes its thread with it.
		goruntime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			c <- nsResult{nil, fmt.Errorf("create network namespace: %w", err)}
			return
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			err = fmt.Errorf("open new network namespace: %w", err)
		}
		trace("netns made (goroutine)")
		c <- nsResult{f, err}
	}()
	return c
}

type nsResult struct {
	f   *os.File
	err error
}
