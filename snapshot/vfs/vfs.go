// Package vfs is the "vfs" graph driver: every snapshot is a full copy of
// its parent's tree. It works on any file system and needs no kernel
// support; Prepare costs a copy of the whole image (shared blocks where
// the file system can clone: btrfs, xfs).
//
// Layout under the driver root (see snapshot/internal/store):
//
//	snapshots/<id>/fs     the whole tree
//	snapshots/<id>/meta.json
package vfs

import (
	"context"
	"os"
	"path/filepath"

	"berth.dev/berth/snapshot"
	"berth.dev/berth/snapshot/internal/fsutil"
	"berth.dev/berth/snapshot/internal/plain"
)

// Name is the driver's name.
const Name = "vfs"

// New opens (or makes) a vfs driver root, deleting what a crash left half
// made there.
func New(root string) (snapshot.Driver, error) {
	return plain.New(Name, root, backend{})
}

type backend struct{}

func (backend) Make(ctx context.Context, dir, parentDir string) error {
	if parentDir == "" {
		return os.Mkdir(plain.FS(dir), 0o755)
	}
	return fsutil.CopyTree(plain.FS(parentDir), plain.FS(dir))
}

func (backend) Committed(dir string) error { return nil }

func (backend) Destroy(dir string) error { return os.RemoveAll(filepath.Clean(dir)) }
