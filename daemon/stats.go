package daemon

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"berth.dev/berth/runtime/cgroups"
	containertypes "github.com/moby/moby/api/types/container"
)

// statsInterval is how often a stream samples, as dockerd's collector.
const statsInterval = time.Second

// containerCgroup is where the daemon's spec puts a container's cgroups
// (container.Spec sets linux.cgroupsPath to it).
func containerCgroup(id string) string { return cgroups.DefaultParent + "/" + id }

// ContainerStats is GET /containers/{id}/stats. fn gets each sample: with
// stream, one a second (with the previous one's CPU figures as precpu)
// until ctx ends, the container is removed or the daemon shuts down; a container that is not
// running streams empty samples, as dockerd's. Without stream it gets one
// sample, taken over a second so precpu is set, or at once with oneShot.
// An error before fn's first call is the request's (404 for a missing
// container).
func (d *Daemon) ContainerStats(ctx context.Context, name string, stream, oneShot bool, fn func(*containertypes.StatsResponse) error) error {
	c, err := d.ctrs.store.Get(name)
	if err != nil {
		return err
	}
	c.Lock()
	id, cname := c.ID, c.Name
	c.Unlock()
	s := &sampler{d: d, id: id, name: cname}
	if !stream {
		if d.runningOf(id) == nil {
			return fn(s.empty())
		}
		first := s.sample()
		if oneShot {
			return fn(first)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(statsInterval):
		}
		return fn(s.next(first))
	}
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	var prev *containertypes.StatsResponse
	for {
		cur := s.sample()
		if prev != nil {
			cur.PreRead, cur.PreCPUStats = prev.Read, prev.CPUStats
		}
		if err := fn(cur); err != nil {
			return err
		}
		prev = cur
		select {
		case <-ctx.Done():
			return nil
		case <-d.events.Done(): // the daemon is shutting down
			return nil
		case <-tick.C:
		}
		c.Lock()
		gone := c.Removed()
		c.Unlock()
		if gone {
			return nil
		}
	}
}

// sampler reads one container's cgroups; the manager (paths resolved
// from mountinfo) is made once per request, each sample only reads the
// controllers' files and /proc/stat.
type sampler struct {
	d        *Daemon
	id, name string
	m        cgroups.Manager
}

// empty is what dockerd sends for a container that is not running: its
// name and ID, zeros and nulls.
func (s *sampler) empty() *containertypes.StatsResponse {
	return &containertypes.StatsResponse{ID: s.id, Name: s.name}
}

// next takes a second sample after prev, with prev as its precpu.
func (s *sampler) next(prev *containertypes.StatsResponse) *containertypes.StatsResponse {
	cur := s.sample()
	cur.PreRead, cur.PreCPUStats = prev.Read, prev.CPUStats
	return cur
}

// sample reads the cgroups now; a container that is not running (or
// whose cgroups are gone with its exit) gives an empty sample.
func (s *sampler) sample() *containertypes.StatsResponse {
	if s.d.runningOf(s.id) == nil {
		return s.empty()
	}
	if s.m == nil {
		m, err := cgroups.New(containerCgroup(s.id), s.id, nil)
		if err != nil {
			s.d.log.Debug("stats: cgroups", "id", s.id, "error", err)
			return s.empty()
		}
		s.m = m
	}
	st, err := s.m.Stats()
	if err != nil {
		s.d.log.Debug("stats: read cgroups", "id", s.id, "error", err)
		return s.empty()
	}
	out := fromCgroupStats(st, cgroups.HostMode() != cgroups.ModeV2)
	out.ID, out.Name, out.Read = s.id, s.name, time.Now()
	out.Networks = s.d.netStats(s.id)
	out.CPUStats.SystemUsage, out.CPUStats.OnlineCPUs = systemCPU()
	if mt := machineMemory(); out.MemoryStats.Limit > mt && mt > 0 {
		out.MemoryStats.Limit = mt // no limit: the host's memory, as dockerd
	}
	return out
}

