package fsutil

import (
	"context"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Usage is disk usage of a set of inodes.
type Usage struct {
	Size   int64 // bytes of allocated blocks (st_blocks*512)
	Inodes int64
}

// Add counts one inode, once however many links it has (seen tracks them).
func (u *Usage) Add(st *unix.Stat_t, seen map[[2]uint64]bool) {
	if st.Nlink > 1 && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		id := [2]uint64{st.Dev, st.Ino}
		if seen[id] {
			return
		}
		seen[id] = true
	}
	u.Inodes++
	u.Size += st.Blocks * 512
}

// TreeUsage measures every inode below root (root itself is the
// snapshot's own directory and not counted).
func TreeUsage(ctx context.Context, root string) (Usage, error) {
	var u Usage
	seen := map[[2]uint64]bool{}
	var walk func(path string) error
	walk = func(path string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		if path != root {
			u.Add(&st, seen)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return nil
		}
		names, err := readNames(path)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := walk(filepath.Join(path, n)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return Usage{}, fmt.Errorf("usage of %s: %w", root, err)
	}
	return u, nil
}

// ChangedUsage measures the inodes of upper that are new or differ from
// the same path in lower (type, mode, owner, size, mtime, device): what a
// full-copy snapshot holds beyond its parent. Deletions count nothing.
func ChangedUsage(ctx context.Context, lower, upper string) (Usage, error) {
	var u Usage
	seen := map[[2]uint64]bool{}
	var walk func(rel string, lowerIsDir bool) error
	walk = func(rel string, lowerIsDir bool) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var st, lst unix.Stat_t
		if err := unix.Lstat(filepath.Join(upper, rel), &st); err != nil {
			return err
		}
		inLower := lowerIsDir && unix.Lstat(filepath.Join(lower, rel), &lst) == nil
		if rel != "." && (!inLower || differs(&st, &lst)) {
			u.Add(&st, seen)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return nil
		}
		names, err := readNames(filepath.Join(upper, rel))
		if err != nil {
			return err
		}
		sub := inLower && lst.Mode&unix.S_IFMT == unix.S_IFDIR
		for _, n := range names {
			if err := walk(filepath.Join(rel, n), sub); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(".", true); err != nil {
		return Usage{}, fmt.Errorf("usage of %s over %s: %w", upper, lower, err)
	}
	return u, nil
}

func differs(a, b *unix.Stat_t) bool {
	if a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Rdev != b.Rdev {
		return true
	}
	if a.Mode&unix.S_IFMT == unix.S_IFDIR {
		return false // a directory's own size and mtime change with its entries
	}
	return a.Size != b.Size || a.Mtim != b.Mtim
}
