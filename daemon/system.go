package daemon

import (
	"berth.dev/berth/registry"
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"berth.dev/berth/daemon/backend"
	"berth.dev/berth/daemon/events"
	"berth.dev/berth/daemon/filters"
	eventtypes "github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"
)

// API versions the server speaks. CurrentAPIVersion is the version of the
// github.com/moby/moby/api module in go.mod (a test checks they agree).
const (
	MinAPIVersion     = "1.24"
	CurrentAPIVersion = "1.56"
)

// SystemVersion is GET /version.
func (d *Daemon) SystemVersion(ctx context.Context) system.VersionResponse {
	_ = d.job(ctx, "system.version", false, func(context.Context) error { return nil })
	kernel := kernelVersion()
	return system.VersionResponse{
		Platform: system.PlatformInfo{Name: "berth"},
		Components: []system.ComponentVersion{{Name: "Engine", Version: Version, Details: map[string]string{
			"ApiVersion": CurrentAPIVersion, "MinAPIVersion": MinAPIVersion, "GoVersion": runtime.Version(),
			"Os": runtime.GOOS, "Arch": runtime.GOARCH, "KernelVersion": kernel,
		}}},
		Version: Version, APIVersion: CurrentAPIVersion, MinAPIVersion: MinAPIVersion,
		GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH, KernelVersion: kernel,
	}
}

// SystemInfo is GET /info.
func (d *Daemon) SystemInfo(ctx context.Context) (*system.Info, error) {
	var out *system.Info
	err := d.job(ctx, "system.info", false, func(ctx context.Context) error {
		imgs, err := d.images.List(ctx)
		if err != nil {
			return err
		}
		var si unix.Sysinfo_t
		_ = unix.Sysinfo(&si)
		d.mu.RLock()
		cfg, cfgRegistry := *d.cfg, d.registry
		d.mu.RUnlock()
		out = &system.Info{
			ID: d.id, Images: len(imgs), Driver: d.images.Driver().Name(),
			DriverStatus: [][2]string{{"Backing Filesystem", backingFS(d.cfg.DataRoot)}},
			Plugins:      system.PluginsInfo{Volume: []string{"local"}, Log: []string{"json-file"}},
			MemoryLimit:  true, SwapLimit: true, CPUCfsPeriod: true, CPUCfsQuota: true, CPUShares: true, CPUSet: true, PidsLimit: true,
			Debug: cfg.EffectiveLogLevel() == "debug", NFd: countFDs(), NGoroutines: runtime.NumGoroutine(),
			SystemTime: time.Now().Format(time.RFC3339Nano), LoggingDriver: "json-file",
			CgroupDriver: "cgroupfs", CgroupVersion: cgroupVersion(), NEventsListener: d.events.Listeners(),
			KernelVersion: kernelVersion(), OperatingSystem: osRelease("PRETTY_NAME"), OSVersion: osRelease("VERSION_ID"),
			OSType: runtime.GOOS, Architecture: machine(), NCPU: runtime.NumCPU(),
			MemTotal: int64(si.Totalram) * int64(si.Unit), DockerRootDir: cfg.DataRoot, Name: hostname(),
			Labels: cfg.Labels, ServerVersion: Version, Runtimes: runtimes(), DefaultRuntime: cfg.DefaultRuntime,
			Swarm: swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}, LiveRestoreEnabled: cfg.LiveRestoreEnabled(),
			Isolation: "", SecurityOptions: []string{"name=seccomp,profile=builtin"},
			IndexServerAddress: registry.IndexServer, RegistryConfig: cfgRegistry.ServiceConfig(),
			HTTPProxy: os.Getenv("HTTP_PROXY"), HTTPSProxy: os.Getenv("HTTPS_PROXY"), NoProxy: os.Getenv("NO_PROXY"),
		}
		if out.Labels == nil {
			out.Labels = []string{}
		}
		out.Containers, out.ContainersRunning, out.ContainersPaused, out.ContainersStopped = d.containerCounts()
		return nil
	})
	return out, err
}

// SystemDiskUsage is GET /system/df: images are real; containers, volumes
// and build cache are empty until they exist.
func (d *Daemon) SystemDiskUsage(ctx context.Context) (*backend.DiskUsage, error) {
	out := &backend.DiskUsage{}
	err := d.job(ctx, "system.df", false, func(ctx context.Context) error {
		d.waitFilesystems() // the layers of --rm containers just gone
		usage, err := d.images.DiskUsage(ctx)
		if err != nil {
			return err
		}
		imgs, err := d.images.List(ctx)
		if err != nil {
			return err
		}
		byID := map[string]*imagetypesSummary{}
		for _, img := range imgs {
			s := summary(img)
			byID[img.ID.String()] = &s
		}
		iu := &imagetypes.DiskUsage{}
		for _, u := range usage {
			s := byID[u.ID]
			if s == nil {
				continue
			}
			s.SharedSize, s.Containers = u.SharedSize, int64(u.Containers)
			out.Images = append(out.Images, *s)
			iu.TotalCount++
			if u.Containers > 0 {
				iu.ActiveCount++
			} else {
				iu.Reclaimable += u.Size - u.SharedSize
			}
		}
		if out.LayersSize, err = d.layersSize(); err != nil {
			return err
		}
		iu.TotalSize = out.LayersSize
		iu.Items = out.Images
		out.ImageUsage = iu
		out.Containers, out.Container = d.containersDiskUsage(ctx)
		out.Volumes, out.Volume = d.volumesDiskUsage()
		return nil
	})
	return out, err
}

type imagetypesSummary = imagetypes.Summary

// SubscribeToEvents returns past events in [since, until] matching f and a
// channel of future ones; cancel ends the subscription.
func (d *Daemon) SubscribeToEvents(since, until time.Time, f filters.Args) ([]eventtypes.Message, <-chan eventtypes.Message, func()) {
	past, ch, cancel := d.events.Subscribe(since)
	var keep []eventtypes.Message
	for _, m := range past {
		if (until.IsZero() || m.TimeNano <= until.UnixNano()) && events.Match(f, m) {
			keep = append(keep, m)
		}
	}
	return keep, ch, cancel
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func machine() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return runtime.GOARCH
	}
	return unix.ByteSliceToString(u.Machine[:])
}

func osRelease(key string) string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && k == key {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

func cgroupVersion() string {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "2"
	}
	return "1"
}

// backingFS names the file system under the data root, as docker info shows it.
func backingFS(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return "unknown"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return "unknown"
}

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// runtimes lists berth's own runtime and runc/crun when installed.
func runtimes() map[string]system.RuntimeWithStatus {
	out := map[string]system.RuntimeWithStatus{}
	if exe, err := os.Executable(); err == nil {
		out["berth"] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: exe, Args: []string{"runtime"}}}
	}
	for _, n := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(n); err == nil {
			out[n] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: p}}
		}
	}
	return out
}
