package leakcheck

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates mounts, cgroups, netns and links to check the checker")
	}
}

func take(t *testing.T, mode Mode) *State {
	t.Helper()
	s, err := Take(Options{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	s.Grace = -1 // look once
	return s
}

// expectLeak fails t unless a leak of kind whose description contains want
// is reported.
func expectLeak(t *testing.T, s *State, kind, want string) {
	t.Helper()
	err := s.Check()
	var le *Error
	if !errors.As(err, &le) {
		t.Fatalf("Check() = %v, want a %s leak mentioning %q", err, kind, want)
	}
	for _, l := range le.Leaks {
		if l.Kind == kind && strings.Contains(l.String(), want) {
			t.Logf("flagged as expected: %s", l)
			return
		}
	}
	t.Fatalf("no %s leak mentioning %q in:\n%v", kind, want, err)
}

// expectClean fails t if anything matching want is still reported.
func expectClean(t *testing.T, s *State, want string) {
	t.Helper()
	s.Grace = 2 * time.Second
	defer func() { s.Grace = -1 }()
	err := s.Check()
	if err == nil {
		return
	}
	var le *Error
	if !errors.As(err, &le) {
		t.Fatal(err)
	}
	for _, l := range le.Leaks {
		if strings.Contains(l.String(), want) {
			t.Fatalf("still flagged after cleanup: %s", l)
		}
	}
	t.Logf("unrelated host changes during the test (not ours): %v", err)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func needIP(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
}

func TestMountLeak(t *testing.T) {
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := take(t, InProcess)
	if err := syscall.Mount("berth-leakcheck", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(dir, syscall.MNT_DETACH)
	expectLeak(t, s, KindMount, dir+" tmpfs berth-leakcheck")
	if err := syscall.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	expectClean(t, s, dir)
}

func TestCgroupLeak(t *testing.T) {
	requireRoot(t)
	name := fmt.Sprintf("berth-leakcheck-%d", os.Getpid())
	var dirs []string
	for _, h := range []string{"pids", "memory", "unified", ""} {
		root := filepath.Join("/sys/fs/cgroup", h)
		var st syscall.Statfs_t
		if syscall.Statfs(root, &st) != nil || (st.Type != 0x27e0eb && st.Type != 0x63677270) { // cgroup, cgroup2
			continue
		}
		dirs = append(dirs, filepath.Join(root, name, "child"))
	}
	if len(dirs) == 0 {
		t.Skip("no cgroup hierarchy under /sys/fs/cgroup")
	}
	s := take(t, InProcess)
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Dir(d))
		defer os.Remove(d)
	}
	for _, d := range dirs {
		expectLeak(t, s, KindCgroup, d)
		expectLeak(t, s, KindCgroup, filepath.Dir(d))
	}
	for _, d := range dirs {
		if err := os.Remove(d); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Dir(d)); err != nil {
			t.Fatal(err)
		}
	}
	expectClean(t, s, name)
}

func TestNetnsLeak(t *testing.T) {
	requireRoot(t)
	needIP(t)
	name := fmt.Sprintf("berth-lc-%d", os.Getpid())
	s := take(t, InProcess)
	run(t, "ip", "netns", "add", name)
	defer exec.Command("ip", "netns", "delete", name).Run()
	expectLeak(t, s, KindNetns, "/run/netns/"+name)
	expectLeak(t, s, KindNetns, "nsfs /run/netns/"+name)
	run(t, "ip", "netns", "delete", name)
	expectClean(t, s, name)
}

func TestLinkLeak(t *testing.T) {
	requireRoot(t)
	needIP(t)
	id := strconv.Itoa(os.Getpid() % 100000)
	a, b, br := "blc"+id+"a", "blc"+id+"b", "blc"+id+"br"
	s := take(t, InProcess)
	run(t, "ip", "link", "add", a, "type", "veth", "peer", "name", b)
	defer exec.Command("ip", "link", "delete", a).Run()
	run(t, "ip", "link", "add", br, "type", "bridge")
	defer exec.Command("ip", "link", "delete", br).Run()
	expectLeak(t, s, KindLink, "link: "+a+" (")
	expectLeak(t, s, KindLink, "link: "+b+" (")
	expectLeak(t, s, KindLink, "link: "+br+" (")
	run(t, "ip", "link", "delete", a)
	run(t, "ip", "link", "delete", br)
	expectClean(t, s, "blc"+id)
}

func TestNftTableLeak(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft(8)")
	}
	// Not berth-*: daemons on this host own those.
	name := fmt.Sprintf("leakcheck-%d", os.Getpid())
	s := take(t, InProcess)
	for _, fam := range []string{"inet", "bridge"} {
		run(t, "nft", "add", "table", fam, name)
		defer exec.Command("nft", "delete", "table", fam, name).Run()
	}
	expectLeak(t, s, KindNft, "nftables: table inet "+name)
	expectLeak(t, s, KindNft, "nftables: table bridge "+name)
	run(t, "nft", "delete", "table", "inet", name)
	run(t, "nft", "delete", "table", "bridge", name)
	expectClean(t, s, name)
}

