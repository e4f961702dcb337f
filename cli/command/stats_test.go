package command_test

import (
	"bufio"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"berth.dev/berth/internal/testutil"
)

// TestStatsSameAsDocker runs `stats` with berth and with docker against
// the same daemon (dockerd, berth): the deterministic columns (containers
// not running, pids, names, errors) must agree byte for byte, and across
// the two daemons too; the moving ones (CPU, memory) are parsed.
func TestStatsSameAsDocker(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	same := map[string]map[string]string{} // command -> daemon -> output
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			berth := func(args ...string) result { return run(t, nil, bin, d.host, args...) }
			docker := func(args ...string) result { return run(t, nil, dockerCLI, d.host, args...) }
			if r := berth("load", "-i", one); r.code != 0 {
				t.Fatalf("load: %s", r)
			}
			t.Cleanup(func() { docker("rm", "-f", "busy", "st1") })
			if r := docker("run", "-d", "--network", "none", "--name", "busy", "berthtest/one:v1", "sh", "-c", "while :; do :; done"); r.code != 0 {
				t.Fatalf("docker run busy: %s", r)
			}
			if r := docker("create", "--network", "none", "--name", "st1", "berthtest/one:v1", "true"); r.code != 0 {
				t.Fatalf("docker create st1: %s", r)
			}
			for _, args := range [][]string{
				{"stats", "--no-stream", "st1"},
				{"stats", "--no-stream", "--no-trunc", "st1"},
				{"stats", "--no-stream", "--format", "{{json .}}", "st1"},
				{"stats", "--no-stream", "--format", "table {{.Container}}\t{{.Name}}\t{{.PIDs}}\t{{.NetIO}}", "st1", "busy"},
				{"stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}"},
				{"stats", "--no-stream", "-a", "--format", "{{.Name}} {{.PIDs}} {{.MemPerc}}x"},
				{"container", "stats", "--no-stream", "--format", "{{.Name}}: {{.CPUPerc}}", "st1"},
				{"stats", "--no-stream", "nope"},
				{"stats", "--no-stream", "st1", "nope"},
			} {
				b, k := berth(args...), docker(args...)
				if b.out != k.out || b.code != k.code || b.err != k.err {
					t.Errorf("%v:\nberth:\n%s\ndocker:\n%s", args, b, k)
				}
				if id := strings.Fields(docker("inspect", "-f", "{{.Id}}", "st1").out); len(id) == 1 {
					key := strings.Join(args, " ")
					if same[key] == nil {
						same[key] = map[string]string{}
					}
					same[key][dd.name] = strings.ReplaceAll(strings.ReplaceAll(k.out+k.err, id[0], "ID"), id[0][:12], "ID")
				}
			}
			// The busy loop, as berth's CLI computes it.
			r := berth("stats", "--no-stream", "--format", "{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}", "busy")
			f := strings.Split(strings.TrimSpace(r.out), "|")
			if r.code != 0 || len(f) != 3 {
				t.Fatalf("berth stats busy: %s", r)
			}
			if cpu, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64); err != nil || cpu <= 0 {
				t.Errorf("CPU %% of a busy loop: %q", f[0])
			}
			if strings.HasPrefix(f[1], "0B ") || f[2] != "1" {
				t.Errorf("memory, pids of a busy loop: %q %q", f[1], f[2])
			}
			statsStream(t, bin, d.host)
		})
	}
	for cmd, outs := range same {
		if len(outs) == 2 && outs["berth"] != outs["dockerd"] {
			t.Errorf("%s differs between the daemons:\nberth:\n%s\ndockerd:\n%s", cmd, outs["berth"], outs["dockerd"])
		}
	}
}

// statsStream runs `berth stats busy` streaming into a pipe until it has
// drawn the table three times, each with the container's line, then
// interrupts it: it ends with 130, as every command SIGINT cancels.
func statsStream(t *testing.T, bin, host string) {
	t.Helper()
	cmd := exec.Command(bin, "-H", host, "stats", "--format", "table {{.Name}}\t{{.PIDs}}", "busy")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var lines []string
	for sc.Scan() && len(lines) < 6 {
		lines = append(lines, sc.Text())
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	go func() {
		for sc.Scan() {
		}
	}()
	err = cmd.Wait()
	want := []string{"NAME      PIDS", "busy      1"}
	for i, l := range lines {
		if l != want[i%2] {
			t.Errorf("streamed line %d: %q, want %q (all: %q)", i, l, want[i%2], lines)
		}
	}
	var ee *exec.ExitError
	if len(lines) < 6 || !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("stream: %d lines, exit %v", len(lines), err)
	}
}
