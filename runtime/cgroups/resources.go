package cgroups

import (
	"fmt"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth.dev/berth/errdefs"
)

// toLib maps OCI resources onto the library's. Zero values mean "leave
// alone" to the library, matching nil in the spec. Devices are not mapped
// here (see deviceRules); SkipDevices is set so the library leaves them.
func toLib(r *specs.LinuxResources) (*cgroups.Resources, error) {
	out := &cgroups.Resources{SkipDevices: true}
	if r == nil {
		return out, nil
	}
	if m := r.Memory; m != nil {
		if m.Limit != nil {
			out.Memory = *m.Limit
		}
		if m.Reservation != nil {
			out.MemoryReservation = *m.Reservation
		}
		if m.Swap != nil {
			out.MemorySwap = *m.Swap
		}
		if m.Swappiness != nil {
			if *m.Swappiness > 100 {
				return nil, errdefs.Invalid("cgroups: memory swappiness %d out of range 0-100", *m.Swappiness)
			}
			out.MemorySwappiness = m.Swappiness
		}
		if m.DisableOOMKiller != nil {
			out.OomKillDisable = *m.DisableOOMKiller
		}
		if m.CheckBeforeUpdate != nil {
			out.MemoryCheckBeforeUpdate = *m.CheckBeforeUpdate
		}
		// Kernel (kmem) limits: obsolete since Linux 5.4, ignored, as runc does.
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil {
			out.CpuShares = *c.Shares
		}
		if c.Quota != nil {
			out.CpuQuota = *c.Quota
		}
		out.CpuBurst = c.Burst
		if c.Period != nil {
			out.CpuPeriod = *c.Period
		}
		if c.RealtimeRuntime != nil {
			out.CpuRtRuntime = *c.RealtimeRuntime
		}
		if c.RealtimePeriod != nil {
			out.CpuRtPeriod = *c.RealtimePeriod
		}
		out.CpusetCpus = c.Cpus
		out.CpusetMems = c.Mems
		out.CPUIdle = c.Idle
	}
	if p := r.Pids; p != nil {
		// OCI and docker use <= 0 for "no limit".
		limit := p.Limit
		if limit <= 0 {
			limit = -1
		}
		out.PidsLimit = &limit
	}
	if b := r.BlockIO; b != nil {
		if b.Weight != nil {
			out.BlkioWeight = *b.Weight
		}
		if b.LeafWeight != nil {
			out.BlkioLeafWeight = *b.LeafWeight
		}
		for _, wd := range b.WeightDevice {
			var w, lw uint16
			if wd.Weight != nil {
				w = *wd.Weight
			}
			if wd.LeafWeight != nil {
				lw = *wd.LeafWeight
			}
			out.BlkioWeightDevice = append(out.BlkioWeightDevice, cgroups.NewWeightDevice(wd.Major, wd.Minor, w, lw))
		}
		throttle := func(in []specs.LinuxThrottleDevice) []*cgroups.ThrottleDevice {
			var l []*cgroups.ThrottleDevice
			for _, td := range in {
				l = append(l, cgroups.NewThrottleDevice(td.Major, td.Minor, td.Rate))
			}
			return l
		}
		out.BlkioThrottleReadBpsDevice = throttle(b.ThrottleReadBpsDevice)
		out.BlkioThrottleWriteBpsDevice = throttle(b.ThrottleWriteBpsDevice)
		out.BlkioThrottleReadIOPSDevice = throttle(b.ThrottleReadIOPSDevice)
		out.BlkioThrottleWriteIOPSDevice = throttle(b.ThrottleWriteIOPSDevice)
	}
	for _, h := range r.HugepageLimits {
		out.HugetlbLimit = append(out.HugetlbLimit, &cgroups.HugepageLimit{Pagesize: h.Pagesize, Limit: h.Limit})
	}
	if len(r.Rdma) > 0 {
		out.Rdma = make(map[string]cgroups.LinuxRdma, len(r.Rdma))
		for dev, l := range r.Rdma {
			out.Rdma[dev] = cgroups.LinuxRdma{HcaHandles: l.HcaHandles, HcaObjects: l.HcaObjects}
		}
	}
	if len(r.Unified) > 0 {
		out.Unified = r.Unified
	}
	return out, nil
}

// networkErr refuses network classID/priorities: no host berth supports has
// net_cls/net_prio for containers (not mounted here; absent on v2, where
// eBPF does that job).
func networkErr(r *specs.LinuxResources, paths map[string]string) error {
	if r == nil || r.Network == nil || (r.Network.ClassID == nil && len(r.Network.Priorities) == 0) {
		return nil
	}
	if paths["net_cls"] != "" || paths["net_prio"] != "" {
		return errdefs.NotImplemented("cgroups: network classID/priorities (net_cls/net_prio) are not supported by berth")
	}
	return errdefs.NotImplemented("cgroups: network classID/priorities are not supported: no net_cls/net_prio controller on this host")
}

// deviceRules is the full policy for a container: the spec's rules in
// order, then DefaultDevices.
func deviceRules(spec []specs.LinuxDeviceCgroup) ([]*devconfig.Rule, error) {
	var rules []*devconfig.Rule
	for _, d := range append(append([]specs.LinuxDeviceCgroup(nil), spec...), DefaultDevices...) {
		r, err := deviceRule(d)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func deviceRule(d specs.LinuxDeviceCgroup) (*devconfig.Rule, error) {
	r := &devconfig.Rule{Type: devconfig.WildcardDevice, Major: devconfig.Wildcard, Minor: devconfig.Wildcard, Allow: d.Allow, Permissions: devconfig.Permissions(d.Access)}
	switch d.Type {
	case "", "a":
	case "b":
		r.Type = devconfig.BlockDevice
	case "c", "u":
		r.Type = devconfig.CharDevice
	default:
		return nil, errdefs.Invalid("cgroups: device rule type %q is not a, b or c", d.Type)
	}
	if d.Major != nil {
		r.Major = *d.Major
	}
	if d.Minor != nil {
		r.Minor = *d.Minor
	}
	if d.Access == "" {
		r.Permissions = "rwm"
	}
	for _, c := range r.Permissions {
		if c != 'r' && c != 'w' && c != 'm' {
			return nil, errdefs.Invalid("cgroups: device rule access %q is not a subset of rwm", d.Access)
		}
	}
	if r.Type == devconfig.WildcardDevice && (r.Major != devconfig.Wildcard || r.Minor != devconfig.Wildcard) {
		return nil, errdefs.Invalid("cgroups: device rule of type a cannot name %d:%d", r.Major, r.Minor)
	}
	return r, nil
}

// v1DeviceLine formats a rule for devices.allow/deny.
func v1DeviceLine(r *devconfig.Rule) string {
	num := func(n int64) string {
		if n == devconfig.Wildcard {
			return "*"
		}
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%c %s:%s %s", r.Type, num(r.Major), num(r.Minor), r.Permissions)
}
