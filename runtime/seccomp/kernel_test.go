package seccomp

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The kernel tests re-exec the test binary: the child loads a filter into
// its locked thread and then makes raw syscalls (probes), reporting each
// errno on fd 3, or execs a program under the filter.
const childEnv = "BERTH_SECCOMP_CHILD"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		childMain(cfg)
		return
	}
	leakcheck.Main(m)
}

type probe struct {
	Nr   uintptr   `json:"nr"`
	Args [6]uint64 `json:"args"`
	Strs [6]string `json:"strs"` // non-empty: that argument is a pointer to this string
}

type childConfig struct {
	Filter   string   `json:"filter"` // file with Filter.Bytes
	Probes   []probe  `json:"probes"`
	Exec     []string `json:"exec"`
	NoNNP    bool     `json:"noNNP"` // rely on CAP_SYS_ADMIN instead of no_new_privs
	Listener string   `json:"listener"`
}

func childMain(cfgJSON string) {
	fail := func(err error) {
		os.Stderr.WriteString("seccomp child: " + err.Error() + "\n")
		os.Exit(125)
	}
	var cfg childConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fail(err)
	}
	b, err := os.ReadFile(cfg.Filter)
	if err != nil {
		fail(err)
	}
	f, err := FromBytes(b)
	if err != nil {
		fail(err)
	}
	// Everything is allocated before the filter is in place: afterwards
	// only raw syscalls are made from this thread.
	args := make([][6]uintptr, len(cfg.Probes))
	var keep [][]byte
	for i, p := range cfg.Probes {
		for j := range p.Args {
			args[i][j] = uintptr(p.Args[j])
			if p.Strs[j] != "" {
				s := append([]byte(p.Strs[j]), 0)
				keep = append(keep, s)
				args[i][j] = uintptr(unsafe.Pointer(&s[0]))
			}
		}
	}
	res := make([]byte, 8)
	unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	runtime.LockOSThread()
	if !cfg.NoNNP {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			fail(err)
		}
	}
	fd, err := f.Load()
	if err != nil {
		fail(err)
	}
	if cfg.Listener != "" {
		if err := SendListener(cfg.Listener, fd, "meta", specs.State{Version: specs.Version, ID: "c1", Pid: os.Getpid()}); err != nil {
			fail(err)
		}
		unix.Close(fd)
	}
	if cfg.Exec != nil {
		err := unix.Exec(cfg.Exec[0], cfg.Exec, []string{"PATH=/bin:/usr/bin"})
		fail(err)
	}
	for i, p := range cfg.Probes {
		a := args[i]
		_, _, e := unix.RawSyscall6(p.Nr, a[0], a[1], a[2], a[3], a[4], a[5])
		binary.LittleEndian.PutUint64(res, uint64(e))
		unix.RawSyscall(unix.SYS_WRITE, 3, uintptr(unsafe.Pointer(&res[0])), 8)
	}
	runtime.KeepAlive(keep)
	unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
}

type childResult struct {
	errnos []unix.Errno
	state  *os.ProcessState
	out    string
}

func (r childResult) sigsys() bool {
	ws, ok := r.state.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGSYS
}

func runChild(t *testing.T, f *Filter, cfg childConfig) childResult {
	t.Helper()
	file := filepath.Join(t.TempDir(), "filter")
	if err := os.WriteFile(file, f.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Filter = file
	js, _ := json.Marshal(cfg)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(js), "GODEBUG=asyncpreemptoff=1")
	cmd.ExtraFiles = []*os.File{w}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	res := childResult{state: cmd.ProcessState, out: out.String()}
	if cmd.ProcessState.ExitCode() == 125 {
		t.Fatalf("child failed: %s", res.out)
	}
	b, _ := readAll(r)
	for len(b) >= 8 {
		res.errnos = append(res.errnos, unix.Errno(binary.LittleEndian.Uint64(b)))
		b = b[8:]
	}
	return res
}

func readAll(f *os.File) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(f)
	return b.Bytes(), err
}

// harness is what the child needs to report and exit under a deny-by-default filter.
var harness = specs.LinuxSyscall{Names: []string{"write", "exit_group"}, Action: specs.ActAllow}

