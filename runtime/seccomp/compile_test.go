package seccomp

import (
	"fmt"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	x8664 = unix.AUDIT_ARCH_X86_64
	i386  = unix.AUDIT_ARCH_I386
)

func errnoRet(e unix.Errno) uint32 { return retErrno | uint32(e) }

func TestActions(t *testing.T) {
	for _, tc := range []struct {
		act  specs.LinuxSeccompAction
		errn *uint
		want uint32
	}{
		{specs.ActKill, nil, retKillThread},
		{specs.ActKillThread, nil, retKillThread},
		{specs.ActKillProcess, nil, retKillProcess},
		{specs.ActTrap, nil, retTrap},
		{specs.ActErrno, nil, errnoRet(unix.EPERM)},
		{specs.ActErrno, uptr(uint(unix.EACCES)), errnoRet(unix.EACCES)},
		{specs.ActTrace, nil, retTrace | uint32(unix.EPERM)},
		{specs.ActTrace, uptr(7), retTrace | 7},
		{specs.ActAllow, nil, retAllow},
		{specs.ActLog, nil, retLog},
		{specs.ActNotify, nil, retUserNotif},
	} {
		s := &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow, ListenerPath: "/x",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: tc.act, ErrnoRet: tc.errn}},
		}
		if tc.act == specs.ActAllow {
			s.DefaultAction = specs.ActKillProcess
		}
		f := mustCompile(t, s)
		if got := eval(t, f, x8664, unix.SYS_GETPID); got != tc.want {
			t.Errorf("%s errnoRet=%v: ret %#x, want %#x", tc.act, tc.errn, got, tc.want)
		}
		if got := f.Listener(); got != (tc.act == specs.ActNotify) {
			t.Errorf("%s: Listener() = %v", tc.act, got)
		}
	}
}

// Rule errnoRet wins; a rule without one gets EPERM (runtime spec), not the
// defaultErrnoRet, which is for the default action only.
func TestErrnoRetPrecedence(t *testing.T) {
	f := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(uint(unix.ENOSYS)),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EACCES))},
			{Names: []string{"rmdir"}, Action: specs.ActErrno},
			{Names: []string{"getpid"}, Action: specs.ActAllow},
		},
	})
	for nr, want := range map[uint32]uint32{
		unix.SYS_MKDIR:  errnoRet(unix.EACCES),
		unix.SYS_RMDIR:  errnoRet(unix.EPERM),
		unix.SYS_GETPID: retAllow,
		unix.SYS_CHDIR:  errnoRet(unix.ENOSYS),
		9999:            errnoRet(unix.ENOSYS),
	} {
		if got := eval(t, f, x8664, nr); got != want {
			t.Errorf("nr %d: %#x, want %#x", nr, got, want)
		}
	}
	f = mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno})
	if got := eval(t, f, x8664, unix.SYS_GETPID); got != errnoRet(unix.EPERM) {
		t.Errorf("default errno without defaultErrnoRet: %#x", got)
	}
}

func TestInvalid(t *testing.T) {
	allow := specs.LinuxSyscall{Names: []string{"getpid"}, Action: specs.ActAllow}
	for name, s := range map[string]*specs.LinuxSeccomp{
		"unknown default action": {DefaultAction: "SCMP_ACT_NOPE"},
		"missing default action": {},
		"unknown action": {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"no_such_call"}, Action: "SCMP_ACT_FOO"}}},
		"unknown op": {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_LIKE"}}}}},
		"arg index": {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}},
		"unknown arch":       {DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_VAX"}},
		"arch without table": {DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchS390}},
		"unknown flag":       {DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FOO"}},
		"errnoRet on allow": {DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: specs.ActAllow, ErrnoRet: uptr(1)}}},
		"defaultErrnoRet on kill": {DefaultAction: specs.ActKill, DefaultErrnoRet: uptr(1), Syscalls: []specs.LinuxSyscall{allow}},
		"no names":                {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Action: specs.ActErrno}}},
		"notify without listener": {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: specs.ActNotify}}},
		"notify default": {DefaultAction: specs.ActNotify, ListenerPath: "/x"},
		"no way to exit": {DefaultAction: specs.ActErrno},
		"exit by tracer only": {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"exit", "exit_group"}, Action: specs.ActTrace}}},
		"exit 1 refused": {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"exit", "exit_group"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}}}}},
	} {
		if _, err := Compile(s, ""); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, err := Compile(nil, ""); err == nil {
		t.Error("nil spec: no error")
	}
}

