package rootfs

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// idmapTree makes the detached mount tree t an idmapped mount with the
// mount's uid/gid mappings (containerID hostID size, as in uid_map).
func idmapTree(t int, m specs.Mount, recursive bool) error {
	if len(m.UIDMappings) == 0 || len(m.GIDMappings) == 0 {
		return errors.New("idmapped mount needs both uidMappings and gidMappings")
	}
	ns, err := userNSWith(m.UIDMappings, m.GIDMappings)
	if err != nil {
		return fmt.Errorf("user namespace for idmapped mount: %w", err)
	}
	defer ns.Close()
	flags := uint(unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(t, "", flags, &attr); err != nil {
		return fmt.Errorf("mount_setattr idmap: %w", err)
	}
	return nil
}

// userNSWith returns a user namespace fd holding the given mappings. The
// kernel only hands out user namespaces through processes, so a child is
// started in a new one, traced so it stops at its execve before running any
// code; we write its maps, take its namespace and kill it. Go's own
// UidMappings cannot be used: they go through /proc/<pid>, and before the
// pivot /proc belongs to the host's pid namespace, not ours.
func userNSWith(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	proc, err := privateProc()
	if err != nil {
		return nil, err
	}
	defer proc.Close()
	// ptrace ties the child to the thread that started it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p, err := os.StartProcess("/proc/self/exe", []string{"berth-idmap-holder"}, &os.ProcAttr{
		Sys: &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER, Ptrace: true, Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = p.Kill()
		_, _ = p.Wait()
	}()
	for _, m := range []struct {
		file string
		ids  []specs.LinuxIDMapping
	}{{"uid_map", uids}, {"gid_map", gids}} {
		var b strings.Builder
		for _, id := range m.ids {
			fmt.Fprintf(&b, "%d %d %d\n", id.ContainerID, id.HostID, id.Size)
		}
		if err := writeAt(proc, fmt.Sprintf("%d/%s", p.Pid, m.file), b.String()); err != nil {
			return nil, err
		}
	}
	fd, err := unix.Openat(int(proc.Fd()), fmt.Sprintf("%d/ns/user", p.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open user namespace: %w", err)
	}
	return os.NewFile(uintptr(fd), "userns"), nil
}

func writeAt(dir *os.File, name, data string) error {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// privateProc returns the root of a detached procfs of our own pid
// namespace.
func privateProc() (*os.File, error) {
	fs, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsopen proc: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigCreate(fs); err != nil {
		return nil, fmt.Errorf("create proc: %w", err)
	}
	m, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsmount proc: %w", err)
	}
	return os.NewFile(uintptr(m), "proc"), nil
}
