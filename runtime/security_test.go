package runtime_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestSeccompDenials(t *testing.T) {
	e := newEnv(t)
	s := sh(`grep Seccomp: /proc/self/status; mkdir /tmp/x 2>&1; chmod 777 /tmp 2>&1 && echo chmod-ok; true`)
	s.Root.Readonly = false
	s.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(unix.EACCES))},
			// chmod is denied only for mode 0777: arguments are compared.
			{Names: []string{"chmod"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(unix.EPERM)),
				Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0o777, Op: specs.OpEqualTo}}},
			{Names: []string{"fchmodat"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(unix.EPERM)),
				Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0o777, Op: specs.OpEqualTo}}},
		},
	}
	out := e.mustRun(s)
	if !strings.Contains(out, "Seccomp:\t2") || !strings.Contains(out, "Permission denied") ||
		strings.Contains(out, "chmod-ok") || !strings.Contains(out, "Operation not permitted") {
		t.Fatalf("seccomp inside:\n%s", out)
	}
	// The same profile allows other modes.
	s.Process.Args = []string{"sh", "-c", "chmod 755 /tmp && echo chmod-ok"}
	if out := e.mustRun(s); out != "chmod-ok\n" {
		t.Fatalf("chmod 755 under the profile: %q", out)
	}
}

// TestConsoleSocket checks the terminal path: the init makes a pty in the
// container and hands the master to whoever listens on --console-socket.
func TestConsoleSocket(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	masterc := make(chan *os.File, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			masterc <- nil
			return
		}
		defer c.Close()
		f, _ := c.(*net.UnixConn).File()
		defer f.Close()
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := unix.Recvmsg(int(f.Fd()), make([]byte, 64), oob, 0)
		if err != nil {
			masterc <- nil
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) != 1 {
			masterc <- nil
			return
		}
		fds, _ := unix.ParseUnixRights(&msgs[0])
		if len(fds) != 1 {
			masterc <- nil
			return
		}
		masterc <- os.NewFile(uintptr(fds[0]), "master")
	}()
	s := sh(`tty; stty size; readlink /proc/self/fd/0; echo done`)
	s.Process.Terminal = true
	s.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
	id := e.id()
	e.must("create", "--console-socket", sock, "--bundle", e.bundle(s), id)
	var master *os.File
	select {
	case master = <-masterc:
	case <-time.After(10 * time.Second):
	}
	if master == nil {
		t.Fatal("no pty master received")
	}
	defer master.Close()
	e.must("start", id)
	var out bytes.Buffer
	buf := make([]byte, 4096)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "done") && time.Now().Before(deadline) {
		master.SetReadDeadline(deadline)
		n, err := master.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	got := strings.ReplaceAll(out.String(), "\r", "")
	if !strings.Contains(got, "/dev/pts/0\n30 100\n/dev/pts/0\ndone") {
		t.Fatalf("on the terminal:\n%q", got)
	}
}

// TestInitBinaryNotWritable replays CVE-2019-5736: a process inside the
// container holds an fd to the berth binary that ran in the container, waits
// for it to exit and writes through the fd. The write must fail, the binary
// must be unchanged.
func TestInitBinaryNotWritable(t *testing.T) {
	e := newEnv(t)
	// Attack a private copy, so a failure cannot break the other tests.
	orig := e.bin
	e.bin = filepath.Join(t.TempDir(), "berth")
	copyFile(t, orig, e.bin)
	before := fileSum(t, e.bin)

	id := e.id()
	s := spec("sleep", "100")
	s.Root.Readonly = false
	e.must("run", "--detach", "--bundle", e.bundle(s), id)
	// The berth binary runs inside the container with the container's
	// credentials, as with a `#!/proc/self/exe` entry point; here it blocks
	// reading its config from stdin, which we hold open.
	victim := exec.Command(e.bin, "runtime", "--root", e.root, "exec", "--env", "_BERTH_INITPIPE=0", id, "/proc/self/exe", "init")
	stdin, err := victim.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var verr bytes.Buffer
	victim.Stderr = &verr
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	defer victim.Wait()
	attack := `
for i in $(seq 200); do
  for d in /proc/[0-9]*; do
    case "$(tr '\0' ' ' < $d/cmdline 2>/dev/null)" in "/proc/self/exe init"*) PID=${d#/proc/};; esac
  done
  [ -n "$PID" ] && break; sleep 0.05
done
[ -n "$PID" ] || { echo no-victim; exit 1; }
exec 3< /proc/$PID/exe || { echo cannot-open; exit 1; }
echo opened
while kill -0 $PID 2>/dev/null; do sleep 0.02; done
echo pwned >&3 2>/dev/null
echo pwned 2>&1 > /proc/self/fd/3 && echo WROTE || echo DENIED`
	attacker := exec.Command(e.bin, "runtime", "--root", e.root, "exec", id, "sh", "-c", attack)
	stdout, _ := attacker.StdoutPipe()
	attacker.Stderr = os.Stderr
	if err := attacker.Start(); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	buf := make([]byte, 1)
	for !strings.Contains(got.String(), "opened\n") {
		if _, err := stdout.Read(buf); err != nil {
			attacker.Wait()
			t.Fatalf("attacker could not get hold of the init: %q; victim: %s", got.String(), verr.String())
		}
		got.Write(buf)
	}
	stdin.Close() // the victim reads EOF and exits
	rest, _ := io.ReadAll(stdout)
	got.Write(rest)
	attacker.Wait()
	out := got.String()
	if !strings.Contains(out, "DENIED") || !strings.Contains(out, "Read-only file system") {
		t.Fatalf("attack output:\n%s", out)
	}
	if fileSum(t, e.bin) != before {
		t.Fatal("the berth binary was modified from inside the container")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// TestHostileRootfsSymlinks gives the container mount destinations that are
// symlinks pointing out of the rootfs; every mount must land inside it.
func TestHostileRootfsSymlinks(t *testing.T) {
	e := newEnv(t)
	outside, outside2 := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(outside, "marker"), []byte("host"), 0o644)
	os.WriteFile(filepath.Join(outside2, "marker"), []byte("host"), 0o644)
	src := t.TempDir()
	s := sh(`echo container > /abs/written; echo container > /rel/written; cat /abs/srcfile; ls /escape-target`)
	s.Root.Readonly = false
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/abs", Type: "bind", Source: src, Options: []string{"rbind"}},
		specs.Mount{Destination: "/rel", Type: "tmpfs", Source: "tmpfs"},
	)
	os.WriteFile(filepath.Join(src, "srcfile"), []byte("src\n"), 0o644)
	b := e.bundle(s)
	rootfs := filepath.Join(b, "rootfs")
	if err := os.Symlink(outside, filepath.Join(rootfs, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../.."+outside2, filepath.Join(rootfs, "rel")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(rootfs, "escape-target"), 0o755)
	out, errs, code := e.try("run", "--bundle", b, e.id())
	if code != 0 {
		// Refusing the mount is fine too; following the link out is not.
		t.Logf("hostile rootfs refused: %s", errs)
	} else if !strings.Contains(out, "src") {
		t.Fatalf("inside:\n%s\nstderr:\n%s", out, errs)
	}
	for _, dir := range []string{outside, outside2} {
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 || ents[0].Name() != "marker" {
			names := []string{}
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("the host directory a symlink points at was written: %s: %v", dir, names)
		}
	}
}