func TestUnknownNamesSkipped(t *testing.T) {
	f := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"no_such_syscall", "getpid", "arm_fadvise64_64", "chown32"}, Action: specs.ActAllow},
			{Names: []string{"also_unknown"}, Action: specs.ActKillProcess},
		},
	})
	if got := eval(t, f, x8664, unix.SYS_GETPID); got != retAllow {
		t.Errorf("getpid: %#x", got)
	}
}

func TestFlags(t *testing.T) {
	f := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{
		"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv}})
	want := uint32(unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW | flagWaitKillableRecv)
	if f.flags != want {
		t.Errorf("flags %#x, want %#x", f.flags, want)
	}
	g, err := FromBytes(f.Bytes())
	if err != nil || g.flags != want {
		t.Errorf("round trip: %v %#x", err, g.flags)
	}
}

// Edge values around the word boundary of 64-bit arguments.
var edges = []uint64{
	0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
	0x100000000, 0x100000001, 0x1fffffffe, 0x1ffffffff, 0x200000000,
	0x7fffffffffffffff, 0x8000000000000000, 0xfffffffe00000000,
	0xffffffff00000000, 0xffffffff00000001, 0xfffffffffffffffe, 0xffffffffffffffff,
}

func holds(op specs.LinuxSeccompOperator, a, v, w uint64) bool {
	switch op {
	case specs.OpEqualTo:
		return a == v
	case specs.OpNotEqual:
		return a != v
	case specs.OpLessThan:
		return a < v
	case specs.OpLessEqual:
		return a <= v
	case specs.OpGreaterThan:
		return a > v
	case specs.OpGreaterEqual:
		return a >= v
	case specs.OpMaskedEqual:
		return a&v == w
	}
	panic(op)
}

// Every operator against every pair of edge values, on the 64-bit arch
// (full comparison) and on x86 (low word only, like libseccomp), with the
// argument in different slots.
func TestArgOperators(t *testing.T) {
	twos := []uint64{0, 1, 0x100000000, 0xffffffff00000000, 0x0000000100000001}
	for _, op := range operators {
		for _, v := range edges {
			ws := []uint64{0}
			if op == specs.OpMaskedEqual {
				ws = twos
			}
			for _, w := range ws {
				for _, idx := range []uint{0, 3, 5} {
					f := mustCompile(t, &specs.LinuxSeccomp{
						DefaultAction: specs.ActAllow,
						Architectures: []specs.Arch{specs.ArchX86},
						Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActErrno,
							Args: []specs.LinuxSeccompArg{{Index: idx, Value: v, ValueTwo: w, Op: op}}}},
					})
					for _, a := range edges {
						args := make([]uint64, 6)
						args[idx] = a
						want := uint32(retAllow)
						if holds(op, a, v, w) {
							want = errnoRet(unix.EPERM)
						}
						if got := eval(t, f, x8664, unix.SYS_PERSONALITY, args...); got != want {
							t.Fatalf("x86_64 arg%d=%#x %s %#x (valueTwo %#x): %#x, want %#x", idx, a, op, v, w, got, want)
						}
						a32 := uint64(uint32(a))
						args[idx] = a32
						want = retAllow
						if holds(op, a32, uint64(uint32(v)), uint64(uint32(w))) {
							want = errnoRet(unix.EPERM)
						}
						if got := eval(t, f, i386, nrOf(t, specs.ArchX86, "personality"), args...); got != want {
							t.Fatalf("x86 arg%d=%#x %s %#x (valueTwo %#x): %#x, want %#x", idx, a32, op, v, w, got, want)
						}
					}
				}
			}
		}
	}
}

