package runtime

import (
	"encoding/binary"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/berth/runtime/cgroups"
	"berth.dev/berth/runtime/rootfs"
	"berth.dev/berth/runtime/seccomp"
)

// The C init: the container init without a Go start.
//
// For the common container (no terminal, no user namespace, a new mount
// namespace, no hooks of the init's own, nothing rootfs.Prepare alone
// knows how to do) create compiles what the Go init would do into a flat
// program of primitive steps, and the init's C constructor
// (runtime/nsenter/cinit.c) runs it and execs the user's process before
// the Go runtime ever starts: that saves the init's Go boot, its package
// initialisation and an execve out of a multi-threaded Go process. Every
// step carries the text the Go init would put before its error, so
// failures read the same. Anything the compiler does not translate goes to
// the Go init, which then reads its usual config from the same pipe;
// BERTH_GO_INIT=1 forces that.
//
// On the wire: "BCI1", the sync socket's fd and the program, or "BGO1" and the Go init's config.
// A step is its opcode byte, the text for its errors, then its operands:
// integers as 8 bytes little-endian, strings as a 4-byte length, the
// bytes and a NUL, lists as a 4-byte count and their items.

const (
	cinitMagic = "BCI1"
	goMagic    = "BGO1"
	envCInit   = "_BERTH_CINIT"
	// envForceGo in the runtime's environment turns the C init off.
	envForceGo = "BERTH_GO_INIT"
	// envUnchecked skips the look for symlinks in the rootfs before
	// choosing the C init, for tests of the C init's own confinement.
	envUnchecked = "BERTH_CINIT_UNCHECKED"
)

// Opcodes: the same numbers as in cinit.c.
const (
	opWrite       = 1  // path, data: write a file
	opUnshare     = 2  // flags
	opSetsid      = 3  //
	opHostname    = 4  // name
	opDomainname  = 5  // name
	opMount       = 6  // source, target, fstype, flags, data: mount(2) by path
	opOpenRoot    = 7  // path: the handle the *InRoot steps resolve from
	opNewInRoot   = 8  // dest, source, fstype, flags, data: a new file system on a directory in the root
	opBindInRoot  = 9  // dest, source, recursive, attr set, attr clear, propagation flags
	opCgroupBind  = 10 // dest, controllers, mountpoint, mount root, attr set, attr clear, fresh, fstype, flags, data
	opMknodInRoot = 11 // path, mode, dev, uid, gid
	opSymlink     = 12 // target, link (in the root)
	opSetattrRoot = 13 // dest, attr set: mount_setattr of the mount at dest in the root
	opPivot       = 14 // root
	opReadonly    = 15 // path
	opMask        = 16 // path
	opSetattr     = 17 // path, attr set
	opRlimit      = 18 // resource, soft, hard
	opKeyring     = 19 // name
	opChdir       = 20 // path, soft (EACCES/EPERM ignored)
	opReady       = 21 //
	opFifo        = 22 // fd
	opSeccomp     = 23 // program, flags
	opPrctl       = 24 // option, arg
	opCapBSet     = 25 // keep mask, last cap
	opSetgroups   = 26 // gids
	opSetresgid   = 27 // gid
	opSetresuid   = 28 // uid
	opCapset      = 29 // effective, permitted, inheritable
	opAmbient     = 30 // cap
	opWarn        = 31 // (the text is the warning)
	opUmask       = 32 // mask
	opCloseRange  = 33 // first fd
	opExec        = 34 // args, env, uid
	opTrace       = 35 // (the text is the step)
	opHooks       = 36 // say "hooks" on the sync socket, wait for "hooks-done"
	opMkdir       = 37 // path, mode: mkdir -p (an existing directory is fine)
)

// preludeMagic starts a prelude: a program of opMkdir, opWrite and
// opTrace steps the C init runs as soon as it reads it, before its
// program (or the Go init's config) comes.
const preludeMagic = "BCG1"

