package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"time"

	"berth.dev/berth/archive"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/snapshot"
)

// The init layer is a committed snapshot between a container's image and
// its writable snapshot, as dockerd makes one: it holds the mount points
// and files every container gets (/dev, /proc, /sys, the /etc files the
// daemon binds in, /.dockerenv, /etc/mtab), so that they exist whatever
// the image has, and `docker diff` and `docker commit` (the writable
// snapshot against its parent) do not show them while `docker export`
// (the whole stack) does.
//
// Its content depends on nothing but the image, so unlike dockerd's (one
// per container) it is made once per image top layer, "init-<chain ID>",
// and shared: a create costs one lookup, not a snapshot commit (two
// fsyncs). The collector removes it once no container stands on it.

// initLayerEntries are dockerd's, with its modes: files are empty and
// 0755.
var initLayerEntries = []struct {
	name     string
	typ      byte
	linkname string
}{
	{"dev/", tar.TypeDir, ""},
	{"dev/pts/", tar.TypeDir, ""},
	{"dev/shm/", tar.TypeDir, ""},
	{"dev/console", tar.TypeReg, ""},
	{"proc/", tar.TypeDir, ""},
	{"sys/", tar.TypeDir, ""},
	{".dockerenv", tar.TypeReg, ""},
	{"etc/", tar.TypeDir, ""},
	{"etc/resolv.conf", tar.TypeReg, ""},
	{"etc/hosts", tar.TypeReg, ""},
	{"etc/hostname", tar.TypeReg, ""},
	{"etc/mtab", tar.TypeSymlink, "/proc/mounts"},
}

func initLayerTar(now time.Time) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range initLayerEntries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.linkname, Mode: 0o755, ModTime: now, Format: tar.FormatPAX}
		if e.typ == tar.TypeSymlink {
			h.Mode = 0o777
		}
		_ = tw.WriteHeader(h) // into memory: cannot fail
	}
	_ = tw.Close()
	return buf.Bytes()
}

// initKey names the init layer on parent (an image's top layer).
func initKey(parent string) string { return "init-" + parent }

// prepareOnInit makes container id's writable snapshot on the init layer
// of parent, making that first when there is none.
func (s *Store) prepareOnInit(ctx context.Context, id, parent string) ([]snapshot.MountSpec, error) {
	key := initKey(parent)
	if _, err := s.sn.Stat(ctx, key); err == nil {
		mounts, err := s.sn.Prepare(ctx, id, key)
		if !errdefs.Is(err, errdefs.KindNotFound) {
			return mounts, err
		}
		// The collector took it meanwhile: make it again.
	}
	lease, err := s.db.NewLease()
	if err != nil {
		return nil, err
	}
	defer func() { _ = lease.Release() }()
	// One maker at a time: a commit in progress holds the key's name
	// without showing it, so a second maker's commit failed (two creates
	// of a new image's first containers at once).
	s.initMu.Lock()
	if _, err = s.sn.Stat(ctx, key); err != nil {
		err = s.makeInit(ctx, lease.ID(), key, parent, lease.AddSnapshot)
	} else {
		err = lease.AddSnapshot(key) // made meanwhile: kept until the Prepare
	}
	s.initMu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.sn.Prepare(ctx, id, key)
}

// makeInit commits the init layer key on parent, unless a concurrent
// create made it first. protect puts the keys it makes in a lease.
func (s *Store) makeInit(ctx context.Context, tag, key, parent string, protect func(...string) error) error {
	tmp := key + "-" + tag
	if err := protect(key, tmp); err != nil {
		return err
	}
	if _, err := s.sn.Prepare(ctx, tmp, parent); err != nil {
		return fmt.Errorf("init layer: %w", err)
	}
	defer s.sn.Remove(context.WithoutCancel(ctx), tmp) //nolint:errcheck // gone after a commit
	if _, err := s.sn.Apply(ctx, tmp, bytes.NewReader(initLayerTar(time.Now())), archive.ApplyOptions{}); err != nil {
		return fmt.Errorf("init layer: %w", err)
	}
	err := s.sn.Commit(ctx, key, tmp)
	if errdefs.Is(err, errdefs.KindConflict) {
		if _, serr := s.sn.Stat(ctx, key); serr == nil {
			return nil // made by another create
		}
	}
	if err != nil {
		return fmt.Errorf("init layer: %w", err)
	}
	return nil
}
