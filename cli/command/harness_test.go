package command_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

const dockerCLI = "/usr/local/bin/docker"

// daemon is one daemon the CLI is tested against.
type daemon struct {
	name string
	host string
}

// result is one CLI run.
type result struct {
	out, err string
	code     int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
}

func run(t *testing.T, stdin []byte, bin, host string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-H", host}, args...)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Env = append(os.Environ(), "TZ=UTC")
	err := cmd.Run()
	r := result{out: out.String(), err: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return r
}

// startBerthd runs `berth daemon` on fresh roots under a test directory.
func startBerthd(t *testing.T) daemon { return startBerthdArgs(t) }

// startBerthdArgs is startBerthd with more daemon arguments.
func startBerthdArgs(t *testing.T, extra ...string) daemon {
	t.Helper()
	return daemon{name: "berth", host: testutil.StartBerthd(t, extra...)}
}

func startDockerd(t *testing.T) daemon {
	t.Helper()
	// Under the system's temp dir: containerd's socket path, under a
	// subtest's TempDir, would pass the 108 bytes a unix address may have.
	d, err := testutil.StartDockerd("")
	if err != nil {
		t.Skipf("no docker daemon: %v", err)
	}
	t.Cleanup(func() { d.Stop() })
	return daemon{name: "dockerd", host: d.Host}
}

// images writes two image archives: berthtest/one:v1 (busybox) and
// berthtest/two:latest (busybox and a second layer), and returns their
// paths.
func images(t *testing.T) (one, two string) {
	t.Helper()
	dir := t.TempDir()
	bb := testutil.BusyboxRootfs(t)
	extra := filepath.Join(dir, "extra")
	if err := os.MkdirAll(filepath.Join(extra, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(extra, "etc", "berth-test"), bytes.Repeat([]byte("x"), 12345), 0o644); err != nil {
		t.Fatal(err)
	}
	one, two = filepath.Join(dir, "one.tar"), filepath.Join(dir, "two.tar")
	if _, err := testutil.DockerArchive(one, []string{"berthtest/one:v1"}, []string{"/bin/sh"}, bb); err != nil {
		t.Fatal(err)
	}
	if _, err := testutil.DockerArchive(two, []string{"berthtest/two:latest"}, []string{"/bin/true"}, bb, extra); err != nil {
		t.Fatal(err)
	}
	return one, two
}

func requireTools(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	if _, err := os.Stat(dockerCLI); err != nil {
		t.Skipf("docker CLI not at %s", dockerCLI)
	}
}

// daemons are the daemons every comparison runs against.
var daemons = []struct {
	name  string
	start func(*testing.T) daemon
}{{"dockerd", startDockerd}, {"berth", startBerthd}}

// sameOnBoth compares the outputs each step gave against dockerd and
// against berth daemon, step by step; false when one daemon did not run.
func sameOnBoth(t *testing.T, got map[string][]string) bool {
	t.Helper()
	if len(got) != 2 {
		return false
	}
	for i := range got["dockerd"] {
		if got["dockerd"][i] != got["berth"][i] {
			t.Errorf("dockerd:\n%s\nberth:\n%s", got["dockerd"][i], got["berth"][i])
		}
	}
	return true
}
