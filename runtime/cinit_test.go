package runtime_test

import (
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// initModes run the same container with the C init and with the Go init
// (BERTH_GO_INIT=1), traced so that each says which init ran.
var initModes = []struct {
	name, marker string
	vars         []string
}{
	{"C", "init(C): exec", []string{"BERTH_TRACE=1"}},
	{"Go", "init: exec", []string{"BERTH_TRACE=1", "BERTH_GO_INIT=1"}},
}

var traceLine = regexp.MustCompile(`(?m)^trace .*\n`)

// runBothWays runs s with each init and returns stdout, stderr (trace
// lines out, container ids as ID) and exit code of each, failing unless
// each init said it ran (when wantRan).
func runBothWays(t *testing.T, e *env, s func() *specs.Spec, wantRan bool) (outs, errs [2]string, codes [2]int) {
	t.Helper()
	for i, m := range initModes {
		e.vars = m.vars
		id := e.id()
		out, stderr, code := e.try("run", "--bundle", e.bundle(s()), id)
		if wantRan && !strings.Contains(stderr, m.marker) {
			t.Fatalf("%s init: no %q in the trace:\n%s", m.name, m.marker, stderr)
		}
		outs[i], errs[i], codes[i] = out, strings.ReplaceAll(traceLine.ReplaceAllString(stderr, ""), id, "ID"), code
	}
	e.vars = nil
	return outs, errs, codes
}

// TestCInitMatchesGoInit runs a container that uses most of what the init
// sets up, with each init: what the container sees must be the same.
func TestCInitMatchesGoInit(t *testing.T) {
	e := newEnv(t)
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "hostfile"), []byte("from-host\n"), 0o644)
	mk := func() *specs.Spec {
		s := sh(`
grep -E '^(Uid|Gid|Groups|NoNewPrivs|Seccomp|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' /proc/self/status
umask; pwd; echo "$FOO $HOME"; hostname; cat /proc/self/oom_score_adj
grep -E 'open files|processes' /proc/self/limits
cut -d' ' -f5- /proc/self/mountinfo | sed 's/ shared:[0-9]*/ shared/; s/ master:[0-9]*/ master/'
cat /proc/self/cgroup; ls /sys/fs/cgroup
stat -c '%n %F %t:%T %a %u:%g' /dev/* | grep -v '^/dev/pts\|^/dev/shm\|^/dev/mqueue'
for l in /dev/fd /dev/stdin /dev/stdout /dev/stderr /dev/ptmx; do readlink $l; done
cat /proc/sys/kernel/shm_rmid_forced; cat /data/hostfile /etc/hostsfile
touch /rootfile 2>&1; mkdir /tmp/x 2>&1; cat /proc/kcore 2>&1 | head -c 10 | wc -c
ls -l /proc/self/fd/ | wc -l`)
		s.Root.Readonly = true
		s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{100, 5}, Umask: ptr(uint32(0o027))}
		s.Process.Cwd = "/tmp"
		s.Process.Env = append(s.Process.Env, "FOO=bar")
		s.Process.OOMScoreAdj = ptr(300)
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 123, Hard: 456}, {Type: "RLIMIT_NPROC", Soft: 500, Hard: 600}}
		caps := []string{"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"}
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps[:2], Ambient: caps}
		s.Process.NoNewPrivileges = true
		s.Hostname = "both-ways"
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=1777"}},
			specs.Mount{Destination: "/data", Type: "bind", Source: hostDir, Options: []string{"rbind", "ro", "nosuid"}},
			specs.Mount{Destination: "/etc/hostsfile", Type: "bind", Source: filepath.Join(hostDir, "hostfile"), Options: []string{"rbind", "rprivate"}},
			specs.Mount{Destination: "/shared", Type: "bind", Source: hostDir, Options: []string{"bind", "rslave", "shared"}},
			specs.Mount{Destination: "/deep/new/dir", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec"}})
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: ptr(os.FileMode(0o640)), UID: ptr(uint32(7)), GID: ptr(uint32(8))}}
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr(int64(10)), Minor: ptr(int64(229)), Access: "rwm"})
		s.Linux.Sysctl = map[string]string{"kernel.shm_rmid_forced": "1"}
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(unix.EACCES))}},
		}
		return s
	}
	outs, errs, codes := runBothWays(t, e, mk, true)
	if codes != [2]int{0, 0} || errs[0] != errs[1] {
		t.Fatalf("exit codes %v\nC init's stderr:\n%s\nGo init's:\n%s", codes, errs[0], errs[1])
	}
	if outs[0] != outs[1] {
		t.Fatalf("the C init's container:\n%s\nthe Go init's:\n%s", outs[0], outs[1])
	}
	for _, w := range []string{"Groups:\t5 100", "CapAmb:\t0000000000000420", "Seccomp:\t2", "both-ways", "from-host", "/dev/fuse character special file a:e5 640 7:8", "Permission denied"} {
		if !strings.Contains(outs[0], w) {
			t.Errorf("missing %q in:\n%s", w, outs[0])
		}
	}
	// The same spec without the seccomp profile and as root, and the
	// default spec (no device nodes: a different device policy path).
	for _, change := range []func(*specs.Spec){
		func(s *specs.Spec) {
			s.Linux.Seccomp = nil
			s.Process.User = specs.User{}
			s.Process.NoNewPrivileges = false
		},
		func(s *specs.Spec) {
			*s = *sh("cat /proc/self/mountinfo | cut -d' ' -f5- | sed 's/ shared:[0-9]*//'; id")
		},
	} {
		outs, errs, codes := runBothWays(t, e, func() *specs.Spec { s := mk(); change(s); return s }, true)
		if codes != [2]int{0, 0} || errs[0] != errs[1] || outs[0] != outs[1] {
			t.Fatalf("exit codes %v\nC init:\n%s%s\nGo init:\n%s%s", codes, outs[0], errs[0], outs[1], errs[1])
		}
	}
}

