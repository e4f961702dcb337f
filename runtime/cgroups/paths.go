package cgroups

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// v1Controllers are the v1 hierarchies the library's fs manager knows (its
// paths map uses these names as keys).
var v1Controllers = map[string]bool{
	"cpuset": true, "devices": true, "memory": true, "cpu": true, "cpuacct": true, "pids": true,
	"blkio": true, "hugetlb": true, "net_cls": true, "net_prio": true, "perf_event": true,
	"freezer": true, "rdma": true, "name=systemd": true, "misc": true,
}

// hybridMountpoint is where a hybrid host has its cgroup2 tree.
const hybridMountpoint = "/sys/fs/cgroup/unified"

// absoluteV1Paths resolves an absolute cgroupsPath on a v1 or hybrid host:
// each hierarchy's mount point plus the path, as the library does. It
// reports false for anything but the plain layout (every cgroup mount at
// its hierarchy's root, under /sys/fs/cgroup), which is left to the
// library. The library's resolution stats and parses its way there and
// cost 0.4 ms of CPU per create.
func absoluteV1Paths(cgroupsPath string) (map[string]string, bool) {
	if !filepath.IsAbs(cgroupsPath) {
		return nil, false
	}
	mounts, ok := v1Mounts()
	if !ok {
		return nil, false
	}
	inner := filepath.Clean(cgroupsPath)
	paths := make(map[string]string, len(mounts))
	for k, mnt := range mounts {
		paths[k] = filepath.Join(mnt, inner)
	}
	return paths, true
}

// v1Mounts maps each controller (and "" for a hybrid host's cgroup2 tree)
// to its mount point, found once a process: the mounts of cgroup
// hierarchies do not come and go under a running engine. The plain layout
// is recognised from /proc/self/cgroup and a statfs and stat of each
// hierarchy's usual mount point (statV1Mounts); anything else is read
// from /proc/self/mountinfo, which the kernel writes out mount by mount
// (0.1-0.3 ms here, on a create's path) and whose readers wait for any
// copy of the mount table in progress, such as a spare init's.
var v1Mounts = sync.OnceValues(func() (map[string]string, bool) {
	mode := HostMode()
	if m, ok := statV1Mounts(mode); ok {
		return m, true
	}
	return readV1Mounts(mode)
})

// statV1Mounts finds each hierarchy of /proc/self/cgroup mounted where the
// plain layout has it: /sys/fs/cgroup/ and its controllers as the kernel
// lists them (or the name of a named one), a cgroup file system there
// whose root directory (inode 1 in kernfs) is the mount's, not a
// sub-cgroup bound in place. It reports false at the first hierarchy
// found otherwise, and for a host whose layout mountinfo alone tells.
func statV1Mounts(mode Mode) (map[string]string, bool) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, false
	}
	mounts := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		id, rest, ok1 := strings.Cut(line, ":")
		list, _, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			return nil, false
		}
		if id == "0" {
			if mode == ModeHybrid {
				if !hierarchyRoot(hybridMountpoint, unix.CGROUP2_SUPER_MAGIC) {
					return nil, false
				}
				mounts[""] = hybridMountpoint
			}
			continue
		}
		var known []string
		for _, c := range strings.Split(list, ",") {
			if v1Controllers[c] {
				known = append(known, c)
			}
		}
		if len(known) == 0 {
			continue
		}
		dir := list
		if name, ok := strings.CutPrefix(list, "name="); ok {
			dir = name
		}
		mnt := "/sys/fs/cgroup/" + dir
		if strings.ContainsAny(dir, "/=") || !hierarchyRoot(mnt, unix.CGROUP_SUPER_MAGIC) {
			return nil, false
		}
		for _, c := range known {
			if _, dup := mounts[c]; dup {
				return nil, false
			}
			mounts[c] = mnt
		}
	}
	if mounts["devices"] == "" || (mode == ModeHybrid && mounts[""] == "") {
		return nil, false
	}
	return mounts, true
}

// hierarchyRoot says whether dir is a mount of a cgroup file system of
// type magic at its hierarchy's root.
func hierarchyRoot(dir string, magic int64) bool {
	var fs unix.Statfs_t
	var st unix.Stat_t
	return unix.Statfs(dir, &fs) == nil && fs.Type == magic &&
		unix.Lstat(dir, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Ino == 1
}

// Warm reads the host's cgroup layout ahead of the first New, for a
// process that waits for its work (a spare shim).
func Warm() {
	if HostMode() != ModeV2 {
		v1Mounts()
	}
}

func readV1Mounts(mode Mode) (map[string]string, bool) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, false
	}
	mounts := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		sep := strings.Index(line, " - ")
		if sep < 0 {
			return nil, false
		}
		pre, post := strings.Fields(line[:sep]), strings.Fields(line[sep+3:])
		if len(pre) < 5 || len(post) < 3 {
			return nil, false
		}
		fstype, root, mnt := post[0], pre[3], pre[4]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		// Escaped names, a mount of a sub-cgroup (nested containers) or
		// one elsewhere: the library knows these cases.
		if root != "/" || strings.ContainsRune(mnt, '\\') || !strings.HasPrefix(mnt, "/sys/fs/cgroup/") {
			return nil, false
		}
		if fstype == "cgroup2" {
			if mode == ModeHybrid && mnt == hybridMountpoint {
				mounts[""] = mnt
			}
			continue
		}
		for _, opt := range strings.Split(post[2], ",") {
			if v1Controllers[opt] {
				if _, dup := mounts[opt]; dup {
					return nil, false
				}
				mounts[opt] = mnt
			}
		}
	}
	if sc.Err() != nil || mounts["devices"] == "" {
		return nil, false
	}
	return mounts, true
}
