package container

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"berth.dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// Creds are the numeric identity a user spec resolves to.
type Creds struct {
	UID, GID uint32
	Groups   []uint32
}

// openInRoot opens name inside root as if root were "/": symlinks and ".."
// cannot leave it (openat2 RESOLVE_IN_ROOT), so an image's /etc/passwd
// that is a symlink to the host's is read from the image's side.
func openInRoot(root, name string) (*os.File, error) {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", root, err)
	}
	defer unix.Close(dir)
	fd, err := unix.Openat2(dir, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// dbEntry is a line of /etc/passwd or /etc/group split on ":".
type dbEntry []string

func readDB(root, name string) ([]dbEntry, error) {
	f, err := openInRoot(root, name)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []dbEntry
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out, sc.Err()
}

// ResolveUser turns docker's user spec ("", "name", "uid", "name:group",
// "uid:gid", ...) into numbers, reading /etc/passwd and /etc/group inside
// the mounted root; extra are --group-add entries (names or numbers).
// Unknown names are invalid-argument errors with docker's wording.
func ResolveUser(root, spec string, extra []string) (*Creds, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	passwd, err := readDB(root, "/etc/passwd")
	if err != nil {
		return nil, fmt.Errorf("read /etc/passwd: %w", err)
	}
	groups, err := readDB(root, "/etc/group")
	if err != nil {
		return nil, fmt.Errorf("read /etc/group: %w", err)
	}
	c := &Creds{}
	userName := ""
	found := false
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		c.UID = uint32(n)
		for _, e := range passwd {
			if len(e) >= 4 && e[2] == userPart {
				userName, found = e[0], true
				if g, err := strconv.ParseUint(e[3], 10, 32); err == nil {
					c.GID = uint32(g)
				}
				break
			}
		}
	} else {
		for _, e := range passwd {
			if len(e) >= 4 && e[0] == userPart {
				u, err1 := strconv.ParseUint(e[2], 10, 32)
				g, err2 := strconv.ParseUint(e[3], 10, 32)
				if err1 != nil || err2 != nil {
					return nil, errdefs.Invalid("bad /etc/passwd entry for %s", userPart)
				}
				c.UID, c.GID, userName, found = uint32(u), uint32(g), e[0], true
				break
			}
		}
		if !found {
			return nil, errdefs.Invalid("unable to find user %s: no matching entries in passwd file", userPart)
		}
	}
	lookupGroup := func(g string) (uint32, error) {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			return uint32(n), nil
		}
		for _, e := range groups {
			if len(e) >= 3 && e[0] == g {
				n, err := strconv.ParseUint(e[2], 10, 32)
				if err != nil {
					return 0, errdefs.Invalid("bad /etc/group entry for %s", g)
				}
				return uint32(n), nil
			}
		}
		return 0, errdefs.Invalid("unable to find group %s: no matching entries in group file", g)
	}
	if hasGroup && groupPart != "" {
		if c.GID, err = lookupGroup(groupPart); err != nil {
			return nil, err
		}
	} else if userName != "" {
		// Supplementary groups that list the user, as docker does when no
		// group is given.
		for _, e := range groups {
			if len(e) < 4 {
				continue
			}
			for _, m := range strings.Split(e[3], ",") {
				if m == userName {
					if n, err := strconv.ParseUint(e[2], 10, 32); err == nil && uint32(n) != c.GID {
						c.Groups = append(c.Groups, uint32(n))
					}
				}
			}
		}
	}
	for _, g := range extra {
		n, err := lookupGroup(g)
		if err != nil {
			return nil, err
		}
		c.Groups = append(c.Groups, n)
	}
	return c, nil
}
