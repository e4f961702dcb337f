package rootfs

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/berth/internal/testutil"
)

// BenchmarkPrepareDefaultSpec measures Prepare, Pivot and Finalize for the
// spec `runc spec` writes (read-only root, proc, /dev tmpfs, devpts, shm,
// mqueue, sysfs, cgroup, default devices, masked and read-only paths).
// Each iteration re-execs the test binary into fresh mount, pid, uts, ipc
// and net namespaces, as a container init would be; the child times the
// three calls itself, so process start-up is not counted. ns/op is
// Prepare+Pivot+Finalize; prepare-ns/op, pivot-ns/op and finalize-ns/op
// split it.
func BenchmarkPrepareDefaultSpec(b *testing.B) {
	testutil.RequireRoot(b)
	root := testutil.BusyboxRootfs(b)
	spec := defaultSpec(root)
	spec.Root.Readonly = true
	js, err := json.Marshal(spec)
	if err != nil {
		b.Fatal(err)
	}
	run := func() benchResult {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), envBenchChild+"="+string(js))
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET,
			Pdeathsig:  syscall.SIGKILL,
		}
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("child: %v: %s", err, out)
		}
		var r benchResult
		if err := json.Unmarshal(out, &r); err != nil {
			b.Fatalf("child report %q: %v", out, err)
		}
		if r.Err != "" {
			b.Fatalf("child: %s", r.Err)
		}
		return r
	}
	run() // warm up: the first run creates /dev, /proc, ... in the image
	var sum benchResult
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := run()
		sum.Prepare += r.Prepare
		sum.Pivot += r.Pivot
		sum.Finalize += r.Finalize
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(sum.Prepare+sum.Pivot+sum.Finalize)/n, "ns/op")
	b.ReportMetric(float64(sum.Prepare)/n, "prepare-ns/op")
	b.ReportMetric(float64(sum.Pivot)/n, "pivot-ns/op")
	b.ReportMetric(float64(sum.Finalize)/n, "finalize-ns/op")
}

const envBenchChild = "BERTH_ROOTFS_BENCH_CHILD"

type benchResult struct {
	Prepare, Pivot, Finalize time.Duration
	Err                      string
}

func init() {
	if js := os.Getenv(envBenchChild); js != "" {
		benchChild(js)
		os.Exit(0)
	}
}

// benchChild runs in the re-exec'd binary: it times the three calls and
// writes a benchResult on stdout.
func benchChild(js string) {
	var r benchResult
	defer func() { _ = json.NewEncoder(os.Stdout).Encode(&r) }()
	spec := new(specs.Spec)
	if err := json.Unmarshal([]byte(js), spec); err != nil {
		r.Err = err.Error()
		return
	}
	t0 := time.Now()
	if err := Prepare(spec, Options{}); err != nil {
		r.Err = fmt.Sprintf("prepare: %v", err)
		return
	}
	t1 := time.Now()
	if err := Pivot(spec.Root.Path, false); err != nil {
		r.Err = fmt.Sprintf("pivot: %v", err)
		return
	}
	t2 := time.Now()
	if err := Finalize(spec); err != nil {
		r.Err = fmt.Sprintf("finalize: %v", err)
		return
	}
	t3 := time.Now()
	r.Prepare, r.Pivot, r.Finalize = t1.Sub(t0), t2.Sub(t1), t3.Sub(t2)
}
