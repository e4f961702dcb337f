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
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/snapshot"
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

// Create makes active snapshot key on committed parent (a driver's Prepare).
func (s *Store) Create(ctx context.Context, key, parent string) (*Record, error) {
	if key == "" {
		return nil, errdefs.Invalid("prepare: empty snapshot key")
	}
	s.mu.Lock()
	if _, ok := s.keys[key]; ok {
		s.mu.Unlock()
		return nil, errdefs.Conflict("prepare %q: snapshot already exists", key)
	}
	var p *Record
	if parent != "" {
		var err error
		if p, err = s.getLocked(parent); err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("prepare %q: parent: %w", key, err)
		}
		if p.Info.Kind != snapshot.KindCommitted {
			s.mu.Unlock()
			return nil, errdefs.Invalid("prepare %q: parent %q is %s, not committed", key, parent, p.Info.Kind)
		}
		if p.busy {
			s.mu.Unlock()
			return nil, errdefs.Conflict("prepare %q: parent %q is being removed", key, parent)
		}
		p.children++
	}
	r := &Record{ID: newID(), Info: snapshot.Info{Key: key, Parent: parent, Kind: snapshot.KindActive, Created: time.Now().UTC()}, preparing: true}
	s.keys[key] = r
	s.mu.Unlock()

	err := s.make(ctx, r, p)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		delete(s.keys, key)
		if p != nil {
			p.children--
		}
		return nil, fmt.Errorf("prepare %q: %w", key, err)
	}
	r.preparing = false
	cp := *r
	return &cp, nil
}

func (s *Store) make(ctx context.Context, r, p *Record) error {
	staging := filepath.Join(s.root, "tmp", r.ID)
	if err := os.Mkdir(staging, 0o700); err != nil {
		return err
	}
	parentDir := ""
	if p != nil {
		parentDir = s.Dir(p.ID)
	}
	err := s.backend.Make(ctx, staging, parentDir)
	if err == nil {
		if crash("prepare") {
			return ErrCrashed
		}
		// Not synced: an active snapshot is as durable as the container
		// writes into it. A power cut leaves it whole, in tmp/ (deleted at
		// Open) or with unreadable metadata (deleted at Open): never half.
		err = writeMeta(staging, r.Info, "prepare-meta", false)
	}
	if err == nil {
		err = os.Rename(staging, s.Dir(r.ID))
	}
	if err != nil {
		if errors.Is(err, ErrCrashed) {
			return err
		}
		if derr := s.backend.Destroy(staging); derr != nil {
			return errors.Join(err, fmt.Errorf("clean up: %w", derr))
		}
		return err
	}
	return nil
}

func (s *Store) getLocked(key string) (*Record, error) {
	r, ok := s.keys[key]
	if !ok || r.preparing {
		return nil, errdefs.NotFound("snapshot %q not found", key)
	}
	return r, nil
}

// Get returns key's record and its ancestors, nearest first.
func (s *Store) Get(key string) (Record, []Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.getLocked(key)
	if err != nil {
		return Record{}, nil, err
	}
	var chain []Record
	for p := r.Info.Parent; p != ""; {
		pr, ok := s.keys[p]
		if !ok {
			return Record{}, nil, fmt.Errorf("snapshot %q: parent %q is missing", key, p)
		}
		chain = append(chain, *pr)
		p = pr.Info.Parent
	}
	return *r, chain, nil
}

// Commit turns active key into committed name.
func (s *Store) Commit(ctx context.Context, name, key string) error {
	if name == "" {
		return errdefs.Invalid("commit %q: empty name", key)
	}
	s.mu.Lock()
	r, err := s.getLocked(key)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("commit %q: %w", key, err)
	}
	if r.Info.Kind != snapshot.KindActive {
		s.mu.Unlock()
		return errdefs.Invalid("commit %q: snapshot is already committed", key)
	}
	if r.busy {
		s.mu.Unlock()
		return errdefs.Conflict("commit %q: snapshot is busy", key)
	}
	if _, ok := s.keys[name]; ok && name != key {
		s.mu.Unlock()
		return errdefs.Conflict("commit %q as %q: a snapshot of that name exists", key, name)
	}
	r.busy = true
	if name != key {
		s.keys[name] = &Record{ID: r.ID, Info: r.Info, preparing: true} // holds the name
	}
	s.mu.Unlock()

	info := r.Info
	info.Key, info.Kind = name, snapshot.KindCommitted
	err = writeMeta(s.Dir(r.ID), info, "commit", true)
	if errors.Is(err, ErrCrashed) {
		return err
	}
	committed := err == nil
	if err != nil {
		// The rename may have happened before a later step failed.
		if got, rerr := readMeta(s.Dir(r.ID)); rerr == nil && got.Kind == snapshot.KindCommitted {
			committed = true
		}
	}
	if committed {
		if serr := s.backend.Committed(s.Dir(r.ID)); serr != nil {
			err = errors.Join(err, fmt.Errorf("seal (Open retries): %w", serr))
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	r.busy = false
	if !committed {
		if name != key {
			delete(s.keys, name)
		}
		return fmt.Errorf("commit %q: %w", key, err)
	}
	delete(s.keys, key)
	r.Info = info
	s.keys[name] = r
	if err != nil {
		return fmt.Errorf("commit %q: %w", key, err)
	}
	return nil
}

// Remove deletes key, which must have no children.
func (s *Store) Remove(ctx context.Context, key string) error {
	s.mu.Lock()
	r, err := s.getLocked(key)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("remove %q: %w", key, err)
	}
	if r.children > 0 {
		s.mu.Unlock()
		return errdefs.Conflict("remove %q: it is the parent of %d snapshot(s)", key, r.children)
	}
	if r.busy {
		s.mu.Unlock()
		return errdefs.Conflict("remove %q: snapshot is busy", key)
	}
	r.busy = true
	s.mu.Unlock()

	dead := filepath.Join(s.root, "tmp", r.ID)
	if err := os.Rename(s.Dir(r.ID), dead); err != nil {
		s.mu.Lock()
		r.busy = false
		s.mu.Unlock()
		return fmt.Errorf("remove %q: %w", key, err)
	}
	_ = syncDir(filepath.Join(s.root, "snapshots"))
	s.mu.Lock()
	delete(s.keys, key)
	if p, ok := s.keys[r.Info.Parent]; ok && r.Info.Parent != "" {
		p.children--
	}
	s.mu.Unlock()
	if crash("remove") {
		return ErrCrashed
	}
	if err := s.backend.Destroy(dead); err != nil {
		return fmt.Errorf("remove %q: delete its files (Open will retry): %w", key, err)
	}
	return nil
}

// Stat describes key.
func (s *Store) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.getLocked(key)
	if err != nil {
		return snapshot.Info{}, err
	}
	return r.Info, nil
}

// Walk calls fn for every snapshot, in key order, outside the lock.
func (s *Store) Walk(ctx context.Context, fn func(snapshot.Info) error) error {
	s.mu.Lock()
	infos := make([]snapshot.Info, 0, len(s.keys))
	for k, r := range s.keys {
		if r.preparing || k != r.Info.Key {
			continue
		}
		infos = append(infos, r.Info)
	}
	s.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}
