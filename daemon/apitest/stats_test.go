package apitest

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
)

// statsGet decodes one stats answer of the daemon.
func (d *daemon) statsGet(t *testing.T, query string) (*containertypes.StatsResponse, string) {
	t.Helper()
	resp, err := d.client().Get("http://berth/containers/" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", query, resp.StatusCode, b)
	}
	var s containertypes.StatsResponse
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("GET %s: %v\n%s", query, err, b)
	}
	return &s, string(b)
}

func TestContainerStats(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	id := strings.TrimSpace(d.mustDocker("run", "-d", "--name", "busy", "busybox", "sh", "-c", "while :; do :; done"))
	d.mustDocker("create", "--name", "idle", "busybox", "true")

	// The real docker CLI's one-shot table: a busy loop uses CPU, memory
	// and one pid.
	out := d.mustDocker("stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.PIDs}}|{{.BlockIO}}", "busy")
	f := strings.Split(strings.TrimSpace(out), "|")
	if len(f) != 6 || f[0] != "busy" {
		t.Fatalf("docker stats --format: %q", out)
	}
	if cpu, err := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64); err != nil || cpu <= 0 {
		t.Errorf("CPU %% of a busy loop: %q", f[1])
	}
	if strings.HasPrefix(f[2], "0B ") || !strings.Contains(f[2], " / ") {
		t.Errorf("memory of a running shell: %q", f[2])
	}
	if n, err := strconv.Atoi(f[4]); err != nil || n < 1 {
		t.Errorf("pids: %q", f[4])
	}
	// Without names: the running one only; with -a the created one too.
	out = d.mustDocker("stats", "--no-stream")
	mustContain(t, "docker stats --no-stream", out, "CONTAINER ID   NAME ", id[:12]+"   busy ")
	if strings.Contains(out, "idle") {
		t.Errorf("stats without -a shows a container that is not running:\n%s", out)
	}
	out = d.mustDocker("stats", "--no-stream", "-a")
	idle := false
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == "idle" {
			idle = strings.Join(f[2:], " ") == "0.00% 0B / 0B 0.00% 0B / 0B 0B / 0B 0"
		}
	}
	if !idle {
		t.Errorf("docker stats --no-stream -a, the created container's zeros:\n%s", out)
	}

	// stream=false: two reads a second apart, the first as precpu.
	s, raw := d.statsGet(t, "busy/stats?stream=false")
	if s.ID != id || s.Name != "/busy" || s.OSType != "linux" {
		t.Errorf("id/name/os_type: %q %q %q", s.ID, s.Name, s.OSType)
	}
	if s.Read.IsZero() || s.PreRead.IsZero() || !s.Read.After(s.PreRead) {
		t.Errorf("read %v preread %v", s.Read, s.PreRead)
	}
	cu, pcu := s.CPUStats.CPUUsage, s.PreCPUStats.CPUUsage
	if pcu.TotalUsage == 0 || cu.TotalUsage <= pcu.TotalUsage || s.CPUStats.SystemUsage <= s.PreCPUStats.SystemUsage ||
		s.CPUStats.OnlineCPUs == 0 || len(cu.PercpuUsage) == 0 || cu.UsageInUsermode == 0 {
		t.Errorf("cpu_stats %+v precpu_stats %+v", s.CPUStats, s.PreCPUStats)
	}
	if m := s.MemoryStats; m.Usage == 0 || m.Limit == 0 || m.MaxUsage < m.Usage {
		t.Errorf("memory_stats %+v", m)
	}
	if _, ok := s.MemoryStats.Stats["total_inactive_file"]; !ok {
		t.Errorf("memory_stats.stats without total_inactive_file (cgroup v1 host): %v", s.MemoryStats.Stats)
	}
	if s.PidsStats.Current != 1 {
		t.Errorf("pids_stats %+v", s.PidsStats)
	}
	mustContain(t, "running stats", raw, `"io_service_bytes_recursive":[`)

	// one-shot: a single read, no precpu.
	s, _ = d.statsGet(t, "busy/stats?stream=false&one-shot=true")
	if s.Read.IsZero() || !s.PreRead.IsZero() || s.PreCPUStats.CPUUsage.TotalUsage != 0 || s.CPUStats.CPUUsage.TotalUsage == 0 {
		t.Errorf("one-shot: read %v preread %v precpu %+v", s.Read, s.PreRead, s.PreCPUStats)
	}
	// os_type came with 1.52.
	resp, err := d.client().Get("http://berth/v1.41/containers/busy/stats?stream=0&one-shot=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "os_type") {
		t.Errorf("os_type at 1.41: %s", b)
	}

	// A container that is not running: dockerd's empty stats.
	s, raw = d.statsGet(t, "idle/stats?stream=false")
	if !s.Read.IsZero() || s.Name != "/idle" || s.CPUStats.CPUUsage.TotalUsage != 0 || s.PidsStats.Current != 0 {
		t.Errorf("stats of a created container: %s", raw)
	}
	mustContain(t, "stopped stats", raw, `"memory_stats":{}`, `"io_service_bytes_recursive":null`)

	// Errors, as dockerd's; the daemon keeps serving.
	out = d.curl("-i", "http://berth/containers/nope/stats?stream=false")
	mustContain(t, "missing container", out, "404 Not Found", `{"message":"No such container: nope"}`)
	out = d.curl("-i", "http://berth/containers/busy/stats?one-shot=true")
	mustContain(t, "stream with one-shot", out, "400 Bad Request", `{"message":"cannot have stream=true and one-shot=true"}`)
	out = d.curl("-i", "http://berth/containers/busy/stats?stream=false&one-shot=%zz")
	mustContain(t, "bad query", out, "400 Bad Request", `invalid URL escape`)
	out = d.curl("-i", "http://berth/containers/..%2F..%2Fetc/stats?stream=false")
	mustContain(t, "a path for a name", out, "404 Not Found")

	// A stream: a sample a second, each with the one before as pre.
	resp, err = d.client().Get("http://berth/containers/busy/stats")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(resp.Body)
	var prev *containertypes.StatsResponse
	for i := 0; i < 3; i++ {
		var cur containertypes.StatsResponse
		if err := dec.Decode(&cur); err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		if prev != nil && (!cur.PreRead.Equal(prev.Read) || cur.PreCPUStats.CPUUsage.TotalUsage != prev.CPUStats.CPUUsage.TotalUsage ||
			cur.CPUStats.CPUUsage.TotalUsage <= prev.CPUStats.CPUUsage.TotalUsage) {
			t.Errorf("sample %d: preread %v, previous read %v; precpu %d, previous %d, now %d", i, cur.PreRead, prev.Read,
				cur.PreCPUStats.CPUUsage.TotalUsage, prev.CPUStats.CPUUsage.TotalUsage, cur.CPUStats.CPUUsage.TotalUsage)
		}
		prev = &cur
	}
	resp.Body.Close() // the client goes away

	// A stream outlives a stop with empty samples and ends with a removal.
	resp, err = d.client().Get("http://berth/containers/busy/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec = json.NewDecoder(resp.Body)
	var first containertypes.StatsResponse
	if err := dec.Decode(&first); err != nil || first.Read.IsZero() {
		t.Fatalf("first sample: %v %+v", err, first)
	}
	d.mustDocker("kill", "busy")
	d.mustDocker("wait", "busy")
	for {
		var cur containertypes.StatsResponse
		if err := dec.Decode(&cur); err != nil {
			t.Fatalf("stream ended before a sample of the stopped container: %v", err)
		}
		if cur.Read.IsZero() {
			if cur.ID != id || cur.CPUStats.CPUUsage.TotalUsage != 0 {
				t.Errorf("sample after the stop: %+v", cur)
			}
			break
		}
	}
	d.mustDocker("rm", "busy")
	ended := make(chan error, 1)
	go func() {
		for {
			var cur containertypes.StatsResponse
			if err := dec.Decode(&cur); err != nil {
				ended <- err
				return
			}
		}
	}()
	select {
	case err := <-ended:
		if err != io.EOF {
			t.Errorf("stream end after rm: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("the stream of a removed container did not end")
	}
	d.mustDocker("version")

	// A stream ends at the daemon's shutdown rather than hold it.
	resp, err = d.client().Get("http://berth/containers/idle/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec = json.NewDecoder(resp.Body)
	var idleS containertypes.StatsResponse
	if err := dec.Decode(&idleS); err != nil || idleS.Name != "/idle" {
		t.Fatalf("stream of a created container: %v %+v", err, idleS)
	}
	d.stop()
	for dec.Decode(&idleS) == nil {
	}
	if log := d.log.String(); strings.Contains(log, "requests still running at shutdown were cut") {
		t.Errorf("a stats stream held the shutdown:\n%s", tail(log, 10))
	}
	d.start()
}

func TestContainerOOMKilled(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	since := strconv.FormatInt(time.Now().Unix(), 10)
	out, code := d.exitCode("run", "--name", "oom", "-m", "8m", "--memory-swap", "8m", "busybox", "sh", "-c", "x=aaaaaaaa; while :; do x=$x$x; done")
	if code != 137 {
		t.Fatalf("growing past -m 8m: exit %d: %s", code, out)
	}
	if got := strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "oom")); got != "true 137" {
		t.Errorf("OOMKilled, ExitCode: %q", got)
	}
	// A SIGKILL that is not the OOM killer's is not an OOM kill.
	d.mustDocker("run", "-d", "--name", "killed", "-m", "8m", "busybox", "sleep", "100")
	d.mustDocker("kill", "killed")
	if code := strings.TrimSpace(d.mustDocker("wait", "killed")); code != "137" {
		t.Fatalf("docker kill: exit %s", code)
	}
	if got := strings.TrimSpace(d.mustDocker("inspect", "-f", "{{.State.OOMKilled}}", "killed")); got != "false" {
		t.Errorf("OOMKilled after a plain SIGKILL: %q", got)
	}
	ev := d.mustDocker("events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "container=oom", "--format", "{{.Action}}")
	if !strings.Contains(ev, "oom\ndie\n") {
		t.Errorf("events of the OOM-killed container (oom before die):\n%s", ev)
	}
	if strings.Contains(d.mustDocker("events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "container=killed", "--format", "{{.Action}}"), "oom") {
		t.Errorf("oom event for a plain SIGKILL")
	}
}