// Big-endian arches keep the high word first; check one.
func TestArgBigEndian(t *testing.T) {
	f := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchS390X},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0x100000002, Op: specs.OpEqualTo}}}},
	})
	nr := nrOf(t, specs.ArchS390X, "personality")
	if got := eval(t, f, unix.AUDIT_ARCH_S390X, nr, 0, 0x100000002); got != errnoRet(unix.EPERM) {
		t.Errorf("match: %#x", got)
	}
	if got := eval(t, f, unix.AUDIT_ARCH_S390X, nr, 0, 0x200000001); got != retAllow {
		t.Errorf("swapped words: %#x", got)
	}
}

// Several args in a rule are ANDed; several rules for a syscall are ORed in
// order, first match wins; an unconditional rule applies when none matches.
func TestRuleSemantics(t *testing.T) {
	f := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(uint(unix.ENOSYS)),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: unix.AF_INET, Op: specs.OpEqualTo},
				{Index: 1, Value: unix.SOCK_RAW, Op: specs.OpNotEqual},
			}},
			{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: unix.AF_UNIX, Op: specs.OpEqualTo}}},
			{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EACCES)), Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 0, Op: specs.OpGreaterEqual}}}, // all others
			{Names: []string{"socket"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: unix.AF_INET6, Op: specs.OpEqualTo}}}, // shadowed
			{Names: []string{"ioctl"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.ENOTTY)), Args: []specs.LinuxSeccompArg{
				{Index: 1, Value: unix.TIOCSTI, Op: specs.OpEqualTo}}},
			{Names: []string{"ioctl"}, Action: specs.ActAllow},
		},
	})
	for _, tc := range []struct {
		nr   uint32
		args []uint64
		want uint32
	}{
		{unix.SYS_SOCKET, []uint64{unix.AF_INET, unix.SOCK_STREAM}, retAllow},
		{unix.SYS_SOCKET, []uint64{unix.AF_INET, unix.SOCK_RAW}, errnoRet(unix.EACCES)},
		{unix.SYS_SOCKET, []uint64{unix.AF_UNIX, unix.SOCK_RAW}, retAllow},
		{unix.SYS_SOCKET, []uint64{unix.AF_INET6, unix.SOCK_STREAM}, errnoRet(unix.EACCES)},
		{unix.SYS_IOCTL, []uint64{0, unix.TIOCSTI}, errnoRet(unix.ENOTTY)},
		{unix.SYS_IOCTL, []uint64{0, unix.TIOCGWINSZ}, retAllow},
		{unix.SYS_IOCTL, []uint64{0, 1<<32 | unix.TIOCSTI}, retAllow},
	} {
		if got := eval(t, f, x8664, tc.nr, tc.args...); got != tc.want {
			t.Errorf("nr %d %#x: %#x, want %#x", tc.nr, tc.args, got, tc.want)
		}
	}
}

