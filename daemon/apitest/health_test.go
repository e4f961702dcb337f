package apitest

import (
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"berth.dev/berth/internal/testutil"
)

// health is a container's health status as inspect shows it.
func (d *daemon) health(name string) string {
	d.t.Helper()
	return strings.TrimSpace(d.mustDocker("inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}", name))
}

func (d *daemon) waitHealth(name, want string) {
	d.t.Helper()
	waitFor(d.t, name+" "+want, func() bool { return d.health(name) == want })
}

// psNames is `docker ps` of the filters, as sorted names.
func (d *daemon) psNames(filters ...string) string {
	d.t.Helper()
	args := []string{"ps", "--format", "{{.Names}}"}
	for _, f := range filters {
		args = append(args, "--filter", f)
	}
	names := strings.Fields(d.mustDocker(args...))
	slices.Sort(names)
	return strings.Join(names, " ")
}

// TestContainerHealth runs health checks through the docker CLI: status
// in inspect and ps, health_status and probe events, ps's health filter,
// HEALTHCHECK from an image, --no-healthcheck, the start period, the
// timeout killing a probe, and the monitor resuming after a daemon restart.
func TestContainerHealth(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()

	ev := exec.Command(dockerCLI, "events", "--filter", "event=health_status", "--filter", "event=exec_start",
		"--format", "{{.Action}} {{.Actor.Attributes.name}}")
	ev.Env = append(dockerEnv(t), "DOCKER_HOST=unix://"+d.sock)
	var evOut testutil.LockedBuffer
	ev.Stdout = &evOut
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ev.Process.Kill(); _ = ev.Wait() })
	waitFor(t, "events listener", func() bool {
		return strings.TrimSpace(d.mustDocker("info", "--format", "{{.NEventsListener}}")) == "1"
	})

	// starting → unhealthy (two failures) → healthy once the file exists.
	d.mustDocker("run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ok", "--health-interval", "1s",
		"--health-retries", "2", "busybox", "sleep", "1000")
	d.waitHealth("hc", "unhealthy")
	out := d.mustDocker("inspect", "-f", "{{.State.Health.FailingStreak}} {{len .State.Health.Log}} {{(index .State.Health.Log 0).ExitCode}}", "hc")
	f := strings.Fields(out)
	if streak, _ := strconv.Atoi(f[0]); len(f) != 3 || streak < 2 || f[2] != "1" {
		t.Fatalf("unhealthy state: %q", out)
	}
	if st := d.mustDocker("ps", "--filter", "name=hc", "--format", "{{.Status}}"); !regexp.MustCompile(`^Up .* \(unhealthy\)\n$`).MatchString(st) {
		t.Fatalf("ps status: %q", st)
	}
	d.mustDocker("exec", "hc", "touch", "/tmp/ok")
	d.waitHealth("hc", "healthy")
	if st := d.mustDocker("ps", "--filter", "name=hc", "--format", "{{.Status}}"); !regexp.MustCompile(`^Up .* \(healthy\)\n$`).MatchString(st) {
		t.Fatalf("ps status: %q", st)
	}
	waitFor(t, "health events", func() bool { return strings.Contains(evOut.String(), "health_status: healthy hc") })
	evs := evOut.String()
	if i, j := strings.Index(evs, "health_status: unhealthy hc"), strings.Index(evs, "health_status: healthy hc"); i < 0 || i > j {
		t.Fatalf("health events out of order:\n%s", evs)
	}
	mustContain(t, "probe exec events", evs, "exec_start: /bin/sh -c test -f /tmp/ok hc\n")
	if strings.Contains(evs, "health_status: starting") {
		t.Fatalf("starting is not an event in docker:\n%s", evs)
	}

	// Failures inside the start period do not count: it stays starting,
	// probed every start interval (the interval is an hour).
	d.mustDocker("run", "-d", "--name", "slow", "--health-cmd", "false", "--health-interval", "1h", "--health-start-interval", "1s",
		"--health-start-period", "1h", "--health-retries", "1", "busybox", "sleep", "1000")
	waitFor(t, "probes of slow", func() bool {
		n, _ := strconv.Atoi(strings.TrimSpace(d.mustDocker("inspect", "-f", "{{len .State.Health.Log}}", "slow")))
		return n >= 2
	})
	if out := d.mustDocker("inspect", "-f", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", "slow"); out != "starting 0\n" {
		t.Fatalf("within the start period: %q", out)
	}
	if st := d.mustDocker("ps", "--filter", "name=slow", "--format", "{{.Status}}"); !strings.HasSuffix(st, " (health: starting)\n") {
		t.Fatalf("ps status: %q", st)
	}

	// A probe that outlasts the timeout is killed and fails.
	d.mustDocker("run", "-d", "--name", "tm", "--health-cmd", "sleep 77", "--health-timeout", "1s", "--health-interval", "1s",
		"--health-retries", "1", "busybox", "sleep", "1000")
	d.waitHealth("tm", "unhealthy")
	waitFor(t, "three probes of tm", func() bool {
		n, _ := strconv.Atoi(strings.TrimSpace(d.mustDocker("inspect", "-f", "{{len .State.Health.Log}}", "tm")))
		return n >= 3
	})
	if out := d.mustDocker("inspect", "-f", "{{with index .State.Health.Log 0}}{{.ExitCode}} {{.Output}}{{end}}", "tm"); out != "-1 Health check exceeded timeout (1s)\n" {
		t.Fatalf("timed-out probe: %q", out)
	}
	// Killed probes do not pile up: at most the one running now.
	if ps := d.mustDocker("exec", "tm", "ps", "-o", "args"); strings.Count(ps, "sleep 77") > 1 {
		t.Fatalf("timed-out probes still run:\n%s", ps)
	}

	// ps --filter health=, and a container without a health check is "none".
	d.mustDocker("run", "-d", "--name", "plain", "busybox", "sleep", "1000")
	for f, want := range map[string]string{"health=healthy": "hc", "health=unhealthy": "tm", "health=starting": "slow",
		"health=none": "plain"} {
		if got := d.psNames(f); got != want {
			t.Fatalf("ps --filter %s: %q, want %q", f, got, want)
		}
	}
	if got := d.psNames("health=healthy", "health=none"); got != "hc plain" {
		t.Fatalf("two health filters: %q", got)
	}
	if out, code := d.exitCode("ps", "--filter", "health=bogus"); code == 0 || !strings.Contains(out, "Unrecognised filter value for health: bogus") {
		t.Fatalf("bad health filter: %d %q", code, out)
	}

	// HEALTHCHECK from an image; the run's flags override its fields one
	// by one; --no-healthcheck turns it off.
	d.mustDocker("commit", "--change", "HEALTHCHECK --interval=1s --retries=1 CMD test -f /ready", "plain", "hcimg")
	if out := d.mustDocker("image", "inspect", "-f", "{{.Config.Healthcheck.Test}}", "hcimg"); out != "[CMD-SHELL test -f /ready]\n" {
		t.Fatalf("image healthcheck: %q", out)
	}
	d.mustDocker("run", "-d", "--name", "fromimg", "hcimg", "sleep", "1000")
	d.waitHealth("fromimg", "unhealthy")
	d.mustDocker("exec", "fromimg", "touch", "/ready")
	d.waitHealth("fromimg", "healthy")
	d.mustDocker("create", "--name", "merged", "--health-retries", "4", "hcimg", "sleep", "1000")
	if out := d.mustDocker("inspect", "-f", "{{.Config.Healthcheck.Test}} {{.Config.Healthcheck.Interval}} {{.Config.Healthcheck.Retries}}", "merged"); out != "[CMD-SHELL test -f /ready] 1s 4\n" {
		t.Fatalf("merged healthcheck: %q", out)
	}
	d.mustDocker("run", "-d", "--name", "nohc", "--no-healthcheck", "hcimg", "sleep", "1000")
	if h := d.health("nohc"); h != "none" {
		t.Fatalf("--no-healthcheck: %q", h)
	}
	if st := d.mustDocker("ps", "--filter", "name=nohc", "--format", "{{.Status}}"); strings.Contains(st, "(") {
		t.Fatalf("ps status of nohc: %q", st)
	}
	if got := d.psNames("health=none"); got != "nohc plain" {
		t.Fatalf("health=none: %q", got)
	}

	// A commit with a new configuration keeps the container's health check.
	mustContain(t, "commit with a config", d.curl("-i", "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Cmd":["sleep","1000"]}`,
		"http://berth/commit?container=hc&repo=hcimg2"), "HTTP/1.1 201")
	if out := d.mustDocker("image", "inspect", "-f", "{{.Config.Healthcheck.Test}} {{.Config.Healthcheck.Interval}} {{.Config.Cmd}}", "hcimg2"); out != "[CMD-SHELL test -f /tmp/ok] 1s [sleep 1000]\n" {
		t.Fatalf("healthcheck of a commit: %q", out)
	}

	// Bad values are 400s in dockerd's words; the daemon goes on.
	for body, msg := range map[string]string{
		`{"Image":"busybox","Healthcheck":{"Test":["CMD","true"],"Interval":1000}}`: "Interval in Healthcheck cannot be less than 1ms",
		`{"Image":"busybox","Healthcheck":{"Test":["CMD","true"],"Retries":-1}}`:    "Retries in Healthcheck cannot be negative",
		`{"Image":"busybox","Healthcheck":{"Test":"CMD"}}`:                          "",
	} {
		mustContain(t, "create "+body, d.curl("-i", "-X", "POST", "-H", "Content-Type: application/json", "-d", body,
			"http://berth/containers/create"), "HTTP/1.1 400", msg)
	}

	// Stopped: the last health stays in inspect; the monitor ends.
	d.mustDocker("stop", "-t", "0", "slow")
	if h := d.health("slow"); h != "starting" {
		t.Fatalf("health of a stopped container: %q", h)
	}
	lastProbe := func(name string) (int, string) {
		starts := strings.Fields(d.mustDocker("inspect", "-f", "{{range .State.Health.Log}}{{.Start.UnixNano}} {{end}}", name))
		if len(starts) == 0 {
			return 0, ""
		}
		return len(starts), starts[len(starts)-1]
	}
	// Started again: the log is kept, the status starts over, the monitor
	// runs again.
	n0, last0 := lastProbe("slow")
	d.mustDocker("start", "slow")
	if out := d.mustDocker("inspect", "-f", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", "slow"); out != "starting 0\n" {
		t.Fatalf("restarted: %q", out)
	}
	if n, _ := lastProbe("slow"); n < n0 || n0 == 0 {
		t.Fatalf("log after the restart: %d entries, had %d", n, n0)
	}
	waitFor(t, "probes after the restart", func() bool { _, last := lastProbe("slow"); return last != last0 })

	// The log keeps the last five results; a probe's output is cut at
	// 4096 bytes, with "..." after.
	waitFor(t, "five results of hc", func() bool { n, _ := lastProbe("hc"); return n == 5 })
	_, last := lastProbe("hc")
	waitFor(t, "another probe of hc", func() bool { _, l := lastProbe("hc"); return l != last })
	if n, _ := lastProbe("hc"); n != 5 {
		t.Fatalf("health log of %d results", n)
	}
	d.mustDocker("run", "-d", "--name", "big", "--health-cmd", "head -c 5000 /dev/zero | tr '\\0' x", "--health-interval", "1s",
		"busybox", "sleep", "1000")
	d.waitHealth("big", "healthy")
	out = d.mustDocker("inspect", "-f", "{{(index .State.Health.Log 0).Output}}", "big")
	if want := strings.Repeat("x", 4096) + "...\n"; out != want {
		t.Fatalf("long probe output: %d bytes, ends %q", len(out), out[max(0, len(out)-10):])
	}

	// The state is kept across a daemon restart (live restore) and the
	// monitor resumes: removing the file makes hc unhealthy again.
	d.kill9()
	d.start()
	if h := d.health("hc"); h != "healthy" {
		t.Fatalf("health after daemon restart: %q", h)
	}
	d.mustDocker("exec", "hc", "rm", "/tmp/ok")
	d.waitHealth("hc", "unhealthy")
}