// TestCInitErrorsReadAsGoInit: failures of each step read the same with
// either init, at create (a bind source missing, a sysctl the kernel does
// not have) and at start (no such executable, a cwd that is a file).
func TestCInitErrorsReadAsGoInit(t *testing.T) {
	e := newEnv(t)
	for _, change := range []func(*specs.Spec){
		func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/no/such/source", Options: []string{"bind"}})
		},
		func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.no.such.key": "1"} },
		func(s *specs.Spec) { s.Process.Args = []string{"/no/such/binary"} },
		func(s *specs.Spec) { s.Process.Args = []string{"no-such-command"} },
		func(s *specs.Spec) { s.Process.Cwd = "/bin/busybox" },
		func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/y", Type: "nosuchfs", Source: "none"})
		},
	} {
		outs, errs, codes := runBothWays(t, e, func() *specs.Spec { s := spec("true"); change(s); return s }, false)
		if codes[0] == 0 || codes != [2]int{codes[1], codes[0]} || errs[0] != errs[1] || errs[0] == "" || outs != [2]string{} {
			t.Fatalf("exit codes %v\nC init's stderr:\n%s\nGo init's:\n%s", codes, errs[0], errs[1])
		}
		t.Logf("both: %s", strings.TrimSpace(errs[0]))
	}
}

// TestCInitHostileRootfs runs the C init itself (BERTH_CINIT_UNCHECKED: no
// falling back to the Go init for a rootfs with symlinks) on a rootfs whose
// mount destinations are symlinks out of it: its mounts must land inside.
func TestCInitHostileRootfs(t *testing.T) {
	e := newEnv(t)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "marker"), []byte("host"), 0o644)
	s := sh(`echo container > /abs/written; echo container > /rel/written; echo container > /dev/evil/written; grep -c ' /abs ' /proc/self/mountinfo`)
	s.Root.Readonly = false
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/abs", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/rel/sub", Type: "tmpfs", Source: "tmpfs"},
	)
	s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/evil/null", Type: "c", Major: 1, Minor: 3}}
	b := e.bundle(s)
	rootfs := filepath.Join(b, "rootfs")
	if err := os.Symlink(outside, filepath.Join(rootfs, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../.."+outside, filepath.Join(rootfs, "rel")); err != nil {
		t.Fatal(err)
	}
	e.vars = []string{"BERTH_TRACE=1", "BERTH_CINIT_UNCHECKED=1"}
	out, errs, code := e.try("run", "--bundle", b, e.id())
	if !strings.Contains(errs, "init(C): program read") {
		t.Fatalf("the C init did not run:\n%s", errs)
	}
	if code != 0 {
		t.Logf("hostile rootfs refused: %s", traceLine.ReplaceAllString(errs, ""))
	} else if !strings.Contains(out, "1") {
		t.Fatalf("inside:\n%s\nstderr:\n%s", out, errs)
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 || ents[0].Name() != "marker" {
		t.Fatalf("the host directory a symlink points at was written: %v", ents)
	}
	if err := unix.Access(filepath.Join(outside, "sub"), unix.F_OK); err == nil {
		t.Fatal("a mount destination was made outside the root")
	}
}

// TestSignalsStartAtDefault: the user's process gets every signal at its
// default action and none blocked, with either init, though the runtime's
// caller ignores some (a shim ignores SIGHUP, SIGINT, SIGTERM, SIGPIPE; an
// ignored signal survives execve, and a shell cannot trap one ignored at
// its start). create, not run: run handles every signal itself to forward
// them, which resets them in its children.
func TestSignalsStartAtDefault(t *testing.T) {
	e := newEnv(t)
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT) // Go keeps these ignored in the runtime's CLI
	defer signal.Reset(syscall.SIGHUP, syscall.SIGINT)
	for _, m := range initModes {
		e.vars = m.vars
		out := t.TempDir()
		// "; true": busybox sh would exec a last command with SIGQUIT ignored
		s := sh("grep -E '^Sig(Ign|Blk)' /proc/self/status > /out/sig; true")
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
		id := e.id()
		_, stderr, code := e.try("create", "--bundle", e.bundle(s), id)
		if code != 0 {
			t.Fatalf("%s init: create: %s", m.name, stderr)
		}
		e.must("start", id)
		waitStatus(e, id, "stopped")
		e.must("delete", id)
		b, _ := os.ReadFile(filepath.Join(out, "sig"))
		if string(b) != "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n" {
			t.Errorf("%s init: %q", m.name, b)
		}
	}
	e.vars = nil
}
