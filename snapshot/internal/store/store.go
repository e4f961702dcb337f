// Package store keeps the snapshots of one driver on disk: the names, kinds
// and parents, and the crash safety of making, committing and removing
// them. The drivers differ only in how a snapshot's file tree is made (a
// Backend); everything about keys lives here.
//
// Layout under a driver's root:
//
//	lock                  flock'ed while a driver has the root open
//	snapshots/<id>/       one published snapshot
//	    meta.json         its key, parent and kind (replaced by rename)
//	    fs, ...           the Backend's files
//	tmp/<id>/             being made or being removed; never valid
//
// A snapshot is made in tmp/ and published by one rename into snapshots/,
// and removed by one rename back into tmp/, so a crash at any point leaves
// either a whole snapshot or debris in tmp/ that Open deletes.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/snapshot"
	"berth.dev/berth/snapshot/internal/fsutil"
)

// Backend makes and unmakes the file trees of one driver.
type Backend interface {
	// Make fills dir, a new empty directory, with a snapshot's files on
	// the snapshot directory parentDir ("" for a base).
	Make(ctx context.Context, dir, parentDir string) error
	// Committed is called when dir's snapshot has been committed, and
	// again for every committed snapshot at Open (it must be idempotent).
	Committed(dir string) error
	// Destroy deletes dir and all in it.
	Destroy(dir string) error
}

// Record is one snapshot.
type Record struct {
	ID   string
	Info snapshot.Info

	children  int
	preparing bool // not published yet: invisible
	busy      bool // being committed or removed
}

// Store is the snapshots of one root.
type Store struct {
	root    string
	backend Backend
	lock    *os.File

	mu   sync.Mutex
	keys map[string]*Record
}

const metaFile = "meta.json"

// CrashPoint, when set, is asked at named points of Prepare ("prepare"),
// Commit ("commit") and Remove ("remove"); when it says true the operation
// stops there without cleaning up, as if the process had died. For tests.
var CrashPoint func(stage string) bool

// ErrCrashed is returned by an operation stopped by CrashPoint.
var ErrCrashed = errors.New("simulated crash")

func crash(stage string) bool { return CrashPoint != nil && CrashPoint(stage) }

// Open opens root, cleaning up what a crash left there.
func Open(root string, b Backend) (*Store, error) {
	for _, d := range []string{root, filepath.Join(root, "snapshots"), filepath.Join(root, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("snapshot store: %w", err)
		}
	}
	// Snapshots are made in tmp: spread them over the file system.
	fsutil.MarkTopDir(filepath.Join(root, "tmp"))
	lock, err := os.OpenFile(filepath.Join(root, "lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errdefs.Conflict("snapshot store %s is in use by another driver instance", root)
		}
		return nil, fmt.Errorf("snapshot store: lock %s: %w", root, err)
	}
	s := &Store{root: root, backend: b, lock: lock, keys: map[string]*Record{}}
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// Root is the directory the store was opened on.
func (s *Store) Root() string { return s.root }

// Close releases the root.
func (s *Store) Close() error { return s.lock.Close() }

// Dir is the directory of snapshot id.
func (s *Store) Dir(id string) string { return filepath.Join(s.root, "snapshots", id) }

func (s *Store) load() error {
	tmp := filepath.Join(s.root, "tmp")
	debris, err := os.ReadDir(tmp)
	if err != nil {
		return fmt.Errorf("snapshot store: %w", err)
	}
	// Debris that will not go (a subvolume still mounted somewhere) stays
	// in tmp/, where nothing reads, and is tried again at the next Open:
	// it must not keep the driver, and so the daemon, from starting.
	for _, e := range debris {
		_ = s.backend.Destroy(filepath.Join(tmp, e.Name()))
	}
	entries, err := os.ReadDir(filepath.Join(s.root, "snapshots"))
	if err != nil {
		return fmt.Errorf("snapshot store: %w", err)
	}
	for _, e := range entries {
		dir := s.Dir(e.Name())
		_ = os.Remove(filepath.Join(dir, metaFile+".tmp")) // a commit that did not happen
		info, err := readMeta(dir)
		if err != nil {
			// Not published by us: move it out of sight, then delete.
			dead := filepath.Join(tmp, e.Name())
			if err := os.Rename(dir, dead); err != nil {
				return fmt.Errorf("snapshot store: %w", err)
			}
			_ = s.backend.Destroy(dead) // or at the next Open
			continue
		}
		if other, dup := s.keys[info.Key]; dup {
			return fmt.Errorf("snapshot store %s: key %q is in both %s and %s", s.root, info.Key, other.ID, e.Name())
		}
		s.keys[info.Key] = &Record{ID: e.Name(), Info: info}
	}
	// A snapshot whose parent is gone can never be mounted: delete it, and
	// its children in the next round. Remove syncs its rename, so only
	// hands outside berth make such orphans.
	for orphans := true; orphans; {
		orphans = false
		for k, r := range s.keys {
			if _, ok := s.keys[r.Info.Parent]; r.Info.Parent == "" || ok {
				continue
			}
			orphans = true
			delete(s.keys, k)
			dead := filepath.Join(tmp, r.ID)
			if err := os.Rename(s.Dir(r.ID), dead); err != nil {
				return fmt.Errorf("snapshot store: %w", err)
			}
			_ = s.backend.Destroy(dead) // or at the next Open
		}
	}
	for _, r := range s.keys {
		if r.Info.Parent != "" {
			s.keys[r.Info.Parent].children++
		}
	}
	for _, r := range s.keys {
		if r.Info.Kind == snapshot.KindCommitted {
			if err := s.backend.Committed(s.Dir(r.ID)); err != nil {
				return fmt.Errorf("snapshot store: %s: %w", r.Info.Key, err)
			}
		}
	}
	return nil
}

type meta struct {
	Key     string    `json:"key"`
	Parent  string    `json:"parent,omitempty"`
	Kind    string    `json:"kind"`
	Created time.Time `json:"created"`
}

func readMeta(dir string) (snapshot.Info, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return snapshot.Info{}, err
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return snapshot.Info{}, err
	}
	info := snapshot.Info{Key: m.Key, Parent: m.Parent, Created: m.Created}
	switch m.Kind {
	case "active":
		info.Kind = snapshot.KindActive
	case "committed":
		info.Kind = snapshot.KindCommitted
	default:
		return info, fmt.Errorf("bad kind %q", m.Kind)
	}
	if m.Key == "" {
		return info, errors.New("no key")
	}
	return info, nil
}

// writeMeta replaces dir's metadata atomically: a reader sees the old file
// or the new one, never a part. durable also waits for the disk, so that
// the change survives a power cut.
func writeMeta(dir string, info snapshot.Info, stage string, durable bool) error {
	b, err := json.Marshal(meta{Key: info.Key, Parent: info.Parent, Kind: info.Kind.String(), Created: info.Created})
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, metaFile+".tmp")
	if err := writeFile(tmp, b, durable); err != nil {
		return err
	}
	if crash(stage) {
		return ErrCrashed
	}
	if err := os.Rename(tmp, filepath.Join(dir, metaFile)); err != nil {
		return err
	}
	if durable {
		return syncDir(dir)
	}
	return nil
}

func writeFile(name string, b []byte, sync bool) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
