package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
)

// Whiteout names, as docker and the OCI image spec write them.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
	// overlayOpaque is the xattr overlayfs reads as "hide the lower dirs".
	overlayOpaque = "trusted.overlay.opaque"
)

// applier holds the state of one Apply: the root, which paths this layer
// wrote (an opaque directory keeps them), directory times to set once their
// contents are in, and a few open parent directories.
type applier struct {
	ctx     context.Context
	root    int
	opts    ApplyOptions
	entries int64
	// opaqueRoot: the layer holds "/.wh..wh..opq".
	opaqueRoot bool
	written    map[string]struct{}
	dirs       map[string]times
	parents    parentCache
	buf        []byte

	// With ApplyOptions.Parallel: the workers, the files handed to them
	// since they were last waited for, the names this layer may have made
	// besides written (parents, overlay whiteouts), the symlinks it made,
	// and serial once a symlinked parent stopped handing out files.
	workers  *fileWorkers
	inflight map[string]struct{}
	made     map[string]struct{}
	links    map[string]struct{}
	serial   bool
}

type times struct{ atime, mtime unix.Timespec }

func newApplier(ctx context.Context, root int, opts ApplyOptions) *applier {
	a := &applier{
		ctx:     ctx,
		root:    root,
		opts:    opts,
		written: make(map[string]struct{}),
		dirs:    make(map[string]times),
		parents: parentCache{root: root},
		buf:     make([]byte, copyBufSize),
	}
	if opts.Parallel > 1 && opts.Dir == "" && emptyDir(root) {
		a.workers = newFileWorkers(ctx, min(opts.Parallel, maxParallel))
		a.inflight = make(map[string]struct{})
		a.made = make(map[string]struct{})
		a.links = make(map[string]struct{})
	}
	return a
}

// close ends the workers, if any, and closes the cached directories.
func (a *applier) close() {
	if a.workers != nil {
		a.workers.stop()
		a.workers = nil
	}
	a.parents.drop()
}

func (a *applier) run(tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			// Every file is made before the directories get their times.
			return a.barrier()
		}
		if err != nil {
			return errdefs.Invalid("read layer tar after %d entries: %w", a.entries, err)
		}
		if err := a.ctx.Err(); err != nil {
			return err
		}
		a.entries++
		if a.opts.MaxFiles > 0 && a.entries > a.opts.MaxFiles {
			return errdefs.Invalid("layer has more than the limit of %d entries", a.opts.MaxFiles)
		}
		if err := a.entry(hdr, tr); err != nil {
			if _, ok := err.(workerError); ok {
				return err
			}
			return fmt.Errorf("layer entry %s: %w", shortName(hdr.Name), err)
		}
	}
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeGNULongName, tar.TypeGNULongLink, tar.TypeXHeader:
		return nil // archive/tar folds these into the next header
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" {
		// The root itself ("./"): like docker, leave its metadata to the
		// driver that made it.
		return nil
	}
	if a.opts.Dir != "" {
		name = a.opts.Dir + "/" + name
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if strings.HasPrefix(base, whiteoutPrefix) {
		if err := a.prepareWhiteout(dir); err != nil {
			return err
		}
		return a.whiteout(dir, base)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	case tar.TypeGNUSparse:
		// archive/tar turns old GNU sparse files into plain contents.
	default:
		return errdefs.Invalid("unsupported tar entry type %q", hdr.Typeflag)
	}
	// uid_t is 32 bits and -1 means "leave as is": anything else would be
	// cut or ignored by chown instead of refused.
	if hdr.Uid < 0 || hdr.Gid < 0 || hdr.Uid >= 1<<32-1 || hdr.Gid >= 1<<32-1 {
		return errdefs.Invalid("owner %d:%d out of range", hdr.Uid, hdr.Gid)
	}
	if o := a.opts.Owner; o != nil {
		hdr.Uid, hdr.Gid = o.UID, o.GID
	}
	par, err := a.prepare(name, dir, hdr)
	if err != nil {
		return err
	}
	pfd, err := a.parents.get(dir, true)
	if err != nil {
		return err
	}
	if par {
		err = a.parallelFile(pfd, name, dir, base, hdr, r)
	} else {
		err = a.create(pfd, name, base, hdr, r)
	}
	if err != nil {
		return err
	}
	a.written[name] = struct{}{}
	return nil
}

