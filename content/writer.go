package content

import (
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
)

// checkpointEvery is how many bytes a Writer writes between hash
// checkpoints; a variable so tests can make it small.
var checkpointEvery int64 = 16 << 20

// WriterOpt configures Writer.
type WriterOpt func(*writerOpts)

type writerOpts struct {
	expected digest.Digest
	size     int64
}

// WithExpected tells the writer which blob it is for: Writer refuses (with
// IsExists) a blob that is already stored, Write refuses bytes past size,
// and Commit checks both. A zero size means unknown.
func WithExpected(dgst digest.Digest, size int64) WriterOpt {
	return func(o *writerOpts) { o.expected, o.size = dgst, size }
}

// Writer writes one ingest. It is not safe for concurrent use; at most one
// Writer per ref exists at a time, across processes.
type Writer struct {
	s        *Store
	ref      string
	lock     *ingestLock
	data     *os.File
	fd       int
	h        hash.Hash
	offset   int64
	saved    int64 // offset the checkpoint on disk covers
	flushed  int64 // offset up to which write-back has been started
	expected digest.Digest
	total    int64
	done     bool
	ckpt     chan ckptResult // the checkpoint being written, if any
	err      error           // a failed checkpoint: the ingest is unusable
}

type ckptResult struct {
	off int64
	err error
}

var errWriterDone = errors.New("writer is closed or committed")

