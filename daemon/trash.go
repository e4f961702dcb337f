package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"

	"github.com/moby/sys/mountinfo"
)

// A container's removal ends with deleting its directories (the record
// with its log and /etc files, the shim's state), which took a `run --rm`
// about a millisecond of unlink calls before the CLI heard it was gone.
// discard renames such a directory into <root>/trash, which is as atomic
// as a removal, and deletes it in the background; what a daemon that died
// left in the trash goes when the next one starts (emptyTrash). Nothing
// mounted is ever deleted that way: a directory with a mount below it is
// left in the trash and logged.

const trashName = "trash"

// discard removes dir, which is under root, off the caller's path.
func (d *Daemon) discard(root, dir string) error {
	bin := filepath.Join(root, trashName)
	var b [8]byte
	_, _ = rand.Read(b[:])
	dst := filepath.Join(bin, filepath.Base(dir)+"-"+hex.EncodeToString(b[:]))
	err := os.Rename(dir, dst)
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(dir); errors.Is(serr, os.ErrNotExist) {
			return nil // nothing to remove
		}
		if err = os.MkdirAll(bin, 0o700); err == nil { // the first use
			err = os.Rename(dir, dst)
		}
	}
	if err != nil {
		return os.RemoveAll(dir) // another file system, or the like
	}
	d.trashMu.Lock()
	if d.trashClosed { // the daemon is closing: no more background work
		d.trashMu.Unlock()
		d.deleteTrash(dst)
		return nil
	}
	d.trashWG.Add(1)
	d.trashMu.Unlock()
	go func() {
		defer d.trashWG.Done()
		d.deleteTrash(dst)
	}()
	return nil
}

// closeTrash waits for the background deletions; later ones are done in
// place.
func (d *Daemon) closeTrash() {
	d.trashMu.Lock()
	d.trashClosed = true
	d.trashMu.Unlock()
	d.trashWG.Wait()
}

// emptyTrash deletes what is in root's trash (a daemon that died before
// its background deletions ended).
func (d *Daemon) emptyTrash(root string) {
	bin := filepath.Join(root, trashName)
	ents, _ := os.ReadDir(bin)
	for _, e := range ents {
		d.deleteTrash(filepath.Join(bin, e.Name()))
	}
}

func (d *Daemon) deleteTrash(p string) {
	if ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(p)); err != nil || len(ms) > 0 {
		d.log.Warn("trash: not deleting a directory with mounts below it", "path", p, "error", err)
		return
	}
	if err := os.RemoveAll(p); err != nil {
		d.log.Warn("trash: delete", "path", p, "error", err)
	}
}
