package rootfs

import (
	"bytes"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// statmount(2) and listmount(2) (Linux 6.8+, mount options 6.11+) describe
// single mounts without the kernel rendering, and us parsing, the whole
// of /proc/self/mountinfo: finding the cgroup hierarchies below
// /sys/fs/cgroup this way is several times cheaper.

type mntIDReq struct {
	size  uint32
	spare uint32
	mntID uint64
	param uint64
}

const (
	statmountMntRoot  = 0x08
	statmountMntPoint = 0x10
	statmountFsType   = 0x20
	statmountMntOpts  = 0x80
	// statmountHeader is sizeof(struct statmount): its string offsets
	// are relative to the end of it.
	statmountHeader = 512
)

// noStatmount is set once statmount or listmount returned ENOSYS.
var noStatmount atomic.Bool

func listmount(id uint64, ids []uint64) (int, error) {
	req := mntIDReq{size: uint32(unsafe.Sizeof(mntIDReq{})), mntID: id}
	n, _, e := unix.Syscall6(unix.SYS_LISTMOUNT, uintptr(unsafe.Pointer(&req)), uintptr(unsafe.Pointer(&ids[0])), uintptr(len(ids)), 0, 0, 0)
	if e != 0 {
		if e == unix.ENOSYS {
			noStatmount.Store(true)
		}
		return 0, e
	}
	return int(n), nil
}

// statmount fills buf for mount id and returns the mask of what it got.
func statmount(id, mask uint64, buf []byte) (uint64, error) {
	req := mntIDReq{size: uint32(unsafe.Sizeof(mntIDReq{})), mntID: id, param: mask}
	_, _, e := unix.Syscall6(unix.SYS_STATMOUNT, uintptr(unsafe.Pointer(&req)), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0, 0)
	if e != 0 {
		if e == unix.ENOSYS {
			noStatmount.Store(true)
		}
		return 0, e
	}
	return *(*uint64)(unsafe.Pointer(&buf[8])), nil
}

// statmountString is the string whose offset is the u32 at off in buf.
func statmountString(buf []byte, off int) string {
	s := buf[statmountHeader+int(*(*uint32)(unsafe.Pointer(&buf[off]))):]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return string(s)
}

// Offsets in struct statmount.
const (
	smMntOpts  = 4
	smFsType   = 36
	smMntRoot  = 104
	smMntPoint = 108
)

// sysCgroupMounts lists the cgroup mounts at /sys/fs/cgroup (a cgroup2
// mount there, or those on the tmpfs there) through statmount, in mount
// order. ok is false when the kernel cannot tell, or the hierarchies found
// do not cover every one this process is in (own): the caller then reads
// mountinfo.
func sysCgroupMounts(root string, own map[string]string) (out []*mountinfo.Info, ok bool) {
	const dir = "/sys/fs/cgroup"
	if noStatmount.Load() || root == "/" || strings.HasPrefix(dir+"/", root+"/") {
		return nil, false
	}
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, 0, unix.STATX_MNT_ID_UNIQUE, &stx); err != nil || stx.Mask&unix.STATX_MNT_ID_UNIQUE == 0 {
		return nil, false
	}
	buf := make([]byte, 4096)
	const want = statmountMntRoot | statmountMntPoint | statmountFsType | statmountMntOpts
	info := func(id uint64) (*mountinfo.Info, bool) {
		mask, err := statmount(id, want, buf)
		if err != nil || mask&(statmountMntRoot|statmountMntPoint|statmountFsType) != statmountMntRoot|statmountMntPoint|statmountFsType {
			return nil, false
		}
		m := &mountinfo.Info{FSType: statmountString(buf, smFsType)}
		if m.FSType != "cgroup" && m.FSType != "cgroup2" {
			return m, true
		}
		m.Mountpoint = statmountString(buf, smMntPoint)
		m.Root = statmountString(buf, smMntRoot)
		if mask&statmountMntOpts != 0 {
			m.VFSOptions = statmountString(buf, smMntOpts)
		} else if m.FSType == "cgroup" {
			return nil, false // a v1 hierarchy needs its controllers
		}
		return m, true
	}
	top, good := info(stx.Mnt_id)
	if !good {
		return nil, false
	}
	if top.FSType == "cgroup2" {
		out = []*mountinfo.Info{top}
	} else {
		ids := make([]uint64, 64)
		n, err := listmount(stx.Mnt_id, ids)
		if err != nil || n == len(ids) {
			return nil, false
		}
		seen := map[string]bool{}
		for _, id := range ids[:n] {
			m, good := info(id)
			if !good {
				return nil, false
			}
			if m.FSType != "cgroup" && m.FSType != "cgroup2" {
				continue
			}
			k := cgroupKey(m)
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, m)
		}
	}
	found := map[string]bool{}
	for _, m := range out {
		if m.Mountpoint == root || strings.HasPrefix(m.Mountpoint, root+"/") {
			return nil, false
		}
		found[cgroupKey(m)] = true
	}
	for k := range own {
		if !found[k] {
			return nil, false
		}
	}
	return out, len(out) > 0
}
