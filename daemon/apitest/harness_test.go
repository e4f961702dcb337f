package apitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth.dev/berth/internal/leakcheck"
	"berth.dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

const dockerCLI = "/usr/local/bin/docker"

// daemon is one `berth daemon` process.
type daemon struct {
	t        *testing.T
	bin      string
	dataRoot string
	execRoot string
	bridge   string // the default bridge, its own (testutil.BridgeName)
	sock     string
	config   string
	args     []string
	cmd      *exec.Cmd
	log      *testutil.LockedBuffer
	done     chan struct{}
	exitErr  error
	// dockerConfig, when set, is the CLI's config dir for every command
	// (else each gets a fresh one).
	dockerConfig string
}

// newDaemon prepares a daemon on fresh roots; start runs it.
func newDaemon(t *testing.T) *daemon {
	t.Helper()
	testutil.RequireRoot(t)
	if _, err := os.Stat(dockerCLI); err != nil {
		t.Skipf("docker CLI not installed at %s", dockerCLI)
	}
	dir := t.TempDir()
	d := &daemon{t: t, bin: testutil.BerthBinary(t), dataRoot: filepath.Join(dir, "data"),
		execRoot: filepath.Join(dir, "exec"), bridge: testutil.BridgeName(), sock: filepath.Join(dir, "berth.sock"), config: filepath.Join(dir, "daemon.json")}
	if err := os.WriteFile(d.config, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *daemon) baseArgs() []string {
	return []string{"daemon", "--data-root", d.dataRoot, "--exec-root", d.execRoot, "--config-file", d.config, "--bridge", d.bridge}
}

// start runs the daemon with -H unix://sock (unless args has -H) and waits
// until it answers /_ping.
func (d *daemon) start(args ...string) {
	d.t.Helper()
	if err := d.startErr(args...); err != nil {
		d.t.Fatal(err)
	}
}

func (d *daemon) startErr(args ...string) error {
	hasHost := false
	for _, a := range args {
		hasHost = hasHost || a == "-H" || strings.HasPrefix(a, "--host")
	}
	full := d.baseArgs()
	if !hasHost {
		full = append(full, "-H", "unix://"+d.sock)
	}
	full = append(full, args...)
	return d.run(exec.Command(d.bin, full...))
}

// run starts cmd as the daemon and waits for its socket to answer.
func (d *daemon) run(cmd *exec.Cmd) error {
	d.args = cmd.Args
	d.log = &testutil.LockedBuffer{}
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		return err
	}
	d.cmd, d.done = cmd, make(chan struct{})
	go func() { d.exitErr = cmd.Wait(); close(d.done) }()
	d.t.Cleanup(d.stop)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			return fmt.Errorf("daemon exited early (%v):\n%s", d.exitErr, d.log.String())
		default:
		}
		ping := d.client()
		ping.Timeout = 2 * time.Second // a listener that never answers is not ours
		if resp, err := ping.Get("http://berth/_ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("daemon did not answer /_ping within 60s:\n%s", d.log.String())
}

// client is an HTTP client over the daemon's unix socket.
func (d *daemon) client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
		}}}
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 30 s).
func (d *daemon) stop() {
	if d.cmd == nil {
		return
	}
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.t.Errorf("daemon pid %d ignored SIGTERM for 30s; killing it", d.cmd.Process.Pid)
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// kill9 kills the daemon with SIGKILL and waits.
func (d *daemon) kill9() {
	_ = d.cmd.Process.Kill()
	<-d.done
}

// wait waits for a daemon that should exit by itself.
func (d *daemon) wait(timeout time.Duration) error {
	select {
	case <-d.done:
		return d.exitErr
	case <-time.After(timeout):
		return errors.New("daemon still running")
	}
}

// docker runs the docker CLI against the daemon.
func (d *daemon) docker(args ...string) (string, error) {
	return d.dockerIn(nil, args...)
}

// cliTimeout bounds one CLI command: a hang fails its test with the
// CLI's goroutines (SIGQUIT) and the daemon's log instead of stalling the
// whole package until go test's timeout.
const cliTimeout = 3 * time.Minute

func (d *daemon) dockerIn(stdin []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerCLI, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Env = append(dockerEnv(d.t), "DOCKER_HOST=unix://"+d.sock)
	if d.dockerConfig != "" {
		cmd.Env = append(cmd.Env, "DOCKER_CONFIG="+d.dockerConfig)
	}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		d.t.Errorf("docker %s: still running after %v: stopped it\n%s\ndaemon log:\n%s", strings.Join(args, " "), cliTimeout, tail(string(out), 60), tail(d.log.String(), 30))
	}
	return string(out), err
}

// mustDocker runs docker and fails the test on error.
func (d *daemon) mustDocker(args ...string) string {
	d.t.Helper()
	out, err := d.docker(args...)
	if err != nil {
		d.t.Fatalf("docker %s: %v\n%s\ndaemon log:\n%s", strings.Join(args, " "), err, out, tail(d.log.String(), 30))
	}
	return out
}

// dockerEnv is a clean environment for the CLI: its own config dir, no
// DOCKER_* from the caller.
func dockerEnv(t *testing.T) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "DOCKER_") {
			env = append(env, e)
		}
	}
	return append(env, "DOCKER_CONFIG="+t.TempDir())
}

// curl runs curl over the daemon's socket and returns its output (with -i,
// headers and body).
func (d *daemon) curl(args ...string) string {
	d.t.Helper()
	out, err := exec.Command("curl", append([]string{"-sS", "-g", "--unix-socket", d.sock}, args...)...).CombinedOutput()
	if err != nil {
		d.t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// busyboxArchive writes a docker-archive of a busybox image tagged tags and
// returns its path and image ID.
func busyboxArchive(t *testing.T, tags ...string) (string, string) {
	t.Helper()
	rootfs := testutil.BusyboxRootfs(t)
	out := filepath.Join(t.TempDir(), "busybox.tar")
	id, err := testutil.DockerArchive(out, tags, []string{"sh"}, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	return out, id
}

// smallArchive is an image of one small layer (a file with content), tagged tags.
func smallArchive(t *testing.T, content string, tags ...string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "small.tar")
	id, err := testutil.DockerArchive(out, tags, []string{"/file"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	return out, id
}

func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Fatalf("%s: %q not in:\n%s", what, sub, s)
		}
	}
}
