package runtime

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var rlimitByName = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// checkRlimits rejects rlimits that are unknown or malformed.
func checkRlimits(rls []specs.POSIXRlimit) error {
	seen := map[string]bool{}
	for _, rl := range rls {
		if _, ok := rlimitByName[rl.Type]; !ok {
			return fmt.Errorf("unknown rlimit type %q", rl.Type)
		}
		if seen[rl.Type] {
			return fmt.Errorf("rlimit %s given twice", rl.Type)
		}
		seen[rl.Type] = true
		if rl.Soft > rl.Hard {
			return fmt.Errorf("rlimit %s: soft limit %d is above hard limit %d", rl.Type, rl.Soft, rl.Hard)
		}
	}
	return nil
}

// setRlimit applies one rlimit. Raising a hard limit needs CAP_SYS_RESOURCE,
// which root lacks on some hosts: say so instead of a bare EPERM.
func setRlimit(rl specs.POSIXRlimit) error {
	res, ok := rlimitByName[rl.Type]
	if !ok {
		return fmt.Errorf("unknown rlimit type %q", rl.Type)
	}
	var cur unix.Rlimit
	if err := unix.Getrlimit(res, &cur); err != nil {
		return fmt.Errorf("get %s: %w", rl.Type, err)
	}
	if rl.Hard > cur.Max && !hasCap(capability.CAP_SYS_RESOURCE) {
		return fmt.Errorf("rlimit %s: hard limit %d is above the current hard limit %d, and raising it needs CAP_SYS_RESOURCE, which this process lacks", rl.Type, rl.Hard, cur.Max)
	}
	// syscall.Setrlimit keeps Go from restoring its saved RLIMIT_NOFILE on exec.
	if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
		return fmt.Errorf("set %s soft=%d hard=%d: %w", rl.Type, rl.Soft, rl.Hard, err)
	}
	return nil
}

func hasCap(c capability.Cap) bool {
	caps, err := capability.NewPid2(0)
	if err != nil || caps.Load() != nil {
		return false
	}
	return caps.Get(capability.EFFECTIVE, c)
}

// capByName is built on first use, not at every process start.
var capByName = sync.OnceValue(func() map[string]capability.Cap {
	m := make(map[string]capability.Cap)
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = c
	}
	return m
})

