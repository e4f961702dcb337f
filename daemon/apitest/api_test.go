package apitest

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRawAPI checks what curl sees: _ping, version prefixes, version
// bounds, unknown routes, bad input and the error body.
func TestRawAPI(t *testing.T) {
	d := newDaemon(t)
	d.start()

	head := d.curl("-I", "http://berth/_ping")
	mustContain(t, "HEAD /_ping", head, "HTTP/1.1 200 OK", "Api-Version: 1.56", "Builder-Version: ", "Docker-Experimental: false",
		"Ostype: linux", "Server: Berth/", "Content-Length: 0")
	mustContain(t, "GET /_ping", d.curl("-i", "http://berth/_ping"), "Api-Version: 1.56", "\r\n\r\nOK")

	for _, p := range []string{"/version", "/v1.24/version", "/v1.50/version", "/v1.56/version"} {
		var v struct{ ApiVersion, MinAPIVersion, Os string }
		if err := json.Unmarshal([]byte(d.curl("http://berth"+p)), &v); err != nil || v.ApiVersion != "1.56" || v.MinAPIVersion != "1.24" || v.Os != "linux" {
			t.Fatalf("GET %s: %+v %v", p, v, err)
		}
	}
	out := d.curl("-i", "http://berth/v1.23/version")
	mustContain(t, "too old", out, "400 Bad Request",
		`{"message":"client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"}`)
	out = d.curl("-i", "http://berth/v1.57/_ping")
	mustContain(t, "too new", out, "400 Bad Request", `{"message":"client version 1.57 is too new. Maximum supported API version is 1.56"}`)

	out = d.curl("-i", "http://berth/v1.50/no/such/route")
	mustContain(t, "unknown route", out, "404 Not Found", "Content-Type: application/json", `{"message":"page not found"}`)
	out = d.curl("-i", "-X", "PUT", "http://berth/version")
	mustContain(t, "wrong method", out, "405 Method Not Allowed", `"message"`)

	out = d.curl("-i", `http://berth/images/json?filters={"dangling":`)
	mustContain(t, "malformed filters JSON", out, "400 Bad Request", `{"message":"invalid filter:`)
	out = d.curl("-i", `http://berth/images/json?filters={"nosuch":{"x":true}}`)
	mustContain(t, "unknown filter", out, "400 Bad Request", `invalid filter 'nosuch'`)
	out = d.curl("-i", "-X", "POST", "--data-binary", "not a tar", "http://berth/images/load")
	mustContain(t, "load of garbage", out, "400 Bad Request", `"message"`)
	out = d.curl("-i", "http://berth/images/nosuch/json")
	mustContain(t, "missing image", out, "404 Not Found", `"message"`)
	out = d.curl("-i", "http://berth/images/get?names=nosuch")
	mustContain(t, "save of a missing image", out, "404 Not Found", "application/json")
	out = d.curl("-i", "-X", "POST", "http://berth/images/create?fromImage=Bad_Name&tag=latest")
	mustContain(t, "pull of a bad name", out, "400 Bad Request", "invalid reference format")
	out = d.curl("-i", "-X", "POST", "http://berth/images/create?fromImage=127.0.0.1:1/busybox&tag=latest")
	mustContain(t, "pull from nowhere", out, "503 Service Unavailable", "cannot connect")
	out = d.curl("-i", "-X", "POST", "-H", "X-Registry-Auth: %%%", "http://berth/images/create?fromImage=127.0.0.1:1/busybox&tag=latest")
	mustContain(t, "pull with a bad X-Registry-Auth", out, "400 Bad Request", "invalid X-Registry-Auth header")
	out = d.curl("-i", "-X", "POST", "http://berth/images/nosuch/tag?repo=x")
	mustContain(t, "tag of a missing image", out, "404 Not Found")
	out = d.curl("-i", "-X", "DELETE", "http://berth/images/nosuch")
	mustContain(t, "rmi of a missing image", out, "404 Not Found")
	out = d.curl("-i", "http://berth/events?since=yesterday")
	mustContain(t, "bad since", out, "400 Bad Request", "invalid timestamp")

	// Events since a past time come from the ring; until ends the stream.
	start := time.Now()
	archive, id := smallArchive(t, "events", "ev:1")
	d.mustDocker("load", "-i", archive)
	d.mustDocker("tag", "ev:1", "ev:2")
	out = d.mustDocker("events", "--since", start.Add(-time.Second).Format(time.RFC3339Nano), "--until", time.Now().Add(time.Second).Format(time.RFC3339Nano),
		"--filter", "image="+id, "--format", "{{.Type}} {{.Action}} {{.Actor.ID}}")
	mustContain(t, "events since/until", out, "image load "+id, "image tag "+id)
	out = d.mustDocker("events", "--since", start.Add(-time.Second).Format(time.RFC3339Nano), "--until", time.Now().Format(time.RFC3339Nano),
		"--filter", "event=tag", "--format", "{{.Action}}")
	if strings.TrimSpace(out) != "tag" {
		t.Fatalf("event=tag filter: %q", out)
	}

	// A failed state-changing job shows as a daemon event.
	since := time.Now().Add(-time.Second).Format(time.RFC3339Nano)
	if _, err := d.docker("rmi", "no-such-image:1"); err == nil {
		t.Fatal("rmi of a missing image succeeded")
	}
	out = d.mustDocker("events", "--since", since, "--until", time.Now().Format(time.RFC3339Nano),
		"--filter", "type=daemon", "--format", "{{.Action}} {{.Actor.Attributes.job}}")
	mustContain(t, "job-failed event", out, "job-failed image.delete")

	// /system/df: the lists below 1.52, both at 1.52, summaries from 1.53.
	for v, want := range map[string][2]bool{"1.50": {true, false}, "1.52": {true, true}, "1.53": {false, true}} {
		var df map[string]json.RawMessage
		if err := json.Unmarshal([]byte(d.curl("http://berth/v"+v+"/system/df")), &df); err != nil {
			t.Fatal(err)
		}
		_, lists := df["Images"]
		_, summary := df["ImageUsage"]
		if lists != want[0] || summary != want[1] {
			t.Fatalf("system df at %s: lists %v summary %v", v, lists, summary)
		}
	}

	// The daemon still serves after all that.
	d.mustDocker("version")
}