func TestKernelErrno(t *testing.T) {
	dir := t.TempDir()
	f := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(uint(unix.ENODATA)),
		Syscalls: []specs.LinuxSyscall{
			harness,
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EACCES))},
			{Names: []string{"rmdir"}, Action: specs.ActErrno},
			{Names: []string{"getpid", "getppid"}, Action: specs.ActAllow},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo}}},
			{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: unix.AF_INET6, Op: specs.OpNotEqual}}},
			{Names: []string{"close"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffff0000, Op: specs.OpMaskedEqual, ValueTwo: 0x12340000}}},
		},
	})
	res := runChild(t, f, childConfig{Probes: []probe{
		{Nr: unix.SYS_MKDIR, Strs: [6]string{filepath.Join(dir, "d")}, Args: [6]uint64{0, 0o755}},
		{Nr: unix.SYS_RMDIR, Strs: [6]string{dir}},
		{Nr: unix.SYS_GETPID},
		{Nr: unix.SYS_GETTID},
		{Nr: unix.SYS_PERSONALITY, Args: [6]uint64{0xffffffff}},
		{Nr: unix.SYS_PERSONALITY, Args: [6]uint64{0xfffffffe}},
		{Nr: unix.SYS_PERSONALITY, Args: [6]uint64{1<<32 | 0xffffffff}},
		{Nr: unix.SYS_SOCKET, Args: [6]uint64{unix.AF_INET6, unix.SOCK_STREAM}},
		{Nr: unix.SYS_SOCKET, Args: [6]uint64{unix.AF_INET, 9999}},
		{Nr: unix.SYS_CLOSE, Args: [6]uint64{0x1234ffff}},
		{Nr: unix.SYS_CLOSE, Args: [6]uint64{0x1235ffff}},
	}})
	want := []unix.Errno{unix.EACCES, unix.EPERM, 0, unix.ENODATA, 0, unix.ENODATA, unix.ENODATA,
		unix.ENODATA, unix.EINVAL, unix.EBADF, unix.ENODATA}
	if !res.state.Success() || !equalErrnos(res.errnos, want) {
		t.Fatalf("child %v, errnos %v, want %v\n%s", res.state, res.errnos, want, res.out)
	}
	if _, err := os.Stat(filepath.Join(dir, "d")); err == nil {
		t.Error("mkdir ran despite the filter")
	}
}

func equalErrnos(a, b []unix.Errno) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestKernelKillProcess(t *testing.T) {
	f := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActKillProcess}},
	})
	res := runChild(t, f, childConfig{Probes: []probe{{Nr: unix.SYS_GETPID}, {Nr: unix.SYS_GETPPID}, {Nr: unix.SYS_GETPID}}})
	if !res.sigsys() || len(res.errnos) != 1 {
		t.Fatalf("want death by SIGSYS after one probe: %v, errnos %v\n%s", res.state, res.errnos, res.out)
	}
}

// A syscall with __X32_SYSCALL_BIT set arrives as AUDIT_ARCH_X86_64: it must
// not be matched by the x86_64 rules when only X86_64 is listed.
func TestKernelX32(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("x86_64 only")
	}
	rules := []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV))}}
	only := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules})
	res := runChild(t, only, childConfig{Probes: []probe{{Nr: unix.SYS_GETPPID}, {Nr: x32SyscallBit | unix.SYS_GETPPID}}})
	if !res.sigsys() || !equalErrnos(res.errnos, []unix.Errno{unix.EXDEV}) {
		t.Fatalf("x32 syscall with only X86_64 listed: %v, errnos %v\n%s", res.state, res.errnos, res.out)
	}
	with := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX32}})
	res = runChild(t, with, childConfig{Probes: []probe{{Nr: x32SyscallBit | unix.SYS_GETPPID}, {Nr: x32SyscallBit | unix.SYS_GETPID}}})
	// getpid passes the filter; this kernel has no x32 ABI, so ENOSYS.
	if !res.state.Success() || len(res.errnos) != 2 || res.errnos[0] != unix.EXDEV || (res.errnos[1] != 0 && res.errnos[1] != unix.ENOSYS) {
		t.Fatalf("x32 listed: %v, errnos %v\n%s", res.state, res.errnos, res.out)
	}
}

// i386ELF is a static x86_64 program that makes one 32-bit syscall through
// int 0x80 (sched_yield, i386 number 158) and exits with its negated result:
// 0 if allowed, the errno if the filter returns one.
func i386ELF() []byte {
	code := []byte{
		0xb8, 158, 0, 0, 0, // mov eax, 158
		0xcd, 0x80, // int 0x80
		0xf7, 0xd8, // neg eax
		0x89, 0xc7, // mov edi, eax
		0xb8, 231, 0, 0, 0, // mov eax, 231 (exit_group)
		0x0f, 0x05, // syscall
	}
	const base, hdr = 0x400000, 64 + 56
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	binary.Write(&b, le, struct {
		Type, Machine                           uint16
		Version                                 uint32
		Entry, Phoff, Shoff                     uint64
		Flags                                   uint32
		Ehsize, Phentsize, Phnum                uint16
		Shentsize, Shnum, Shstrndx              uint16
		PType, PFlags                           uint32
		Off, Vaddr, Paddr, Filesz, Memsz, Align uint64
	}{2, 0x3e, 1, base + hdr, 64, 0, 0, 64, 56, 1, 0, 0, 0,
		1, 5, 0, base, base, uint64(hdr + len(code)), uint64(hdr + len(code)), 0x1000})
	b.Write(code)
	return b.Bytes()
}

func TestKernelI386(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("x86_64 only")
	}
	prog := filepath.Join(t.TempDir(), "int80")
	if err := os.WriteFile(prog, i386ELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(prog).CombinedOutput(); err != nil {
		t.Skipf("cannot run 32-bit syscalls here (no IA32 emulation?): %v %s", err, out)
	}
	rules := []specs.LinuxSyscall{{Names: []string{"sched_yield"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV))}}
	only := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules})
	res := runChild(t, only, childConfig{Exec: []string{prog}})
	if !res.sigsys() {
		t.Errorf("int 0x80 with only X86_64 listed: %v, want SIGSYS", res.state)
	}
	with := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86}})
	res = runChild(t, with, childConfig{Exec: []string{prog}})
	if res.state.ExitCode() != int(unix.EXDEV) {
		t.Errorf("int 0x80 with X86 listed: %v, want exit %d", res.state, unix.EXDEV)
	}
}