// cgroupPrelude has the init make its v1 cgroups (steps, from
// cgroups.Manager.CreateSteps) and move its main thread into them
// (dirs) while the runtime readies the rest: the init has nothing else
// to do then, and on two cores the runtime's decode and compile go on
// beside it instead of after the ~0.4 ms of mkdirs and writes.
func cgroupPrelude(syncFd int, steps []cgroups.Step, dirs []string) []byte {
	c := cprog{b: binary.LittleEndian.AppendUint64(nil, uint64(syncFd))}
	c.trace("init(C): prelude read")
	for _, st := range steps {
		if st.Mkdir {
			c.op(opMkdir, "create cgroup "+st.Path, st.Path, uint64(0o755))
		} else {
			c.op(opWrite, fmt.Sprintf("write %q to %s", st.Data, st.Path), st.Path, st.Data)
		}
	}
	for _, dir := range dirs {
		c.op(opWrite, "join cgroup "+dir, dir+"/tasks", "0")
	}
	c.trace("init(C): cgroups made and joined")
	b := binary.LittleEndian.AppendUint32([]byte(preludeMagic), uint32(len(c.b)))
	return append(b, c.b...)
}

// cprog builds a program.
type cprog struct{ b []byte }

func (p *cprog) op(code byte, what string, args ...any) {
	p.b = append(p.b, code)
	p.str(what)
	for _, a := range args {
		switch v := a.(type) {
		case int:
			p.b = binary.LittleEndian.AppendUint64(p.b, uint64(v))
		case int64:
			p.b = binary.LittleEndian.AppendUint64(p.b, uint64(v))
		case uint64:
			p.b = binary.LittleEndian.AppendUint64(p.b, v)
		case uintptr:
			p.b = binary.LittleEndian.AppendUint64(p.b, uint64(v))
		case bool:
			n := uint64(0)
			if v {
				n = 1
			}
			p.b = binary.LittleEndian.AppendUint64(p.b, n)
		case string:
			p.str(v)
		case []byte:
			p.str(string(v))
		case []string:
			p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(v)))
			for _, s := range v {
				p.str(s)
			}
		default:
			panic(fmt.Sprintf("cprog: operand of type %T", a))
		}
	}
}

func (p *cprog) str(s string) {
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(s)))
	p.b = append(append(p.b, s...), 0)
}

func (p *cprog) trace(step string) {
	if tracing {
		p.op(opTrace, step)
	}
}

// cinitEarly says, at the fork, whether the init may be the C one: the
// rest is known once the whole spec is decoded (compileCInit), and the
// init falls back to Go if it is not.
func cinitEarly(e earlySpec, terminal, noPivot bool) bool {
	if os.Getenv(envForceGo) != "" || terminal || noPivot || e.Linux == nil {
		return false
	}
	return e.newNS(specs.MountNamespace) && !e.newNS(specs.UserNamespace) && !hasJoin(e.linux().Namespaces, specs.UserNamespace)
}

func hasJoin(nss []specs.LinuxNamespace, t specs.LinuxNamespaceType) bool {
	for _, ns := range nss {
		if ns.Type == t && ns.Path != "" {
			return true
		}
	}
	return false
}

// errNoCInit says why a container needs the Go init.
type errNoCInit string

func (e errNoCInit) Error() string { return "Go init: " + string(e) }

