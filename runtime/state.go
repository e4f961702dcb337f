package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/runtime/cgroups"
)

// The files of a container's state directory.
const (
	stateFile = "state.json"
	// The exec fifo is made under the first name and renamed to the
	// second when the init is ready: the names say creating and created,
	// without another write of the state file; start removes it.
	execFifoCreating = "exec.fifo.creating"
	execFifo         = "exec.fifo"
	// configFile held the spec before Saved.Spec did; still read.
	configFile = "config.json"
)

// Status values beyond the spec's four: paused is what runc reports too.
const (
	StatusCreating = specs.StateCreating
	StatusCreated  = specs.StateCreated
	StatusRunning  = specs.StateRunning
	StatusStopped  = specs.StateStopped
	StatusPaused   = specs.ContainerState("paused")
)

// Saved is what a container's state.json holds: the spec's state plus what a
// later call needs to find and manage the container.
type Saved struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Pid         int               `json:"pid"`
	StartTime   uint64            `json:"init_start_time"` // /proc/<pid>/stat field 22, to detect pid reuse
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Cgroup      *cgroups.State    `json:"cgroup,omitempty"`
	// Namespaces the container has, with the path an exec joins for each.
	Namespaces []specs.LinuxNamespace `json:"namespaces,omitempty"`
	// HostMountNS: the container shares our mount namespace, so its root
	// bind (and every mount under it) is ours to unmount at delete.
	HostMountNS bool `json:"host_mount_ns,omitempty"`
	// RootMountsBefore is how many mounts were on the root before ours.
	RootMountsBefore int `json:"root_mounts_before,omitempty"`
	// Status is the status when the file was written; the live status is
	// derived (Status).
	Status specs.ContainerState `json:"status"`
	// Spec is the spec as created (config.json's bytes as read, or the
	// spec given encoded; Container.Spec makes its root absolute), for
	// exec, delete and hooks; kept raw so that loading the state does not
	// decode it.
	Spec json.RawMessage `json:"spec,omitempty"`
}

// Container is a handle on one container's state.
type Container struct {
	rt    *Runtime
	Saved Saved
	spec  *specs.Spec // Saved.Spec decoded, once
}

// Load finds the container id.
func (r *Runtime) Load(id string) (*Container, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(r.dir(id), stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errdefs.NotFound("container %q does not exist", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	c := &Container{rt: r}
	if err := json.Unmarshal(b, &c.Saved); err != nil {
		return nil, fmt.Errorf("corrupt state of %s: %w", id, err)
	}
	return c, nil
}

// List returns every container under the root.
func (r *Runtime) List() ([]*Container, error) {
	ents, err := os.ReadDir(r.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []*Container
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		c, err := r.Load(e.Name())
		if err != nil {
			continue // a directory being created or removed right now
		}
		out = append(out, c)
	}
	return out, nil
}

func (c *Container) save() error {
	b, err := json.Marshal(&c.Saved)
	if err != nil {
		return err
	}
	dir := c.rt.dir(c.Saved.ID)
	tmp, err := os.CreateTemp(dir, ".state-")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, stateFile))
}

// ID is the container's id.
func (c *Container) ID() string { return c.Saved.ID }

// Status derives the live status from the init process, the exec fifo and the
// freezer.
func (c *Container) Status() specs.ContainerState {
	if !c.initAlive() {
		return StatusStopped
	}
	dir := c.rt.dir(c.Saved.ID)
	if _, err := os.Lstat(filepath.Join(dir, execFifo)); err == nil {
		return StatusCreated
	}
	if _, err := os.Lstat(filepath.Join(dir, execFifoCreating)); err == nil {
		return StatusCreating
	}
	if m, err := c.cgroup(); err == nil && m != nil {
		if frozen, _ := m.Frozen(); frozen {
			return StatusPaused
		}
	}
	return StatusRunning
}

// initAlive reports whether the init process still runs: the pid exists, is
// not a zombie, and started when ours did.
func (c *Container) initAlive() bool {
	if c.Saved.Pid <= 0 {
		return false
	}
	st, state, err := procStartTime(c.Saved.Pid)
	if err != nil || state == 'Z' || state == 'X' {
		return false
	}
	return c.Saved.StartTime == 0 || st == c.Saved.StartTime
}

// State is the runtime spec's state of the container.
func (c *Container) State() specs.State {
	st := c.Status()
	pid := c.Saved.Pid
	if st == StatusStopped {
		pid = 0
	}
	if st == StatusPaused {
		// The spec knows four states; paused is a running container.
		st = StatusRunning
	}
	return specs.State{
		Version:     specs.Version,
		ID:          c.Saved.ID,
		Status:      st,
		Pid:         pid,
		Bundle:      c.Saved.Bundle,
		Annotations: c.Saved.Annotations,
	}
}

// procStartTime returns field 22 (starttime) and field 3 (state) of /proc/pid/stat.
func procStartTime(pid int) (uint64, byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: skip to the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	return st, f[0][0], err
}

func (c *Container) cgroup() (cgroups.Manager, error) {
	if c.Saved.Cgroup == nil {
		return nil, nil
	}
	return cgroups.Load(*c.Saved.Cgroup)
}

// signal sends sig to the init, refusing a pid that was reused. The pidfd
// pins the process between the check and the signal.
func (c *Container) signal(sig syscall.Signal) error {
	pidfd, err := unix.PidfdOpen(c.Saved.Pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return errdefs.Conflict("container %s is not running", c.Saved.ID)
		}
		return fmt.Errorf("open init process: %w", err)
	}
	defer unix.Close(pidfd)
	if !c.initAlive() {
		return errdefs.Conflict("container %s is not running", c.Saved.ID)
	}
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal container %s: %w", c.Saved.ID, err)
	}
	return nil
}
