package cgroups

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
// to its mount point, from one read of /proc/self/mountinfo a process:
// the mounts of cgroup hierarchies do not come and go under a running
// engine, and a shim reading mountinfo during a create waited for the
// init's copy of the mount table (one lock) for up to 0.6 ms.
var v1Mounts = sync.OnceValues(func() (map[string]string, bool) {
	return readV1Mounts(HostMode())
})

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
