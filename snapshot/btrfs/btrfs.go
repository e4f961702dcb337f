// Package btrfs is the "btrfs" graph driver: every snapshot is a btrfs
// subvolume; Prepare on a parent is a (constant-time, copy-on-write)
// snapshot of the parent's subvolume and Commit makes the subvolume
// read-only. All through ioctls, no btrfs-progs.
//
// Layout under the driver root, which must be on btrfs (see
// snapshot/internal/store):
//
//	snapshots/<id>/fs     the subvolume
//	snapshots/<id>/meta.json
package btrfs

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/snapshot"
	"berth.dev/berth/snapshot/internal/plain"
)

// Name is the driver's name.
const Name = "btrfs"

// Supported says whether root is on btrfs.
func Supported(root string) error {
	var sfs unix.Statfs_t
	if err := unix.Statfs(root, &sfs); err != nil {
		return fmt.Errorf("btrfs: statfs %s: %w", root, err)
	}
	if sfs.Type != unix.BTRFS_SUPER_MAGIC {
		return errdefs.Unavailable("btrfs: %s is not on a btrfs file system (magic %#x)", root, sfs.Type)
	}
	return nil
}

// New opens (or makes) a btrfs driver root, deleting what a crash left
// half made there.
func New(root string) (snapshot.Driver, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("btrfs: %w", err)
	}
	if err := Supported(root); err != nil {
		return nil, err
	}
	return plain.New(Name, root, backend{})
}

type backend struct{}

func (backend) Make(ctx context.Context, dir, parentDir string) error {
	if parentDir == "" {
		return subvolCreate(plain.FS(dir))
	}
	return snapCreate(plain.FS(parentDir), plain.FS(dir))
}

func (backend) Committed(dir string) error { return setReadOnly(plain.FS(dir)) }

// Destroy deletes the subvolume, then the directory around it.
func (backend) Destroy(dir string) error {
	fs := plain.FS(dir)
	sub, err := isSubvolume(fs)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case sub:
		if err := subvolDestroy(fs); err != nil {
			return err
		}
	}
	return os.RemoveAll(dir)
}
