package rootfs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	ocispec "berth.dev/berth/runtime/spec"
	"golang.org/x/sys/unix"

	"berth.dev/berth/internal/testutil"
)

// The root tests re-exec this binary as a "container init" in new
// namespaces; TestMain sends that child to childMain, which runs
// Prepare/Pivot/Finalize and reports what it sees as JSON on stdout.

const envChild = "BERTH_ROOTFS_TEST_CHILD"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(envChild); cfg != "" {
		childMain(cfg)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type childConfig struct {
	Spec    *specs.Spec
	Opts    Options
	NoPivot bool
	// Wait: after Finalize, write "ready" on fd 3 and wait for a byte on
	// stdin before probing, so the parent can act on the host.
	Wait   bool
	Probes []probe
}

type probe struct {
	Op   string // stat lstat read write readdir mount-tmpfs
	Path string
}

type probeResult struct {
	probe
	Err          string
	Mode         uint32
	UID, GID     uint32
	Major, Minor uint32
	Data         string
	Link         string
}

type mnt struct {
	Mountpoint, FSType, Source, Options, VFSOptions, Optional, Root string
}

type report struct {
	PrepareErr, PivotErr, FinalizeErr string
	// NewMounts are the mount points Prepare added, seen before the pivot.
	NewMounts []mnt
	Mounts    []mnt
	Probes    []probeResult
}

func readMounts() []mnt {
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return nil
	}
	out := make([]mnt, 0, len(infos))
	for _, i := range infos {
		out = append(out, mnt{i.Mountpoint, i.FSType, i.Source, i.Options, i.VFSOptions, i.Optional, i.Root})
	}
	return out
}

func childMain(cfgJSON string) {
	var cfg childConfig
	rep := &report{}
	out := json.NewEncoder(os.Stdout)
	defer func() { _ = out.Encode(rep) }()
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		rep.PrepareErr = "config: " + err.Error()
		return
	}
	// Propagation and options change; identity is where and what.
	key := func(m mnt) string { return m.Mountpoint + " " + m.FSType + " " + m.Source + " " + m.Root }
	before := map[string]int{}
	for _, m := range readMounts() {
		before[key(m)]++
	}
	err := Prepare(cfg.Spec, cfg.Opts)
	for _, m := range readMounts() {
		if before[key(m)] > 0 {
			before[key(m)]--
			continue
		}
		rep.NewMounts = append(rep.NewMounts, m)
	}
	if err != nil {
		rep.PrepareErr = err.Error()
		return
	}
	if err := Pivot(cfg.Spec.Root.Path, cfg.NoPivot); err != nil {
		rep.PivotErr = err.Error()
		return
	}
	if err := Finalize(cfg.Spec); err != nil {
		rep.FinalizeErr = err.Error()
		return
	}
	if cfg.Wait {
		sync := os.NewFile(3, "sync")
		fmt.Fprintln(sync, "ready")
		sync.Close()
		var b [1]byte
		_, _ = os.Stdin.Read(b[:])
	}
	for _, p := range cfg.Probes {
		rep.Probes = append(rep.Probes, runProbe(p))
	}
	rep.Mounts = readMounts()
}

func runProbe(p probe) probeResult {
	r := probeResult{probe: p}
	var err error
	switch p.Op {
	case "stat", "lstat":
		var st unix.Stat_t
		if p.Op == "stat" {
			err = unix.Stat(p.Path, &st)
		} else {
			err = unix.Lstat(p.Path, &st)
		}
		if err == nil {
			r.Mode, r.UID, r.GID = st.Mode, st.Uid, st.Gid
			r.Major, r.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				r.Link, err = os.Readlink(p.Path)
			}
		}
	case "read":
		var b []byte
		b, err = os.ReadFile(p.Path)
		if len(b) > 256 {
			b = b[:256]
		}
		r.Data = string(b)
	case "write":
		err = os.WriteFile(p.Path, []byte("x"), 0o644)
	case "readdir":
		var names []string
		var f *os.File
		if f, err = os.Open(p.Path); err == nil {
			names, err = f.Readdirnames(-1)
			f.Close()
		}
		sort.Strings(names)
		r.Data = strings.Join(names, ",")
	case "mount-tmpfs":
		if err = os.MkdirAll(p.Path, 0o755); err == nil {
			err = unix.Mount("tmpfs", p.Path, "tmpfs", 0, "size=1m")
		}
	default:
		err = fmt.Errorf("unknown probe %q", p.Op)
	}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// hostMounts is the test process's mount table without mount IDs.