// compileCInit translates what the Go init (containerInit) would do for
// cfg and spec (root made absolute) into the body of a C init program (all
// but the cgroup joins: linkCInit), or says why it cannot. It runs while
// the cgroups are being made.
func compileCInit(cfg *initConfig, spec *specs.Spec) ([]byte, error) {
	p := spec.Process
	l := spec.Linux
	switch {
	case p == nil || len(p.Args) == 0:
		return nil, errNoCInit("no process")
	case cfg.Exec || cfg.NewUser || cfg.NoPivot || p.Terminal:
		return nil, errNoCInit("exec, user namespace, no pivot or terminal")
	case spec.Hooks != nil && len(spec.Hooks.CreateContainer)+len(spec.Hooks.StartContainer) > 0:
		return nil, errNoCInit("hooks in the init")
	case p.ApparmorProfile != "" || p.SelinuxLabel != "":
		return nil, errNoCInit("LSM label")
	case l.RootfsPropagation != "" || !hasNewNS(spec, specs.MountNamespace):
		return nil, errNoCInit("rootfs propagation or no new mount namespace")
	case (spec.Hostname != "" || spec.Domainname != "") && !cfg.NewUTS:
		return nil, errNoCInit("hostname without uts namespace")
	case l.Seccomp != nil && l.Seccomp.ListenerPath != "":
		return nil, errNoCInit("seccomp listener")
	case onRamfs():
		return nil, errNoCInit("the host's root is a ramfs (no pivot_root)")
	case !kernelAtLeast(5, 12):
		// open_tree, move_mount, openat2 and mount_setattr, which the C
		// init uses without the fallbacks of rootfs.
		return nil, errNoCInit("kernel older than 5.12")
	}
	root := filepath.Clean(spec.Root.Path)
	var c cprog
	c.op(opSetsid, "setsid")
	if spec.Hostname != "" {
		c.op(opHostname, "set hostname", spec.Hostname)
	}
	if spec.Domainname != "" {
		c.op(opDomainname, "set domainname", spec.Domainname)
	}
	if err := compileRootfs(&c, spec, root, hasNS(spec, specs.CgroupNamespace)); err != nil {
		return nil, err
	}
	c.trace("init(C): rootfs prepared")
	if !cfg.NoHooksPhase {
		// The parent sets the limits and runs its hooks while we wait.
		c.op(opHooks, "wait for hooks")
	}
	c.op(opPivot, "enter root: rootfs: pivot_root "+root, root)
	for k, v := range l.Sysctl {
		if strings.Contains(k, "..") || strings.HasPrefix(k, "/") {
			return nil, errNoCInit("invalid sysctl")
		}
		c.op(opWrite, fmt.Sprintf("set sysctl %s=%s", k, v), filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/")), v)
	}
	for _, rp := range l.ReadonlyPaths {
		c.op(opReadonly, "rootfs: readonly path "+rp, rp)
	}
	for _, mp := range l.MaskedPaths {
		c.op(opMask, "rootfs: masked path "+mp, mp)
	}
	for _, m := range spec.Mounts {
		if path.Clean("/"+m.Destination) == "/dev" && m.Type != "bind" && rootfs.ParseMountOptions(m.Options).Flags&unix.MS_RDONLY != 0 {
			c.op(opSetattr, "rootfs: read-only /dev", "/dev", uint64(unix.MOUNT_ATTR_RDONLY))
		}
	}
	if spec.Root.Readonly {
		c.op(opSetattr, "rootfs: read-only root", "/", uint64(unix.MOUNT_ATTR_RDONLY))
	}
	// setupProcess
	for _, rl := range p.Rlimits {
		res, ok := rlimitByName[rl.Type]
		if !ok {
			return nil, errNoCInit("unknown rlimit")
		}
		// The init inherits our limits: one it may not raise gets the Go
		// init's explanation.
		var cur unix.Rlimit
		if unix.Getrlimit(res, &cur) != nil || (rl.Hard > cur.Max && !hasCap(capability.CAP_SYS_RESOURCE)) {
			return nil, errNoCInit("rlimit above ours")
		}
		c.op(opRlimit, fmt.Sprintf("set %s soft=%d hard=%d", rl.Type, rl.Soft, rl.Hard), res, rl.Soft, rl.Hard)
	}
	if p.OOMScoreAdj != nil {
		c.op(opWrite, fmt.Sprintf("set oom_score_adj %d (lowering it needs CAP_SYS_RESOURCE)", *p.OOMScoreAdj), "/proc/self/oom_score_adj", strconv.Itoa(*p.OOMScoreAdj))
	}
	if !cfg.NoNewKeyring {
		c.op(opKeyring, "join session keyring", "_ses."+cfg.ID)
	}
	cwdWhat := fmt.Sprintf("chdir to cwd %q set in config.json failed", p.Cwd)
	if p.Cwd != "" {
		c.op(opChdir, cwdWhat, p.Cwd, true)
	}
	c.trace("init(C): process set up")
	c.op(opReady, "ready")
	c.op(opFifo, "open exec fifo", cfg.Fds.Fifo)
	c.trace("init(C): started")
	// finish
	var prog []byte
	var flags uint32
	if len(cfg.Seccomp) > 0 {
		f, err := seccomp.FromBytes(cfg.Seccomp)
		if err != nil || f.Listener() {
			return nil, errNoCInit("seccomp filter with a listener")
		}
		prog, flags = f.Raw()
	}
	if prog != nil && !p.NoNewPrivileges {
		c.op(opSeccomp, "load seccomp filter", prog, int(flags))
	}
	if err := compileCreds(&c, p); err != nil {
		return nil, err
	}
	if p.Cwd != "" {
		c.op(opChdir, cwdWhat, p.Cwd, false)
	}
	if p.NoNewPrivileges {
		c.op(opPrctl, "set no_new_privs", unix.PR_SET_NO_NEW_PRIVS, 1)
	}
	if prog != nil && p.NoNewPrivileges {
		c.op(opSeccomp, "load seccomp filter", prog, int(flags))
	}
	c.op(opCloseRange, "close extra fds", 3+cfg.Fds.Preserve)
	env := p.Env
	if env == nil {
		env = []string{}
	}
	c.op(opExec, "exec", p.Args, env, int(p.User.UID))
	return c.b, nil
}

// linkCInit puts before body (compileCInit's) the program's head and its
// first steps, the joins of the cgroups (cfg's, known last).
func linkCInit(cfg *initConfig, body []byte) []byte {
	c := cprog{b: binary.LittleEndian.AppendUint64([]byte(cinitMagic), uint64(cfg.Fds.Sync))}
	c.trace("init(C): program read")
	for _, dir := range cfg.CgroupTasks {
		if cfg.joined {
			break
		}
		c.op(opWrite, "join cgroup "+dir, dir+"/tasks", "0")
	}
	for _, dir := range cfg.CgroupProcs {
		c.op(opWrite, "join cgroup "+dir, dir+"/cgroup.procs", "0")
	}
	if cfg.UnshareCgroupNS {
		c.op(opUnshare, "create cgroup namespace", unix.CLONE_NEWCGROUP)
	}
	c.trace("init(C): cgroups joined")
	return append(c.b, body...)
}

// compileRootfs is rootfs.Prepare as steps, for what it translates.
func compileRootfs(c *cprog, spec *specs.Spec, root string, cgroupNS bool) error {
	// A destination with a symlink on its way needs Prepare's slow path:
	// look before (a symlink planted later makes the C init fail, safely).
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return errNoCInit("root not openable")
	}
	defer unix.Close(rootFd)
	plain := func(p string) bool {
		if os.Getenv(envUnchecked) != "" {
			return true
		}
		fd, err := unix.Openat2(rootFd, strings.TrimPrefix(p, "/"), &unix.OpenHow{
			Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS})
		if err == nil {
			unix.Close(fd)
			return true
		}
		return err == unix.ENOENT
	}
	c.op(opMount, "rootfs: set / propagation", "", "/", "", uintptr(unix.MS_SLAVE|unix.MS_REC), "")
	c.op(opMount, fmt.Sprintf("rootfs: bind root %s onto itself", root), root, root, "", uintptr(unix.MS_BIND|unix.MS_REC), "")
	c.op(opOpenRoot, "rootfs: open root", root)
	mounts := spec.Mounts
	devMounted := false
	for _, m := range mounts {
		if path.Clean("/"+m.Destination) == "/dev" {
			devMounted = true
		}
	}
	if !devMounted {
		mounts = append([]specs.Mount{{Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}}}, mounts...)
	}
	for _, m := range mounts {
		dest := path.Clean("/" + m.Destination)
		if !plain(dest) {
			return errNoCInit("symlink on the way to " + dest)
		}
		o := rootfs.ParseMountOptions(m.Options)
		what := fmt.Sprintf("prepare rootfs: rootfs: mount %s (type %q, source %q) on %s", m.Destination, m.Type, m.Source, dest)
		switch {
		case o.Special || len(m.UIDMappings)+len(m.GIDMappings) > 0 || o.Flags&unix.MS_REMOUNT != 0:
			return errNoCInit("mount options only Prepare handles")
		case m.Type == "bind" || o.Flags&unix.MS_BIND != 0:
			// Propagation goes to the attached tree (docker's binds say rprivate).
			prop := make([]string, len(o.Prop))
			for i, f := range o.Prop {
				prop[i] = strconv.FormatUint(uint64(f), 10)
			}
			c.op(opBindInRoot, what, dest, m.Source, o.Flags&unix.MS_REC != 0, o.AttrSet, o.AttrClr, prop)
		case len(o.Prop) > 0:
			return errNoCInit("propagation of a new mount")
		case m.Type == "cgroup" && len(o.Prop) == 0:
			if err := compileCgroupMount(c, what, root, dest, o, cgroupNS); err != nil {
				return err
			}
		case m.Type == "cgroup" || m.Type == "cgroup2":
			return errNoCInit("cgroup2 or propagation of a cgroup mount")
		default:
			flags := o.Flags
			if dest == "/dev" {
				flags &^= unix.MS_RDONLY // Finalize makes it read-only once filled
			}
			c.op(opNewInRoot, what, dest, m.Source, m.Type, flags, o.Data)
		}
	}
	if rootfs.DevIsBind(spec) {
		return nil
	}
	devs := map[string]specs.LinuxDevice{}
	var order []string
	for _, d := range append(rootfs.DefaultDevices(), spec.Linux.Devices...) {
		p := path.Clean("/" + d.Path)
		if _, ok := devs[p]; !ok {
			order = append(order, p)
		}
		devs[p] = d
	}
	for _, p := range order {
		d := devs[p]
		var typ uint32
		switch d.Type {
		case "c", "u":
			typ = unix.S_IFCHR
		case "b":
			typ = unix.S_IFBLK
		case "p":
			typ = unix.S_IFIFO
		default:
			return errNoCInit("unknown device type")
		}
		if !strings.HasPrefix(p, "/dev/") || !plain(path.Dir(p)) {
			return errNoCInit("device outside a plain /dev")
		}
		perm := uint32(0o666)
		if d.FileMode != nil {
			perm = uint32(d.FileMode.Perm())
		}
		var uid, gid uint32
		if d.UID != nil {
			uid = *d.UID
		}
		if d.GID != nil {
			gid = *d.GID
		}
		c.op(opMknodInRoot, "prepare rootfs: rootfs: device "+p, p, int(typ|perm), int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))), int(uid), int(gid))
	}
	for _, l := range rootfs.DevLinks() {
		c.op(opSymlink, fmt.Sprintf("prepare rootfs: rootfs: symlink %s -> %s", l[1], l[0]), l[0], l[1])
	}
	return nil
}

