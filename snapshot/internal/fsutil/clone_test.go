package fsutil

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"berth.dev/berth/internal/testutil"
	"berth.dev/berth/snapshot/internal/btrfstest"
)

// fiemap asks for the first extents of a file (FS_IOC_FIEMAP, synced).
type fiemap struct {
	start, length                           uint64
	flags, mappedExtents, extentCount, resv uint32
	extents                                 [8]struct {
		logical, physical, length uint64
		resv64                    [2]uint64
		flags                     uint32
		resv                      [3]uint32
	}
}

const (
	fsIocFiemap       = 0xc020660b
	fiemapFlagSync    = 0x1
	fiemapExtentShare = 0x2000
)

func shared(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fm := fiemap{length: ^uint64(0), flags: fiemapFlagSync, extentCount: 8}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&fm))); e != 0 {
		t.Fatalf("fiemap %s: %v", path, e)
	}
	if fm.mappedExtents == 0 {
		t.Fatalf("%s has no extents", path)
	}
	for i := range min(int(fm.mappedExtents), len(fm.extents)) {
		if fm.extents[i].flags&fiemapExtentShare == 0 {
			return false
		}
	}
	return true
}

// TestCopyTreeClones checks that on btrfs the copy shares its data blocks
// with the source instead of writing them again.
func TestCopyTreeClones(t *testing.T) {
	testutil.RequireRoot(t)
	mnt := btrfstest.Mount(t, 256<<20)
	src := filepath.Join(mnt, "src")
	must(t, os.Mkdir(src, 0o755))
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	must(t, os.WriteFile(filepath.Join(src, "big"), data, 0o644))
	if shared(t, filepath.Join(src, "big")) {
		t.Fatal("a fresh file's extents are shared already: the check checks nothing")
	}
	must(t, CopyTree(src, filepath.Join(mnt, "dst")))
	if !shared(t, filepath.Join(mnt, "dst", "big")) {
		t.Error("the copy on btrfs does not share the source's extents: it wrote the data again")
	}
	got, err := os.ReadFile(filepath.Join(mnt, "dst", "big"))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("cloned content differs: %v", err)
	}
}
