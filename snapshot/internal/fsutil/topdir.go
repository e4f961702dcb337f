package fsutil

import (
	"golang.org/x/sys/unix"
)

// MarkTopDir sets FS_TOPDIR_FL on dir (chattr +T): ext2/3/4's Orlov
// allocator then spreads the directories made in it over the block groups
// with the most free inodes and blocks, as it does at the root, rather than
// keeping them near dir. Snapshots are unrelated trees, and on ext4 without
// a journal an inode freed less than 60 s ago is skipped by a rescan of
// its group at every create: a layer extracted into the groups another
// layer was just deleted from pays that scan for each of its files.
// File systems without the flag refuse or ignore it; that is no error.
func MarkTopDir(dir string) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsTopDirFL != 0 {
		return
	}
	_ = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|fsTopDirFL))
}

// fsTopDirFL is linux/fs.h's FS_TOPDIR_FL.
const fsTopDirFL = 0x20000
