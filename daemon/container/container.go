// Package container is the daemon's container store: one record per
// container in <data-root>/containers/<id>/config.v2.json (written
// atomically), unique names, the state machine (created, running, exited,
// ...), and the OCI spec and /etc files made from a container's
// configuration. It runs nothing: the daemon drives containers through
// their shims.
package container

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"berth.dev/berth/network"
	containertypes "github.com/moby/moby/api/types/container"
	nettypes "github.com/moby/moby/api/types/network"
)

// Statuses, as docker names them.
const (
	StatusCreated    = "created"
	StatusRunning    = "running"
	StatusPaused     = "paused"
	StatusRestarting = "restarting"
	StatusRemoving   = "removing"
	StatusExited     = "exited"
	StatusDead       = "dead"
)

// ConfigName is the record's file name inside the container's directory.
const ConfigName = "config.v2.json"

// State is a container's run state.
type State struct {
	Status     string
	Pid        int
	ExitCode   int
	StartedAt  time.Time
	FinishedAt time.Time
	Error      string
	OOMKilled  bool
	// Health is the health check's state (nil without one); it outlives
	// a stop and a daemon restart, as docker's does.
	Health *containertypes.Health `json:",omitempty"`
}

// Container is one container's record. Its mutex guards every field; the
// daemon holds it while reading or changing state.
type Container struct {
	mu sync.Mutex

	ID           string
	Name         string // with docker's leading "/"
	Created      time.Time
	Image        string // image ID, sha256:...
	Config       *containertypes.Config
	HostConfig   *containertypes.HostConfig
	State        State
	Path         string
	Args         []string
	LogPath      string
	Driver       string
	RestartCount int
	// HasBeenStarted tells a never-started container from a stopped one.
	HasBeenStarted bool
	// ManuallyStopped (stop, kill) keeps the restart policy from acting
	// until the next start through the API.
	ManuallyStopped bool
	// MountPoints are the volumes it mounts (volumes.go).
	MountPoints []MountPoint `json:",omitempty"`
	// InheritedBinds are the host binds --volumes-from gave it.
	InheritedBinds []InheritedBind `json:",omitempty"`
	// Networks are the networks it is on, by name, with docker's endpoint
	// settings: what was asked (aliases, static addresses, MAC) and,
	// while it runs, what it got.
	Networks map[string]*nettypes.EndpointSettings `json:",omitempty"`
	// Endpoints are its endpoints on bridge networks while it runs, by
	// network ID: what the daemon takes back after a restart.
	Endpoints map[string]*network.Endpoint `json:",omitempty"`
	// Ports are the ports published while it runs.
	Ports nettypes.PortMap `json:",omitempty"`

	dir     string        // <data-root>/containers/<id>
	changed chan struct{} // closed and replaced on every state change
	exits   int           // exits seen since load, for next-exit waits
	removed bool
}

// NewID returns a random 64-hex container ID.
func NewID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// IsID says whether s has the form of a container ID (NewID's).
func IsID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// Lock locks the record.
func (c *Container) Lock() { c.mu.Lock() }

// Unlock unlocks the record.
func (c *Container) Unlock() { c.mu.Unlock() }

// Dir is the container's directory under the data root.
func (c *Container) Dir() string { return c.dir }

// RootfsPath is where the container's file system is mounted.
func (c *Container) RootfsPath() string { return filepath.Join(c.dir, "rootfs") }

// HostnamePath, HostsPath and ResolvConfPath are the files bind-mounted at
// /etc/hostname, /etc/hosts and /etc/resolv.conf.
func (c *Container) HostnamePath() string   { return filepath.Join(c.dir, "hostname") }
func (c *Container) HostsPath() string      { return filepath.Join(c.dir, "hosts") }
func (c *Container) ResolvConfPath() string { return filepath.Join(c.dir, "resolv.conf") }

// Running says whether the container's process runs (paused counts).
func (c *Container) Running() bool {
	return c.State.Status == StatusRunning || c.State.Status == StatusPaused || c.State.Status == StatusRestarting
}

// SetRunning records a start. Callers hold the lock.
func (c *Container) SetRunning(pid int, at time.Time) {
	c.State = State{Status: StatusRunning, Pid: pid, StartedAt: at, Health: c.State.Health}
	c.HasBeenStarted = true
	c.notify()
}

// SetExited records an exit. Callers hold the lock.
func (c *Container) SetExited(code int, at time.Time, errMsg string) {
	c.State.Status = StatusExited
	c.State.Pid = 0
	c.State.ExitCode = code
	c.State.FinishedAt = at
	c.State.Error = errMsg
	c.exits++
	c.notify()
}

// SetStatus sets a status without an exit (removing, dead). Callers hold
// the lock.
func (c *Container) SetStatus(s string) {
	c.State.Status = s
	c.notify()
}

// SetRemoved marks the record gone for waiters. Callers hold the lock.
func (c *Container) SetRemoved() {
	c.removed = true
	c.notify()
}

func (c *Container) notify() {
	if c.changed != nil {
		close(c.changed)
	}
	c.changed = make(chan struct{})
}

// ShouldRestart applies the restart policy to the exit just recorded.
// Callers hold the lock.
func (c *Container) ShouldRestart() bool {
	if c.ManuallyStopped || c.removed || c.HostConfig == nil {
		return false
	}
	rp := c.HostConfig.RestartPolicy
	switch rp.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return c.State.ExitCode != 0 && (rp.MaximumRetryCount == 0 || c.RestartCount < rp.MaximumRetryCount)
	}
	return false
}

// Removed says whether the record is gone. Callers hold the lock.
func (c *Container) Removed() bool { return c.removed }

// Watch returns a channel closed at the next state change, the number of
// exits so far and whether the record is removed. Callers hold the lock.
func (c *Container) Watch() (changed <-chan struct{}, exits int, removed bool) {
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return c.changed, c.exits, c.removed
}

// save writes the record atomically (temp file, fsync, rename). Callers
// hold the lock.
func (c *Container) save() error { return c.write(true) }

func (c *Container) write(sync bool) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("container %s: encode: %w", c.ID, err)
	}
	p := filepath.Join(c.dir, ConfigName)
	f, err := os.CreateTemp(c.dir, ".config-*")
	if err != nil {
		return fmt.Errorf("container %s: save: %w", c.ID, err)
	}
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("container %s: save: %w", c.ID, err)
	}
	return nil
}

// Save writes the record. Callers hold the lock.
func (c *Container) Save() error { return c.save() }

// SaveLazy writes the record without waiting for the disk (still atomic).
// It is for the running state: a daemon that dies still leaves the write
// in the page cache for the next one, and after an OS crash no shim runs
// anyway, so the fsync (about 2 ms here, on every start's critical path)
// would protect nothing.
func (c *Container) SaveLazy() error { return c.write(false) }
