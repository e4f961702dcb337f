package volume

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"berth.dev/berth/errdefs"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// validateOpts checks the local driver's options as docker's does: only
// type, device and o; type and device together.
func validateOpts(opts map[string]string) error {
	for k := range opts {
		switch k {
		case "type", "device", "o":
		default:
			return errdefs.Invalid("invalid option: %q", k)
		}
	}
	if len(opts) == 0 {
		return nil
	}
	if opts["type"] == "" {
		return errdefs.Invalid("missing required option: \"type\"")
	}
	if opts["device"] == "" {
		return errdefs.Invalid("missing required option: \"device\"")
	}
	if _, _, err := parseOptions(opts["o"]); err != nil {
		return err
	}
	return nil
}

// flagOpts is built on first use, not at every start of the binary.
var flagOpts = sync.OnceValue(func() map[string]flagOpt {
	return map[string]flagOpt{
		"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
		"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
		"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
		"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
		"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
		"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
		"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
		"defaults": {false, 0},
	}
})

type flagOpt struct {
	clear bool
	flag  uintptr
}

// parseOptions splits mount(8)-style options into flags and the data the
// file system reads.
func parseOptions(o string) (uintptr, string, error) {
	var flags uintptr
	var data []string
	for _, opt := range strings.Split(o, ",") {
		if opt == "" {
			continue
		}
		if f, ok := flagOpts()[opt]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if strings.ContainsAny(opt, "\x00") {
			return 0, "", errdefs.Invalid("invalid mount option %q", opt)
		}
		data = append(data, opt)
	}
	return flags, strings.Join(data, ","), nil
}

// mountOpts mounts what the options say on target (the volume's _data).
// A bind's read-only flag needs a remount, as mount(8) does it.
func mountOpts(opts map[string]string, target string) error {
	flags, data, err := parseOptions(opts["o"])
	if err != nil {
		return err
	}
	dev := opts["device"]
	if flags&unix.MS_BIND != 0 {
		if _, err := os.Stat(dev); err != nil {
			return fmt.Errorf("bind source: %w", err)
		}
		if err := unix.Mount(dev, target, "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", dev, target, err)
		}
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
			if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|rest, ""); err != nil {
				_ = unix.Unmount(target, unix.MNT_DETACH)
				return fmt.Errorf("remount %s: %w", target, err)
			}
		}
		return nil
	}
	if err := unix.Mount(dev, target, opts["type"], flags, data); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", dev, opts["type"], target, err)
	}
	return nil
}

func isMountpoint(p string) bool {
	ok, err := mountinfo.Mounted(p)
	return err == nil && ok
}

func unmountIfMounted(p string) error {
	// Stacked mounts come off one at a time.
	for range 16 {
		if !isMountpoint(p) {
			return nil
		}
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return fmt.Errorf("%s: still mounted", p)
}
