package container

import (
	"errors"

	"runtime"

	"berth.dev/berth/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// minMemory is the smallest memory limit or reservation docker takes.
const minMemory = 6 * 1024 * 1024

// ValidateUpdate checks an update on its own, with dockerd's words.
func ValidateUpdate(u *containertypes.UpdateConfig) error {
	r := u.Resources
	switch {
	case r.Memory != 0 && r.Memory < minMemory:
		return errdefs.Invalid("Minimum memory limit allowed is 6MB")
	case r.MemorySwap > 0 && r.Memory > 0 && r.MemorySwap < r.Memory:
		return errdefs.Invalid("Minimum memoryswap limit should be larger than memory limit, see usage")
	case r.MemoryReservation != 0 && r.MemoryReservation < minMemory:
		return errdefs.Invalid("Minimum memory reservation allowed is 6MB")
	case r.Memory > 0 && r.MemoryReservation > 0 && r.Memory < r.MemoryReservation:
		return errdefs.Invalid("Minimum memory limit can not be less than memory reservation limit, see usage")
	case r.NanoCPUs > 0 && r.CPUPeriod > 0:
		return errdefs.Invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	case r.NanoCPUs > 0 && r.CPUQuota > 0:
		return errdefs.Invalid("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	case r.NanoCPUs < 0 || r.NanoCPUs > int64(runtime.NumCPU())*1e9:
		return errdefs.Invalid("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", runtime.NumCPU(), runtime.NumCPU())
	case r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000):
		return errdefs.Invalid("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	case r.CPUQuota > 0 && r.CPUQuota < 1000:
		return errdefs.Invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	case r.BlkioWeight > 0 && (r.BlkioWeight < 10 || r.BlkioWeight > 1000):
		return errdefs.Invalid("Range of blkio weight is from 10 to 1000")
	case r.CPURealtimePeriod != 0 || r.CPURealtimeRuntime != 0:
		return errdefs.NotImplemented("real-time CPU limits are not supported yet")
	}
	switch u.RestartPolicy.Name {
	case "", "no", "always", "unless-stopped":
		if u.RestartPolicy.MaximumRetryCount != 0 {
			return errdefs.Invalid("invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case "on-failure":
		if u.RestartPolicy.MaximumRetryCount < 0 {
			return errdefs.Invalid("invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return errdefs.Invalid("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", u.RestartPolicy.Name)
	}
	return nil
}

func conflicting(msg string) error { return errdefs.Mark(errdefs.KindInvalid, errors.New(msg)) }

// Update lays u over the container's HostConfig as dockerd does (zero
// fields are left alone; NanoCPUs and a CFS period or quota exclude each
// other across updates). Callers hold the lock and save the record; on
// an error nothing changed.
func (c *Container) Update(u *containertypes.UpdateConfig) error {
	r, cur := u.Resources, c.HostConfig.Resources
	switch {
	case r.NanoCPUs > 0 && cur.CPUPeriod > 0:
		return conflicting("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
	case r.NanoCPUs > 0 && cur.CPUQuota > 0:
		return conflicting("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")
	case r.CPUPeriod > 0 && cur.NanoCPUs > 0:
		return conflicting("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")
	case r.CPUQuota > 0 && cur.NanoCPUs > 0:
		return conflicting("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
	case r.Memory != 0 && cur.MemorySwap > 0 && r.Memory > cur.MemorySwap && r.MemorySwap == 0:
		return conflicting("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
	case u.RestartPolicy.Name != "" && u.RestartPolicy.Name != "no" && c.HostConfig.AutoRemove:
		return conflicting("Restart policy cannot be updated because AutoRemove is enabled for the container")
	}
	set := func(dst *int64, v int64) {
		if v != 0 {
			*dst = v
		}
	}
	set(&cur.NanoCPUs, r.NanoCPUs)
	set(&cur.CPUShares, r.CPUShares)
	set(&cur.CPUPeriod, r.CPUPeriod)
	set(&cur.CPUQuota, r.CPUQuota)
	set(&cur.Memory, r.Memory)
	set(&cur.MemorySwap, r.MemorySwap)
	set(&cur.MemoryReservation, r.MemoryReservation)
	if r.BlkioWeight != 0 {
		cur.BlkioWeight = r.BlkioWeight
	}
	if r.CpusetCpus != "" {
		cur.CpusetCpus = r.CpusetCpus
	}
	if r.CpusetMems != "" {
		cur.CpusetMems = r.CpusetMems
	}
	if r.PidsLimit != nil {
		v := *r.PidsLimit
		cur.PidsLimit = &v
	}
	if cur.Memory > 0 && cur.MemorySwap > 0 && cur.MemorySwap < cur.Memory {
		return conflicting("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	c.HostConfig.Resources = cur
	if u.RestartPolicy.Name != "" {
		c.HostConfig.RestartPolicy = u.RestartPolicy
	}
	return nil
}

// LiveResources are the cgroup limits of the container's HostConfig for a
// running container's update: as at start, and a pids limit of 0 written
// as "no limit" rather than left alone.
func (c *Container) LiveResources() *specs.LinuxResources {
	r := &specs.LinuxResources{}
	resources(r, c)
	if c.HostConfig.PidsLimit != nil && *c.HostConfig.PidsLimit <= 0 {
		r.Pids = &specs.LinuxPids{Limit: 0}
	}
	return r
}
