package command_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"berth.dev/berth/internal/testutil"
)

// TestHealthSameAsDockerd runs the same health-checked containers on
// dockerd and on berth (made with the docker CLI) and compares what the
// berth CLI shows of them, byte for byte between the two daemons: ps's
// health filter and status, the health in inspect, health_status events,
// and a bad filter's error.
func TestHealthSameAsDockerd(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	cases := [][]string{
		{"ps", "--filter", "health=healthy", "--format", "{{.Names}}"},
		{"ps", "--filter", "health=unhealthy", "--format", "{{.Names}}"},
		{"ps", "--filter", "health=starting", "--format", "{{.Names}}"},
		{"ps", "--filter", "health=none", "--format", "{{.Names}}"},
		{"ps", "--filter", "health=healthy", "--filter", "health=none", "--format", "{{.Names}}"},
		{"ps", "--filter", "health=bogus"},
		{"ps", "--format", "{{.Names}} {{.Status}}"},
		{"inspect", "-f", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", "ok"},
		{"inspect", "-f", "{{.State.Health.Status}} {{with index .State.Health.Log 0}}{{.ExitCode}} {{.Output}}{{end}}", "bad"},
		{"inspect", "-f", "{{.State.Health.Status}} {{with index .State.Health.Log 0}}{{.ExitCode}} {{.Output}}{{end}}", "slow"},
		{"inspect", "-f", "{{json .State.Health}} {{json .Config.Healthcheck}}", "off"},
		{"inspect", "-f", "{{json .State.Health}}", "plain"},
		{"inspect", "-f", "{{json .Config.Healthcheck}}", "ok", "bad", "slow"},
	}
	got := map[string][]string{}
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			berth := func(args ...string) result { return run(t, nil, bin, d.host, args...) }
			docker := func(args ...string) result { return run(t, nil, dockerCLI, d.host, args...) }
			if r := berth("load", "-i", one); r.code != 0 {
				t.Fatalf("load: %s", r)
			}
			names := []string{"ok", "bad", "slow", "off", "plain"}
			t.Cleanup(func() { docker(append([]string{"rm", "-f"}, names...)...) })
			since := time.Now()
			for _, args := range [][]string{
				{"--name", "ok", "--health-cmd", "echo fine", "--health-interval", "1s"},
				{"--name", "bad", "--health-cmd", "echo broken; exit 1", "--health-interval", "1s", "--health-retries", "1"},
				{"--name", "slow", "--health-cmd", "sleep 30", "--health-interval", "1s", "--health-timeout", "1s", "--health-retries", "1"},
				{"--name", "off", "--no-healthcheck"},
				{"--name", "plain"},
			} {
				if r := docker(append(append([]string{"run", "-d"}, args...), "berthtest/one:v1", "sleep", "100")...); r.code != 0 {
					t.Fatalf("docker run %v: %s", args, r)
				}
			}
			for name, want := range map[string]string{"ok": "healthy", "bad": "unhealthy", "slow": "unhealthy"} {
				deadline := time.Now().Add(30 * time.Second)
				for {
					r := berth("inspect", "-f", "{{.State.Health.Status}}", name)
					if strings.TrimSpace(r.out) == want {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s never %s: %s", name, want, r)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			upFor := regexp.MustCompile(`Up [^(\n]*`)
			var outs []string
			for _, args := range cases {
				r := berth(args...)
				out := upFor.ReplaceAllString(sortedLines(r.out), "Up T ")
				outs = append(outs, strings.Join(args, " ")+"\n"+out+"\nstderr: "+r.err+"\nexit "+strconv.Itoa(r.code)+"\n")
			}
			r := berth("events", "--since", stamp(since), "--until", stamp(time.Now()), "--filter", "event=health_status",
				"--format", "{{.Action}} {{.Actor.Attributes.name}}")
			outs = append(outs, "events\n"+sortedLines(r.out))
			got[dd.name] = outs
		})
	}
	b, k := got["berth"], got["dockerd"]
	if len(b) == 0 || len(k) == 0 {
		return // a daemon was skipped
	}
	for i := range b {
		if b[i] != k[i] {
			t.Errorf("berth and dockerd differ\nberth:\n%s\ndockerd:\n%s", b[i], k[i])
		}
	}
}
