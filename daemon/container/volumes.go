package container

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/volume"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MountPoint is one volume a container mounts, as its record keeps it.
type MountPoint struct {
	Name        string
	Source      string // the volume's data on the host
	Destination string
	RW          bool
	Mode        string // the -v options as given, docker's inspect Mode
	// CopyData fills an empty volume from the image's content at
	// Destination at start (off with nocopy).
	CopyData bool
	// Anonymous volumes go with the container on rm -v and --rm.
	Anonymous bool
	// Subpath, when set, is the path inside the volume that is mounted
	// (--mount volume-subpath=...).
	Subpath string `json:",omitempty"`
	// DriverOpts and Labels are for a volume --mount creates.
	DriverOpts map[string]string `json:",omitempty"`
	Labels     map[string]string `json:",omitempty"`
}

// IsVolumeBind says whether a -v spec names a volume rather than a host
// path.
func IsVolumeBind(b string) bool {
	src, _, ok := strings.Cut(b, ":")
	return ok && !filepath.IsAbs(src)
}

// ParseVolumeBind parses docker's -v "name:/dst[:opts]".
func ParseVolumeBind(b string) (MountPoint, error) {
	parts := strings.Split(b, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return MountPoint{}, errdefs.Invalid("invalid volume specification: '%s'", b)
	}
	name, dst := parts[0], parts[1]
	if name == "" {
		return MountPoint{}, errdefs.Invalid("invalid volume specification: '%s'", b)
	}
	if err := volume.ValidateName(name); err != nil {
		return MountPoint{}, errdefs.Invalid("create %s: %v", name, err)
	}
	if !filepath.IsAbs(dst) || filepath.Clean(dst) == "/" {
		return MountPoint{}, errdefs.Invalid("invalid volume specification: '%s': invalid mount config: destination must be an absolute path other than /", b)
	}
	// docker shows "z" for a local volume given without options.
	mp := MountPoint{Name: name, Destination: filepath.Clean(dst), RW: true, CopyData: true, Mode: "z"}
	if len(parts) == 3 && parts[2] != "" {
		mp.Mode = parts[2]
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				mp.RW = false
			case "rw", "z", "Z", "":
			case "nocopy":
				mp.CopyData = false
			default:
				return MountPoint{}, errdefs.Invalid("invalid mode: %s", o)
			}
		}
	}
	return mp, nil
}

// VolumeFromMount reads a --mount of type volume; no source is an
// anonymous volume.
func VolumeFromMount(m mount.Mount) (MountPoint, error) {
	if !filepath.IsAbs(m.Target) || filepath.Clean(m.Target) == "/" {
		return MountPoint{}, errdefs.Invalid("invalid mount config: invalid mount path: '%s' mount path must be absolute", m.Target)
	}
	mp := MountPoint{Name: m.Source, Destination: filepath.Clean(m.Target), RW: !m.ReadOnly, CopyData: true, Anonymous: m.Source == "", Mode: "z"}
	if !mp.Anonymous {
		if err := volume.ValidateName(m.Source); err != nil {
			return MountPoint{}, errdefs.Invalid("create %s: %v", m.Source, err)
		}
	}
	if vo := m.VolumeOptions; vo != nil {
		if vo.Subpath != "" {
			if mp.Anonymous {
				return MountPoint{}, errdefs.Invalid("invalid mount config for type \"volume\": must not set Subpath when using anonymous volumes")
			}
			if !filepath.IsLocal(vo.Subpath) {
				return MountPoint{}, errdefs.Invalid("invalid mount config for type \"volume\": subpath must be a relative path within the volume")
			}
			mp.Subpath = vo.Subpath
		}
		mp.CopyData = !vo.NoCopy
		mp.Labels = maps.Clone(vo.Labels)
		if vo.DriverConfig != nil {
			if vo.DriverConfig.Name != "" && vo.DriverConfig.Name != volume.DriverName {
				return MountPoint{}, errdefs.NotFound("error looking up volume plugin %s: plugin %q not found", vo.DriverConfig.Name, vo.DriverConfig.Name)
			}
			mp.DriverOpts = maps.Clone(vo.DriverConfig.Options)
		}
	}
	return mp, nil
}

// VolumeSpecMounts are the OCI mounts of a container's volumes, given
// where each one's data is on the host (by name).
func VolumeSpecMounts(mps []MountPoint, paths map[string]string) []specs.Mount {
	var out []specs.Mount
	for _, mp := range mps {
		opts := []string{"rbind", "rw", "rprivate"}
		if !mp.RW {
			opts[1] = "ro"
		}
		out = append(out, specs.Mount{Destination: mp.Destination, Type: "bind", Source: paths[mp.Name], Options: opts})
	}
	return out
}

// PlanVolumes checks a container's binds, mounts and tmpfs and returns
// the volumes it mounts: named ones from -v and --mount, those inherited
// (--volumes-from) where neither puts something else, and anonymous ones
// for --mount without a source and for the Config's and the image's
// VOLUME paths that nothing else covers. Nothing is created here.
func PlanVolumes(hc *containertypes.HostConfig, inherited []MountPoint, cfgVolumes, imageVolumes map[string]struct{}) ([]MountPoint, error) {
	if hc.VolumeDriver != "" && hc.VolumeDriver != volume.DriverName {
		return nil, errdefs.NotFound("error looking up volume plugin %s: plugin %q not found", hc.VolumeDriver, hc.VolumeDriver)
	}
	var out []MountPoint
	seen := map[string]bool{}
	dest := func(d string) error {
		d = filepath.Clean(d)
		if seen[d] {
			return errdefs.Invalid("Duplicate mount point: %s", d)
		}
		seen[d] = true
		return nil
	}
	for _, b := range hc.Binds {
		if IsVolumeBind(b) {
			mp, err := ParseVolumeBind(b)
			if err != nil {
				return nil, err
			}
			if err := dest(mp.Destination); err != nil {
				return nil, err
			}
			out = append(out, mp)
			continue
		}
		m, err := ParseBind(b)
		if err != nil {
			return nil, err
		}
		if err := dest(m.Destination); err != nil {
			return nil, err
		}
	}
	for _, hm := range hc.Mounts {
		if hm.Type == mount.TypeVolume {
			mp, err := VolumeFromMount(hm)
			if err != nil {
				return nil, err
			}
			if err := dest(mp.Destination); err != nil {
				return nil, err
			}
			out = append(out, mp)
			continue
		}
		m, err := FromMount(hm)
		if err != nil {
			return nil, err
		}
		if err := dest(m.Destination); err != nil {
			return nil, err
		}
	}
	for d := range hc.Tmpfs {
		seen[filepath.Clean(d)] = true
	}
	for _, mp := range inherited {
		if !seen[mp.Destination] {
			seen[mp.Destination] = true
			out = append(out, mp)
		}
	}
	// The request's VOLUME paths and the image's, in a stable order.
	var anon []string
	for _, vs := range []map[string]struct{}{cfgVolumes, imageVolumes} {
		for _, d := range slices.Sorted(maps.Keys(vs)) {
			if !filepath.IsAbs(d) || filepath.Clean(d) == "/" {
				return nil, errdefs.Invalid("invalid volume specification: '%s': invalid mount config: destination must be an absolute path other than /", d)
			}
			if !seen[filepath.Clean(d)] {
				seen[filepath.Clean(d)] = true
				anon = append(anon, filepath.Clean(d))
			}
		}
	}
	for _, d := range anon {
		out = append(out, MountPoint{Destination: d, RW: true, CopyData: true, Anonymous: true})
	}
	return out, nil
}
