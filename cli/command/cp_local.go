package command

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"berth.dev/berth/archive"
	"golang.org/x/sys/unix"
)

// The local end of docker cp: the destination and source on this host,
// and the renaming of a tar stream.

// validateOutputPath is docker's check of a local destination.
func validateOutputPath(p string) error {
	dir := filepath.Dir(filepath.Clean(p))
	if dir != "" && dir != "." {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			return fmt.Errorf("invalid output path: directory %q does not exist", dir)
		}
	}
	if fi, err := os.Stat(p); !os.IsNotExist(err) {
		if err != nil {
			return err
		}
		if !fi.Mode().IsDir() && !fi.Mode().IsRegular() {
			return fmt.Errorf("invalid output path: %q must be a directory or a regular file", p)
		}
	}
	return nil
}

// localDest is docker's CopyInfoDestinationPath: symlinks at the end of
// the path are followed; a missing path needs an existing parent.
func localDest(p string) (copyInfo, error) {
	for i := 0; i < 32; i++ {
		fi, err := os.Lstat(p)
		if os.IsNotExist(err) {
			parent, _ := splitDirEntry(p)
			pst, err := os.Stat(parent)
			if err != nil {
				return copyInfo{}, err
			}
			if !pst.IsDir() {
				return copyInfo{}, errors.New("not a directory")
			}
			return copyInfo{path: p}, nil
		}
		if err != nil {
			return copyInfo{}, err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			if assertsDir(p) && !fi.IsDir() {
				return copyInfo{}, errors.New("not a directory")
			}
			return copyInfo{path: p, exists: true, isDir: fi.IsDir()}, nil
		}
		target, err := os.Readlink(p)
		if err != nil {
			return copyInfo{}, err
		}
		if !filepath.IsAbs(target) {
			parent, _ := splitDirEntry(p)
			target = filepath.Join(parent, target)
		}
		p = keepTrailing(target, p)
	}
	return copyInfo{}, errors.New("too many links")
}

// copyToLocal places the container's tar at dstPath. Extraction goes
// through the same contained apply as the daemon's: a tar with "../" or a
// symlink leading out cannot write beside the destination. Files are the
// caller's, as docker's (no lchown).
func copyToLocal(ctx context.Context, content io.Reader, src copyInfo, dstPath string) error {
	dst, err := localDest(dstPath)
	if err != nil {
		return err
	}
	dir, name, err := placement(src, dst)
	if err != nil {
		return err
	}
	_, srcBase := splitDirEntry(src.path)
	from := srcBase
	if src.rebase != "" {
		content = rebaseTar(content, srcBase, src.rebase)
		from = src.rebase
	}
	if name != "" {
		content = rebaseTar(content, from, name)
	}
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(root)
	_, err = archive.Apply(ctx, fmt.Sprintf("/proc/self/fd/%d", root), content, archive.ApplyOptions{
		NoOverwriteDirNonDir: true, NoDigests: true, Owner: &archive.Owner{UID: os.Getuid(), GID: os.Getgid()}})
	return err
}

// rebaseTar renames the entries named from or below from/ to to, as
// docker's RebaseArchiveEntries.
func rebaseTar(r io.Reader, from, to string) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tr, tw := tar.NewReader(r), tar.NewWriter(pw)
		rename := func(n string) string {
			if from == "/" { // a container's root: its entries all start with "/"
				return to + n
			}
			trimmed := strings.TrimSuffix(n, "/")
			if trimmed == from || strings.HasPrefix(n, from+"/") {
				return to + strings.TrimPrefix(n, from)
			}
			return n
		}
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				pw.CloseWithError(tw.Close())
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			hdr.Name = rename(hdr.Name)
			if hdr.Typeflag == tar.TypeLink {
				hdr.Linkname = rename(hdr.Linkname)
			}
			if err := tw.WriteHeader(hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}

// localSource is docker's CopyInfoSourcePath: -L follows a final symlink
// (the copy keeps the link's name).
func localSource(p string, follow bool) (copyInfo, error) {
	info := copyInfo{path: p}
	if follow {
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil {
			return copyInfo{}, err
		}
		_, linkBase := splitDirEntry(p)
		_, realBase := splitDirEntry(resolved)
		if linkBase != realBase {
			info.rebase = linkBase
		}
		info.path = keepTrailing(resolved, p)
	}
	fi, err := os.Lstat(info.path)
	if err != nil {
		return copyInfo{}, err
	}
	info.exists, info.isDir = true, fi.IsDir()
	return info, nil
}
