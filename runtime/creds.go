//go:build amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64 || mips64 || mips64le

package runtime

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The init's last credential changes are made for its own thread only: it
// is locked and execs the user's process next, which ends every other
// thread. syscall's Setresuid and friends change every thread of the
// process (through libc in a cgo binary), signalling each in turn. runc's
// init does the same. These are the 32-bit id calls on these architectures.

func setgroupsThread(gids []int) error {
	list := make([]uint32, len(gids))
	for i, g := range gids {
		list[i] = uint32(g)
	}
	var p unsafe.Pointer
	if len(list) > 0 {
		p = unsafe.Pointer(&list[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(list)), uintptr(p), 0); e != 0 {
		return e
	}
	return nil
}

func setresgidThread(gid int) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return e
	}
	return nil
}

func setresuidThread(uid int) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return e
	}
	return nil
}
