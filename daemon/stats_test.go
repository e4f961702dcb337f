package daemon

import (
	"testing"

	"berth.dev/berth/runtime/cgroups"
)

func TestFromCgroupStats(t *testing.T) {
	st := &cgroups.Stats{}
	st.Memory.Usage = cgroups.MemoryEntry{Usage: 100, Max: 200, Limit: 300, Failcnt: 1}
	st.Memory.Raw = map[string]uint64{"cache": 1, "total_inactive_file": 2, "shmem": 3, "workingset_refault_anon": 4, "hierarchical_memory_limit": 5}
	st.CPU.Usage = cgroups.CPUUsage{Total: 10, Percpu: []uint64{4, 6}, Kernel: 1, User: 9}
	st.Pids = cgroups.Pids{Current: 2}
	v1 := fromCgroupStats(st, true)
	m := v1.MemoryStats
	if m.Usage != 100 || m.MaxUsage != 200 || m.Limit != 300 || m.Failcnt != 1 || len(m.Stats) != 3 ||
		m.Stats["cache"] != 1 || m.Stats["total_inactive_file"] != 2 || m.Stats["hierarchical_memory_limit"] != 5 {
		t.Errorf("v1 memory: %+v", m)
	}
	if c := v1.CPUStats.CPUUsage; c.TotalUsage != 10 || len(c.PercpuUsage) != 2 || c.UsageInKernelmode != 1 || c.UsageInUsermode != 9 {
		t.Errorf("cpu: %+v", c)
	}
	if v1.PidsStats.Current != 2 || v1.BlkioStats.IoServiceBytesRecursive == nil {
		t.Errorf("pids %+v, blkio %+v", v1.PidsStats, v1.BlkioStats)
	}
	// v2: memory.stat whole, no max_usage (v2 has none).
	v2 := fromCgroupStats(st, false)
	if len(v2.MemoryStats.Stats) != 5 || v2.MemoryStats.MaxUsage != 0 {
		t.Errorf("v2 memory: %+v", v2.MemoryStats)
	}
	if total, cpus := systemCPU(); total == 0 || cpus == 0 {
		t.Errorf("systemCPU: %d ns, %d CPUs", total, cpus)
	}
	if machineMemory() == 0 {
		t.Error("machineMemory: 0")
	}
}