// compileCgroupMount is Prepare's cgroup mount of a v1 or hybrid host: a
// tmpfs with a directory per hierarchy, on which the C init mounts the
// hierarchy afresh in a cgroup namespace (as Prepare, it binds when the
// kernel refuses) or binds the container's own cgroup (which it reads from
// /proc/self/cgroup).
func compileCgroupMount(c *cprog, what, root, dest string, o rootfs.MountOptions, cgroupNS bool) error {
	if cgroups.HostMode() == cgroups.ModeV2 {
		return errNoCInit("cgroup2 host")
	}
	hier, err := rootfs.CgroupHierarchies(root)
	if err != nil || len(hier) == 0 {
		return errNoCInit("no cgroup hierarchies")
	}
	tmpfs := o.Flags&^unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	c.op(opNewInRoot, what, dest, "tmpfs", "tmpfs", tmpfs, "mode=755,size=64k")
	set := o.AttrSet | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC
	clr := o.AttrClr &^ (unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC)
	flags := o.Flags | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	for _, h := range hier {
		ctl := strings.Join(h.Controllers, ",")
		data := ""
		if h.FSType == "cgroup" {
			data = ctl
		}
		c.op(opCgroupBind, fmt.Sprintf("%s: cgroup hierarchy %s", what, h.Name), path.Join(dest, h.Name), ctl, h.Mountpoint, h.Root, set, clr,
			cgroupNS, h.FSType, flags, data)
		if strings.Contains(h.Name, ",") {
			for _, ctl := range strings.Split(h.Name, ",") {
				c.op(opSymlink, fmt.Sprintf("%s: rootfs: symlink %s -> %s", what, path.Join(dest, ctl), h.Name), h.Name, path.Join(dest, ctl))
			}
		}
	}
	if o.Flags&unix.MS_RDONLY != 0 {
		c.op(opSetattrRoot, what+": read-only cgroup tmpfs", dest, uint64(unix.MOUNT_ATTR_RDONLY))
	}
	return nil
}

