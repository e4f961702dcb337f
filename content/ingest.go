package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
)

// Files of an ingest directory.
const (
	fileData     = "data"      // the bytes so far; its mtime is the last update
	fileRef      = "ref"       // the caller's name for the ingest
	fileExpected = "expected"  // the expected digest, if given
	fileTotal    = "total"     // the expected size, if given
	fileState    = "hashstate" // sha256 checkpoint, see checkpoint.go
	tmpSuffix    = ".tmp"      // files being replaced; debris after a crash
)

// Status describes an ingest in progress (or interrupted).
type Status struct {
	Ref       string
	Offset    int64         // bytes written so far: where to resume
	Total     int64         // expected size, 0 if unknown
	Expected  digest.Digest // expected digest, "" if unknown
	UpdatedAt time.Time     // last write
}

func (s *Store) ingestDir(ref string) string {
	h := sha256.Sum256([]byte(ref))
	return filepath.Join(s.ingst, hex.EncodeToString(h[:]))
}

func checkRef(ref string) error {
	if ref == "" {
		return errdefs.Invalid("ingest ref must not be empty")
	}
	return nil
}

// ingestLock is a held flock on an ingest directory.
type ingestLock struct {
	dir string
	fd  int
}

func (l *ingestLock) release() {
	if l.fd >= 0 {
		unix.Close(l.fd) // closing the last fd drops the flock
		l.fd = -1
	}
}

// lockIngest takes the ingest directory's flock without waiting; a holder
// means another writer (or an Abort, or Open's cleanup) is at work: conflict.
// With create it makes the directory first. The lock is taken on the
// directory then found at dir: one removed and re-made under us would
// otherwise give two writers two locks.
func lockIngest(dir, ref string, create bool) (*ingestLock, error) {
	for range 16 {
		if create {
			if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("ingest %q: %w", ref, err)
			}
		}
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT {
			if create {
				continue
			}
			return nil, errdefs.NotFound("ingest %q: not found", ref)
		}
		if err != nil {
			return nil, fmt.Errorf("ingest %q: open: %w", ref, err)
		}
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			unix.Close(fd)
			if err == unix.EWOULDBLOCK {
				if _, serr := os.Stat(filepath.Join(dir, fileRef)); create && errors.Is(serr, fs.ErrNotExist) {
					// Being set up or cleaned up (both brief): wait a moment
					// to tell a crash's debris from another writer.
					time.Sleep(2 * time.Millisecond)
					continue
				}
				return nil, errdefs.Conflict("ingest %q: in use by another writer", ref)
			}
			return nil, fmt.Errorf("ingest %q: lock: %w", ref, err)
		}
		var held, now unix.Stat_t
		if err := unix.Fstat(fd, &held); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("ingest %q: %w", ref, err)
		}
		if err := unix.Stat(dir, &now); err == nil && now.Ino == held.Ino && now.Dev == held.Dev {
			return &ingestLock{dir: dir, fd: fd}, nil
		}
		unix.Close(fd) // removed (committed, aborted) while we locked: again
		if !create {
			return nil, errdefs.NotFound("ingest %q: not found", ref)
		}
	}
	return nil, errdefs.Conflict("ingest %q: in use (being set up or removed)", ref)
}

// Status reports an ingest by ref; it does not need (or take) the lock.
func (s *Store) Status(ctx context.Context, ref string) (Status, error) {
	if err := checkRef(ref); err != nil {
		return Status{}, err
	}
	st, err := readStatus(s.ingestDir(ref))
	if errors.Is(err, fs.ErrNotExist) {
		return Status{}, errdefs.NotFound("ingest %q: not found", ref)
	}
	if err != nil {
		return Status{}, fmt.Errorf("ingest %q: %w", ref, err)
	}
	if st.Ref != ref { // only if sha256 collided; but never report another's ingest
		return Status{}, errdefs.NotFound("ingest %q: not found", ref)
	}
	return st, nil
}

