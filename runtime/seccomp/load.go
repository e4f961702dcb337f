package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Load installs the filter on the calling thread (all threads with
// SECCOMP_FILTER_FLAG_TSYNC). The caller has set no_new_privs or holds
// CAP_SYS_ADMIN, and has locked its OS thread. If an action is
// SCMP_ACT_NOTIFY it returns the listener fd, else -1.
func (f *Filter) Load() (int, error) {
	if len(f.prog) == 0 {
		return -1, errors.New("empty seccomp filter")
	}
	flags := uintptr(f.flags)
	if f.listener {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
		if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 {
			// TSYNC reports a failing thread id in the return value, which
			// NEW_LISTENER uses for the fd; ESRCH makes the kernel say it by errno.
			flags |= flagTsyncESRCH
		}
	} else {
		// The kernel accepts it only together with NEW_LISTENER.
		flags &^= flagWaitKillableRecv
	}
	prog := unix.SockFprog{Len: uint16(len(f.prog)), Filter: &f.prog[0]}
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(f)
	if errno == unix.ENOSYS && flags == 0 {
		// Kernels before 3.17 have only the prctl interface.
		_, _, errno = unix.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0, 0)
		runtime.KeepAlive(f)
		r = 0
	}
	if errno != 0 {
		return -1, fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, %#x): %w", flags, errno)
	}
	if f.listener {
		return int(r), nil
	}
	if r != 0 {
		return -1, fmt.Errorf("seccomp: thread %d could not be synchronized", r)
	}
	return -1, nil
}

// SendListener hands the notify listener fd to the agent listening on the
// unix socket listenerPath, as the runtime spec says: one message whose
// SCM_RIGHTS carries the fd and whose payload is the ContainerProcessState
// JSON naming it "seccompFd". st.Pid is the container process as the
// runtime sees it.
func SendListener(listenerPath string, fd int, metadata string, st specs.State) error {
	msg, err := json.Marshal(specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      st.Pid,
		Metadata: metadata,
		State:    st,
	})
	if err != nil {
		return err
	}
	// Plain syscalls, not package net: the init runs this under the filter
	// just loaded, and the netpoller would need more syscalls allowed.
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(sock)
	if err := unix.Connect(sock, &unix.SockaddrUnix{Name: listenerPath}); err != nil {
		return fmt.Errorf("connect %s: %w", listenerPath, err)
	}
	n, err := unix.SendmsgN(sock, msg, unix.UnixRights(fd), nil, 0)
	if err != nil {
		return fmt.Errorf("send to %s: %w", listenerPath, err)
	}
	if n != len(msg) {
		return fmt.Errorf("send to %s: short write", listenerPath)
	}
	return nil
}