// create makes the entry base in the directory pfd, replacing what is there
// unless both are directories, and gives it the header's metadata.
func (a *applier) create(pfd int, name, base string, hdr *tar.Header, r io.Reader) error {
	mode := uint32(hdr.Mode) & 0o7777
	if hdr.Typeflag != tar.TypeDir {
		delete(a.dirs, name)
	}
	for attempt := 0; ; attempt++ {
		err := a.make(pfd, base, hdr, mode, r)
		if err == nil {
			break
		}
		if err != unix.EEXIST || attempt > 0 {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat existing entry: %w", err)
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if isDir && hdr.Typeflag == tar.TypeDir {
			break // merge into the directory that is there
		}
		if a.opts.NoOverwriteDirNonDir && isDir != (hdr.Typeflag == tar.TypeDir) {
			if isDir {
				return errdefs.Invalid("cannot overwrite directory %q with non-directory %q", "/"+name, "/"+name)
			}
			return errdefs.Invalid("cannot overwrite non-directory %q with directory %q", "/"+name, "/"+name)
		}
		if isDir || st.Mode&unix.S_IFMT == unix.S_IFLNK {
			// Cached directories may have been reached through it.
			a.parents.dropExcept(pfd)
			a.forgetDirs(name)
		}
		if err := removeAt(pfd, base); err != nil {
			return fmt.Errorf("replace existing entry: %w", err)
		}
	}
	switch hdr.Typeflag {
	case tar.TypeLink:
		return nil // the inode is the target's, metadata and all
	case tar.TypeReg, tar.TypeGNUSparse:
		return nil // make did it on the open file
	case tar.TypeDir:
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = a.fdMeta(fd, hdr, mode)
		unix.Close(fd)
		if err != nil {
			return err
		}
		a.dirs[name] = headerTimes(hdr)
		return nil
	}
	// Symlinks, devices and fifos: by name, never following the last
	// component.
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("lchown: %w", err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// base is the node just made, not a symlink: following is moot.
		if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if err := a.xattrs(hdr, func(k string, v []byte) error {
		return unix.Lsetxattr(procPath(pfd, base), k, v, 0)
	}); err != nil {
		return err
	}
	t := headerTimes(hdr)
	if err := unix.UtimesNanoAt(pfd, base, []unix.Timespec{t.atime, t.mtime}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// make creates base in pfd as hdr says, failing with EEXIST when the name is
// taken. Regular files are written and given their metadata here, while
// their descriptor is open.
func (a *applier) make(pfd int, base string, hdr *tar.Header, mode uint32, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse:
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode&0o777)
		if err != nil {
			return err
		}
		err = a.writeFile(fd, hdr, mode, r)
		if cerr := unix.Close(fd); err == nil && cerr != nil {
			err = fmt.Errorf("close: %w", cerr)
		}
		if err != nil {
			return wrapNotExist(err)
		}
		t := headerTimes(hdr)
		if err := unix.UtimesNanoAt(pfd, base, []unix.Timespec{t.atime, t.mtime}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times: %w", wrapNotExist(err))
		}
		return nil
	case tar.TypeDir:
		return unix.Mkdirat(pfd, base, mode&0o777)
	case tar.TypeSymlink:
		if len(hdr.Linkname) >= pathMax {
			return errdefs.Invalid("symlink target is %d bytes, longer than PATH_MAX", len(hdr.Linkname))
		}
		if hdr.Linkname == "" || strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return errdefs.Invalid("symlink target %q is empty or holds a NUL byte", hdr.Linkname)
		}
		return unix.Symlinkat(hdr.Linkname, pfd, base)
	case tar.TypeLink:
		return a.link(pfd, base, hdr.Linkname)
	case tar.TypeChar:
		return unix.Mknodat(pfd, base, unix.S_IFCHR|mode&0o777, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))))
	case tar.TypeBlock:
		return unix.Mknodat(pfd, base, unix.S_IFBLK|mode&0o777, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))))
	case tar.TypeFifo:
		return unix.Mknodat(pfd, base, unix.S_IFIFO|mode&0o777, 0)
	}
	return errdefs.Invalid("unsupported tar entry type %q", hdr.Typeflag)
}

// wrapNotExist keeps a late ENOENT/EEXIST from being taken for make's
// "name taken" signal.
func wrapNotExist(err error) error {
	if err == unix.EEXIST {
		return fmt.Errorf("%w", err)
	}
	return err
}

func (a *applier) writeFile(fd int, hdr *tar.Header, mode uint32, r io.Reader) error {
	if hdr.Size > 0 {
		sparse := isSparse(hdr)
		// A sparse file's holes cost nothing in the tar: its size is what
		// MaxBytes must bound, and holes stay holes on disk.
		if sparse && a.opts.MaxBytes > 0 && hdr.Size > a.opts.MaxBytes {
			return errdefs.Invalid("sparse file of %d bytes is larger than the limit of %d bytes", hdr.Size, a.opts.MaxBytes)
		}
		if err := copyToFd(fd, r, a.buf, sparse); err != nil {
			return err
		}
	}
	return a.fdMeta(fd, hdr, mode)
}

// isSparse reports a GNU sparse file, old style or in PAX records.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	_, ok := hdr.PAXRecords["GNU.sparse.major"]
	if !ok {
		_, ok = hdr.PAXRecords["GNU.sparse.map"]
	}
	return ok
}

