package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/runtime/cgroups"
	"berth.dev/berth/runtime/specjson"
)

// Start lets a created container's init exec the user's process.
func (c *Container) Start() error {
	switch st := c.Status(); st {
	case StatusCreated:
	case StatusStopped:
		return errdefs.Conflict("cannot start a container that has stopped")
	default:
		return errdefs.Conflict("cannot start a container in state %s", st)
	}
	trace("start: status checked")
	dir := c.rt.dir(c.Saved.ID)
	fifoPath := filepath.Join(dir, execFifo)
	// The pidfd first: once the fifo is open the init execs the user's
	// process, which may exit and be reaped (by a subreaper such as a shim)
	// before a pidfd could be had.
	pidfd, err := unix.PidfdOpen(c.Saved.Pid, 0)
	if err != nil {
		return fmt.Errorf("open init process: %w", err)
	}
	defer unix.Close(pidfd)
	// Non-blocking open: a blocking one would hang forever if the init died.
	fd, err := unix.Open(fifoPath, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	fifo := os.NewFile(uintptr(fd), execFifo)
	defer fifo.Close()
	trace("start: fifo opened")
	return c.released(fifo, fd, pidfd)
}

// released waits until the init opened its end of the exec fifo and then
// closed it (exec, CLOEXEC) or wrote an error, or the init died; then the
// container runs, and its poststart hooks follow.
func (c *Container) released(fifo *os.File, fd, pidfd int) error {
	fifoPath := filepath.Join(c.rt.dir(c.Saved.ID), execFifo)
	var msg []byte
	buf := make([]byte, 4096)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(pidfd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		if fds[0].Revents&(unix.POLLIN|unix.POLLHUP) != 0 {
			n, err := fifo.Read(buf)
			if n > 0 {
				msg = append(msg, buf[:n]...)
				continue
			}
			if err == io.EOF || n == 0 {
				break
			}
			if errors.Is(err, syscall.EAGAIN) {
				continue
			}
			return err
		}
		if fds[1].Revents != 0 {
			// The init exited: drain anything it wrote first.
			n, _ := fifo.Read(buf)
			msg = append(msg, buf[:max(n, 0)]...)
			if len(msg) == 0 {
				msg = []byte(errInitExited.Error())
			}
			break
		}
	}
	trace("start: init released")
	os.Remove(fifoPath)
	if len(msg) > 0 {
		return fmt.Errorf("start container %s: %s", c.Saved.ID, msg)
	}
	// No save: the status is derived, and the fifo's absence says running.
	c.Saved.Status = StatusRunning
	if spec, err := c.Spec(); err == nil && spec.Hooks != nil {
		// The process may have exited already; the hook is still told of
		// the start it follows.
		st := c.State()
		st.Status, st.Pid = StatusRunning, c.Saved.Pid
		if err := runHooks("poststart", spec.Hooks.Poststart, st, false); err != nil {
			c.rt.Log.Warn("poststart hook failed", "id", c.Saved.ID, "error", err)
		}
	}
	return nil
}

// Spec returns the spec the container was created with.
func (c *Container) Spec() (*specs.Spec, error) {
	if c.spec != nil {
		return c.spec, nil
	}
	b := []byte(c.Saved.Spec)
	if len(b) == 0 {
		var err error
		if b, err = os.ReadFile(filepath.Join(c.rt.dir(c.Saved.ID), configFile)); err != nil {
			return nil, err
		}
	}
	// config.json's own bytes, as create kept them: in the plain form
	// specjson decodes without building encoding/json's codecs (a shim's
	// start paid 0.7 ms of CPU for them, on the path of every start).
	s, ok := specjson.Decode(b)
	if !ok {
		s = new(specs.Spec)
		if err := json.Unmarshal(b, s); err != nil {
			return nil, err
		}
	}
	// The bundle's config.json may give the root relative to the bundle.
	if s.Root != nil && s.Root.Path != "" && !filepath.IsAbs(s.Root.Path) && c.Saved.Bundle != "" {
		s.Root.Path = filepath.Join(c.Saved.Bundle, s.Root.Path)
	}
	c.spec = s
	return s, nil
}

// Kill sends sig to the container's init, or with all to every process in
// its cgroup.
func (c *Container) Kill(sig syscall.Signal, all bool) error {
	st := c.Status()
	if st == StatusStopped {
		return errdefs.Conflict("container %s is not running", c.Saved.ID)
	}
	if all {
		return c.signalAll(sig)
	}
	return c.signal(sig)
}

func (c *Container) signalAll(sig syscall.Signal) error {
	m, err := c.cgroup()
	if err != nil || m == nil {
		return c.signal(sig)
	}
	if sig == syscall.SIGKILL {
		// A frozen task cannot die until thawed.
		m.Freeze()
		defer m.Thaw()
	}
	pids, err := m.Pids()
	if err != nil {
		return fmt.Errorf("list container processes: %w", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	return nil
}

// Delete removes a stopped container, or any container with force.
func (c *Container) Delete(force bool) error {
	switch st := c.Status(); st {
	case StatusStopped:
	default:
		if !force {
			return errdefs.Conflict("cannot delete container %s that is %s: stop it first or use --force", c.Saved.ID, st)
		}
		c.killAndWait()
	}
	return c.destroy()
}

// killAndWait kills every process of the container and waits for the init to go.
func (c *Container) killAndWait() {
	pidfd, err := unix.PidfdOpen(c.Saved.Pid, 0)
	if err == nil && !c.initAlive() {
		unix.Close(pidfd)
		pidfd = -1
	}
	c.signalAll(syscall.SIGKILL)
	if c.initAlive() {
		syscall.Kill(c.Saved.Pid, syscall.SIGKILL)
	}
	if pidfd >= 0 {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		unix.Poll(fds, 10000)
		unix.Close(pidfd)
	}
	// The init may linger as a zombie of its parent; initAlive treats that as gone.
	deadline := time.Now().Add(10 * time.Second)
	for c.initAlive() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// destroy releases everything of a stopped container and runs poststop hooks.
func (c *Container) destroy() error {
	trace("destroy")
	var errs []error
	if m, err := c.cgroup(); err != nil {
		errs = append(errs, err)
	} else if m != nil {
		if err := destroyCgroup(m, c.ownPidNS()); err != nil {
			// Keep the state: a later delete can still find and remove it.
			return fmt.Errorf("remove cgroup of %s (retry delete): %w", c.Saved.ID, err)
		}
	}
	trace("destroy: cgroups removed")
	if err := c.unmountShared(); err != nil {
		errs = append(errs, err)
	}
	if spec, err := c.Spec(); err == nil && spec.Hooks != nil {
		st := c.State()
		st.Status = StatusStopped
		if err := runHooks("poststop", spec.Hooks.Poststop, st, false); err != nil {
			c.rt.Log.Warn("poststop hook failed", "id", c.Saved.ID, "error", err)
		}
	}
	trace("destroy: cgroups, hooks done")
	if err := removeStateDir(c.rt.dir(c.Saved.ID)); err != nil {
		errs = append(errs, err)
	}
	trace("destroy: state removed")
	return errors.Join(errs...)
}

// removeStateDir removes the files create makes by name, then the dir;
// only what is left over (an older layout, a stray file) needs RemoveAll's
// read of the directory.
func removeStateDir(dir string) error {
	for _, name := range []string{stateFile, execFifo, execFifoCreating, configFile} {
		unix.Unlink(filepath.Join(dir, name))
	}
	if err := unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return os.RemoveAll(dir)
}

// destroyCgroup removes a stopped container's cgroups. The init's death
// kills the rest of a pid namespace, but those processes take a moment to
// leave the cgroup (and without a pid namespace they may outlive the init),
// and v1 answers EBUSY for a moment even after the last one is reaped: kill
// what is left and retry for a while.
func destroyCgroup(m cgroups.Manager, ownPidNS bool) error {
	if !ownPidNS {
		killCgroup(m)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := m.Destroy()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		killCgroup(m)
		time.Sleep(5 * time.Millisecond)
	}
}

// killCgroup kills what is left in m, never us: the thread that forked an
// init into its cgroups (spawn) is listed under our pid until it has fully
// exited, and a failed create cleans up right then.
func killCgroup(m cgroups.Manager) {
	pids, _ := m.Pids()
	self := os.Getpid()
	for _, pid := range pids {
		if pid != self {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// ownPidNS reports whether the container had a new pid namespace, where the
// init's death kills every other process.
func (c *Container) ownPidNS() bool {
	spec, err := c.Spec()
	return err == nil && spec.Linux != nil && hasNewNS(spec, specs.PIDNamespace)
}

// unmountShared removes the root bind a container without a mount namespace
// left in ours, with every mount under it.
func (c *Container) unmountShared() error {
	if !c.Saved.HostMountNS || c.Saved.Rootfs == "" {
		return nil
	}
	for {
		n, err := mountsAt(c.Saved.Rootfs)
		if err != nil || n <= c.Saved.RootMountsBefore {
			return err
		}
		if err := unix.Unmount(c.Saved.Rootfs, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount container root %s: %w", c.Saved.Rootfs, err)
		}
	}
}

// mountsAt counts the mounts stacked on dir in our mount namespace.
func mountsAt(dir string) (int, error) {
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(dir))
	return len(ms), err
}

// Pause freezes every process of the container.
func (c *Container) Pause() error {
	if st := c.Status(); st != StatusRunning && st != StatusCreated {
		return errdefs.Conflict("container %s is %s, not running", c.Saved.ID, st)
	}
	m, err := c.cgroup()
	if err != nil || m == nil {
		return fmt.Errorf("container %s has no cgroup to freeze: %v", c.Saved.ID, err)
	}
	return m.Freeze()
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if st := c.Status(); st != StatusPaused {
		return errdefs.Conflict("container %s is %s, not paused", c.Saved.ID, st)
	}
	m, err := c.cgroup()
	if err != nil || m == nil {
		return fmt.Errorf("container %s has no cgroup: %v", c.Saved.ID, err)
	}
	return m.Thaw()
}

// Pids lists the host pids of the container's processes.
func (c *Container) Pids() ([]int, error) {
	if c.Status() == StatusStopped {
		return nil, nil
	}
	m, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	if m == nil {
		return []int{c.Saved.Pid}, nil
	}
	return m.Pids()
}

// Stats reads the container's cgroup statistics.
func (c *Container) Stats() (*cgroups.Stats, error) {
	if c.Status() == StatusStopped {
		return nil, errdefs.Conflict("container %s is not running", c.Saved.ID)
	}
	m, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errdefs.NotFound("container %s has no cgroup", c.Saved.ID)
	}
	return m.Stats()
}
