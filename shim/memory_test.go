package shim_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"berth.dev/berth/internal/testutil"
	"berth.dev/berth/shim"
)

// mem is /proc/<pid>/smaps_rollup in kB.
type mem struct{ rss, pss, pssAnon, pssFile int }

func readMem(t *testing.T, pid int) mem {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var m mem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		n, _ := strconv.Atoi(fs[1])
		switch fs[0] {
		case "Rss:":
			m.rss = n
		case "Pss:":
			m.pss = n
		case "Pss_Anon:":
			m.pssAnon = n
		case "Pss_File:":
			m.pssFile = n
		}
	}
	return m
}

func sumMem(t *testing.T, pids []int) mem {
	var s mem
	for _, p := range pids {
		m := readMem(t, p)
		s.rss += m.rss
		s.pss += m.pss
		s.pssAnon += m.pssAnon
		s.pssFile += m.pssFile
	}
	return s
}

func benchN() int {
	if n, err := strconv.Atoi(os.Getenv("BERTH_BENCH_N")); err == nil && n > 0 {
		return n
	}
	return 4
}

// report prints one line bench/shim.sh reads.
func report(t *testing.T, name string, n int, s mem) {
	t.Logf("MEM %s n=%d rss_kb=%d pss_kb=%d pss_anon_kb=%d pss_file_kb=%d", name, n, s.rss/n, s.pss/n, s.pssAnon/n, s.pssFile/n)
}

// TestMemory measures the shims of N running `sleep` containers: PSS per
// shim (the binary's pages are shared between them), and holds it under a
// bound so that a heavy dependency pulled into the shim shows up.
func TestMemory(t *testing.T) {
	n := benchN()
	var pids []int
	for i := 0; i < n; i++ {
		e := newEnv(t, berthRT, testutil.Spec("sleep", "1000"))
		e.opts.Log.Path = ""
		c := e.start()
		if err := c.Start(ctx(t), ""); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, c.Pid())
	}
	settle()
	s := sumMem(t, pids)
	report(t, "berth-shim", n, s)
	if per := s.pssAnon / n; per > 6<<10 {
		t.Errorf("a shim holds %d kB of anonymous memory", per)
	}
	if os.Getenv("BERTH_BENCH_DOCKER") == "1" {
		dockerShims(t, n)
	}
}

// settle waits for the shims' heap to be given back (they do it 300 ms
// after their last request).
func settle() { sleepMs(1500) }

func sleepMs(ms int) { syscall.Select(0, nil, nil, nil, &syscall.Timeval{Usec: int64(ms) * 1000}) }

// dockerShims measures containerd-shim-runc-v2 for n `docker run -d`
// containers on a private dockerd.
func dockerShims(t *testing.T, n int) {
	d, err := testutil.StartDockerd("")
	if err != nil {
		t.Skip(err)
	}
	defer d.Stop()
	work := t.TempDir()
	arch := filepath.Join(work, "busybox.tar")
	if _, err := testutil.DockerArchive(arch, []string{"berth-bench-busybox:latest"}, []string{"sh"}, testutil.BusyboxRootfs(t)); err != nil {
		t.Fatal(err)
	}
	if out, err := d.Docker("load", "-i", arch); err != nil {
		t.Fatal(out, err)
	}
	var ids []string
	defer func() {
		if len(ids) > 0 {
			d.Docker(append([]string{"rm", "-f"}, ids...)...)
		}
	}()
	for i := 0; i < n; i++ {
		out, err := d.Docker("run", "-d", "--network", "none", "berth-bench-busybox", "sleep", "1000")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strings.TrimSpace(out))
	}
	settle()
	var pids []int
	ms, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, m := range ms {
		b, _ := os.ReadFile(m)
		if strings.Contains(string(b), "containerd-shim-runc-v2") && strings.Contains(string(b), "berth-test") {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(m)))
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		t.Fatal("no containerd-shim-runc-v2 for our containers")
	}
	report(t, "containerd-shim-runc-v2", len(pids), sumMem(t, pids))
}

var _ = shim.StatusRunning
