package btrfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// From linux/btrfs.h. Both argument structs are 4096 bytes.
const (
	iocSubvolCreate  = 0x5000940e // _IOW(0x94, 14, struct btrfs_ioctl_vol_args)
	iocSnapDestroy   = 0x5000940f // _IOW(0x94, 15, struct btrfs_ioctl_vol_args)
	iocSnapCreateV2  = 0x50009417 // _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)
	iocSubvolGetflag = 0x80089419 // _IOR(0x94, 25, __u64)
	iocSubvolSetflag = 0x4008941a // _IOW(0x94, 26, __u64)

	subvolRdonly = 1 << 1 // BTRFS_SUBVOL_RDONLY

	// firstFreeObjectID is the inode number of every subvolume's root
	// directory (BTRFS_FIRST_FREE_OBJECTID).
	firstFreeObjectID = 256

	nameMax = 4039 // BTRFS_SUBVOL_NAME_MAX
)

type volArgs struct {
	fd   int64
	name [4088]byte
}

type volArgsV2 struct {
	fd      int64
	transid uint64
	flags   uint64
	unused  [4]uint64
	name    [4040]byte
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

func openDir(path string) (int, error) {
	return unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

func setName(dst []byte, name string) error {
	if len(name) > nameMax || len(name) >= len(dst) {
		return fmt.Errorf("subvolume name %q too long", name)
	}
	copy(dst, name)
	return nil
}

// subvolCreate makes an empty subvolume at path.
func subvolCreate(path string) error {
	dfd, err := openDir(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	var args volArgs
	if err := setName(args.name[:], filepath.Base(path)); err != nil {
		return err
	}
	if err := ioctl(dfd, iocSubvolCreate, unsafe.Pointer(&args)); err != nil {
		return fmt.Errorf("create subvolume %s: %w", path, err)
	}
	return nil
}

// snapCreate makes a writable snapshot of subvolume src at dst.
func snapCreate(src, dst string) error {
	sfd, err := openDir(src)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	dfd, err := openDir(filepath.Dir(dst))
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	args := volArgsV2{fd: int64(sfd)}
	if err := setName(args.name[:], filepath.Base(dst)); err != nil {
		return err
	}
	if err := ioctl(dfd, iocSnapCreateV2, unsafe.Pointer(&args)); err != nil {
		return fmt.Errorf("snapshot %s to %s: %w", src, dst, err)
	}
	return nil
}

// setReadOnly sets the read-only flag of subvolume path.
func setReadOnly(path string) error {
	fd, err := openDir(path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var flags uint64
	if err := ioctl(fd, iocSubvolGetflag, unsafe.Pointer(&flags)); err != nil {
		return fmt.Errorf("get flags of %s: %w", path, err)
	}
	if flags&subvolRdonly != 0 {
		return nil
	}
	flags |= subvolRdonly
	if err := ioctl(fd, iocSubvolSetflag, unsafe.Pointer(&flags)); err != nil {
		return fmt.Errorf("make %s read-only: %w", path, err)
	}
	return nil
}

// isReadOnly reports the read-only flag of subvolume path.
func isReadOnly(path string) (bool, error) {
	fd, err := openDir(path)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	var flags uint64
	if err := ioctl(fd, iocSubvolGetflag, unsafe.Pointer(&flags)); err != nil {
		return false, err
	}
	return flags&subvolRdonly != 0, nil
}

func isSubvolume(path string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return false, err
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Ino == firstFreeObjectID, nil
}

// subvolDestroy deletes subvolume path and any subvolumes made inside it
// (a container may make its own).
func subvolDestroy(path string) error {
	dfd, err := openDir(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	var args volArgs
	if err := setName(args.name[:], filepath.Base(path)); err != nil {
		return err
	}
	err = ioctl(dfd, iocSnapDestroy, unsafe.Pointer(&args))
	if errors.Is(err, unix.ENOTEMPTY) {
		if err := clearReadOnly(path); err != nil {
			return fmt.Errorf("make %s writable: %w", path, err)
		}
		if err := destroyNested(path); err != nil {
			return err
		}
		err = ioctl(dfd, iocSnapDestroy, unsafe.Pointer(&args))
	}
	if err != nil {
		return fmt.Errorf("delete subvolume %s: %w", path, err)
	}
	return nil
}

// destroyNested finds the subvolumes below path (their roots have inode
// 256) and deletes them, deepest first. A read-only one is made writable
// first: a parent subvolume cannot lose entries while read-only.
func destroyNested(path string) error {
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(path, e.Name())
		sub, err := isSubvolume(p)
		if err != nil {
			return err
		}
		if sub {
			if err := subvolDestroy(p); err != nil {
				return err
			}
			continue
		}
		if err := destroyNested(p); err != nil {
			return err
		}
	}
	return nil
}

// clearReadOnly clears the read-only flag of subvolume path.
func clearReadOnly(path string) error {
	fd, err := openDir(path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var flags uint64
	if err := ioctl(fd, iocSubvolGetflag, unsafe.Pointer(&flags)); err != nil {
		return err
	}
	if flags&subvolRdonly == 0 {
		return nil
	}
	flags &^= subvolRdonly
	return ioctl(fd, iocSubvolSetflag, unsafe.Pointer(&flags))
}