// Writer opens the ingest ref for writing, creating it or resuming it where
// it stopped (see Offset). Another live writer of the same ref is a
// conflict. If the expected blob is already stored the error satisfies
// IsExists. Resuming with a different expected digest than the ingest was
// started with starts it over.
func (s *Store) Writer(ctx context.Context, ref string, opts ...WriterOpt) (*Writer, error) {
	var o writerOpts
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkRef(ref); err != nil {
		return nil, err
	}
	if o.size < 0 {
		return nil, errdefs.Invalid("ingest %q: negative expected size %d", ref, o.size)
	}
	if o.expected != "" {
		if err := checkDigest(o.expected); err != nil {
			return nil, err
		}
		if _, err := os.Stat(s.blobPath(o.expected)); err == nil {
			return nil, errdefs.Mark(errdefs.KindConflict, fmt.Errorf("blob %s: %w", o.expected, ErrExists))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l, err := lockIngest(s.ingestDir(ref), ref, true)
	if err != nil {
		return nil, err
	}
	w := &Writer{s: s, ref: ref, lock: l}
	if err := w.open(o); err != nil {
		if w.data != nil {
			w.data.Close()
		}
		l.release()
		return nil, fmt.Errorf("ingest %q: %w", ref, err)
	}
	return w, nil
}

func (w *Writer) path(name string) string { return filepath.Join(w.lock.dir, name) }

// open sets up a new ingest or picks up an existing one. Setup writes the
// ref file last: a directory without it is one whose setup never finished.
func (w *Writer) open(o writerOpts) error {
	ref, err := os.ReadFile(w.path(fileRef))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	fresh := err != nil || string(ref) != w.ref
	w.data, err = os.OpenFile(w.path(fileData), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	w.fd = int(w.data.Fd())
	if !fresh {
		w.expected, w.total, err = readExpected(w.lock.dir)
		if err != nil {
			return err
		}
		if (o.expected != "" && w.expected != "" && o.expected != w.expected) ||
			(o.size != 0 && w.total != 0 && o.size != w.total) {
			fresh = true // the ref now names another blob
		}
	}
	if fresh {
		if err := w.startOver(); err != nil {
			return err
		}
		w.expected, w.total = "", 0
	}
	if o.expected != "" && w.expected == "" {
		if err := writeSmall(w.lock.dir, fileExpected, []byte(o.expected), false); err != nil {
			return err
		}
		w.expected = o.expected
	} else if fresh {
		if err := removeIfExists(w.path(fileExpected)); err != nil {
			return err
		}
	}
	if o.size != 0 && w.total == 0 {
		if err := writeSmall(w.lock.dir, fileTotal, []byte(strconv.FormatInt(o.size, 10)), false); err != nil {
			return err
		}
		w.total = o.size
	} else if fresh {
		if err := removeIfExists(w.path(fileTotal)); err != nil {
			return err
		}
	}
	if fresh {
		if err := writeSmall(w.lock.dir, fileRef, []byte(w.ref), false); err != nil {
			return err
		}
	}
	fi, err := w.data.Stat()
	if err != nil {
		return err
	}
	if err := w.rehash(fi.Size()); err != nil {
		return err
	}
	_, err = w.data.Seek(w.offset, io.SeekStart)
	return err
}

// startOver empties the data of an ingest being set up again. A checkpoint
// left by its earlier life is first replaced, durably, by an empty one: a
// merely unlinked one could come back after a power loss and vouch for
// bytes that are no longer there.
func (w *Writer) startOver() error {
	if _, err := os.Stat(w.path(fileState)); errors.Is(err, fs.ErrNotExist) {
		return w.data.Truncate(0)
	}
	state, err := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	if err := writeSmall(w.lock.dir, fileState, encodeCheckpoint(0, state), true); err != nil {
		return err
	}
	return w.data.Truncate(0)
}

// rehash sets the hash to cover data[0:n]: from the checkpoint when it
// covers no more than n, hashing only the rest.
func (w *Writer) rehash(n int64) error {
	h := sha256.New()
	from := int64(0)
	if off, state, ok := loadCheckpoint(w.lock.dir); ok && off <= n {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err == nil {
			from = off
		} else {
			h.Reset()
		}
	}
	if _, err := io.Copy(h, io.NewSectionReader(w.data, from, n-from)); err != nil {
		return fmt.Errorf("re-hash data: %w", err)
	}
	w.h, w.offset, w.saved, w.flushed = h, n, from, n
	return nil
}

// Ref returns the ingest's name.
func (w *Writer) Ref() string { return w.ref }

// Offset is the number of bytes written: where a download resumes.
func (w *Writer) Offset() int64 { return w.offset }

// Digest is the digest of the bytes written so far.
func (w *Writer) Digest() digest.Digest { return digest.NewDigest(digest.SHA256, w.h) }

// Written returns a reader of the bytes written so far (the first Offset
// bytes, as of this call). A resumed pull that extracts while it downloads
// feeds its decompressor this prefix before the rest of the body; it stays
// valid until the writer commits, closes or truncates.
func (w *Writer) Written() *io.SectionReader { return io.NewSectionReader(w.data, 0, w.offset) }

// Write appends p to the ingest. Bytes past the expected size are refused.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errWriterDone
	}
	if w.ckpt != nil {
		select {
		case r := <-w.ckpt:
			w.finishCheckpoint(r)
		default:
		}
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.total > 0 && w.offset+int64(len(p)) > w.total {
		return 0, errdefs.Invalid("ingest %q: %d bytes would go past the expected size %d", w.ref, w.offset+int64(len(p)), w.total)
	}
	n, poisoned, err := w.writeAndHash(p)
	w.offset += int64(n)
	if err != nil {
		err = fmt.Errorf("ingest %q: %w", w.ref, err)
		if poisoned {
			// The hash has bytes the file has not: this writer is done
			// for, but the ingest on disk is consistent and a new Writer
			// resumes it.
			w.err = err
		}
		return n, err
	}
	if w.offset-w.flushed >= writeBehind {
		// Start write-back now (not waiting for it): the checkpoint and
		// commit fsyncs then find most of the data already on its way.
		unix.SyncFileRange(w.fd, w.flushed, w.offset-w.flushed, unix.SYNC_FILE_RANGE_WRITE)
		w.flushed = w.offset
	}
	if w.ckpt == nil && w.offset-w.saved >= checkpointEvery {
		w.startCheckpoint()
	}
	return n, nil
}

// writeBehind is how much written data may wait in the page cache before
// its write-back is started (ingest 1.2 -> 1.4 GB/s here).
const writeBehind = 1 << 20

// parallelHashMin is the write size from which the hash runs beside the
// write(2) rather than after it: sha256 (about 2 GB/s with SHA-NI) is the
// larger cost, and a big chunk pays for the goroutine many times over.
const parallelHashMin = 128 << 10

func (w *Writer) writeAndHash(p []byte) (n int, poisoned bool, err error) {
	if len(p) < parallelHashMin {
		n, err = w.data.Write(p)
		w.h.Write(p[:n])
		return n, false, err
	}
	done := make(chan struct{})
	go func() {
		w.h.Write(p)
		close(done)
	}()
	n, err = w.data.Write(p)
	<-done
	if n < len(p) {
		if err == nil {
			err = io.ErrShortWrite
		}
		return n, true, err
	}
	return n, false, err
}

// startCheckpoint saves the hash state in the background: fdatasync makes
// the data it covers durable while Write goes on appending.
func (w *Writer) startCheckpoint() {
	state, err := w.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		w.err = fmt.Errorf("ingest %q: save hash state: %w", w.ref, err)
		return
	}
	off, fd, dir := w.offset, w.fd, w.lock.dir
	ch := make(chan ckptResult, 1)
	w.ckpt = ch
	go func() {
		err := unix.Fdatasync(fd)
		if err == nil {
			err = writeSmall(dir, fileState, encodeCheckpoint(off, state), false)
		}
		ch <- ckptResult{off: off, err: err}
	}()
}

func (w *Writer) finishCheckpoint(r ckptResult) {
	w.ckpt = nil
	if r.err != nil {
		if w.err == nil {
			w.err = fmt.Errorf("ingest %q: checkpoint: %w", w.ref, r.err)
		}
		return
	}
	w.saved = r.off
}

// waitCheckpoint waits for a checkpoint in flight and returns any failure.
func (w *Writer) waitCheckpoint() error {
	if w.ckpt != nil {
		w.finishCheckpoint(<-w.ckpt)
	}
	return w.err
}

// Truncate drops everything after the first n bytes, for a server that
// answers a Range request from an earlier offset (or ignores it: Reset).
func (w *Writer) Truncate(n int64) error {
	if w.done {
		return errWriterDone
	}
	if err := w.waitCheckpoint(); err != nil {
		return err
	}
	if n < 0 || n > w.offset {
		return errdefs.Invalid("ingest %q: truncate to %d outside [0, %d]", w.ref, n, w.offset)
	}
	if n == w.offset {
		return nil
	}
	if err := w.truncate(n); err != nil {
		w.err = fmt.Errorf("ingest %q: truncate to %d: %w", w.ref, n, err)
		return w.err
	}
	return nil
}

// truncate makes a durable checkpoint at n before the data shrinks, so no
// checkpoint can ever claim bytes the file no longer has (or has anew).
func (w *Writer) truncate(n int64) error {
	if err := w.rehash(n); err != nil {
		return err
	}
	state, err := w.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	if err := unix.Fdatasync(w.fd); err != nil {
		return err
	}
	if err := writeSmall(w.lock.dir, fileState, encodeCheckpoint(n, state), true); err != nil {
		return err
	}
	w.saved = n
	if err := w.data.Truncate(n); err != nil {
		return err
	}
	_, err = w.data.Seek(n, io.SeekStart)
	return err
}

// Reset empties the ingest, for a server that ignored a Range request.
func (w *Writer) Reset() error { return w.Truncate(0) }

// Commit makes the ingest a blob. size (0: unknown) and expected ("": the
// digest given to WithExpected, or none) are checked: data that is too long
// or hashes differently is bad and its ingest is removed (kind invalid, the
// error wraps ErrDigestMismatch and names both digests); data that is too
// short is kept for the download to go on. The data is fsynced, renamed
// into blobs/ and the directory fsynced, so a blob is never seen partial. A
// blob that is already stored is success. After Commit the Writer is done.
func (w *Writer) Commit(ctx context.Context, size int64, expected digest.Digest) error {
	if w.done {
		return errWriterDone
	}
	if err := w.waitCheckpoint(); err != nil {
		return err
	}
	if expected != "" {
		if err := checkDigest(expected); err != nil {
			return err
		}
		if w.expected != "" && w.expected != expected {
			return errdefs.Invalid("ingest %q: commit as %s but opened for %s", w.ref, expected, w.expected)
		}
	} else {
		expected = w.expected
	}
	if size < 0 {
		return errdefs.Invalid("ingest %q: negative size %d", w.ref, size)
	}
	if size == 0 {
		size = w.total
	}
	if size > 0 && w.offset < size {
		return errdefs.Invalid("ingest %q: short: %d of %d bytes written", w.ref, w.offset, size)
	}
	if size > 0 && w.offset > size {
		w.discard()
		return errdefs.Invalid("ingest %q: %d bytes written, expected %d (ingest removed)", w.ref, w.offset, size)
	}
	got := w.Digest()
	if expected != "" && got != expected {
		w.discard()
		return errdefs.Invalid("ingest %q: %w: got %s, expected %s (ingest removed)", w.ref, ErrDigestMismatch, got, expected)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	moved, err := w.publish(got)
	if moved {
		w.discard() // the data is the blob now, whatever the error
	}
	if err != nil {
		return fmt.Errorf("ingest %q: commit %s: %w", w.ref, got, err)
	}
	return nil
}

// publish moves the data into blobs/ under its digest, read-only, stamped
// with the commit time, durably. RENAME_NOREPLACE: a blob committed by
// another writer in the meantime stays as it is.
func (w *Writer) publish(dgst digest.Digest) (moved bool, err error) {
	src, dst := w.path(fileData), w.s.blobPath(dgst)
	if err := w.data.Chmod(0o444); err != nil {
		return false, err
	}
	defer func() {
		if !moved {
			w.data.Chmod(0o600) // stays an ingest, writable
		}
	}()
	now := []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, src, now, 0); err != nil {
		return false, err
	}
	if err := w.data.Sync(); err != nil {
		return false, err
	}
	err = unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if err == unix.EINVAL || err == unix.ENOSYS {
		// A file system without renameat2 flags (NFS, FUSE): link(2)
		// never replaces either; the ingest keeps the other name.
		err = unix.Link(src, dst)
	}
	if err != nil && err != unix.EEXIST {
		return false, fmt.Errorf("move into blobs: %w", err)
	}
	return true, syncDir(w.s.blobs)
}

// discard removes the ingest and ends the writer.
func (w *Writer) discard() {
	w.done = true
	w.data.Close()
	os.RemoveAll(w.lock.dir)
	w.lock.release()
}

// Close ends the writer and keeps the ingest to be resumed, with a
// checkpoint of everything written. Close after Commit does nothing.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	defer w.lock.release()
	err := w.waitCheckpoint()
	if err == nil && w.offset != w.saved {
		w.startCheckpoint()
		err = w.waitCheckpoint()
	}
	if cerr := w.data.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("ingest %q: %w", w.ref, cerr)
	}
	return err
}