// compileCreds is setUserAndCaps as steps.
func compileCreds(c *cprog, p *specs.Process) error {
	pc := p.Capabilities
	if pc == nil {
		pc = &specs.LinuxCapabilities{}
	}
	mask := func(names []string) (uint64, error) {
		cs, err := parseCaps(names)
		var m uint64
		for _, x := range cs {
			m |= 1 << uint(x)
		}
		return m, err
	}
	bnd, err1 := mask(pc.Bounding)
	eff, err2 := mask(pc.Effective)
	perm, err3 := mask(pc.Permitted)
	inh, err4 := mask(pc.Inheritable)
	amb, err5 := mask(pc.Ambient)
	last, err6 := capability.LastCap()
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil || err6 != nil || last > 63 {
		return errNoCInit("capabilities")
	}
	// What our own bounding set lacks gets the Go init's clear error. One
	// prctl per capability asked for: reading them all from
	// /proc/self/status (capability.Load) cost 70 µs.
	for i := capability.Cap(0); i <= last; i++ {
		if (bnd|eff|perm|inh|amb)&(1<<uint(i)) == 0 {
			continue
		}
		if in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(i), 0, 0, 0); err != nil || in != 1 {
			return errNoCInit("capability outside our bounding set")
		}
	}
	c.op(opCapBSet, "drop bounding capabilities", bnd, int(last))
	c.op(opPrctl, "keep capabilities", unix.PR_SET_KEEPCAPS, 1)
	u := p.User
	gids := make([]string, len(u.AdditionalGids))
	for i, g := range u.AdditionalGids {
		gids[i] = strconv.FormatUint(uint64(g), 10)
	}
	c.op(opSetgroups, fmt.Sprintf("set additional gids %v", u.AdditionalGids), gids)
	c.op(opSetresgid, fmt.Sprintf("set gid %d", u.GID), int(u.GID))
	c.op(opSetresuid, fmt.Sprintf("set uid %d", u.UID), int(u.UID))
	c.op(opPrctl, "reset keepcaps", unix.PR_SET_KEEPCAPS, 0)
	c.op(opCapset, "set capabilities", eff, perm, inh)
	var skipped []string
	ambs, _ := parseCaps(pc.Ambient)
	for _, i := range ambs {
		if perm&inh&(1<<uint(i)) == 0 {
			skipped = append(skipped, "CAP_"+strings.ToUpper(i.String()))
			continue
		}
		c.op(opAmbient, "raise ambient capability "+i.String(), int(i))
	}
	if len(skipped) > 0 {
		c.op(opWarn, fmt.Sprintf("berth: warning: ambient capabilities %s not raised: they are not both permitted and inheritable\n", strings.Join(skipped, ", ")))
	}
	if u.Umask != nil {
		c.op(opUmask, "umask", int(*u.Umask))
	}
	return nil
}

// kernelAtLeast compares the running kernel's release with major.minor.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var ma, mi int
	if n, _ := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi); n != 2 {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}

// onRamfs: pivot_root fails on an initramfs root, which the Go init handles.
func onRamfs() bool {
	var st unix.Statfs_t
	return unix.Statfs("/", &st) != nil || st.Type == unix.RAMFS_MAGIC || st.Type == unix.TMPFS_MAGIC
}
