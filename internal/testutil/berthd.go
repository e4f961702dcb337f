package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
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
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
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
