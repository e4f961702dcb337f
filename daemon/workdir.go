package daemon

import (
	"fmt"
	"path/filepath"
	"strings"

	"berth.dev/berth/archive"
	"golang.org/x/sys/unix"
)

// makeWorkdir makes the container's working directory (-w, WORKDIR) in its
// mounted root when the image lacks it, as dockerd does, every step
// resolved inside the root.
func makeWorkdir(rootfs, wd string) error {
	rel := strings.TrimPrefix(filepath.Clean("/"+wd), "/")
	if rel == "" {
		return nil
	}
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	fd, err := archive.MountPointIn(root, rel, false)
	if err != nil {
		return fmt.Errorf("working directory %s: %w", wd, err)
	}
	return unix.Close(fd)
}
