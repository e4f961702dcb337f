package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"path"
	"sync"

	"golang.org/x/sys/unix"
)

// Parallel creation of small regular files (ApplyOptions.Parallel). On ext4
// a create can cost hundreds of µs of CPU in the inode allocator (after a
// mass delete it skips recently freed inodes, rescanning for each create),
// all of it under the parent directory's lock: files in different
// directories can be made on different cores, files in one cannot. So the
// applier reads a small file's contents into a buffer and hands it to a
// worker, one directory's files to one worker, and goes on with the tar.
// Everything else stays on the applier's goroutine, and anything that could
// touch a file in flight (a whiteout, a hardlink, a name already made by
// this layer, a parent that is one of the files in flight) first waits for
// all of them.

const (
	// parallelMaxSize is the largest file handed to a worker: big files
	// are few, and their cost is the data, not the create.
	parallelMaxSize = 256 << 10
	// parallelQueue is how many files each worker may have waiting: deep
	// enough that the reader gets ahead into other directories.
	parallelQueue = 256
	// parallelBytes bounds the file contents held in buffers at once.
	parallelBytes = 16 << 20
	minBufShift   = 12 // 4 KiB, the smallest pooled buffer
	// maxParallel bounds ApplyOptions.Parallel: past a few per core,
	// workers only wait on each other.
	maxParallel = 32
)

// fileJob is one regular file for a worker: everything it needs, copied
// out of the header, so that it shares nothing with the applier.
type fileJob struct {
	pfd    int // a dup of the parent directory, the job's to close
	name   string
	base   string
	uid    int
	gid    int
	mode   uint32
	times  times
	xattrs [][2]string
	data   *[]byte // pooled; nil for an empty file
	size   int
}

// fileWorkers runs the workers of one Apply.
type fileWorkers struct {
	ctx     context.Context
	queues  []chan *fileJob
	wg      sync.WaitGroup // the worker goroutines
	pending sync.WaitGroup // jobs handed out and not done

	// lastDir is the directory whose files go to lastQ: a directory's
	// files stay on one worker while the tar lists them together.
	lastDir string
	lastQ   int

	mu   sync.Mutex
	cond sync.Cond
	used int   // bytes of buffers handed out
	err  error // the first failure
}

// bufPools hold file buffers by size class, 1<<index bytes, for all
// Applies.
var bufPools [bits.UintSize]sync.Pool

func newFileWorkers(ctx context.Context, n int) *fileWorkers {
	w := &fileWorkers{ctx: ctx, queues: make([]chan *fileJob, n), lastQ: -1}
	w.cond.L = &w.mu
	for i := range w.queues {
		q := make(chan *fileJob, parallelQueue)
		w.queues[i] = q
		w.wg.Add(1)
		go w.run(q)
	}
	return w
}

// run does the jobs of one queue until it is closed. After a failure or
// once the context is done it only releases them.
func (w *fileWorkers) run(q chan *fileJob) {
	defer w.wg.Done()
	for j := range q {
		if w.failed() == nil && w.ctx.Err() == nil {
			if err := j.do(); err != nil {
				w.fail(fmt.Errorf("layer entry %s: %w", shortName(j.name), err))
			}
		}
		unix.Close(j.pfd)
		w.release(j)
		w.pending.Done()
	}
}

func (w *fileWorkers) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *fileWorkers) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

// buffer returns a pooled buffer of at least size bytes, once the buffers
// handed out leave room for it.
func (w *fileWorkers) buffer(size int) *[]byte {
	shift := max(bits.Len(uint(size-1)), minBufShift)
	w.mu.Lock()
	for w.used > 0 && w.used+1<<shift > parallelBytes {
		w.cond.Wait()
	}
	w.used += 1 << shift
	w.mu.Unlock()
	if b, ok := bufPools[shift].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 1<<shift)
	return &b
}

func (w *fileWorkers) release(j *fileJob) {
	if j.data == nil {
		return
	}
	n := cap(*j.data)
	bufPools[bits.Len(uint(n-1))].Put(j.data)
	j.data = nil
	w.mu.Lock()
	w.used -= n
	w.cond.Broadcast()
	w.mu.Unlock()
}

// submit reads the file's contents from r and queues it.
func (w *fileWorkers) submit(j *fileJob, dir string, r io.Reader) error {
	if j.size > 0 {
		j.data = w.buffer(j.size)
		if _, err := io.ReadFull(r, (*j.data)[:j.size]); err != nil {
			w.release(j)
			return err
		}
	}
	if dir != w.lastDir || w.lastQ < 0 {
		// A new directory goes to the worker with the least waiting.
		w.lastDir, w.lastQ = dir, 0
		for i, q := range w.queues {
			if len(q) < len(w.queues[w.lastQ]) {
				w.lastQ = i
			}
		}
	}
	w.pending.Add(1)
	w.queues[w.lastQ] <- j
	return nil
}

// wait returns once every file handed out is done, with the first failure.
func (w *fileWorkers) wait() error {
	w.pending.Wait()
	return w.failed()
}

// errStopped marks the workers stopped: what is still queued is skipped,
// Apply failed (on success nothing is).
var errStopped = errors.New("apply ended")

// stop ends the workers once they released what they hold.
func (w *fileWorkers) stop() {
	w.fail(errStopped)
	for _, q := range w.queues {
		close(q)
	}
	w.wg.Wait()
}