// fdMeta gives an open file or directory its owner, mode (after the owner:
// chown clears set-id bits) and xattrs (after the owner and the contents:
// both clear security.capability).
func (a *applier) fdMeta(fd int, hdr *tar.Header, mode uint32) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod %o: %w", mode, err)
	}
	return a.xattrs(hdr, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) })
}

// xattrs sets the header's SCHILY.xattr records with set. trusted.overlay.*
// never comes from a tar: it would steer overlayfs (redirects, opaque dirs,
// metacopy) from image content. Like docker, a file system that does not
// take an xattr is not an error.
func (a *applier) xattrs(hdr *tar.Header, set func(string, []byte) error) error {
	for k, v := range hdr.PAXRecords {
		name, ok := xattrName(k)
		if !ok {
			continue
		}
		if err := set(name, []byte(v)); err != nil {
			if isErrno(err, unix.ENOTSUP, unix.EPERM) {
				continue
			}
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

// xattrName is the xattr a PAX record key sets, if it sets one to apply.
func xattrName(k string) (string, bool) {
	name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
	if !ok || strings.HasPrefix(name, "trusted.overlay.") {
		return "", false
	}
	return name, true
}

// link makes base in pfd a hard link to target, a path in the root whose
// last component is not followed: a link to a symlink links the symlink.
func (a *applier) link(pfd int, base, target string) error {
	t, err := cleanName(target)
	if err != nil {
		return fmt.Errorf("hardlink target %s: %w", shortName(target), err)
	}
	if t == "" {
		return errdefs.Invalid("hardlink to the root directory")
	}
	tdir, tbase := path.Split(t)
	tfd, err := openIn(a.root, strings.TrimSuffix(tdir, "/"), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("hardlink target %s: %w", shortName(target), wrapNotExist(err))
	}
	defer unix.Close(tfd)
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		if err == unix.EEXIST {
			return err
		}
		return fmt.Errorf("hardlink to %s: %w", shortName(target), err)
	}
	return nil
}

// forgetDirs drops the pending times of name and everything below it: they
// are being removed, and the names may come back as something else.
func (a *applier) forgetDirs(name string) {
	for d := range a.dirs {
		if d == name || strings.HasPrefix(d, name+"/") {
			delete(a.dirs, d)
		}
	}
}

// finish sets the times of the directories written, now that nothing more
// goes into them.
func (a *applier) finish() error {
	a.parents.drop()
	for name, t := range a.dirs {
		dir, base := path.Split(name)
		pfd, err := a.parents.get(strings.TrimSuffix(dir, "/"), false)
		if err != nil {
			return fmt.Errorf("set times of %s: %w", name, err)
		}
		if err := unix.UtimesNanoAt(pfd, base, []unix.Timespec{t.atime, t.mtime}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times of %s: %w", name, err)
		}
	}
	return nil
}

// headerTimes are the entry's times; like docker, the access time is never
// before the modification time (tars without atime would give 1970).
func headerTimes(hdr *tar.Header) times {
	m, at := hdr.ModTime, hdr.AccessTime
	if at.Before(m) {
		at = m
	}
	return times{atime: timespec(at), mtime: timespec(m)}
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{}
	}
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// procPath names base in the directory fd for the calls that only take a
// path (lsetxattr): the magic link is the directory itself, base is not
// followed.
func procPath(fd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(fd) + "/" + base
}

// copyToFd copies r to fd through buf, filling buf before each write(2) so
// a big file costs few calls. With sparse, a chunk of zeros is skipped
// rather than written, and the file's size set at the end. A truncated
// entry (io.ErrUnexpectedEOF from the tar reader) is an error.
func copyToFd(fd int, r io.Reader, buf []byte, sparse bool) error {
	var size int64
	for {
		n := 0
		var rerr error
		for n < len(buf) && rerr == nil {
			var m int
			m, rerr = r.Read(buf[n:])
			n += m
		}
		size += int64(n)
		if !sparse {
			if err := writeAll(fd, buf[:n]); err != nil {
				return err
			}
		}
		for off := 0; sparse && off < n; off += holeBlock {
			b := buf[off:min(off+holeBlock, n)]
			if !allZero(b) {
				if err := writeAll(fd, b); err != nil {
					return err
				}
			} else if _, err := unix.Seek(fd, int64(len(b)), io.SeekCurrent); err != nil {
				return fmt.Errorf("seek: %w", err)
			}
		}
		if rerr == io.EOF {
			if sparse {
				if err := unix.Ftruncate(fd, size); err != nil {
					return fmt.Errorf("truncate: %w", err)
				}
			}
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// holeBlock is the smallest run of zeros a sparse file gets as a hole.
const holeBlock = 64 << 10

// allZero reports whether b is all zeros: its first byte is, and each byte
// equals the one before it (a memequal, without a 64 KB buffer of zeros
// allocated at every start of the binary).
func allZero(b []byte) bool {
	return len(b) == 0 || b[0] == 0 && bytes.Equal(b[1:], b[:len(b)-1])
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		w, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		b = b[w:]
	}
	return nil
}