func hostMounts(t *testing.T) []string {
	t.Helper()
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range infos {
		out = append(out, fmt.Sprintf("%s %s %s %s %s", i.Mountpoint, i.FSType, i.Source, i.Root, i.Options))
	}
	sort.Strings(out)
	return out
}

type runOpts struct {
	userNS    bool // also a new user namespace mapping 0-65535 to host 0-65535
	noNetNS   bool
	cgroupNS  bool
	onReady   func() // runs on the host while the child waits (cfg.Wait)
	afterExit func() // runs after the child exits, before the leak check
}

// runChild runs cfg in a child in new mount, pid, uts, ipc and net
// namespaces and returns its report. It fails t if the child changed the
// host's mount table.
func runChild(t *testing.T, cfg childConfig, ro runOpts) *report {
	t.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := hostMounts(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envChild+"="+string(js))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET,
		Pdeathsig:  syscall.SIGKILL,
	}
	if ro.noNetNS {
		cmd.SysProcAttr.Cloneflags &^= unix.CLONE_NEWNET
	}
	if ro.cgroupNS {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWCGROUP
	}
	if ro.userNS {
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var syncR *os.File
	var stdin io.WriteCloser
	if cfg.Wait {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		syncR = r
		cmd.ExtraFiles = []*os.File{w}
		if stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if cfg.Wait {
		cmd.ExtraFiles[0].Close()
		line, _ := bufio.NewReader(syncR).ReadString('\n')
		if line == "ready\n" && ro.onReady != nil {
			ro.onReady()
		}
		stdin.Close()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		err = <-done
	}
	if err != nil {
		t.Fatalf("child: %v\nstderr: %s\nstdout: %s", err, stderr.String(), stdout.String())
	}
	if stderr.Len() > 0 {
		t.Logf("child stderr: %s", stderr.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("child report: %v: %q", err, stdout.String())
	}
	if ro.afterExit != nil {
		ro.afterExit()
	}
	after := hostMounts(t)
	if strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("host mount table changed:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	for _, m := range rep.NewMounts {
		if m.Mountpoint != cfg.Spec.Root.Path && !strings.HasPrefix(m.Mountpoint, cfg.Spec.Root.Path+"/") {
			t.Errorf("Prepare mounted %s (%s) outside the root %s", m.Mountpoint, m.FSType, cfg.Spec.Root.Path)
		}
	}
	return &rep
}

func mustOK(t *testing.T, rep *report) {
	t.Helper()
	if rep.PrepareErr != "" || rep.PivotErr != "" || rep.FinalizeErr != "" {
		t.Fatalf("prepare=%q pivot=%q finalize=%q", rep.PrepareErr, rep.PivotErr, rep.FinalizeErr)
	}
}

// defaultSpec is berth's default spec (runc's mounts, masked and read-only
// paths) rooted at root, without a cgroup namespace: the test child has none.
func defaultSpec(root string) *specs.Spec {
	s := ocispec.Default()
	s.Root = &specs.Root{Path: root}
	s.Process, s.Hostname = nil, ""
	var ns []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type != specs.CgroupNamespace {
			ns = append(ns, n)
		}
	}
	s.Linux.Namespaces = ns
	s.Linux.Resources = nil
	return s
}

func findMount(rep *report, mp string) *mnt {
	var found *mnt
	for i := range rep.Mounts {
		if rep.Mounts[i].Mountpoint == mp {
			found = &rep.Mounts[i] // the last one is on top
		}
	}
	return found
}

func hasOpt(list, opt string) bool {
	for _, o := range strings.Split(list, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

func wantMount(t *testing.T, rep *report, mp, fstype string, opts ...string) *mnt {
	t.Helper()
	m := findMount(rep, mp)
	if m == nil {
		t.Errorf("no mount at %s", mp)
		return nil
	}
	if fstype != "" && m.FSType != fstype {
		t.Errorf("%s: type %s, want %s", mp, m.FSType, fstype)
	}
	for _, o := range opts {
		if !hasOpt(m.Options, o) && !hasOpt(m.VFSOptions, o) {
			t.Errorf("%s: option %s missing in %q / %q", mp, o, m.Options, m.VFSOptions)
		}
	}
	return m
}

func probeOf(t *testing.T, rep *report, op, path string) probeResult {
	t.Helper()
	for _, p := range rep.Probes {
		if p.Op == op && p.Path == path {
			return p
		}
	}
	t.Fatalf("no probe %s %s", op, path)
	return probeResult{}
}

func u32(v uint32) *uint32 { return &v }

func TestParseOptions(t *testing.T) {
	o := parseOptions([]string{"rbind", "ro", "nosuid", "rw", "noatime", "rshared", "rro", "size=1m", "tmpcopyup", "exec"})
	if o.flags&unix.MS_BIND == 0 || o.flags&unix.MS_REC == 0 || o.flags&unix.MS_RDONLY != 0 || o.flags&unix.MS_NOSUID == 0 || o.flags&unix.MS_NOATIME == 0 {
		t.Errorf("flags %#x", o.flags)
	}
	if o.clear&unix.MS_RDONLY == 0 || o.clear&unix.MS_NOEXEC == 0 {
		t.Errorf("clear %#x", o.clear)
	}
	if o.attrSet&unix.MOUNT_ATTR_RDONLY != 0 || o.attrClr&unix.MOUNT_ATTR_RDONLY == 0 || o.attrSet&unix.MOUNT_ATTR_NOATIME == 0 || o.attrClr&unix.MOUNT_ATTR__ATIME == 0 {
		t.Errorf("attrs set %#x clr %#x", o.attrSet, o.attrClr)
	}
	if o.recSet != unix.MOUNT_ATTR_RDONLY || len(o.prop) != 1 || o.prop[0] != unix.MS_SHARED|unix.MS_REC {
		t.Errorf("rec %#x prop %v", o.recSet, o.prop)
	}
	if o.dataString() != "size=1m" || !o.tmpcopyup {
		t.Errorf("data %q tmpcopyup %v", o.dataString(), o.tmpcopyup)
	}
}

func TestDefaultSpec(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.BusyboxRootfs(t)
	host := t.TempDir()
	roDir := filepath.Join(host, "rodir")
	rwDir := filepath.Join(host, "rwdir")
	for _, d := range []string{roDir, rwDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hostFile := filepath.Join(host, "file")
	if err := os.WriteFile(hostFile, []byte("hello from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := defaultSpec(root)
	spec.Root.Readonly = true
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/etc/hostfile", Type: "bind", Source: hostFile, Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/mnt/ro", Type: "bind", Source: roDir, Options: []string{"rbind", "ro", "nosuid"}},
		specs.Mount{Destination: "/mnt/rw", Type: "bind", Source: rwDir, Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/new/dir/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=700", "noexec"}},
	)
	spec.Linux.Devices = []specs.LinuxDevice{
		{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: func() *os.FileMode { m := os.FileMode(0o620); return &m }(), UID: u32(1000), GID: u32(5)},
		{Path: "/dev/sub/loopx", Type: "b", Major: 7, Minor: 200},
		{Path: "/dev/myfifo", Type: "p"},
	}
	var probes []probe
	for _, p := range []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/fuse", "/dev/sub/loopx", "/dev/myfifo", "/proc/keys"} {
		probes = append(probes, probe{"stat", p})
	}
	for _, p := range []string{"/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/ptmx", "/dev/core"} {
		probes = append(probes, probe{"lstat", p})
	}
	for _, p := range []string{"/mnt/ro/x", "/mnt/rw/x", "/etc/hostfile", "/tmp/x", "/dev/shm/x", "/new/dir/tmp/x", "/proc/sys/kernel/hostname", "/proc/sysrq-trigger", "/sys/fs/cgroup/x", "/dev/x"} {
		probes = append(probes, probe{"write", p})
	}
	probes = append(probes, probe{"read", "/etc/hostfile"}, probe{"read", "/proc/keys"}, probe{"readdir", "/proc/acpi"}, probe{"readdir", "/sys/firmware"}, probe{"readdir", "/sys/fs/cgroup"})
	rep := runChild(t, childConfig{Spec: spec, Probes: probes}, runOpts{})
	mustOK(t, rep)

	wantMount(t, rep, "/", "", "ro")
	wantMount(t, rep, "/proc", "proc", "rw")
	wantMount(t, rep, "/dev", "tmpfs", "nosuid", "mode=755", "size=65536k")
	wantMount(t, rep, "/dev/pts", "devpts", "nosuid", "noexec", "ptmxmode=666", "mode=620", "gid=5")
	wantMount(t, rep, "/dev/shm", "tmpfs", "nosuid", "noexec", "nodev", "size=65536k")
	wantMount(t, rep, "/dev/mqueue", "mqueue", "nosuid", "noexec", "nodev")
	wantMount(t, rep, "/sys", "sysfs", "ro", "nosuid", "noexec", "nodev")
	wantMount(t, rep, "/sys/fs/cgroup", "tmpfs", "ro", "nosuid", "noexec", "nodev")
	wantMount(t, rep, "/sys/fs/cgroup/memory", "cgroup", "ro", "nosuid", "memory")
	wantMount(t, rep, "/sys/fs/cgroup/unified", "cgroup2", "ro")
	wantMount(t, rep, "/etc/hostfile", "", "ro")
	wantMount(t, rep, "/mnt/ro", "", "ro", "nosuid")
	wantMount(t, rep, "/mnt/rw", "", "rw")
	wantMount(t, rep, "/new/dir/tmp", "tmpfs", "noexec", "size=1024k", "mode=700")
	wantMount(t, rep, "/proc/sys", "proc", "ro")
	wantMount(t, rep, "/proc/keys", "")
	wantMount(t, rep, "/proc/acpi", "tmpfs", "ro")
	wantMount(t, rep, "/sys/firmware", "tmpfs", "ro")

	for _, d := range []struct {
		path         string
		typ          uint32
		major, minor uint32
		perm         uint32
		uid, gid     uint32
	}{
		{"/dev/null", unix.S_IFCHR, 1, 3, 0o666, 0, 0},
		{"/dev/zero", unix.S_IFCHR, 1, 5, 0o666, 0, 0},
		{"/dev/full", unix.S_IFCHR, 1, 7, 0o666, 0, 0},
		{"/dev/random", unix.S_IFCHR, 1, 8, 0o666, 0, 0},
		{"/dev/urandom", unix.S_IFCHR, 1, 9, 0o666, 0, 0},
		{"/dev/tty", unix.S_IFCHR, 5, 0, 0o666, 0, 0},
		{"/dev/fuse", unix.S_IFCHR, 10, 229, 0o620, 1000, 5},
		{"/dev/sub/loopx", unix.S_IFBLK, 7, 200, 0o666, 0, 0},
		{"/dev/myfifo", unix.S_IFIFO, 0, 0, 0o666, 0, 0},
		{"/proc/keys", unix.S_IFCHR, 1, 3, 0o666, 0, 0}, // masked by /dev/null
	} {
		p := probeOf(t, rep, "stat", d.path)
		if p.Err != "" {
			t.Errorf("stat %s: %s", d.path, p.Err)
			continue
		}
		if p.Mode&unix.S_IFMT != d.typ || p.Mode&0o7777 != d.perm || p.Major != d.major || p.Minor != d.minor || p.UID != d.uid || p.GID != d.gid {
			t.Errorf("%s: mode %o %d:%d owner %d:%d; want type %o perm %o %d:%d owner %d:%d",
				d.path, p.Mode, p.Major, p.Minor, p.UID, p.GID, d.typ, d.perm, d.major, d.minor, d.uid, d.gid)
		}
	}
	for link, target := range map[string]string{"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0", "/dev/stdout": "/proc/self/fd/1",
		"/dev/stderr": "/proc/self/fd/2", "/dev/ptmx": "pts/ptmx", "/dev/core": "/proc/kcore"} {
		if _, err := os.Stat("/proc/kcore"); err != nil && link == "/dev/core" {
			if p := probeOf(t, rep, "lstat", link); p.Err == "" {
				t.Errorf("/dev/core created though the kernel has no /proc/kcore")
			}
			continue
		}
		if p := probeOf(t, rep, "lstat", link); p.Err != "" || p.Link != target {
			t.Errorf("%s: link %q err %q, want -> %s", link, p.Link, p.Err, target)
		}
	}
	for path, wantErr := range map[string]bool{"/mnt/ro/x": true, "/mnt/rw/x": false, "/etc/hostfile": true, "/tmp/x": true,
		"/dev/shm/x": false, "/new/dir/tmp/x": false, "/proc/sys/kernel/hostname": true, "/proc/sysrq-trigger": true,
		"/sys/fs/cgroup/x": true, "/dev/x": false} {
		p := probeOf(t, rep, "write", path)
		if (p.Err != "") != wantErr {
			t.Errorf("write %s: err %q, want error %v", path, p.Err, wantErr)
		}
	}
	if p := probeOf(t, rep, "read", "/etc/hostfile"); p.Data != "hello from host" {
		t.Errorf("bound file reads %q (%s)", p.Data, p.Err)
	}
	if p := probeOf(t, rep, "read", "/proc/keys"); p.Err != "" || p.Data != "" {
		t.Errorf("masked /proc/keys reads %q (%s)", p.Data, p.Err)
	}
	if p := probeOf(t, rep, "readdir", "/proc/acpi"); p.Err != "" || p.Data != "" {
		t.Errorf("masked /proc/acpi lists %q (%s)", p.Data, p.Err)
	}
	if p := probeOf(t, rep, "readdir", "/sys/firmware"); p.Err != "" || p.Data != "" {
		t.Errorf("masked /sys/firmware lists %q (%s)", p.Data, p.Err)
	}
	if p := probeOf(t, rep, "readdir", "/sys/fs/cgroup"); !strings.Contains(p.Data, "memory") || !strings.Contains(p.Data, "unified") {
		t.Errorf("/sys/fs/cgroup lists %q (%s)", p.Data, p.Err)
	}
	// The host side of the ro bind is untouched, the rw one got the write.
	if _, err := os.Stat(filepath.Join(roDir, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ro bind source got a file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rwDir, "x")); err != nil {
		t.Errorf("rw bind source: %v", err)
	}
}

// Without a /dev mount in the spec, /dev is the runtime's own tmpfs.
func TestDefaultDev(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.BusyboxRootfs(t)
	spec := defaultSpec(root)
	var mounts []specs.Mount
	for _, m := range spec.Mounts {
		if m.Destination != "/dev" {
			mounts = append(mounts, m)
		}
	}
	spec.Mounts = mounts
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	console := fmt.Sprintf("/dev/pts/%d", n)
	rep := runChild(t, childConfig{Spec: spec, Opts: Options{ConsolePath: console},
		Probes: []probe{{"stat", "/dev/null"}, {"stat", "/dev/console"}, {"readdir", "/dev"}}}, runOpts{})
	mustOK(t, rep)
	wantMount(t, rep, "/dev", "tmpfs", "nosuid", "mode=755")
	wantMount(t, rep, "/dev/pts", "devpts")
	if p := probeOf(t, rep, "stat", "/dev/null"); p.Err != "" || p.Major != 1 || p.Minor != 3 {
		t.Errorf("/dev/null: %+v", p)
	}
	var want unix.Stat_t
	if err := unix.Stat(console, &want); err != nil {
		t.Fatal(err)
	}
	if p := probeOf(t, rep, "stat", "/dev/console"); p.Err != "" || p.Major != unix.Major(want.Rdev) || p.Minor != unix.Minor(want.Rdev) {
		t.Errorf("/dev/console: %+v, want the pty %s", p, console)
	}
	wantMount(t, rep, "/dev/console", "devpts")
	// Everything went onto the tmpfs, nothing into the image's own /dev.
	ents, _ := os.ReadDir(filepath.Join(root, "dev"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, ","); got != "" {
		t.Errorf("image /dev holds %s", got)
	}
}

// Mount destinations that are symlinks out of the root land inside it.
func TestHostileRootfs(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.BusyboxRootfs(t)
	host := t.TempDir()
	absTarget := filepath.Join(host, "abs")
	relTarget := filepath.Join(host, "rel")
	hostFile := filepath.Join(host, "victim")
	for _, d := range []string{absTarget, relTarget} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "marker"), []byte("host"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(hostFile, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "payload"), []byte("container"), 0o644); err != nil {
		t.Fatal(err)
	}
	srcFile := filepath.Join(src, "payload")
	links := map[string]string{
		"evil-abs":  absTarget,
		"evil-rel":  strings.Repeat("../", 20) + strings.TrimPrefix(relTarget, "/"),
		"evil-file": hostFile,
		"evil-proc": "/proc",
		"evil-self": "/proc/self/root/" + strings.TrimPrefix(host, "/"),
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	snapshot := func() string {
		var b strings.Builder
		_ = filepath.Walk(host, func(p string, fi os.FileInfo, err error) error {
			if err == nil {
				fmt.Fprintf(&b, "%s %v %d\n", p, fi.Mode(), fi.Size())
			}
			return nil
		})
		return b.String()
	}
	hostBefore := snapshot()

	cases := []struct {
		name  string
		mount specs.Mount
		// where the mount must show up in the container, "" if it may fail
		inside string
	}{
		{"absolute symlink", specs.Mount{Destination: "/evil-abs", Type: "tmpfs", Source: "tmpfs"}, absTarget},
		{"absolute symlink, new subdir", specs.Mount{Destination: "/evil-abs/sub/dir", Type: "bind", Source: src, Options: []string{"rbind"}}, absTarget + "/sub/dir"},
		{"relative ../ symlink", specs.Mount{Destination: "/evil-rel/newdir", Type: "bind", Source: src, Options: []string{"rbind"}}, relTarget + "/newdir"},
		{"dangling file symlink", specs.Mount{Destination: "/evil-file", Type: "bind", Source: srcFile, Options: []string{"bind"}}, hostFile},
		{"symlink to /proc", specs.Mount{Destination: "/evil-proc/driver", Type: "tmpfs", Source: "tmpfs"}, "/proc/driver"},
		{"symlink through /proc/self/root", specs.Mount{Destination: "/evil-self/abs", Type: "tmpfs", Source: "tmpfs"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := defaultSpec(root)
			spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths = nil, nil
			spec.Mounts = append(spec.Mounts, c.mount)
			rep := runChild(t, childConfig{Spec: spec}, runOpts{})
			if c.inside == "" {
				if rep.PrepareErr != "" {
					t.Logf("refused as expected: %s", rep.PrepareErr)
					return
				}
			}
			mustOK(t, rep)
			last := rep.NewMounts[len(rep.NewMounts)-1]
			if last.Mountpoint != root+c.inside {
				t.Errorf("mount landed at %s, want %s", last.Mountpoint, root+c.inside)
			}
			if findMount(rep, c.inside) == nil {
				t.Errorf("no mount at %s in the container", c.inside)
			}
		})
	}
	if after := snapshot(); after != hostBefore {
		t.Errorf("host files changed:\nbefore:\n%s\nafter:\n%s", hostBefore, after)
	}
	if b, err := os.ReadFile(hostFile); err != nil || string(b) != "host secret" {
		t.Errorf("host file: %q %v", b, err)
	}
}

// makeSharedTmpfs mounts a shared tmpfs on the host, removed at cleanup.
func makeSharedTmpfs(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	return dir
}

// rootfsPropagation decides whether host mounts under a bound shared
// directory reach the container, and container mounts the host.
func TestRootfsPropagation(t *testing.T) {
	testutil.RequireRoot(t)
	for _, c := range []struct {
		prop              string
		hostToC, cToHost  bool
		perMountOverrides []string
	}{
		{prop: "", hostToC: true},
		{prop: "rslave", hostToC: true},
		{prop: "rprivate"},
		{prop: "rshared", hostToC: true, cToHost: true},
		{prop: "rshared", perMountOverrides: []string{"rprivate"}},
	} {
		name := c.prop
		if name == "" {
			name = "default"
		}
		if len(c.perMountOverrides) > 0 {
			name += "+mount-" + strings.Join(c.perMountOverrides, ",")
		}
		t.Run(name, func(t *testing.T) {
			root := testutil.BusyboxRootfs(t)
			shared := makeSharedTmpfs(t)
			spec := defaultSpec(root)
			spec.Linux.RootfsPropagation = c.prop
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/shared", Type: "bind", Source: shared,
				Options: append([]string{"rbind"}, c.perMountOverrides...)})
			sub := filepath.Join(shared, "fromhost")
			fromC := filepath.Join(shared, "fromcontainer")
			rep := runChild(t, childConfig{Spec: spec, Wait: true, Probes: []probe{
				{"read", "/shared/fromhost/marker"},
				{"mount-tmpfs", "/shared/fromcontainer"},
			}}, runOpts{
				onReady: func() {
					if err := os.Mkdir(sub, 0o755); err != nil {
						t.Error(err)
						return
					}
					if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
						t.Error(err)
						return
					}
					if err := os.WriteFile(filepath.Join(sub, "marker"), []byte("host"), 0o644); err != nil {
						t.Error(err)
					}
				},
				afterExit: func() {
					_ = unix.Unmount(sub, unix.MNT_DETACH)
					var st1, st2 unix.Stat_t
					err1, err2 := unix.Stat(fromC, &st1), unix.Stat(shared, &st2)
					got := err1 == nil && err2 == nil && st1.Dev != st2.Dev
					if got != c.cToHost {
						t.Errorf("container mount reached the host: %v, want %v", got, c.cToHost)
					}
					if got {
						_ = unix.Unmount(fromC, unix.MNT_DETACH)
					}
				},
			})
			mustOK(t, rep)
			p := probeOf(t, rep, "read", "/shared/fromhost/marker")
			if got := p.Err == "" && p.Data == "host"; got != c.hostToC {
				t.Errorf("host mount visible in container: %v (%s), want %v", got, p.Err, c.hostToC)
			}
			if p := probeOf(t, rep, "mount-tmpfs", "/shared/fromcontainer"); p.Err != "" {
				t.Errorf("mount in container: %s", p.Err)
			}
		})
	}
}

func TestNoPivot(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.BusyboxRootfs(t)
	spec := defaultSpec(root)
	rep := runChild(t, childConfig{Spec: spec, NoPivot: true, Probes: []probe{{"stat", "/bin/busybox"}, {"stat", "/dev/null"}}}, runOpts{})
	mustOK(t, rep)
	if p := probeOf(t, rep, "stat", "/bin/busybox"); p.Err != "" {
		t.Errorf("/bin/busybox: %s", p.Err)
	}
	wantMount(t, rep, "/", "")
	wantMount(t, rep, "/proc", "proc")
	for _, m := range rep.Mounts {
		if m.Mountpoint == "/run/netns" || strings.HasPrefix(m.Mountpoint, root) {
			t.Errorf("host mount visible after chroot: %+v", m)
		}
	}
}

// tmpcopyup, recursive read-only and an idmapped bind.
func TestMountFeatures(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.BusyboxRootfs(t)
	if err := os.WriteFile(filepath.Join(root, "etc", "keep"), []byte("image"), 0o640); err != nil {
		t.Fatal(err)
	}
	nested := makeSharedTmpfs(t)
	if err := os.Mkdir(filepath.Join(nested, "inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", filepath.Join(nested, "inner"), "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(filepath.Join(nested, "inner"), unix.MNT_DETACH)
	owned := t.TempDir()
	if err := os.WriteFile(filepath.Join(owned, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := defaultSpec(root)
	spec.Mounts[1].Options = append(spec.Mounts[1].Options, "ro") // /dev: filled, then read-only
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/etc", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "mode=755"}},
		specs.Mount{Destination: "/rro", Type: "bind", Source: nested, Options: []string{"rbind", "rro", "rprivate"}},
		specs.Mount{Destination: "/nonrec", Type: "bind", Source: nested, Options: []string{"rbind", "ro", "rprivate"}},
		specs.Mount{Destination: "/idmapped", Type: "bind", Source: owned, Options: []string{"bind", "idmap"},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 2000, Size: 1}}},
	)
	rep := runChild(t, childConfig{Spec: spec, Probes: []probe{
		{"read", "/etc/keep"}, {"stat", "/etc/keep"}, {"read", "/etc/passwd"}, {"write", "/etc/new"},
		{"write", "/rro/x"}, {"write", "/rro/inner/x"}, {"write", "/nonrec/x"}, {"write", "/nonrec/inner/x"},
		{"stat", "/idmapped/f"}, {"stat", "/dev/null"}, {"write", "/dev/x"}, {"write", "/dev/shm/x"},
	}}, runOpts{})
	mustOK(t, rep)
	wantMount(t, rep, "/dev", "tmpfs", "ro")
	if p := probeOf(t, rep, "stat", "/dev/null"); p.Err != "" || p.Major != 1 || p.Minor != 3 {
		t.Errorf("/dev/null on a read-only /dev: %+v", p)
	}
	wantMount(t, rep, "/etc", "tmpfs")
	if p := probeOf(t, rep, "read", "/etc/keep"); p.Data != "image" {
		t.Errorf("tmpcopyup: /etc/keep = %q (%s)", p.Data, p.Err)
	}
	if p := probeOf(t, rep, "stat", "/etc/keep"); p.Mode&0o777 != 0o640 {
		t.Errorf("tmpcopyup: /etc/keep mode %o", p.Mode)
	}
	if p := probeOf(t, rep, "read", "/etc/passwd"); !strings.Contains(p.Data, "root:x:0:0") {
		t.Errorf("tmpcopyup: /etc/passwd = %q (%s)", p.Data, p.Err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc", "new")); err == nil {
		t.Errorf("write to the tmpfs reached the image")
	}
	for path, wantErr := range map[string]bool{"/dev/x": true, "/dev/shm/x": false, "/etc/new": false, "/rro/x": true, "/rro/inner/x": true, "/nonrec/x": true, "/nonrec/inner/x": false} {
		if p := probeOf(t, rep, "write", path); (p.Err != "") != wantErr {
			t.Errorf("write %s: err %q, want error %v", path, p.Err, wantErr)
		}
	}
	_ = os.Remove(filepath.Join(nested, "inner", "x"))
	if p := probeOf(t, rep, "stat", "/idmapped/f"); p.Err != "" || p.UID != 1000 || p.GID != 2000 {
		t.Errorf("idmapped file owner %d:%d (%s), want 1000:2000", p.UID, p.GID, p.Err)
	}
}

// In a user namespace: device nodes are host binds, sysfs without a new
// network namespace is a bind of /sys, locked flags survive ro remounts.
func TestUserNS(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.BusyboxRootfs(t)
	locked := t.TempDir()
	if err := unix.Mount("tmpfs", locked, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(locked, unix.MNT_DETACH)
	spec := defaultSpec(root)
	spec.Root.Readonly = true
	spec.Linux.Namespaces = []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "user"}}
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/locked", Type: "bind", Source: locked, Options: []string{"rbind", "ro", "exec"}})
	spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}
	rep := runChild(t, childConfig{Spec: spec, Opts: Options{InUserNS: true}, Probes: []probe{
		{"stat", "/dev/null"}, {"stat", "/dev/fuse"}, {"write", "/dev/null"}, {"write", "/locked/x"}, {"write", "/tmp/x"},
	}}, runOpts{userNS: true, noNetNS: true})
	mustOK(t, rep)
	wantMount(t, rep, "/sys", "sysfs", "ro")
	wantMount(t, rep, "/locked", "tmpfs", "ro", "nosuid", "nodev", "noexec")
	wantMount(t, rep, "/", "", "ro")
	wantMount(t, rep, "/dev/null", "devtmpfs")
	if p := probeOf(t, rep, "stat", "/dev/null"); p.Err != "" || p.Mode&unix.S_IFMT != unix.S_IFCHR || p.Major != 1 || p.Minor != 3 {
		t.Errorf("/dev/null: %+v", p)
	}
	if _, err := os.Stat("/dev/fuse"); err == nil {
		if p := probeOf(t, rep, "stat", "/dev/fuse"); p.Err != "" || p.Major != 10 || p.Minor != 229 {
			t.Errorf("/dev/fuse: %+v", p)
		}
	}
	for path, wantErr := range map[string]bool{"/dev/null": false, "/locked/x": true, "/tmp/x": true} {
		if p := probeOf(t, rep, "write", path); (p.Err != "") != wantErr {
			t.Errorf("write %s: err %q, want error %v", path, p.Err, wantErr)
		}
	}
}

// In a cgroup namespace each hierarchy is a fresh mount rooted at the
// container's own cgroup.
func TestCgroupNS(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.BusyboxRootfs(t)
	spec := defaultSpec(root)
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: "cgroup"})
	rep := runChild(t, childConfig{Spec: spec, Probes: []probe{{"write", "/sys/fs/cgroup/memory/x"}}}, runOpts{cgroupNS: true})
	mustOK(t, rep)
	wantMount(t, rep, "/sys/fs/cgroup", "tmpfs", "ro")
	for _, h := range []string{"memory", "cpu", "pids", "systemd", "unified"} {
		if m := findMount(rep, "/sys/fs/cgroup/"+h); m == nil || m.Root != "/" || !hasOpt(m.Options, "ro") {
			t.Errorf("/sys/fs/cgroup/%s: %+v", h, m)
		}
	}
	if p := probeOf(t, rep, "write", "/sys/fs/cgroup/memory/x"); p.Err == "" {
		t.Errorf("cgroup mount is writable")
	}
}