// v1MemoryKeys are the memory.stat counters dockerd reports on cgroup v1
// (containerd's v1 metrics); the kernel has more, docker shows these.
var v1MemoryKeys = []string{"cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback",
	"pgpgin", "pgpgout", "pgfault", "pgmajfault", "inactive_anon", "active_anon",
	"inactive_file", "active_file", "unevictable"}

// fromCgroupStats maps the runtime's cgroup figures onto the API's as
// dockerd fills them.
func fromCgroupStats(st *cgroups.Stats, v1 bool) *containertypes.StatsResponse {
	out := &containertypes.StatsResponse{}
	u := st.CPU.Usage
	out.CPUStats = containertypes.CPUStats{
		CPUUsage: containertypes.CPUUsage{TotalUsage: u.Total, PercpuUsage: u.Percpu,
			UsageInKernelmode: u.Kernel, UsageInUsermode: u.User},
		ThrottlingData: containertypes.ThrottlingData{Periods: st.CPU.Throttling.Periods,
			ThrottledPeriods: st.CPU.Throttling.ThrottledPeriods, ThrottledTime: st.CPU.Throttling.ThrottledTime},
	}
	m := st.Memory
	out.MemoryStats = containertypes.MemoryStats{Usage: m.Usage.Usage, Limit: m.Usage.Limit}
	if v1 {
		out.MemoryStats.MaxUsage, out.MemoryStats.Failcnt = m.Usage.Max, m.Usage.Failcnt
		raw := map[string]uint64{}
		for _, k := range v1MemoryKeys {
			for _, key := range []string{k, "total_" + k} {
				if v, ok := m.Raw[key]; ok {
					raw[key] = v
				}
			}
		}
		for _, k := range []string{"hierarchical_memory_limit", "hierarchical_memsw_limit"} {
			if v, ok := m.Raw[k]; ok {
				raw[k] = v
			}
		}
		out.MemoryStats.Stats = raw
	} else {
		out.MemoryStats.Stats = m.Raw
	}
	out.PidsStats = containertypes.PidsStats{Current: st.Pids.Current, Limit: st.Pids.Limit}
	b := st.Blkio
	out.BlkioStats = containertypes.BlkioStats{
		IoServiceBytesRecursive: blkioEntries(b.IoServiceBytesRecursive),
		IoServicedRecursive:     blkioEntries(b.IoServicedRecursive),
		IoQueuedRecursive:       blkioEntries(b.IoQueuedRecursive),
		IoServiceTimeRecursive:  blkioEntries(b.IoServiceTimeRecursive),
		IoWaitTimeRecursive:     blkioEntries(b.IoWaitTimeRecursive),
		IoMergedRecursive:       blkioEntries(b.IoMergedRecursive),
		IoTimeRecursive:         blkioEntries(b.IoTimeRecursive),
		SectorsRecursive:        blkioEntries(b.SectorsRecursive),
	}
	return out
}

// blkioEntries is never nil: a running container's lists are [] (null is
// for one that is not running), as dockerd's.
func blkioEntries(in []cgroups.BlkioEntry) []containertypes.BlkioStatEntry {
	out := []containertypes.BlkioStatEntry{}
	for _, e := range in {
		out = append(out, containertypes.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
	}
	return out
}

// clockTicks is USER_HZ, the unit of /proc/stat (100 on Linux).
const clockTicks = 100

// systemCPU is the host's CPU time in ns (user through softirq of
// /proc/stat's "cpu" line, dockerd's sum) and the number of CPUs listed.
func systemCPU() (uint64, uint32) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	var total uint64
	var cpus uint32
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			cpus++
			continue
		}
		if len(f) < 8 {
			return 0, 0
		}
		for _, v := range f[1:8] {
			n, _ := strconv.ParseUint(v, 10, 64)
			total += n
		}
	}
	return total * uint64(time.Second) / clockTicks, cpus
}

var (
	memTotalOnce sync.Once
	memTotal     uint64
)

// machineMemory is MemTotal in bytes (read once).
func machineMemory() uint64 {
	memTotalOnce.Do(func() {
		b, err := os.ReadFile("/proc/meminfo")
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(b), "\n") {
			var kb uint64
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				memTotal = kb * 1024
				return
			}
		}
	})
	return memTotal
}
