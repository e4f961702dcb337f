package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"time"

	"berth.dev/berth/archive"
	"berth.dev/berth/metadata"
)

// The init layer is a committed snapshot between a container's image and
// its writable snapshot, as dockerd makes one: it holds the mount points
// and files every container gets (/dev, /proc, /sys, the /etc files the
// daemon binds in, /.dockerenv, /etc/mtab), so that they exist whatever
// the image has, and `docker diff` and `docker commit` (the writable
// snapshot against its parent) do not show them while `docker export`
// (the whole stack) does.

// InitLayerSuffix names a container's init snapshot: "<id>-init".
const InitLayerSuffix = "-init"

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

// prepareInit makes container id's committed init snapshot on parent (the
// image's top layer) and returns its key. The lease holds it until the
// container's own snapshot, which keeps it, is made.
func (s *Store) prepareInit(ctx context.Context, lease *metadata.LeaseHandle, id, parent string) (string, error) {
	key := id + InitLayerSuffix
	tmp := key + "-" + lease.ID()
	if err := lease.AddSnapshot(key, tmp); err != nil {
		return "", err
	}
	if _, err := s.sn.Prepare(ctx, tmp, parent); err != nil {
		return "", fmt.Errorf("init layer: %w", err)
	}
	if _, err := s.sn.Apply(ctx, tmp, bytes.NewReader(initLayerTar(time.Now())), archive.ApplyOptions{}); err != nil {
		_ = s.sn.Remove(context.WithoutCancel(ctx), tmp)
		return "", fmt.Errorf("init layer: %w", err)
	}
	if err := s.sn.Commit(ctx, key, tmp); err != nil {
		_ = s.sn.Remove(context.WithoutCancel(ctx), tmp)
		return "", fmt.Errorf("init layer: %w", err)
	}
	return key, nil
}
