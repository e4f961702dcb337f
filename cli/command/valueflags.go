package command

import (
	"encoding/csv"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// The option types of create, run and exec, parsed as docker parses them
// so that a bad value fails with docker's words (pflag adds
// `invalid argument "v" for "-x, --flag" flag: `).

// attachFlag is -a: stdin, stdout or stderr, any case.
type attachFlag struct{ l *listFlag }

func (a *attachFlag) String() string { return a.l.String() }
func (a *attachFlag) Type() string   { return "list" }
func (a *attachFlag) Set(v string) error {
	s := strings.ToLower(v)
	if s != "stdin" && s != "stdout" && s != "stderr" {
		return errors.New("valid streams are STDIN, STDOUT and STDERR")
	}
	return a.l.Set(s)
}

// envFlag is -e: NAME=value, or NAME alone for the CLI's own value.
type envFlag struct{ l *listFlag }

func (e *envFlag) String() string { return e.l.String() }
func (e *envFlag) Type() string   { return "list" }
func (e *envFlag) Set(v string) error {
	k, _, ok := strings.Cut(v, "=")
	if k == "" {
		return errors.New("invalid environment variable: " + v)
	}
	if !ok {
		if val, set := os.LookupEnv(k); set {
			v = k + "=" + val
		}
	}
	return e.l.Set(v)
}

// labelFlag is -l: name[=value].
type labelFlag struct{ l *listFlag }

func (f *labelFlag) String() string { return f.l.String() }
func (f *labelFlag) Type() string   { return "list" }
func (f *labelFlag) Set(v string) error {
	if k, _, _ := strings.Cut(v, "="); strings.TrimSpace(k) == "" {
		return fmt.Errorf("invalid label '%s': empty name", v)
	}
	return f.l.Set(v)
}

// mapFlag is a repeatable key=value option (--log-opt, --sysctl).
type mapFlag map[string]string

func (m *mapFlag) String() string { return "map[" + strings.Join(sortedPairs(*m), " ") + "]" }
func (m *mapFlag) Type() string   { return "map" }
func (m *mapFlag) Set(v string) error {
	if *m == nil {
		*m = mapFlag{}
	}
	k, val, _ := strings.Cut(v, "=")
	(*m)[k] = val
	return nil
}

// memBytes is a size with docker's units (b, k, m, g; 1024s).
type memBytes int64

func (m *memBytes) String() string {
	if *m == 0 {
		return "0"
	}
	return units.BytesSize(float64(*m))
}
func (m *memBytes) Type() string { return "bytes" }
func (m *memBytes) Set(v string) error {
	n, err := units.RAMInBytes(v)
	*m = memBytes(n)
	return err
}

// memSwapBytes is --memory-swap: a size, or -1 for unlimited.
type memSwapBytes int64

func (m *memSwapBytes) String() string { return (*memBytes)(m).String() }
func (m *memSwapBytes) Type() string   { return "bytes" }
func (m *memSwapBytes) Set(v string) error {
	if v == "-1" {
		*m = -1
		return nil
	}
	return (*memBytes)(m).Set(v)
}

// nanoCPUs is --cpus: a decimal number of CPUs, kept in billionths.
type nanoCPUs int64

func (n *nanoCPUs) String() string {
	if *n == 0 {
		return ""
	}
	return big.NewRat(int64(*n), 1e9).FloatString(3)
}
func (n *nanoCPUs) Type() string { return "decimal" }
func (n *nanoCPUs) Set(v string) error {
	r, ok := new(big.Rat).SetString(v)
	if !ok {
		return fmt.Errorf("failed to parse %v as a rational number", v)
	}
	r.Mul(r, big.NewRat(1e9, 1))
	if !r.IsInt() {
		return errors.New("value is too precise")
	}
	*n = nanoCPUs(r.Num().Int64())
	return nil
}

// ulimitFlag is --ulimit name=soft[:hard]; a later one of a name wins.
type ulimitFlag map[string]*container.Ulimit

func (u *ulimitFlag) String() string {
	var l []string
	for _, v := range u.list() {
		l = append(l, v.String())
	}
	return "[" + strings.Join(l, " ") + "]"
}
func (u *ulimitFlag) Type() string { return "ulimit" }
func (u *ulimitFlag) Set(v string) error {
	l, err := units.ParseUlimit(v)
	if err != nil {
		return err
	}
	if *u == nil {
		*u = ulimitFlag{}
	}
	(*u)[l.Name] = l
	return nil
}

func (u ulimitFlag) list() []*container.Ulimit {
	var names []string
	for k := range u {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []*container.Ulimit
	for _, k := range names {
		out = append(out, u[k])
	}
	return out
}

// mountsFlag is --mount: comma-separated key=value fields, as docker's.
type mountsFlag []mount.Mount

func (m *mountsFlag) String() string { return "" }
func (m *mountsFlag) Type() string   { return "mount" }
func (m *mountsFlag) Set(v string) error {
	fields, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return err
	}
	mt := mount.Mount{Type: mount.TypeVolume}
	for _, f := range fields {
		key, val, hasVal := strings.Cut(f, "=")
		key = strings.ToLower(key)
		if !hasVal && key != "readonly" && key != "ro" && key != "volume-nocopy" {
			return fmt.Errorf("invalid field '%s' must be a key=value pair", f)
		}
		switch key {
		case "type":
			mt.Type = mount.Type(strings.ToLower(val))
		case "source", "src":
			mt.Source = val
		case "target", "dst", "destination":
			mt.Target = val
		case "readonly", "ro":
			mt.ReadOnly = true
			if hasVal {
				if mt.ReadOnly, err = strconv.ParseBool(val); err != nil {
					return fmt.Errorf("invalid value for %s: %s", key, val)
				}
			}
		case "bind-propagation":
			bindOpts(&mt).Propagation = mount.Propagation(strings.ToLower(val))
		case "bind-create-mountpoint":
			bindOpts(&mt).CreateMountpoint = val == "" || val == "true" || val == "1"
		case "volume-nocopy":
			volumeOpts(&mt).NoCopy = !hasVal || val == "true" || val == "1"
		case "volume-subpath":
			volumeOpts(&mt).Subpath = val
		case "volume-driver":
			driverOpts(&mt).Name = val
		case "volume-opt":
			k, v, _ := strings.Cut(val, "=")
			d := driverOpts(&mt)
			if d.Options == nil {
				d.Options = map[string]string{}
			}
			d.Options[k] = v
		case "volume-label":
			k, v, _ := strings.Cut(val, "=")
			vo := volumeOpts(&mt)
			if vo.Labels == nil {
				vo.Labels = map[string]string{}
			}
			vo.Labels[k] = v
		case "tmpfs-size":
			n, err := units.RAMInBytes(val)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfsOpts(&mt).SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfsOpts(&mt).Mode = os.FileMode(n)
		default:
			return fmt.Errorf("unexpected key '%s' in '%s'", key, f)
		}
	}
	if mt.Target == "" {
		return errors.New("target is required")
	}
	*m = append(*m, mt)
	return nil
}

func bindOpts(m *mount.Mount) *mount.BindOptions {
	if m.BindOptions == nil {
		m.BindOptions = &mount.BindOptions{}
	}
	return m.BindOptions
}

func volumeOpts(m *mount.Mount) *mount.VolumeOptions {
	if m.VolumeOptions == nil {
		m.VolumeOptions = &mount.VolumeOptions{}
	}
	return m.VolumeOptions
}

func driverOpts(m *mount.Mount) *mount.Driver {
	vo := volumeOpts(m)
	if vo.DriverConfig == nil {
		vo.DriverConfig = &mount.Driver{}
	}
	return vo.DriverConfig
}

func tmpfsOpts(m *mount.Mount) *mount.TmpfsOptions {
	if m.TmpfsOptions == nil {
		m.TmpfsOptions = &mount.TmpfsOptions{}
	}
	return m.TmpfsOptions
}
