package runtime

import (
	"fmt"

	"berth.dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Update sets new limits on a live container's cgroups (runc update): the
// same manager and code path that set its limits at create. state.json is
// written once and keeps the limits the container was created with.
func (c *Container) Update(r *specs.LinuxResources) error {
	if st := c.Status(); st == StatusStopped {
		return errdefs.Conflict("container %s is stopped", c.Saved.ID)
	}
	m, err := c.cgroup()
	if err != nil || m == nil {
		return fmt.Errorf("container %s has no cgroup to update: %v", c.Saved.ID, err)
	}
	return m.Set(r)
}
