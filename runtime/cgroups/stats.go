package cgroups

import "github.com/opencontainers/cgroups"

// Stats is the "data" of a `runc events --stats` event; the JSON tags
// match runc's so tools that read runc's output read berth's.
type Stats struct {
	CPU     CPU                `json:"cpu"`
	CPUSet  CPUSet             `json:"cpuset"`
	Memory  Memory             `json:"memory"`
	Pids    Pids               `json:"pids"`
	Blkio   Blkio              `json:"blkio"`
	Hugetlb map[string]Hugetlb `json:"hugetlb"`
}

// Hugetlb is per page size ("2MB").
type Hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// BlkioEntry is one line of a blkio/io stat file.
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// Blkio holds v1 blkio stats, or v2 io.stat mapped onto them.
type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []BlkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []BlkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []BlkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []BlkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []BlkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []BlkioEntry `json:"sectorsRecursive,omitempty"`
	PSI                     *PSIStats    `json:"psi,omitempty"`
}

// Pids is the pids controller's count and limit (0 = no limit).
type Pids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// Throttling is CFS bandwidth throttling.
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// CPUUsage is in nanoseconds.
type CPUUsage struct {
	Total        uint64   `json:"total,omitempty"`
	Percpu       []uint64 `json:"percpu,omitempty"`
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`
	Kernel       uint64   `json:"kernel"`
	User         uint64   `json:"user"`
}

// CPU is cpu/cpuacct usage and throttling.
type CPU struct {
	Usage      CPUUsage   `json:"usage,omitempty"`
	Throttling Throttling `json:"throttling,omitempty"`
	PSI        *PSIStats  `json:"psi,omitempty"`
}

// CPUSet is the v1 cpuset state.
type CPUSet struct {
	CPUs                  []uint16 `json:"cpus,omitempty"`
	CPUExclusive          uint64   `json:"cpu_exclusive"`
	Mems                  []uint16 `json:"mems,omitempty"`
	MemHardwall           uint64   `json:"mem_hardwall"`
	MemExclusive          uint64   `json:"mem_exclusive"`
	MemoryMigrate         uint64   `json:"memory_migrate"`
	MemorySpreadPage      uint64   `json:"memory_spread_page"`
	MemorySpreadSlab      uint64   `json:"memory_spread_slab"`
	MemoryPressure        uint64   `json:"memory_pressure"`
	SchedLoadBalance      uint64   `json:"sched_load_balance"`
	SchedRelaxDomainLevel int64    `json:"sched_relax_domain_level"`
}

// MemoryEntry is one memory counter with its limit.
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// Memory stats; Raw is memory.stat verbatim.
type Memory struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     MemoryEntry       `json:"usage,omitempty"`
	Swap      MemoryEntry       `json:"swap,omitempty"`
	Kernel    MemoryEntry       `json:"kernel,omitempty"`
	KernelTCP MemoryEntry       `json:"kernelTCP,omitempty"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
	PSI       *PSIStats         `json:"psi,omitempty"`
}

// PSIData is one line of a *.pressure file.
type PSIData struct {
	Avg10  float64 `json:"avg10"`
	Avg60  float64 `json:"avg60"`
	Avg300 float64 `json:"avg300"`
	Total  uint64  `json:"total"`
}

// PSIStats is a *.pressure file (v2 only).
type PSIStats struct {
	Some PSIData `json:"some,omitzero"`
	Full PSIData `json:"full,omitzero"`
}

func fromLib(s *cgroups.Stats) *Stats {
	out := &Stats{Hugetlb: map[string]Hugetlb{}}
	cu := s.CpuStats.CpuUsage
	out.CPU = CPU{
		Usage: CPUUsage{
			Total:        cu.TotalUsage,
			Percpu:       cu.PercpuUsage,
			PercpuKernel: cu.PercpuUsageInKernelmode,
			PercpuUser:   cu.PercpuUsageInUsermode,
			Kernel:       cu.UsageInKernelmode,
			User:         cu.UsageInUsermode,
		},
		Throttling: Throttling{
			Periods:          s.CpuStats.ThrottlingData.Periods,
			ThrottledPeriods: s.CpuStats.ThrottlingData.ThrottledPeriods,
			ThrottledTime:    s.CpuStats.ThrottlingData.ThrottledTime,
		},
		PSI: psi(s.CpuStats.PSI),
	}
	cs := s.CPUSetStats
	out.CPUSet = CPUSet{
		CPUs: cs.CPUs, CPUExclusive: cs.CPUExclusive, Mems: cs.Mems,
		MemHardwall: cs.MemHardwall, MemExclusive: cs.MemExclusive,
		MemoryMigrate: cs.MemoryMigrate, MemorySpreadPage: cs.MemorySpreadPage,
		MemorySpreadSlab: cs.MemorySpreadSlab, MemoryPressure: cs.MemoryPressure,
		SchedLoadBalance: cs.SchedLoadBalance, SchedRelaxDomainLevel: cs.SchedRelaxDomainLevel,
	}
	ms := s.MemoryStats
	out.Memory = Memory{
		Cache:     ms.Cache,
		Usage:     memEntry(ms.Usage),
		Swap:      memEntry(ms.SwapUsage),
		Kernel:    memEntry(ms.KernelUsage),
		KernelTCP: memEntry(ms.KernelTCPUsage),
		Raw:       ms.Stats,
		PSI:       psi(ms.PSI),
	}
	out.Pids = Pids{Current: s.PidsStats.Current, Limit: s.PidsStats.Limit}
	bs := s.BlkioStats
	out.Blkio = Blkio{
		IoServiceBytesRecursive: blkio(bs.IoServiceBytesRecursive),
		IoServicedRecursive:     blkio(bs.IoServicedRecursive),
		IoQueuedRecursive:       blkio(bs.IoQueuedRecursive),
		IoServiceTimeRecursive:  blkio(bs.IoServiceTimeRecursive),
		IoWaitTimeRecursive:     blkio(bs.IoWaitTimeRecursive),
		IoMergedRecursive:       blkio(bs.IoMergedRecursive),
		IoTimeRecursive:         blkio(bs.IoTimeRecursive),
		SectorsRecursive:        blkio(bs.SectorsRecursive),
		PSI:                     psi(bs.PSI),
	}
	for size, h := range s.HugetlbStats {
		out.Hugetlb[size] = Hugetlb{Usage: h.Usage, Max: h.MaxUsage, Failcnt: h.Failcnt}
	}
	return out
}

func memEntry(d cgroups.MemoryData) MemoryEntry {
	return MemoryEntry{Limit: d.Limit, Usage: d.Usage, Max: d.MaxUsage, Failcnt: d.Failcnt}
}

func blkio(in []cgroups.BlkioStatEntry) []BlkioEntry {
	var out []BlkioEntry
	for _, e := range in {
		out = append(out, BlkioEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
	}
	return out
}

func psi(p *cgroups.PSIStats) *PSIStats {
	if p == nil {
		return nil
	}
	return &PSIStats{
		Some: PSIData(p.Some),
		Full: PSIData(p.Full),
	}
}