// Docker's default profile: a busybox shell works, unshare and keyctl are denied.
func TestKernelDockerProfile(t *testing.T) {
	if _, err := os.Stat(testutil.BusyboxBinary); err != nil {
		t.Skipf("no %s", testutil.BusyboxBinary)
	}
	f, err := Compile(dockerProfile(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := `set -e; cd ` + dir + `; echo hello > f; cat f; mkdir d; ls; sleep 0.01 & wait; ` +
		`if unshare -U true 2>/dev/null; then echo unshare-allowed; else echo unshare-denied; fi`
	res := runChild(t, f, childConfig{Exec: []string{testutil.BusyboxBinary, "sh", "-c", script}})
	if !res.state.Success() || res.out != "hello\nd\nf\nunshare-denied\n" {
		t.Fatalf("busybox under docker's profile: %v\n%s", res.state, res.out)
	}
	res = runChild(t, f, childConfig{Probes: []probe{
		{Nr: unix.SYS_KEYCTL, Args: [6]uint64{unix.KEYCTL_GET_KEYRING_ID, 0xfffffffd}},
		{Nr: unix.SYS_UNSHARE, Args: [6]uint64{unix.CLONE_NEWUSER}},
		{Nr: unix.SYS_GETPID},
	}})
	if !res.state.Success() || !equalErrnos(res.errnos, []unix.Errno{unix.EPERM, unix.EPERM, 0}) {
		t.Fatalf("docker profile: %v, errnos %v\n%s", res.state, res.errnos, res.out)
	}
}

// Without no_new_privs, loading needs CAP_SYS_ADMIN.
func TestKernelLoadAsRoot(t *testing.T) {
	testutil.RequireRoot(t)
	f := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Flags:    []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV))}}})
	res := runChild(t, f, childConfig{NoNNP: true, Probes: []probe{{Nr: unix.SYS_GETPPID}}})
	if !res.state.Success() || !equalErrnos(res.errnos, []unix.Errno{unix.EXDEV}) {
		t.Fatalf("%v, errnos %v\n%s", res.state, res.errnos, res.out)
	}
}

// SCMP_ACT_NOTIFY: the child sends its listener fd to listenerPath; we read
// the state JSON, answer the notification, and the child sees our answer.
func TestKernelNotify(t *testing.T) {
	sockPath := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrUnix{Name: sockPath}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		t.Fatal(err)
	}
	f := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: sockPath,
		Flags:    []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}}})
	if !f.Listener() {
		t.Fatal("no listener wanted")
	}
	type agentResult struct {
		st  specs.ContainerProcessState
		err error
	}
	done := make(chan agentResult, 1)
	go func() {
		var ar agentResult
		defer func() { done <- ar }()
		c, _, err := unix.Accept(ln)
		if err != nil {
			ar.err = err
			return
		}
		defer unix.Close(c)
		buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := unix.Recvmsg(c, buf, oob, 0)
		if err != nil {
			ar.err = err
			return
		}
		if ar.err = json.Unmarshal(buf[:n], &ar.st); ar.err != nil {
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) != 1 {
			ar.err = errors.New("no SCM_RIGHTS")
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			ar.err = errors.New("bad SCM_RIGHTS")
			return
		}
		defer unix.Close(fds[0])
		var req [80]byte // struct seccomp_notif
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fds[0]), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req[0]))); e != 0 {
			ar.err = e
			return
		}
		if nr := binary.LittleEndian.Uint32(req[16:]); nr != unix.SYS_GETPPID {
			ar.err = errors.New("notified of the wrong syscall")
			return
		}
		var resp [24]byte // struct seccomp_notif_resp: id, val, error, flags
		copy(resp[:8], req[:8])
		errno := -int32(unix.ENOTTY)
		binary.LittleEndian.PutUint32(resp[16:], uint32(errno))
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fds[0]), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp[0]))); e != 0 {
			ar.err = e
		}
	}()
	res := runChild(t, f, childConfig{Listener: sockPath, Probes: []probe{{Nr: unix.SYS_GETPPID}, {Nr: unix.SYS_GETPID}}})
	var ar agentResult
	select {
	case ar = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("agent timed out")
	}
	if ar.err != nil {
		t.Fatalf("agent: %v", ar.err)
	}
	if !res.state.Success() || !equalErrnos(res.errnos, []unix.Errno{unix.ENOTTY, 0}) {
		t.Fatalf("%v, errnos %v\n%s", res.state, res.errnos, res.out)
	}
	if ar.st.Metadata != "meta" || ar.st.State.ID != "c1" || len(ar.st.Fds) != 1 || ar.st.Fds[0] != specs.SeccompFdName || ar.st.Pid == 0 {
		t.Errorf("state sent: %+v", ar.st)
	}
}
