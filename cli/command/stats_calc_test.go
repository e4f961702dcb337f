package command

import (
	"testing"

	"github.com/moby/moby/api/types/container"
)

// TestStatsRow checks the figures of one sample against what docker's CLI
// prints for it: CPU % from the deltas times the CPUs, memory less the
// inactive file cache, block I/O by operation, network summed.
func TestStatsRow(t *testing.T) {
	v := &container.StatsResponse{ID: "0123456789abcdef0123", Name: "/web"}
	v.CPUStats.CPUUsage.TotalUsage, v.CPUStats.SystemUsage = 3_000_000_000, 12_000_000_000
	v.CPUStats.CPUUsage.PercpuUsage = []uint64{1, 2, 3, 4} // online_cpus unset: the per-CPU list counts
	v.PreCPUStats.CPUUsage.TotalUsage, v.PreCPUStats.SystemUsage = 2_000_000_000, 8_000_000_000
	v.MemoryStats = container.MemoryStats{Usage: 10 << 20, Limit: 1 << 30,
		Stats: map[string]uint64{"total_inactive_file": 2 << 20, "inactive_file": 1 << 20}}
	v.BlkioStats.IoServiceBytesRecursive = []container.BlkioStatEntry{{Op: "Read", Value: 1500}, {Op: "Write", Value: 2_000_000}, {Op: "Total", Value: 2_001_500}, {Op: "read", Value: 500}}
	v.Networks = map[string]container.NetworkStats{"eth0": {RxBytes: 1000, TxBytes: 10}, "eth1": {RxBytes: 24, TxBytes: 0}}
	v.PidsStats.Current = 7
	r := statsRow{e: entryOf(v), container: "web", trunc: true}
	for got, want := range map[string]string{
		r.CPUPerc(): "100.00%", r.MemUsage(): "8MiB / 1GiB", r.MemPerc(): "0.78%",
		r.BlockIO(): "2kB / 2MB", r.NetIO(): "1.02kB / 10B", r.PIDs(): "7", r.ID(): "0123456789ab", r.Name(): "web",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	// v2: no total_ keys, inactive_file is left out.
	v.MemoryStats.Stats = map[string]uint64{"inactive_file": 1 << 20}
	if got := (statsRow{e: entryOf(v)}).MemUsage(); got != "9MiB / 1GiB" {
		t.Errorf("v2 memory: %q", got)
	}
	// A first sample (no precpu of its own) and a failed one.
	if got := (statsRow{e: entryOf(&container.StatsResponse{})}).CPUPerc(); got != "0.00%" {
		t.Errorf("empty sample CPU: %q", got)
	}
	inv := statsRow{invalid: true}
	if inv.CPUPerc() != "--" || inv.MemUsage() != "-- / --" || inv.PIDs() != "--" || inv.Name() != "--" {
		t.Errorf("invalid row: %q %q %q %q", inv.CPUPerc(), inv.MemUsage(), inv.PIDs(), inv.Name())
	}
}
