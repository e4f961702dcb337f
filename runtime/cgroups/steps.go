package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
)

// A Step is one file operation of making a container's cgroups: a
// directory and its missing parents (Mkdir) or a write of Data to the file Path (one line, one
// write: the kernel takes one device rule per write).
type Step struct {
	Mkdir bool
	Path  string
	Data  string
}

// CreateSteps lists Apply(-1)'s work as steps for another process to do:
// the container's init, which on v1 has nothing else to do while the
// runtime decodes the spec and compiles its program. A Mkdir makes the
// parents it lacks (mkdir -p), as Apply does; false leaves Apply to do it:
// v2, and a cpuset cgroup that is there already (whose values Apply
// keeps) or whose parent is not (Apply fills the new ones in up the
// tree). Elsewhere a cgroup that is there already is fine as it is, as
// with Apply, but for its device rules, which both write again.
func (m *v1Manager) CreateSteps() ([]Step, bool) {
	rules, err := deviceRules(m.st.Devices)
	if err != nil {
		return nil, false
	}
	dev := m.st.Paths["devices"]
	var steps []Step
	for k, dir := range m.st.Paths {
		steps = append(steps, Step{Mkdir: true, Path: dir})
		if k != "cpuset" {
			continue
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			return nil, false
		}
		parent := filepath.Dir(dir)
		cpus, err1 := cgroups.ReadFile(parent, "cpuset.cpus")
		mems, err2 := cgroups.ReadFile(parent, "cpuset.mems")
		if err1 != nil || err2 != nil || strings.TrimSpace(cpus) == "" || strings.TrimSpace(mems) == "" {
			return nil, false
		}
		steps = append(steps, Step{Path: dir + "/cpuset.cpus", Data: cpus}, Step{Path: dir + "/cpuset.mems", Data: mems})
	}
	// The device policy, as writeV1Devices writes it: deny all, then the
	// rules in their order.
	all := &devconfig.Rule{Type: devconfig.WildcardDevice, Major: devconfig.Wildcard, Minor: devconfig.Wildcard, Permissions: "rwm"}
	for _, r := range append([]*devconfig.Rule{all}, rules...) {
		file := "/devices.deny"
		if r.Allow {
			file = "/devices.allow"
		}
		steps = append(steps, Step{Path: dev + file, Data: v1DeviceLine(r)})
	}
	return steps, true
}

// CreateSteps: v2's cgroup is made before the init, which is cloned into it.
func (m *v2Manager) CreateSteps() ([]Step, bool) { return nil, false }
