// Package daemon is berth's engine: the configuration, the image service,
// containers (run through their shims; store and spec in daemon/container),
// the event bus and the jobs every API operation runs as. The HTTP side
// (daemon/server) calls it through small Backend interfaces that each
// router package defines; nothing here knows about HTTP.
package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"berth.dev/berth/daemon/events"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/image"
	"berth.dev/berth/network"
	"berth.dev/berth/registry"
	"berth.dev/berth/shim"
	"berth.dev/berth/shim/inproc"
	"berth.dev/berth/volume"
	"golang.org/x/sys/unix"
)

// Version is berth's version as the API reports it.
var Version = "0.1.0-dev"

// Daemon is the engine.
type Daemon struct {
	cfg    *Config
	id     string
	images *image.Store
	// registry reaches registries for pull, push, search and login.
	registry *registry.Client
	ctrs     *containers
	vols     *volume.Store
	nets     *network.Manager
	// shuttingDown keeps restart policies from acting on exits the
	// shutdown causes.
	shuttingDown atomic.Bool
	events       *events.Bus
	log          *slog.Logger
	started      time.Time
	lock         *os.File     // flock on <data-root>/berth.lock: one daemon per data root
	spares       *shim.Spares // a shim started ahead of the next container start
	mu           sync.RWMutex // guards what Reload changes in cfg
	trashMu      sync.Mutex
	trashClosed  bool
	trashWG      sync.WaitGroup // deletions in the background (trash.go)
}

// New opens the data root and the stores under it. A data root another
// daemon uses is refused at once, naming that daemon's pid.
func New(cfg *Config, log *slog.Logger) (*Daemon, error) {
	if cfg.DataRoot == "" {
		cfg.DataRoot = DefaultDataRoot
	}
	if cfg.ExecRoot == "" {
		cfg.ExecRoot = DefaultExecRoot
	}
	if cfg.DefaultRuntime == "" {
		cfg.DefaultRuntime = DefaultRuntime
	}
	if _, ok := runtimes()[cfg.DefaultRuntime]; !ok {
		return nil, errdefs.Invalid("default runtime %q is not available (have: berth, and runc or crun when installed)", cfg.DefaultRuntime)
	}
	for _, d := range []string{cfg.DataRoot, cfg.ExecRoot} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	reg, err := newRegistryClient(cfg)
	if err != nil {
		return nil, err
	}
	lock, err := lockRoot(cfg.DataRoot)
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, events: events.New(), log: log, started: time.Now(), lock: lock, registry: reg}
	if err := d.mountExecRoot(); err != nil {
		log.Warn("exec root stays on its file system", "error", err)
	}
	if d.id, err = engineID(cfg.DataRoot); err != nil {
		d.unmountExecRoot()
		lock.Close()
		return nil, err
	}
	d.images, err = image.Open(cfg.DataRoot, cfg.StorageDriver)
	if err != nil {
		d.unmountExecRoot()
		lock.Close()
		return nil, fmt.Errorf("open image store in %s: %w", cfg.DataRoot, err)
	}
	d.emptyTrash(cfg.DataRoot)
	d.emptyTrash(cfg.ExecRoot)
	if err := d.openContainers(); err != nil {
		d.images.Close()
		d.unmountExecRoot()
		lock.Close()
		return nil, err
	}
	if err := d.openVolumes(); err != nil {
		d.images.Close()
		d.unmountExecRoot()
		lock.Close()
		return nil, err
	}
	if err := d.openNetworks(); err != nil {
		d.images.Close()
		d.unmountExecRoot()
		lock.Close()
		return nil, err
	}
	if bin, err := shim.DefaultBinary(); err == nil {
		// Spares make their files ahead beside the shims' state dirs; a
		// killed one leaves its directory (.spare-<pid>) there. A spare
		// starts a spare init for berth's own runtime too.
		dir := filepath.Join(cfg.ExecRoot, "containers")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			dir = ""
		} else {
			left, _ := filepath.Glob(filepath.Join(dir, ".spare-*"))
			for _, l := range left {
				_ = os.RemoveAll(l)
			}
		}
		d.spares = shim.NewSparesIn(dir, bin, "--exec-root", cfg.ExecRoot, inproc.SpareRootFlag, d.runtimeRoot())
		d.spares.Deferred = true // startShim refills
	}
	return d, nil
}

func lockRoot(root string) (*os.File, error) {
	p := filepath.Join(root, "berth.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data root: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(p)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errdefs.Conflict("data root %s is in use by another berth daemon (pid %s); stop it or pick another --data-root",
				root, strings.TrimSpace(string(b)))
		}
		return nil, fmt.Errorf("lock data root %s: %w", root, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// engineID is the daemon's ID (docker info's ID), made once per data root.
func engineID(root string) (string, error) {
	p := filepath.Join(root, "engine-id")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(r[:])
	if err := os.WriteFile(p, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write engine id: %w", err)
	}
	return id, nil
}

// Config is the configuration the daemon runs with.
func (d *Daemon) Config() *Config { return d.cfg }

// DriverName is the graph driver in use.
func (d *Daemon) DriverName() string { return d.images.Driver().Name() }

// Events is the daemon's event bus.
func (d *Daemon) Events() *events.Bus { return d.events }

// Reload applies what can change without a restart: the log level (the
// caller's slog.LevelVar) and the labels. It returns the keys that differ
// but need a restart.
func (d *Daemon) Reload(c *Config) (needRestart []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg.LogLevel, d.cfg.Debug = c.LogLevel, c.Debug
	d.cfg.Labels = c.Labels
	if _, ok := runtimes()[c.DefaultRuntime]; ok {
		d.cfg.DefaultRuntime = c.DefaultRuntime
	} else if c.DefaultRuntime != "" {
		needRestart = append(needRestart, "default-runtime (unknown runtime "+c.DefaultRuntime+" ignored)")
	}
	if c.LiveRestore != nil {
		d.cfg.LiveRestore = c.LiveRestore
	}
	// Registry settings apply to the next pull or push, as dockerd's.
	if reg, err := newRegistryClient(c); err != nil {
		needRestart = append(needRestart, "registry settings (not applied: "+err.Error()+")")
	} else {
		d.registry = reg
		d.cfg.RegistryMirrors, d.cfg.InsecureRegistries, d.cfg.CertsDir = c.RegistryMirrors, c.InsecureRegistries, c.CertsDir
		d.cfg.MaxConcurrentDownloads, d.cfg.MaxConcurrentUploads = c.MaxConcurrentDownloads, c.MaxConcurrentUploads
	}
	check := func(key, old, new string) {
		if new != "" && old != new {
			needRestart = append(needRestart, key)
		}
	}
	check("data-root", d.cfg.DataRoot, c.DataRoot)
	check("exec-root", d.cfg.ExecRoot, c.ExecRoot)
	check("storage-driver", d.images.Driver().Name(), c.StorageDriver)
	check("hosts", strings.Join(d.cfg.Hosts, ","), strings.Join(c.Hosts, ","))
	d.events.Publish("daemon", "reload", d.id, map[string]string{"name": hostname()})
	return needRestart
}

// Close closes the event streams and the stores.
func (d *Daemon) Close() error {
	if d.spares != nil {
		d.spares.Close()
	}
	d.events.Close()
	idle := d.closeContainers()
	d.nets.Close()
	d.waitFilesystems()
	d.closeTrash()
	if idle {
		d.unmountExecRoot()
	}
	err := d.images.Close()
	d.lock.Close()
	return err
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
