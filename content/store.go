package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"

	"berth.dev/berth/errdefs"
)

// ErrExists is wrapped (with kind conflict) by the error Writer returns when
// the expected blob is already in the store.
var ErrExists = errors.New("blob already exists")

// IsExists reports whether err says the blob is already stored, so the caller
// can skip fetching it.
func IsExists(err error) bool { return errors.Is(err, ErrExists) }

// Store is a blob store rooted at a directory. It keeps no state in memory
// beyond its paths: several Stores (and processes) may share one root.
type Store struct {
	root  string
	blobs string // <root>/blobs/sha256
	ingst string // <root>/ingest
}

// Info describes a committed blob.
type Info struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time // when it was committed
}

// ReaderAt reads a committed blob at any offset.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Open makes (if needed) and opens a store at root. It removes what a crash
// can leave behind in ingest/ (temporary files, ingests that never got their
// ref, and ingests whose data was already committed) but keeps every ingest
// that can be resumed, and never touches one another writer holds. blobs/
// is not read: a commit leaves nothing there but blobs, and Walk skips any
// other name, so Open costs the same with a million blobs.
func Open(root string) (*Store, error) {
	s := &Store{
		root:  root,
		blobs: filepath.Join(root, "blobs", "sha256"),
		ingst: filepath.Join(root, "ingest"),
	}
	for _, d := range []string{s.blobs, s.ingst} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("content store %s: %w", root, err)
		}
	}
	if err := s.cleanIngests(); err != nil {
		return nil, fmt.Errorf("content store %s: %w", root, err)
	}
	return s, nil
}

// Root returns the directory the store lives in.
func (s *Store) Root() string { return s.root }

// Path returns where the blob dgst is (or would be) stored.
func (s *Store) Path(dgst digest.Digest) (string, error) {
	if err := checkDigest(dgst); err != nil {
		return "", err
	}
	return s.blobPath(dgst), nil
}

func (s *Store) blobPath(dgst digest.Digest) string {
	return filepath.Join(s.blobs, dgst.Encoded())
}

// Info returns the size and commit time of a blob.
func (s *Store) Info(ctx context.Context, dgst digest.Digest) (Info, error) {
	if err := checkDigest(dgst); err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(s.blobPath(dgst))
	if err != nil {
		return Info{}, blobErr(dgst, err)
	}
	return Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}, nil
}

// Open opens a blob for reading. An *os.File lets io.Copy use the kernel's
// copy paths (copy_file_range, sendfile) when the destination allows.
func (s *Store) Open(ctx context.Context, dgst digest.Digest) (*os.File, error) {
	if err := checkDigest(dgst); err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(dgst))
	if err != nil {
		return nil, blobErr(dgst, err)
	}
	return f, nil
}

type fileReaderAt struct {
	*os.File
	size int64
}

func (r fileReaderAt) Size() int64 { return r.size }

// ReaderAt opens a blob for reading at offsets (ranges, concurrent readers).
func (s *Store) ReaderAt(ctx context.Context, dgst digest.Digest) (ReaderAt, error) {
	f, err := s.Open(ctx, dgst)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", dgst, err)
	}
	return fileReaderAt{File: f, size: fi.Size()}, nil
}

// Delete removes a blob. Readers that have it open keep reading it.
func (s *Store) Delete(ctx context.Context, dgst digest.Digest) error {
	if err := checkDigest(dgst); err != nil {
		return err
	}
	if err := os.Remove(s.blobPath(dgst)); err != nil {
		return blobErr(dgst, err)
	}
	return nil
}

// Walk calls fn for each committed blob, in no particular order, until fn
// returns an error (returned as is) or ctx is done. Ingests are never shown.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	ents, err := os.ReadDir(s.blobs)
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		dgst := digest.Digest("sha256:" + e.Name())
		if checkDigest(dgst) != nil || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted while walking
		}
		if err != nil {
			return fmt.Errorf("walk blobs: %w", err)
		}
		if err := fn(Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// ErrDigestMismatch is wrapped by the errors of Commit and Verify when data
// does not hash to the digest it should.
var ErrDigestMismatch = errors.New("digest mismatch")

// Verify re-hashes a stored blob (fsck). A blob whose content no longer
// matches its name gets an error wrapping ErrDigestMismatch.
func (s *Store) Verify(ctx context.Context, dgst digest.Digest) error {
	f, err := s.Open(ctx, dgst)
	if err != nil {
		return err
	}
	defer f.Close()
	v := dgst.Verifier()
	if _, err := copyCtx(ctx, v, f); err != nil {
		return fmt.Errorf("verify %s: %w", dgst, err)
	}
	if !v.Verified() {
		return fmt.Errorf("verify %s: %w: content changed on disk", dgst, ErrDigestMismatch)
	}
	return nil
}

func blobErr(dgst digest.Digest, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errdefs.NotFound("blob %s: not found", dgst)
	}
	return fmt.Errorf("blob %s: %w", dgst, err)
}
