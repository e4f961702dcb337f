package runtime

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/runtime/specjson"
)

// SpecFile is a bundle's config.json, read and decoded only as far as
// create needs before it forks the init. The whole spec is decoded while the
// init boots: the first decode of a specs.Spec in a process costs about
// 0.45 ms (encoding/json builds codecs for every type the spec reaches),
// this partial one a tenth of that. A spec in package specjson's plain form
// (every one berth writes) is decoded whole at once instead, in ~10 µs.
type SpecFile struct {
	raw   []byte
	early earlySpec
	spec  *specs.Spec // decoded by specjson, for Decode to hand over once
}

// earlySpec is what forking the init needs: its namespaces, id mappings,
// terminal and cgroup (with its device policy, see Create).
type earlySpec struct {
	Process *earlyProcess `json:"process,omitempty"`
	Linux   *earlyLinux   `json:"linux,omitempty"`
}

type earlyProcess struct {
	Terminal bool `json:"terminal,omitempty"`
}

type earlyLinux struct {
	Namespaces  []specs.LinuxNamespace `json:"namespaces,omitempty"`
	UIDMappings []specs.LinuxIDMapping `json:"uidMappings,omitempty"`
	GIDMappings []specs.LinuxIDMapping `json:"gidMappings,omitempty"`
	CgroupsPath string                 `json:"cgroupsPath,omitempty"`
	Devices     []specs.LinuxDevice    `json:"devices,omitempty"`
	Resources   *earlyResources        `json:"resources,omitempty"`
}

type earlyResources struct {
	Devices []specs.LinuxDeviceCgroup `json:"devices,omitempty"`
}

// devicePolicy is the device cgroup rules the spec asks for; an empty list
// (deny all but the defaults) when it gives none.
func (l earlyLinux) devicePolicy() []specs.LinuxDeviceCgroup {
	if l.Resources == nil || l.Resources.Devices == nil {
		return []specs.LinuxDeviceCgroup{}
	}
	return l.Resources.Devices
}

// ReadSpec reads bundle/config.json (see SpecFile).
func ReadSpec(bundle string) (*SpecFile, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.NotFound("no config.json in bundle %s", bundle)
		}
		return nil, err
	}
	f := &SpecFile{raw: b}
	if spec, ok := specjson.Decode(b); ok {
		f.spec, f.early = spec, earlyOf(spec)
		return f, nil
	}
	if err := json.Unmarshal(b, &f.early); err != nil {
		return nil, errdefs.Invalid("bad config.json in %s: %v", bundle, err)
	}
	return f, nil
}

// Terminal reports whether the spec's process has a terminal.
func (f *SpecFile) Terminal() bool { return f.early.Process != nil && f.early.Process.Terminal }

// Decode decodes the whole spec.
func (f *SpecFile) Decode() (*specs.Spec, error) {
	if s := f.spec; s != nil {
		f.spec = nil // the caller may change it: a second call decodes anew
		return s, nil
	}
	var s specs.Spec
	if err := json.Unmarshal(f.raw, &s); err != nil {
		return nil, errdefs.Invalid("bad config.json: %v", err)
	}
	return &s, nil
}

// LoadSpec reads and decodes bundle/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	f, err := ReadSpec(bundle)
	if err != nil {
		return nil, err
	}
	return f.Decode()
}

// earlyOf gives what forking the init needs from a decoded spec.
func earlyOf(s *specs.Spec) earlySpec {
	var e earlySpec
	if s.Process != nil {
		e.Process = &earlyProcess{Terminal: s.Process.Terminal}
	}
	if l := s.Linux; l != nil {
		e.Linux = &earlyLinux{Namespaces: l.Namespaces, UIDMappings: l.UIDMappings, GIDMappings: l.GIDMappings, CgroupsPath: l.CgroupsPath, Devices: l.Devices}
		if l.Resources != nil {
			e.Linux.Resources = &earlyResources{Devices: l.Resources.Devices}
		}
	}
	return e
}

func (e *earlySpec) linux() earlyLinux {
	if e.Linux == nil {
		return earlyLinux{}
	}
	return *e.Linux
}

func (e *earlySpec) newNS(t specs.LinuxNamespaceType) bool {
	for _, ns := range e.linux().Namespaces {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}
