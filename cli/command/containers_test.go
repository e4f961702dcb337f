package command_test

import (
	"regexp"
	"strings"
	"testing"

	"berth.dev/berth/internal/testutil"
)

// times are the human durations ps prints, which move between two runs.
var times = regexp.MustCompile(`(Less than a second|About a minute|About an hour|\d+ (second|minute|hour)s?)`)

// aligned makes two tables comparable when a duration's width differs:
// durations become "T" and column gaps one tab.
func aligned(s string) string {
	s = times.ReplaceAllString(s, "T")
	return regexp.MustCompile(` {2,}`).ReplaceAllString(s, "\t")
}

// TestContainersSameAsDocker makes containers with the docker CLI and runs
// the container commands with berth and with docker against the same
// daemon: output, errors and exit codes must agree.
func TestContainersSameAsDocker(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			berth := func(args ...string) result { return run(t, nil, bin, d.host, args...) }
			docker := func(args ...string) result { return run(t, nil, dockerCLI, d.host, args...) }
			if r := berth("load", "-i", one); r.code != 0 {
				t.Fatalf("load: %s", r)
			}
			names := []string{"up1", "up2", "ex3", "ex0", "fl", "tt"}
			t.Cleanup(func() { docker(append([]string{"rm", "-f"}, names...)...) })
			for _, n := range names[:2] {
				if r := docker("run", "-d", "--name", n, "berthtest/one:v1", "sleep", "100"); r.code != 0 {
					t.Fatalf("docker run %s: %s", n, r)
				}
			}
			if r := docker("run", "--name", "ex3", "berthtest/one:v1", "sh", "-c", "echo out1; echo err1 >&2; echo out2; exit 3"); r.code != 3 {
				t.Fatalf("docker run ex3: %s", r)
			}
			if r := docker("run", "--name", "ex0", "berthtest/one:v1", "true"); r.code != 0 {
				t.Fatalf("docker run ex0: %s", r)
			}
			// A terminal's output is one stream, as the daemon sends it.
			if r := docker("run", "-d", "-t", "--name", "tt", "berthtest/one:v1", "sh", "-c", "echo x; echo y >&2"); r.code != 0 {
				t.Fatalf("docker run tt: %s", r)
			}
			if r := docker("wait", "tt"); r.code != 0 || r.out != "0\n" {
				t.Fatalf("docker wait tt: %s", r)
			}
			if r := berth("logs", "tt"); r.code != 0 || r.out != "x\r\ny\r\n" || r.err != "" {
				t.Errorf("logs of a tty container: %q %q", r.out, r.err)
			}
			if r := berth("logs", "ex3"); r.code != 0 || r.out != "out1\nout2\n" || r.err != "err1\n" {
				t.Errorf("logs ex3: streams not demultiplexed: %s", r)
			}
			cases := [][]string{
				{"ps"},
				{"ps", "-a"},
				{"container", "ls", "-a"},
				{"ps", "-q"},
				{"ps", "-aq"},
				{"ps", "-a", "-q", "--no-trunc"},
				{"ps", "-a", "--no-trunc"},
				{"ps", "-a", "--format", "{{.Names}} {{.Image}} {{.Command}} {{.State}}"},
				{"ps", "-a", "--format", `table {{.Names}}\t{{.Status}}\t{{.Ports}}`},
				{"ps", "-a", "--filter", "status=exited"},
				{"ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}"},
				{"ps", "--filter", "name=up1", "--format", "{{.Names}}"},
				{"ps", "-n", "2", "--format", "{{.Names}}"},
				{"ps", "-l", "--format", "{{.Names}}"},
				{"ps", "--filter", "bogus=1"},
				{"ps", "--filter", "status=bogus"},
				{"logs", "tt"},
				{"wait", "ex0", "nosuch", "ex3"},
				{"container", "inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "ex3"},
				{"ps", "-a", "--format", "json"},
				{"ps", "-a", "--format", "{{json .}}"},
				{"ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"},
				{"ps", "-a", "--format", "{{.Names}} {{.Label \"nope\"}} {{.Labels}} {{.Mounts}} {{.Networks}} {{.LocalVolumes}}"},
				{"ps", "-a", "--format", "{{.Nope}}"},
				{"logs", "ex3"},
				{"logs", "--tail", "1", "ex3"},
				{"logs", "-n", "2", "ex3"},
				{"logs", "nosuch"},
				{"logs", "--since", "2000-01-01T00:00:00Z", "ex3"},
				{"logs", "--until", "2000-01-01T00:00:00Z", "ex3"},
				{"logs", "--since", "bogus", "ex3"},
				{"inspect", "-f", "{{.State.Status}}", "up1", "ex3", "ex0"},
				{"container", "inspect", "-f", "{{.State.ExitCode}} {{.Name}}", "ex3"},
				{"inspect", "--type", "container", "-f", "{{.State.Running}}", "up2"},
				{"inspect", "-f", "{{.Id}}", "nosuch"},
				{"container", "inspect", "nosuch"},
				{"inspect", "--type", "container", "berthtest/one:v1"},
				{"wait", "ex3", "ex0"},
				{"wait", "nosuch"},
				{"start", "nosuch"},
				{"stop", "nosuch"},
				{"kill", "nosuch"},
				{"rm", "nosuch"},
				{"rm", "-f", "nosuch"},
				{"rm", "up1"},
				{"pause", "nosuch"},
				{"top", "nosuch"},
				{"rename", "nosuch", "x"},
				{"rename", "ex0", "ex3"},
				{"stop"},
				{"wait"},
			}
			for _, args := range cases {
				b, k := berth(args...), docker(args...)
				if aligned(b.out) != aligned(k.out) || b.code != k.code || normalize(b.err) != normalize(k.err) {
					t.Errorf("%s: berth and docker differ\nberth: %s\ndocker: %s", strings.Join(args, " "), b, k)
				}
			}
			// logs -t: the same lines with the same timestamps.
			if b, k := berth("logs", "-t", "ex3"), docker("logs", "-t", "ex3"); b.out != k.out || b.err != k.err || !strings.Contains(b.out, "Z out1\n") {
				t.Errorf("logs -t: berth and docker differ\nberth: %s\ndocker: %s", b, k)
			}
			// Changes: berth does them, docker sees them.
			for _, step := range []struct {
				args []string
				out  string
			}{
				{[]string{"stop", "-t", "1", "up1"}, "up1\n"},
				{[]string{"wait", "up1"}, "137\n"},
				{[]string{"start", "up1"}, "up1\n"},
				{[]string{"kill", "-s", "KILL", "up1"}, "up1\n"},
				{[]string{"restart", "-t", "0", "up1"}, "up1\n"},
				{[]string{"pause", "up2"}, "up2\n"},
				{[]string{"unpause", "up2"}, "up2\n"},
				{[]string{"rm", "ex0"}, "ex0\n"},
				{[]string{"rm", "-f", "up2"}, "up2\n"},
				{[]string{"rename", "ex3", "ex4"}, ""},
				{[]string{"rename", "ex4", "ex3"}, ""},
			} {
				if r := berth(step.args...); r.code != 0 || r.out != step.out {
					t.Errorf("berth %s: %s", strings.Join(step.args, " "), r)
				}
			}
			if r := docker("ps", "-a", "--format", "{{.Names}} {{.State}}"); r.code != 0 || sortedLines(r.out) != sortedLines("ex3 exited\ntt exited\nup1 running\n") {
				t.Errorf("after the changes, docker ps -a: %s", r)
			}
			// logs -f follows until the container ends.
			if r := docker("run", "-d", "--name", "fl", "berthtest/one:v1", "sh", "-c", "echo a; sleep 1; echo b >&2"); r.code != 0 {
				t.Fatalf("docker run fl: %s", r)
			}
			if r := berth("logs", "-f", "fl"); r.code != 0 || r.out != "a\n" || r.err != "b\n" {
				t.Errorf("logs -f: %s", r)
			}
			if r := berth("top", "up1"); r.code != 0 || !strings.Contains(r.out, "PID") || !strings.Contains(r.out, "sleep 100") {
				t.Errorf("top: %s", r)
			}
			if r := berth("container", "prune", "-f"); r.code != 0 || !strings.Contains(r.out, "Deleted Containers:\n") || !strings.Contains(r.out, "Total reclaimed space:") {
				t.Errorf("container prune: %s", r)
			}
			if r := docker("ps", "-a", "--format", "{{.Names}}"); r.code != 0 || r.out != "up1\n" {
				t.Errorf("after prune, docker ps -a: %s", r)
			}
		})
	}
}

// TestContainerHelpAliases: the help of a command that has a top-level
// twin names all its spellings, as docker's.
func TestContainerHelpAliases(t *testing.T) {
	bin := testutil.BerthBinary(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ps", "--help"}, "berth container ls, berth container list, berth container ps, berth ps"},
		{[]string{"container", "ls", "--help"}, "berth container ls, berth container list, berth container ps, berth ps"},
		{[]string{"rm", "--help"}, "berth container rm, berth container remove, berth rm"},
		{[]string{"container", "stop", "--help"}, "berth container stop, berth stop"},
	} {
		r := run(t, nil, bin, "unix:///nonexistent", c.args...)
		if r.code != 0 || !strings.Contains(r.out, "\n\nAliases:\n  "+c.want+"\n\n") {
			t.Errorf("%s: %s", strings.Join(c.args, " "), r)
		}
	}
	if r := run(t, nil, bin, "unix:///nonexistent", "container", "prune", "--help"); r.code != 0 || strings.Contains(r.out, "Aliases:") {
		t.Errorf("container prune --help: %s", r)
	}
}
