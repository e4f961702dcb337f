// Package drivers picks and opens the graph driver of a data root. It
// sits apart from package snapshot because it imports every driver.
//
// The choice is docker's: a name given by the user wins; otherwise the
// driver the data root was made with; otherwise btrfs when the root is on
// btrfs, overlay2 when overlayfs works there, and vfs as the last resort.
// A data root keeps one driver for life: its name is recorded in
// <root>/driver and asking for another one is refused.
package drivers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/snapshot"
	"berth.dev/berth/snapshot/btrfs"
	"berth.dev/berth/snapshot/overlay"
	"berth.dev/berth/snapshot/vfs"
)

// Names lists the drivers berth has, in the order they are tried: overlay2
// wherever the backing file system takes it (issue #3 asks for that default
// even on btrfs, where docker would pick btrfs), then btrfs, then vfs.
var Names = []string{overlay.Name, btrfs.Name, vfs.Name}

// Open opens the driver name ("" to choose) on data root; its snapshots
// live in <root>/<name>.
func Open(root, name string) (snapshot.Driver, error) {
	if name != "" && !known(name) {
		return nil, errdefs.Invalid("unknown storage driver %q (berth has %s)", name, strings.Join(Names, ", "))
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("storage driver: %w", err)
	}
	recorded, err := Recorded(root)
	if err != nil {
		return nil, err
	}
	switch {
	case recorded != "" && name != "" && name != recorded:
		return nil, errdefs.Conflict("data root %s was made with storage driver %q; refusing to use %q (move the data root away or pick %q)",
			root, recorded, name, recorded)
	case recorded != "":
		name = recorded
	case name == "":
		if name, err = Default(root); err != nil {
			return nil, err
		}
	}
	if err := supported(name, root); err != nil {
		return nil, fmt.Errorf("storage driver %q on %s: %w", name, root, err)
	}
	if recorded == "" {
		if err := record(root, name); err != nil {
			return nil, err
		}
	}
	return open(name, filepath.Join(root, name))
}

// Default is the driver Open picks for a new data root.
func Default(root string) (string, error) {
	for _, n := range Names {
		if supported(n, root) == nil {
			return n, nil
		}
	}
	return "", errdefs.Unavailable("no storage driver works on %s", root)
}

// Recorded returns the driver a data root was made with, "" for a new one.
// Roots from before <root>/driver existed are recognised by their driver
// directory; more than one is ambiguous and refused.
func Recorded(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "driver"))
	if err == nil {
		name := strings.TrimSpace(string(b))
		if !known(name) {
			return "", errdefs.Invalid("data root %s records unknown storage driver %q", root, name)
		}
		return name, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("storage driver: %w", err)
	}
	var found []string
	for _, n := range Names {
		if ents, err := os.ReadDir(filepath.Join(root, n, "snapshots")); err == nil && len(ents) > 0 {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", errdefs.Conflict("data root %s holds snapshots of several storage drivers (%s); pick one and move the others away",
		root, strings.Join(found, ", "))
}

func record(root, name string) error {
	tmp := filepath.Join(root, "driver.tmp")
	if err := os.WriteFile(tmp, []byte(name+"\n"), 0o600); err != nil {
		return fmt.Errorf("storage driver: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(root, "driver")); err != nil {
		return fmt.Errorf("storage driver: %w", err)
	}
	return nil
}

func known(name string) bool {
	for _, n := range Names {
		if n == name {
			return true
		}
	}
	return false
}

func supported(name, root string) error {
	switch name {
	case btrfs.Name:
		return btrfs.Supported(root)
	case overlay.Name:
		return overlay.Supported(root)
	}
	return nil
}

func open(name, dir string) (snapshot.Driver, error) {
	switch name {
	case btrfs.Name:
		return btrfs.New(dir)
	case overlay.Name:
		d, err := overlay.New(dir) // not returned as is: a nil *Driver is a non-nil Driver
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	return vfs.New(dir)
}