// parseCaps maps capability names to values. Names this kernel does not know
// are dropped (they cannot be granted); names nobody knows are an error.
func parseCaps(names []string) ([]capability.Cap, error) {
	last, err := capability.LastCap()
	if err != nil {
		return nil, err
	}
	var out []capability.Cap
	for _, n := range names {
		c, ok := capByName()[strings.ToUpper(n)]
		if !ok {
			return nil, fmt.Errorf("unknown capability %q", n)
		}
		if c > last {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// checkCaps validates every capability set of p.
func checkCaps(p *specs.Process) error {
	if p.Capabilities == nil {
		return nil
	}
	for _, set := range [][]string{p.Capabilities.Bounding, p.Capabilities.Effective, p.Capabilities.Permitted, p.Capabilities.Inheritable, p.Capabilities.Ambient} {
		if _, err := parseCaps(set); err != nil {
			return err
		}
	}
	return nil
}

// setUserAndCaps switches to the process's user and capability sets, in the
// order that keeps the rights each step needs: bounding set first, then the
// ids with KEEPCAPS, then the other sets.
func setUserAndCaps(p *specs.Process) error {
	caps, err := capability.NewPid2(0)
	if err != nil {
		return err
	}
	pc := p.Capabilities
	if pc == nil {
		pc = &specs.LinuxCapabilities{}
	}
	sets := []struct {
		which capability.CapType
		names []string
	}{
		{capability.BOUNDING, pc.Bounding},
		{capability.EFFECTIVE, pc.Effective},
		{capability.PERMITTED, pc.Permitted},
		{capability.INHERITABLE, pc.Inheritable},
		{capability.AMBIENT, pc.Ambient},
	}
	// A capability outside our own bounding set can never be granted: say
	// which, rather than let capset fail with a bare EPERM.
	if err := caps.Load(); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	var missing []string
	for _, s := range sets {
		cs, err := parseCaps(s.names)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if !caps.Get(capability.BOUNDING, c) && !slices.Contains(missing, "CAP_"+strings.ToUpper(c.String())) {
				missing = append(missing, "CAP_"+strings.ToUpper(c.String()))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("capabilities %s requested, but this host does not allow them (not in berth's own bounding set)", strings.Join(missing, ", "))
	}
	caps.Clear(capability.CAPS | capability.BOUNDS | capability.AMBS)
	for _, s := range sets {
		cs, _ := parseCaps(s.names)
		caps.Set(s.which, cs...)
	}
	if err := caps.Apply(capability.BOUNDS); err != nil {
		return fmt.Errorf("drop bounding capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keep capabilities: %w", err)
	}
	u := p.User
	gids := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		gids = append(gids, int(g))
	}
	if err := setgroupsThread(gids); err != nil {
		// setgroups is denied in user namespaces whose setgroups file says deny.
		if !(errors.Is(err, unix.EPERM) && len(gids) == 0 && setgroupsDenied()) {
			return fmt.Errorf("set additional gids %v: %w", gids, err)
		}
	}
	if err := setresgidThread(int(u.GID)); err != nil {
		return fmt.Errorf("set gid %d: %w", u.GID, err)
	}
	if err := setresuidThread(int(u.UID)); err != nil {
		return fmt.Errorf("set uid %d: %w", u.UID, err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("reset keepcaps: %w", err)
	}
	if err := caps.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	// The kernel raises an ambient capability only if it is permitted and
	// inheritable; runc's default spec asks for ambient ones without
	// inheritable, so, like runc, warn and go on without them.
	amb, _ := parseCaps(pc.Ambient)
	var skipped []string
	for _, c := range amb {
		if !caps.Get(capability.PERMITTED, c) || !caps.Get(capability.INHERITABLE, c) {
			skipped = append(skipped, "CAP_"+strings.ToUpper(c.String()))
			continue
		}
		if err := capability.SetAmbient(true, c); err != nil {
			return fmt.Errorf("raise ambient capability %s: %w", c, err)
		}
	}
	if len(skipped) > 0 {
		fmt.Fprintf(os.Stderr, "berth: warning: ambient capabilities %s not raised: they are not both permitted and inheritable\n", strings.Join(skipped, ", "))
	}
	if u.Umask != nil {
		unix.Umask(int(*u.Umask))
	}
	return nil
}

func setgroupsDenied() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(b)) == "deny"
}

// setupConsole makes a pty inside the container, hands its master to the
// caller over the console socket, and makes the slave our stdio and
// controlling terminal (and /dev/console for the container's first process).
func (in *initProc) setupConsole(p *specs.Process, first bool) error {
	if in.cfg.Fds.Console <= 0 {
		return errors.New("terminal requested but no console socket was given")
	}
	conn := in.cfg.Fds.Console
	defer unix.Close(conn)
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx (is devpts mounted at /dev/pts?): %w", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("pty number: %w", err)
	}
	slavePath := fmt.Sprintf("/dev/pts/%d", n)
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open pty slave %s: %w", slavePath, err)
	}
	defer slave.Close()
	if p.ConsoleSize != nil {
		ws := &unix.Winsize{Row: uint16(p.ConsoleSize.Height), Col: uint16(p.ConsoleSize.Width)}
		if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("set console size: %w", err)
		}
	}
	if first {
		if err := bindConsole(slavePath); err != nil {
			return err
		}
	}
	rights := unix.UnixRights(int(master.Fd()))
	if err := unix.Sendmsg(conn, []byte("/dev/ptmx"), rights, nil, 0); err != nil {
		return fmt.Errorf("send pty master to console socket: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(int(slave.Fd()), fd, 0); err != nil {
			return fmt.Errorf("dup pty onto fd %d: %w", fd, err)
		}
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, 0, unix.TIOCSCTTY, 0); errno != 0 {
		return fmt.Errorf("set controlling terminal: %w", errno)
	}
	return nil
}

// bindConsole bind-mounts the pty slave onto /dev/console.
func bindConsole(slave string) error {
	f, err := os.OpenFile("/dev/console", os.O_CREATE|os.O_RDONLY|unix.O_NOFOLLOW, 0o600)
	if err != nil && !errors.Is(err, unix.ENXIO) && !errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("create /dev/console: %w", err)
	}
	if f != nil {
		f.Close()
	}
	if err := unix.Mount(slave, "/dev/console", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s to /dev/console: %w", slave, err)
	}
	return nil
}