// TestConfigFile: flags and daemon.json conflicting on a key, or a key the
// daemon does not know, stop it with dockerd's wording.
func TestConfigFile(t *testing.T) {
	d := newDaemon(t)
	if err := os.WriteFile(d.config, []byte(`{"log-level": "debug"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(d.bin, append(d.baseArgs(), "-H", "unix://"+d.sock, "--log-level", "warn")...).CombinedOutput()
	if err == nil {
		t.Fatal("daemon started with a conflicting flag and file")
	}
	mustContain(t, "conflict", string(out), "the following directives are specified both as a flag and in the configuration file: log-level: (from flag: warn, from file: debug)")

	if err := os.WriteFile(d.config, []byte(`{"log-levle": "debug"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(d.bin, append(d.baseArgs(), "-H", "unix://"+d.sock)...).CombinedOutput()
	if err == nil {
		t.Fatal("daemon started with an unknown key")
	}
	mustContain(t, "unknown key", string(out), "the following directives don't match any configuration option: log-levle")

	if err := os.WriteFile(d.config, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(d.bin, append(d.baseArgs(), "-H", "unix://"+d.sock, "--default-runtime", "nosuch")...).CombinedOutput()
	if err == nil {
		t.Fatal("daemon started with an unknown default runtime")
	}
	mustContain(t, "unknown runtime", string(out), `default runtime "nosuch" is not available`)

	// hosts and pidfile from the file are used.
	pidfile := filepath.Join(t.TempDir(), "berth.pid")
	cfg, _ := json.Marshal(map[string]any{"hosts": []string{"unix://" + d.sock}, "log-level": "info", "pidfile": pidfile})
	if err := os.WriteFile(d.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.run(exec.Command(d.bin, d.baseArgs()...)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(d.log.String(), "job start") {
		t.Fatal("debug lines at log level info")
	}
	if b, err := os.ReadFile(pidfile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(d.cmd.Process.Pid) {
		t.Fatalf("pid file: %q %v (pid %d)", b, err, d.cmd.Process.Pid)
	}

	// SIGHUP reloads the log level.
	cfg, _ = json.Marshal(map[string]any{"hosts": []string{"unix://" + d.sock}, "log-level": "debug", "pidfile": pidfile})
	if err := os.WriteFile(d.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reload", func() bool { return strings.Contains(d.log.String(), "reloaded configuration") })
	d.mustDocker("images")
	waitFor(t, "debug job lines", func() bool { return strings.Contains(d.log.String(), "job=image.list") })
	// SIGTERM while an events stream is open: the stream ends, the daemon
	// exits cleanly and its socket file goes with the listener.
	stream := exec.Command("curl", "-sS", "-N", "--unix-socket", d.sock, "http://berth/events")
	if err := stream.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "events listener", func() bool {
		return strings.TrimSpace(d.mustDocker("info", "--format", "{{.NEventsListener}}")) == "1"
	})
	d.stop()
	if err := stream.Wait(); err != nil {
		t.Fatalf("events stream at shutdown: %v", err)
	}
	mustContain(t, "shutdown log", d.log.String(), "shutting down")
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Fatalf("pid file left after shutdown: %v", err)
	}
	if err := d.wait(time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, d.log.String())
	}
	if _, err := os.Stat(d.sock); !os.IsNotExist(err) {
		t.Fatalf("socket left after shutdown: %v", err)
	}
}

// TestUnixSocket: a stale socket file is replaced, a live one refused;
// the socket is mode 0660.
func TestUnixSocket(t *testing.T) {
	d := newDaemon(t)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: d.sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	// A live listener: refused.
	err = d.startErr()
	if err == nil {
		t.Fatal("daemon took over a live socket")
	}
	mustContain(t, "live socket", err.Error(), "another daemon is listening on "+d.sock)
	l.SetUnlinkOnClose(false)
	l.Close()
	// Stale now: replaced. An explicit group that does not exist is an
	// error; one that does owns the socket.
	if err := d.startErr("--group", "no-such-group-berth"); err == nil || !strings.Contains(err.Error(), `socket group "no-such-group-berth"`) {
		t.Fatalf("missing explicit group: %v", err)
	}
	grp, err := user.LookupGroup("daemon")
	if err != nil {
		t.Skipf("no group daemon on this host: %v", err)
	}
	d.start("--group", "daemon")
	st, err := os.Stat(d.sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o660 || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket mode %v", st.Mode())
	}
	if gid := strconv.Itoa(int(st.Sys().(*syscall.Stat_t).Gid)); gid != grp.Gid {
		t.Fatalf("socket group %s, want %s", gid, grp.Gid)
	}
	d.mustDocker("version")
}

// TestSocketActivation starts the daemon the way systemd does: a listening
// socket as fd 3, LISTEN_FDS=1 and LISTEN_PID set to the daemon's pid.
func TestSocketActivation(t *testing.T) {
	d := newDaemon(t)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: d.sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close() // the dup in f keeps the socket listening
	defer f.Close()
	args := append(d.baseArgs(), "-H", "fd://")
	// exec keeps the shell's pid, so $$ is the daemon's.
	cmd := exec.Command("sh", append([]string{"-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=berth.socket exec "$@"`, "sh", d.bin}, args...)...)
	cmd.ExtraFiles = []*os.File{f}
	if err := d.run(cmd); err != nil {
		t.Fatal(err)
	}
	f.Close()
	d.mustDocker("version")
	mustContain(t, "daemon log", d.log.String(), "API listening")
	d.stop()
	os.Remove(d.sock)

	// By name: fd://berth.socket; an unknown name is refused.
	d2 := newDaemon(t)
	l2, err := net.ListenUnix("unix", &net.UnixAddr{Name: d2.sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	f2, err := l2.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	l2.SetUnlinkOnClose(false)
	l2.Close()
	run := func(host string) (*exec.Cmd, error) {
		// exec keeps the shell's pid, so $$ is the daemon's.
		args := append(d2.baseArgs(), "-H", host)
		c := exec.Command("sh", append([]string{"-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=api exec "$@"`, "sh", d2.bin}, args...)...)
		c.ExtraFiles = []*os.File{f2}
		return c, nil
	}
	c, _ := run("fd://other")
	out, err := c.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "fd://other: no such socket") {
		t.Fatalf("fd://other: %v %s", err, out)
	}
	c, _ = run("fd://api")
	if err := d2.run(c); err != nil {
		t.Fatal(err)
	}
	d2.mustDocker("info")
}