// ListIngests reports every ingest in the store.
func (s *Store) ListIngests(ctx context.Context) ([]Status, error) {
	ents, err := os.ReadDir(s.ingst)
	if err != nil {
		return nil, fmt.Errorf("list ingests: %w", err)
	}
	var out []Status
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st, err := readStatus(filepath.Join(s.ingst, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // just committed or aborted, or not yet set up
		}
		if err != nil {
			return nil, fmt.Errorf("list ingests: %s: %w", e.Name(), err)
		}
		out = append(out, st)
	}
	return out, nil
}

func readStatus(dir string) (Status, error) {
	ref, err := os.ReadFile(filepath.Join(dir, fileRef))
	if err != nil {
		return Status{}, err
	}
	fi, err := os.Stat(filepath.Join(dir, fileData))
	if err != nil {
		return Status{}, err
	}
	exp, total, err := readExpected(dir)
	if err != nil {
		return Status{}, err
	}
	return Status{Ref: string(ref), Offset: fi.Size(), Total: total, Expected: exp, UpdatedAt: fi.ModTime()}, nil
}

// readExpected reads the expected digest and size; missing files mean unknown.
func readExpected(dir string) (digest.Digest, int64, error) {
	var exp digest.Digest
	b, err := os.ReadFile(filepath.Join(dir, fileExpected))
	switch {
	case err == nil:
		exp = digest.Digest(strings.TrimSpace(string(b)))
	case !errors.Is(err, fs.ErrNotExist):
		return "", 0, err
	}
	var total int64
	b, err = os.ReadFile(filepath.Join(dir, fileTotal))
	switch {
	case err == nil:
		total, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return "", 0, fmt.Errorf("%s: %w", fileTotal, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", 0, err
	}
	return exp, total, nil
}

// writeSmall replaces dir/name atomically (write to .tmp, rename), so a crash
// leaves the old or the new content, plus at most a .tmp that Open removes.
func writeSmall(dir, name string, data []byte, sync bool) error {
	tmp := filepath.Join(dir, name+tmpSuffix)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err == nil && sync {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Abort removes an ingest and its data. An ingest with a live writer is a
// conflict: that writer has to Close first.
func (s *Store) Abort(ctx context.Context, ref string) error {
	if err := checkRef(ref); err != nil {
		return err
	}
	l, err := lockIngest(s.ingestDir(ref), ref, false)
	if err != nil {
		return err
	}
	defer l.release()
	if err := os.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("abort ingest %q: %w", ref, err)
	}
	return nil
}

// cleanIngests removes crash debris from every ingest nobody holds: .tmp
// files, directories that never got their ref or data (a crash while one was
// being set up, or after Commit moved the data into blobs/).
func (s *Store) cleanIngests() error {
	ents, err := os.ReadDir(s.ingst)
	if err != nil {
		return err
	}
	for _, e := range ents {
		dir := filepath.Join(s.ingst, e.Name())
		if !e.IsDir() {
			if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			continue
		}
		if clean, err := looksClean(dir); err != nil || clean {
			continue // nothing to do: do not take the lock a writer may want
		}
		l, err := lockIngest(dir, e.Name(), false)
		if errdefs.Is(err, errdefs.KindConflict) || errdefs.Is(err, errdefs.KindNotFound) {
			continue // in use, or gone meanwhile
		}
		if err != nil {
			return err
		}
		err = cleanIngest(dir)
		l.release()
		if err != nil {
			return fmt.Errorf("clean ingest %s: %w", e.Name(), err)
		}
	}
	return nil
}

// looksClean reports an ingest with its ref and data and no .tmp files.
func looksClean(dir string) (bool, error) {
	files, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	var ref, data bool
	for _, f := range files {
		switch name := f.Name(); {
		case strings.HasSuffix(name, tmpSuffix):
			return false, nil
		case name == fileRef:
			ref = true
		case name == fileData:
			data = true
		}
	}
	return ref && data, nil
}

func cleanIngest(dir string) error {
	files, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f.Name(), tmpSuffix) {
			if err := os.Remove(filepath.Join(dir, f.Name())); err != nil {
				return err
			}
			continue
		}
		have[f.Name()] = true
	}
	if !have[fileRef] || !have[fileData] {
		return os.RemoveAll(dir)
	}
	return nil
}
