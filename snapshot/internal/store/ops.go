package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/snapshot"
)

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
	return s.commit(ctx, name, key, nil)
}

// CommitOnto turns active key, made on no parent, into committed name on
// committed parent: for drivers whose snapshots do not hold their
// parent's files, so a layer can be made before its parent is.
func (s *Store) CommitOnto(ctx context.Context, name, key, parent string) error {
	return s.commit(ctx, name, key, &parent)
}

func (s *Store) commit(ctx context.Context, name, key string, parent *string) error {
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
	var p *Record
	if parent != nil && *parent != "" {
		if r.Info.Parent != "" {
			s.mu.Unlock()
			return errdefs.Invalid("commit %q onto %q: it was prepared on %q", key, *parent, r.Info.Parent)
		}
		if p, err = s.getLocked(*parent); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("commit %q: parent: %w", key, err)
		}
		if p.Info.Kind != snapshot.KindCommitted || p.busy {
			s.mu.Unlock()
			return errdefs.Conflict("commit %q: parent %q is %s or busy", key, *parent, p.Info.Kind)
		}
		p.children++
	}
	r.busy = true
	if name != key {
		s.keys[name] = &Record{ID: r.ID, Info: r.Info, preparing: true} // holds the name
	}
	s.mu.Unlock()

	info := r.Info
	info.Key, info.Kind = name, snapshot.KindCommitted
	if p != nil {
		info.Parent = p.Info.Key
	}
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
		if p != nil {
			p.children--
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