func TestChildProcessLeak(t *testing.T) {
	s := take(t, InProcess)
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	expectLeak(t, s, KindProcess, fmt.Sprintf("pid %d ", cmd.Process.Pid))
	cmd.Process.Kill()
	cmd.Wait()
	expectClean(t, s, fmt.Sprintf("pid %d ", cmd.Process.Pid))
}

// startOrphan starts script in sh whose parent exits at once, so that the
// script is re-parented (to PID 1, or the nearest subreaper). It returns the
// orphan's pid, which leads its own process group.
func startOrphan(t *testing.T, script string) int {
	t.Helper()
	out, err := exec.Command("sh", "-c", `setsid sh -c '`+script+`' </dev/null >/dev/null 2>&1 & echo $!`).Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killGroup(pid) })
	// setsid may fork; wait until the script runs as its own session leader.
	time.Sleep(200 * time.Millisecond)
	return pid
}

// killGroup kills the process group that the orphan we started leads.
func killGroup(pid int) {
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid > 1 && pgid != syscall.Getpgrp() {
		syscall.Kill(-pgid, syscall.SIGKILL)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

func TestOrphanProcessLeak(t *testing.T) {
	s := take(t, InProcess)
	pid := startOrphan(t, `sleep 60; : berth-leakcheck-orphan`)
	expectLeak(t, s, KindProcess, "berth-leakcheck-orphan")
	killGroup(pid)
	expectClean(t, s, "berth-leakcheck-orphan")
}

func TestHostModeFlagsNewChildOfInit(t *testing.T) {
	s := take(t, Host)
	pid := startOrphan(t, `sleep 61`)
	p, err := readProc(pid)
	if err != nil {
		t.Fatal(err)
	}
	if p.PPID != 1 {
		t.Skipf("orphan was re-parented to %d, not PID 1 (a subreaper is in the way)", p.PPID)
	}
	expectLeak(t, s, KindProcess, fmt.Sprintf("pid %d ppid 1", pid))
	killGroup(pid)
	expectClean(t, s, fmt.Sprintf("pid %d ", pid))
}

func TestIgnore(t *testing.T) {
	s := take(t, InProcess)
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	expectLeak(t, s, KindProcess, "sleep 60")
	s.Ignore = mustRegexp(t, `sleep 60`)
	if leaks, err := s.Leaks(); err != nil || len(leaks) != 0 {
		t.Fatalf("with Ignore: %v %v", leaks, err)
	}
}

func TestSaveLoad(t *testing.T) {
	s := take(t, Host)
	file := filepath.Join(t.TempDir(), "snap.json")
	if err := s.Save(file); err != nil {
		t.Fatal(err)
	}
	l, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if l.Summary() != s.Summary() || l.Mode != Host {
		t.Fatalf("loaded %s (%s), saved %s", l.Summary(), l.Mode, s.Summary())
	}
	if len(s.Mounts) == 0 || len(s.Procs) == 0 || len(s.Links) == 0 {
		t.Fatalf("implausible snapshot: %s", s.Summary())
	}
}

func TestParseMountinfo(t *testing.T) {
	in := "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n" +
		"4 3 0:4 net:[4026532290] /run/netns/x rw shared:5 - nsfs nsfs rw\n"
	ms, err := parseMountinfo([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/mnt/with space ext3 /dev/root root=/mnt1", "/run/netns/x nsfs nsfs root=net:[4026532290]"}
	for i, m := range ms {
		if m.String() != want[i] {
			t.Errorf("line %d: %q, want %q", i, m.String(), want[i])
		}
	}
	if _, err := parseMountinfo([]byte("garbage\n")); err == nil {
		t.Error("bad line accepted")
	}
}

func TestNewItemsCountsDuplicates(t *testing.T) {
	got := newItems([]string{"a", "b", "b"}, []string{"b", "a", "b", "b", "c"})
	if strings.Join(got, ",") != "b,c" {
		t.Fatalf("got %v", got)
	}
}

func mustRegexp(t *testing.T, s string) *regexp.Regexp {
	t.Helper()
	re, err := regexp.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return re
}