func TestArchitectures(t *testing.T) {
	rules := []specs.LinuxSyscall{
		{Names: []string{"getpid"}, Action: specs.ActErrno, ErrnoRet: uptr(5)},
	}
	only := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules})
	all := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM, specs.ArchRISCV64}})
	x32Only := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules,
		Architectures: []specs.Arch{specs.ArchX32}})
	for _, tc := range []struct {
		f         *Filter
		name      string
		audit, nr uint32
		want      uint32
	}{
		{only, "native getpid", x8664, unix.SYS_GETPID, errnoRet(5)},
		{only, "native other", x8664, unix.SYS_GETTID, retAllow},
		{only, "i386 not listed", i386, 20, badArchRet},
		{only, "x32 not listed", x8664, x32SyscallBit | 39, badArchRet},
		{only, "x32 high", x8664, 0xffffffff, badArchRet},
		{only, "aarch64 not listed", unix.AUDIT_ARCH_AARCH64, 172, badArchRet},
		{all, "i386 getpid", i386, 20, errnoRet(5)},
		{all, "i386 other", i386, 21, retAllow},
		{all, "x32 getpid", x8664, x32SyscallBit | 39, errnoRet(5)},
		{all, "x32 execve (x32 number)", x8664, x32SyscallBit | 520, retAllow},
		{all, "x32 unknown", x8664, 0xffffffff, retAllow},
		{all, "aarch64 getpid", unix.AUDIT_ARCH_AARCH64, 172, errnoRet(5)},
		{all, "arm getpid", unix.AUDIT_ARCH_ARM, 20, errnoRet(5)},
		{all, "riscv64 getpid", unix.AUDIT_ARCH_RISCV64, 172, errnoRet(5)},
		{all, "mips not listed", unix.AUDIT_ARCH_MIPS, 4020, badArchRet},
		{x32Only, "native still in", x8664, unix.SYS_GETPID, errnoRet(5)},
		{x32Only, "x32", x8664, x32SyscallBit | 39, errnoRet(5)},
	} {
		if got := eval(t, tc.f, tc.audit, tc.nr); got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

func TestTooLong(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	for i := 0; i < 1100; i++ {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"ioctl"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: uint64(i)<<32 | 1, Op: specs.OpEqualTo}}})
	}
	_, err := Compile(s, "")
	if err == nil || !strings.Contains(err.Error(), "4096") {
		t.Fatalf("want a length error, got %v", err)
	}
	s.Syscalls = s.Syscalls[:700] // about 3500 instructions: fits, with far jumps
	f := mustCompile(t, s)
	t.Logf("700 ioctl rules: %d instructions", f.Len())
	nr := uint32(unix.SYS_IOCTL)
	for _, i := range []uint64{0, 1, 450, 699} {
		if got := eval(t, f, x8664, nr, 0, i<<32|1); got != errnoRet(unix.EPERM) {
			t.Errorf("rule %d: %#x", i, got)
		}
	}
	if got := eval(t, f, x8664, nr, 0, 700<<32|1); got != retAllow {
		t.Errorf("no rule: %#x", got)
	}
	if got := eval(t, f, x8664, unix.SYS_GETPID); got != retAllow {
		t.Errorf("getpid: %#x", got)
	}
}

func TestBytesRoundTrip(t *testing.T) {
	f := mustCompile(t, dockerProfile(t))
	b := f.Bytes()
	g, err := FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(g.prog) != fmt.Sprint(f.prog) || g.flags != f.flags || g.listener != f.listener {
		t.Fatal("round trip differs")
	}
	for _, bad := range [][]byte{nil, b[:10], b[:len(b)-1], append(append([]byte{}, b...), 0)} {
		if _, err := FromBytes(bad); err == nil {
			t.Errorf("accepted %d bytes", len(bad))
		}
	}
	c := append([]byte{}, b...)
	c[40] ^= 1
	if _, err := FromBytes(c); err == nil {
		t.Error("accepted a flipped bit")
	}
}

