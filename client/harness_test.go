package client_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"berth.dev/berth/client"
	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// startBerthd runs `berth daemon` on fresh roots and returns a client of
// it; the daemon is stopped when the test ends.
func startBerthd(t *testing.T) (*client.Client, string) {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "berth.sock")
	cfg := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var log testutil.LockedBuffer
	cmd := exec.Command(testutil.BerthBinary(t), "daemon", "-H", "unix://"+sock, "--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"), "--config-file", cfg)
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
	host := "unix://" + sock
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-done:
			t.Fatalf("berth daemon exited:\n%s", log.String())
		default:
		}
		cl, err := client.New(client.WithHost(host))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.ServerVersion(context.Background(), client.ServerVersionOptions{}); err == nil {
			t.Cleanup(func() { cl.Close() })
			return cl, host
		}
		cl.Close()
	}
	t.Fatalf("berth daemon did not answer:\n%s", log.String())
	return nil, ""
}
