package command_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"berth.dev/berth/internal/testutil"
)

// TestCpThroughput (BERTH_BENCH_CP=<MiB>, run by bench/cp.sh) times docker
// cp of one file of that size into and out of a running container, with
// docker's CLI against dockerd and berth, and berth's CLI against berth.
// It prints medians of 5 runs; it checks nothing but that the copies work.
func TestCpThroughput(t *testing.T) {
	var mib int
	if _, err := fmt.Sscan(os.Getenv("BERTH_BENCH_CP"), &mib); err != nil || mib <= 0 {
		t.Skip("a benchmark: set BERTH_BENCH_CP=<MiB>")
	}
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	src := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for range mib {
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	median := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			docker := func(args ...string) result { return run(t, nil, dockerCLI, d.host, args...) }
			if r := docker("load", "-i", one); r.code != 0 {
				t.Fatalf("load: %s", r)
			}
			t.Cleanup(func() { docker("rm", "-f", "cpb") })
			if r := docker("run", "-d", "--name", "cpb", "berthtest/one:v1", "sleep", "1000"); r.code != 0 {
				t.Fatalf("run: %s", r)
			}
			clis := []string{dockerCLI}
			if dd.name == "berth" {
				clis = append(clis, bin)
			}
			for _, cli := range clis {
				var in, out []time.Duration
				for i := range 5 {
					start := time.Now()
					if r := run(t, nil, cli, d.host, "cp", src, "cpb:/tmp/big"); r.code != 0 {
						t.Fatalf("cp in: %s", r)
					}
					in = append(in, time.Since(start))
					dst := filepath.Join(t.TempDir(), fmt.Sprint(i))
					start = time.Now()
					if r := run(t, nil, cli, d.host, "cp", "cpb:/tmp/big", dst); r.code != 0 {
						t.Fatalf("cp out: %s", r)
					}
					out = append(out, time.Since(start))
					os.Remove(dst)
				}
				fmt.Printf("CP daemon=%s cli=%s mib=%d in=%.3fs out=%.3fs\n", dd.name, filepath.Base(cli), mib, median(in).Seconds(), median(out).Seconds())
			}
		})
	}
}