// do makes the file as make and writeFile would: created, never replacing
// anything, in the parent's descriptor; contents, owner, mode, xattrs while
// open; times last.
func (j *fileJob) do() error {
	fd, err := unix.Openat(j.pfd, j.base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, j.mode&0o777)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	err = j.fill(fd)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		return err
	}
	if err := unix.UtimesNanoAt(j.pfd, j.base, []unix.Timespec{j.times.atime, j.times.mtime}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func (j *fileJob) fill(fd int) error {
	if j.size > 0 {
		if err := writeAll(fd, (*j.data)[:j.size]); err != nil {
			return err
		}
	}
	if err := unix.Fchown(fd, j.uid, j.gid); err != nil {
		return fmt.Errorf("chown %d:%d: %w", j.uid, j.gid, err)
	}
	if err := unix.Fchmod(fd, j.mode); err != nil {
		return fmt.Errorf("chmod %o: %w", j.mode, err)
	}
	for _, x := range j.xattrs {
		if err := unix.Fsetxattr(fd, x[0], []byte(x[1]), 0); err != nil {
			if isErrno(err, unix.ENOTSUP, unix.EPERM) {
				continue
			}
			return fmt.Errorf("set xattr %s: %w", x[0], err)
		}
	}
	return nil
}

// prepare decides whether the entry name in dir may go to a worker: a
// small plain file whose name nothing of this layer made, in a directory
// reached without symlinks (one the layer made could make two names of one
// file). Otherwise it waits for the files in flight when the entry could
// meet one of them: a parent that is a file in flight, a hardlink (its
// target), a name this layer made before (a replacement, maybe of a
// directory with files in flight below it). It records dir and its parents
// as made. Past a symlinked parent it waits for all and stays sequential.
func (a *applier) prepare(name, dir string, hdr *tar.Header) (bool, error) {
	if a.workers == nil || a.serial {
		return false, nil
	}
	if !a.direct(dir) {
		a.serial = true
		return false, a.barrier()
	}
	wait := hdr.Typeflag == tar.TypeLink
	for p := dir; p != ""; p = parentOf(p) {
		if _, ok := a.made[p]; ok {
			break
		}
		if _, ok := a.inflight[p]; ok {
			wait = true
		}
		a.made[p] = struct{}{}
	}
	_, w := a.written[name]
	_, m := a.made[name]
	taken := w || m
	switch hdr.Typeflag {
	case tar.TypeSymlink, tar.TypeLink:
		// A hardlink may link a symlink.
		a.links[name] = struct{}{}
	}
	if !taken && !wait && hdr.Typeflag == tar.TypeReg && hdr.Size <= parallelMaxSize && !isSparse(hdr) {
		return true, nil
	}
	if taken || wait {
		return false, a.barrier()
	}
	return false, nil
}

// prepareWhiteout waits for the files in flight before a whiteout or an
// opaque marker in dir, which remove and make names.
func (a *applier) prepareWhiteout(dir string) error {
	if a.workers == nil || a.serial {
		return nil
	}
	if err := a.barrier(); err != nil {
		return err
	}
	if !a.direct(dir) {
		a.serial = true
		return nil
	}
	for p := dir; p != ""; p = parentOf(p) {
		a.made[p] = struct{}{}
	}
	return nil
}

// whiteoutMade records the overlay whiteout made for name.
func (a *applier) whiteoutMade(name string) {
	if a.made != nil {
		a.made[name] = struct{}{}
	}
}

// direct says that no parent on the way to dir is a symlink this layer
// made (the root was empty: there are no others).
func (a *applier) direct(dir string) bool {
	for p := dir; p != ""; p = parentOf(p) {
		if _, ok := a.links[p]; ok {
			return false
		}
	}
	return true
}

// barrier waits until the workers are done with every file handed out.
func (a *applier) barrier() error {
	if a.workers == nil || len(a.inflight) == 0 {
		return nil
	}
	clear(a.inflight)
	if err := a.workers.wait(); err != nil {
		return workerError{err}
	}
	return nil
}

// workerError is a worker's failure, which already names its entry.
type workerError struct{ error }

func (e workerError) Unwrap() error { return e.error }

// parallelFile hands the regular file name to a worker.
func (a *applier) parallelFile(pfd int, name, dir, base string, hdr *tar.Header, r io.Reader) error {
	var xs [][2]string
	for k, v := range hdr.PAXRecords {
		if x, ok := xattrName(k); ok {
			xs = append(xs, [2]string{x, v})
		}
	}
	dup, err := unix.FcntlInt(uintptr(pfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("dup parent: %w", err)
	}
	j := &fileJob{
		pfd: dup, name: name, base: base,
		uid: hdr.Uid, gid: hdr.Gid, mode: uint32(hdr.Mode) & 0o7777,
		times: headerTimes(hdr), xattrs: xs, size: int(hdr.Size),
	}
	if err := a.workers.submit(j, dir, r); err != nil {
		unix.Close(dup)
		return err
	}
	a.inflight[name] = struct{}{}
	if err := a.workers.failed(); err != nil {
		return workerError{err}
	}
	return nil
}

// emptyDir says whether the directory fd holds nothing: only then may
// names the layer did not make be taken for free.
func emptyDir(fd int) bool {
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(dfd)
	buf := make([]byte, 4096)
	for {
		n, err := unix.Getdents(dfd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false
		}
		if n <= 0 {
			return true
		}
		if _, c, _ := unix.ParseDirent(buf[:n], 1, nil); c > 0 {
			return false
		}
	}
}

func parentOf(p string) string {
	d, _ := path.Split(p)
	if d == "" {
		return ""
	}
	return d[:len(d)-1]
}
