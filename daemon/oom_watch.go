package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"berth.dev/berth/daemon/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// oomWatch publishes the container's `oom` events as the kernel's OOM
// killer acts, while the container runs (a shell whose child was killed
// goes on running): on cgroup v1 an eventfd registered for
// memory.oom_control through cgroup.event_control, on v2 an inotify watch
// of memory.events. Each wake-up re-reads the kill counter, so the
// notification the kernel sends when the cgroup is removed, or a
// modification of memory.events that is not a kill, publishes nothing.
// On v1 the notification comes as the OOM begins and the counter moves
// once the victim is chosen, so a wake-up watches the counter for a
// moment.
type oomWatch struct {
	d    *Daemon
	c    *container.Container
	f    *os.File // the eventfd or inotify descriptor; nil when not watching
	mu   sync.Mutex
	seen uint64        // kills published
	quit chan struct{} // closed by stop
	done chan struct{} // closed when loop has returned
}

// watchOOM starts watching c's memory cgroup. A container without one (or
// a kernel that refuses the registration) is still covered at its exit,
// when stop publishes what the counter says.
func (d *Daemon) watchOOM(c *container.Container) *oomWatch {
	w := &oomWatch{d: d, c: c, quit: make(chan struct{}), done: make(chan struct{})}
	f, err := oomNotifier(c.ID)
	if err != nil {
		d.log.Debug("oom notifications", "id", c.ID, "error", err)
		close(w.done)
		return w
	}
	w.f = f
	go w.loop()
	w.publishNew() // a kill before the registration
	return w
}

// oomNotifier returns a descriptor that becomes readable when the
// container's cgroup records an OOM kill (and at other times).
func oomNotifier(id string) (*os.File, error) {
	counter, v1dir := oomFiles(id)
	if counter == "" {
		return nil, fmt.Errorf("no memory cgroup")
	}
	if v1dir == "" {
		fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("inotify: %w", err)
		}
		if _, err := unix.InotifyAddWatch(fd, counter, unix.IN_MODIFY); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("watch %s: %w", counter, err)
		}
		return os.NewFile(uintptr(fd), "memory.events"), nil
	}
	ctl, err := os.Open(counter)
	if err != nil {
		return nil, err
	}
	defer ctl.Close() // the registration holds its own reference
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	reg := fmt.Sprintf("%d %d", efd, ctl.Fd())
	if err := os.WriteFile(filepath.Join(v1dir, "cgroup.event_control"), []byte(reg), 0); err != nil {
		unix.Close(efd)
		return nil, fmt.Errorf("register for memory.oom_control: %w", err)
	}
	return os.NewFile(uintptr(efd), "oom eventfd"), nil
}

func (w *oomWatch) loop() {
	defer close(w.done)
	buf := make([]byte, 4096) // an eventfd's 8-byte count, or inotify events
	for {
		if _, err := w.f.Read(buf); err != nil {
			return // closed by stop
		}
		for i := 0; i < 40 && !w.publishNew(); i++ {
			select {
			case <-w.quit:
				return
			case <-time.After(25 * time.Millisecond):
			}
		}
	}
}

// publishNew publishes one `oom` event per kill counted since the last,
// and says whether there was any.
func (w *oomWatch) publishNew() bool {
	n := oomKills(w.c.ID)
	w.mu.Lock()
	defer w.mu.Unlock()
	if n <= w.seen {
		return false
	}
	for ; w.seen < n; w.seen++ {
		w.d.publishContainer(w.c, events.ActionOOM, nil)
	}
	return true
}

// stop ends the watch after the container's exit, publishing the kills
// not yet published (the counter must still be there: before the runtime
// deletes the cgroup). It returns the kills of this run.
func (w *oomWatch) stop() uint64 {
	close(w.quit)
	if w.f != nil {
		w.f.Close()
	}
	<-w.done
	w.publishNew()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}
