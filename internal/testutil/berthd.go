package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
)

// StartBerthd runs `berth daemon` (with extra arguments) on fresh roots
// under a test directory, waits until it answers /_ping and returns its
// host (unix://...). The daemon is stopped when the test ends; its output
// is in the test's failure messages.
func StartBerthd(t *testing.T, extra ...string) string {
	t.Helper()
	RequireRoot(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "berth.sock")
	cfg := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var log LockedBuffer
	cmd := exec.Command(BerthBinary(t), "daemon", "-H", "unix://"+sock, "--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"), "--config-file", cfg, "--bridge", BridgeName())
	cmd.Args = append(cmd.Args, extra...)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { terminate(cmd.Process, done, 30*time.Second) })
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	defer hc.CloseIdleConnections()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-done:
			t.Fatalf("berth daemon exited:\n%s", log.String())
		default:
		}
		if resp, err := hc.Get("http://berth/_ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "unix://" + sock
			}
		}
	}
	t.Fatalf("berth daemon did not answer:\n%s", log.String())
	return ""
}

// BridgeName is a default bridge name of its own for a test's daemon
// (--bridge): daemons of other tests and other engineers' runs on this
// host must not share one.
func BridgeName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "bt" + hex.EncodeToString(b[:])
}

// BerthDaemon is a `berth daemon` for benches, beside a Dockerd: on fresh
// roots under a directory of its own, optionally in a new network
// namespace.
type BerthDaemon struct {
	Host string // for docker -H
	cmd  *exec.Cmd
	done chan struct{}
	dir  string
}

// StartBerthDaemon runs bin's `berth daemon` with its state in a new
// directory under parent and waits until it answers. With netns it runs in
// a new network namespace, its loopback up, as StartDockerdNetns does.
func StartBerthDaemon(bin, parent string, netns bool) (*BerthDaemon, error) {
	dir, err := os.MkdirTemp(parent, "berth-daemon-")
	if err != nil {
		return nil, err
	}
	b := &BerthDaemon{Host: "unix://" + filepath.Join(dir, "berth.sock"), dir: dir, done: make(chan struct{})}
	cfg := filepath.Join(dir, "daemon.json")
	logFile := filepath.Join(dir, "berthd.log")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logf, err := os.Create(logFile)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logf.Close()
	b.cmd = exec.Command(bin, "daemon", "-H", b.Host, "--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"), "--config-file", cfg)
	if netns {
		b.cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	}
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	if err := b.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	fail := func(format string, args ...any) (*BerthDaemon, error) {
		log, _ := os.ReadFile(logFile)
		b.Stop()
		return nil, fmt.Errorf(format+": %s", append(args, tail(string(log), 40))...)
	}
	if netns {
		if out, err := exec.Command("nsenter", "--net="+b.Netns(), "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			return fail("loopback up in berth's namespace: %v: %s", err, out)
		}
	}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-b.done:
			return fail("berth daemon exited")
		default:
		}
		if exec.Command("docker", "-H", b.Host, "version").Run() == nil {
			return b, nil
		}
	}
	return fail("berth daemon did not answer in 60s")
}

// Netns is the daemon's network namespace (/proc/PID/ns/net).
func (b *BerthDaemon) Netns() string { return fmt.Sprintf("/proc/%d/ns/net", b.cmd.Process.Pid) }

// Stop ends the daemon and removes its directory, unmounting what a daemon
// that died mid-way left there.
func (b *BerthDaemon) Stop() error {
	terminate(b.cmd.Process, b.done, 30*time.Second)
	mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(b.dir))
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mounts[i].Mountpoint, syscall.MNT_DETACH)
	}
	return os.RemoveAll(b.dir)
}
