package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// execRootSource names the tmpfs the daemon mounts on its exec root, so
// that Close unmounts only its own (mountinfo shows it as the source).
const execRootSource = "berth-exec"

// mountExecRoot puts a tmpfs on the exec root when the directory is on a
// disk file system and empty. Everything there lasts one boot at most
// (shim sockets, pids and exit records, bundles, the runtime's state), as
// /run's tmpfs gives on most hosts; a start creates and deletes some
// fifteen files there. On a disk that costs more than the rest of their
// work: ext4 without a journal (this kind of VM's root file system) skips
// inodes freed in the last seconds when it allocates one, so under a run
// of starts each file costs 0.1-0.2 ms of CPU (2-3 ms a start, measured)
// where tmpfs takes microseconds. A directory with anything in it is left
// as it is: it may hold the state of containers that are running.
func (d *Daemon) mountExecRoot() error {
	dir := d.cfg.ExecRoot
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("exec root %s: %w", dir, err)
	}
	if st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC {
		return nil
	}
	if empty, err := emptyDir(dir); err != nil || !empty {
		if err == nil {
			d.log.Info("exec root is on a disk file system and not empty: keeping it there", "dir", dir)
		}
		return err
	}
	if err := unix.Mount(execRootSource, dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=711"); err != nil {
		return fmt.Errorf("mount a tmpfs on the exec root %s: %w", dir, err)
	}
	// Not a peer of the host's mounts: nothing under it is for other
	// mount namespaces to see.
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
		unix.Unmount(dir, unix.MNT_DETACH)
		return fmt.Errorf("make the exec root %s private: %w", dir, err)
	}
	return nil
}

// unmountExecRoot takes the daemon's tmpfs off the exec root once no
// container runs: nothing in it is needed by a daemon started later.
func (d *Daemon) unmountExecRoot() {
	dir := d.cfg.ExecRoot
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(dir))
	if err != nil || len(ms) == 0 {
		return
	}
	if m := ms[len(ms)-1]; m.FSType != "tmpfs" || m.Source != execRootSource {
		return // the host's (or its admin's) mount
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		d.log.Warn("unmount the exec root", "dir", dir, "error", err)
	}
}

func emptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err != nil {
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		return false, err
	}
	return false, nil
}