func TestDockerProfile(t *testing.T) {
	s := dockerProfile(t)
	f := mustCompile(t, s)
	t.Logf("docker default profile: %d syscall rules, %d BPF instructions", len(s.Syscalls), f.Len())
	if f.Len() > 1000 {
		t.Errorf("docker profile takes %d instructions; the layout should stay compact", f.Len())
	}
	eperm := errnoRet(unix.EPERM)
	for _, tc := range []struct {
		name  string
		audit uint32
		nr    uint32
		args  []uint64
		want  uint32
	}{
		{"read", x8664, unix.SYS_READ, nil, retAllow},
		{"execve", x8664, unix.SYS_EXECVE, nil, retAllow},
		{"unshare", x8664, unix.SYS_UNSHARE, nil, eperm},
		{"keyctl", x8664, unix.SYS_KEYCTL, nil, eperm},
		{"mount", x8664, unix.SYS_MOUNT, nil, eperm},
		{"clone thread", x8664, unix.SYS_CLONE, []uint64{unix.CLONE_VM | unix.CLONE_THREAD}, retAllow},
		{"clone newuser", x8664, unix.SYS_CLONE, []uint64{unix.CLONE_NEWUSER}, eperm},
		{"clone3", x8664, unix.SYS_CLONE3, nil, errnoRet(unix.ENOSYS)},
		{"personality 0xffffffff", x8664, unix.SYS_PERSONALITY, []uint64{0xffffffff}, retAllow},
		{"personality 1", x8664, unix.SYS_PERSONALITY, []uint64{1}, eperm},
		{"socket inet6", x8664, unix.SYS_SOCKET, []uint64{unix.AF_INET6}, retAllow},
		{"socket vsock", x8664, unix.SYS_SOCKET, []uint64{unix.AF_VSOCK}, eperm},
		{"socket 1<<32|inet", x8664, unix.SYS_SOCKET, []uint64{1<<32 | unix.AF_INET}, eperm},
		{"arch_prctl", x8664, unix.SYS_ARCH_PRCTL, nil, retAllow},
		{"i386 getpid", i386, 20, nil, retAllow},
		{"i386 unshare", i386, 310, nil, eperm},
		{"x32 getpid", x8664, x32SyscallBit | 39, nil, retAllow},
		{"aarch64", unix.AUDIT_ARCH_AARCH64, 172, nil, badArchRet},
	} {
		if got := eval(t, f, tc.audit, tc.nr, tc.args...); got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

// Grouped `==` rules keep first-match order and fall through to later rules.
func TestEqualGroups(t *testing.T) {
	eq := func(idx uint, v uint64, act specs.LinuxSeccompAction, e uint) specs.LinuxSyscall {
		sc := specs.LinuxSyscall{Names: []string{"personality"}, Action: act,
			Args: []specs.LinuxSeccompArg{{Index: idx, Value: v, Op: specs.OpEqualTo}}}
		if act == specs.ActErrno {
			sc.ErrnoRet = uptr(e)
		}
		return sc
	}
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(99),
		Architectures: []specs.Arch{specs.ArchX86},
		Syscalls: []specs.LinuxSyscall{
			eq(0, 1, specs.ActAllow, 0), eq(0, 2, specs.ActErrno, 2), eq(0, 1, specs.ActErrno, 3), eq(0, 3, specs.ActAllow, 0),
			eq(0, 1<<32|4, specs.ActErrno, 4), eq(0, 1<<32|5, specs.ActErrno, 5), // another high word
			eq(1, 6, specs.ActErrno, 6), // another argument
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uptr(7)},
		}}
	f := mustCompile(t, s)
	for _, tc := range []struct {
		a0, a1 uint64
		want   uint32
	}{
		{1, 0, retAllow}, {2, 0, errnoRet(2)}, {3, 0, retAllow}, {1 << 32, 0, errnoRet(7)},
		{1<<32 | 1, 0, errnoRet(7)}, {1<<32 | 4, 0, errnoRet(4)}, {1<<32 | 5, 6, errnoRet(5)},
		{4, 0, errnoRet(7)}, {4, 6, errnoRet(6)}, {0, 0, errnoRet(7)},
	} {
		if got := eval(t, f, x8664, unix.SYS_PERSONALITY, tc.a0, tc.a1); got != tc.want {
			t.Errorf("personality(%#x, %#x): %#x, want %#x", tc.a0, tc.a1, got, tc.want)
		}
		// x86 compares low words only: 1<<32|4 is 4 there.
		want := tc.want
		switch uint32(tc.a0) {
		case 1:
			want = retAllow
		case 4:
			want = errnoRet(4)
		case 5:
			want = errnoRet(5)
		}
		if got := eval(t, f, i386, nrOf(t, specs.ArchX86, "personality"), uint64(uint32(tc.a0)), tc.a1); got != want {
			t.Errorf("x86 personality(%#x, %#x): %#x, want %#x", uint32(tc.a0), tc.a1, got, want)
		}
	}
}

// Profiles that leave processes a way out compile: exit or exit_group
// allowed, or answered by killing.
func TestExitAllowed(t *testing.T) {
	for name, s := range map[string]*specs.LinuxSeccomp{
		"exit_group allowed": {DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"exit_group"}, Action: specs.ActAllow}}},
		"exit allowed": {DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"exit"}, Action: specs.ActAllow}}},
		"killed instead": {DefaultAction: specs.ActKillProcess},
		"logged":         {DefaultAction: specs.ActLog},
		"exit 2 refused only": {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"exit", "exit_group"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 2, Op: specs.OpEqualTo}}}}},
	} {
		if _, err := Compile(s, ""); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
