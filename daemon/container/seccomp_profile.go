package container

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/runtime/seccomp"
	containertypes "github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A custom profile (--security-opt seccomp=<profile>; the docker CLI sends
// the file's JSON) is docker's profile format: the OCI section plus
// archMap, and rules that apply only with or without some capabilities,
// architectures or kernels. It becomes the OCI section for this host and
// this container's capabilities, as dockerd makes it.
type seccompProfile struct {
	specs.LinuxSeccomp
	ArchMap  []seccompArchMap `json:"archMap,omitempty"`
	Syscalls []*seccompRule   `json:"syscalls"` // hides LinuxSeccomp's
}

type seccompArchMap struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

type seccompRule struct {
	specs.LinuxSyscall
	Name     string         `json:"name,omitempty"` // the old one-name form
	Comment  string         `json:"comment,omitempty"`
	Includes *seccompFilter `json:"includes,omitempty"`
	Excludes *seccompFilter `json:"excludes,omitempty"`
}

type seccompFilter struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// seccompNative is the profile's name of a Go architecture's ABI (a switch,
// not a package-level map built at every start of the binary).
func seccompNative(goarch string) (specs.Arch, bool) {
	switch goarch {
	case "amd64":
		return specs.ArchX86_64, true
	case "386":
		return specs.ArchX86, true
	case "arm64":
		return specs.ArchAARCH64, true
	case "arm":
		return specs.ArchARM, true
	case "riscv64":
		return specs.ArchRISCV64, true
	case "s390x":
		return specs.ArchS390X, true
	case "ppc64le":
		return specs.ArchPPC64LE, true
	case "loong64":
		return specs.ArchLOONGARCH64, true
	}
	return "", false
}

// customSeccomp reads a profile for a container with capabilities caps.
// A profile with no default action and no rules means no filter.
func customSeccomp(body string, caps []string) (*specs.LinuxSeccomp, error) {
	var p seccompProfile
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		return nil, errdefs.Invalid("Decoding seccomp profile failed: %v", err)
	}
	if p.DefaultAction == "" && len(p.Syscalls) == 0 {
		return nil, nil
	}
	if len(p.Architectures) != 0 && len(p.ArchMap) != 0 {
		return nil, errdefs.Invalid("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'")
	}
	out := p.LinuxSeccomp
	out.Syscalls = nil
	if native, ok := seccompNative(runtime.GOARCH); ok {
		for _, a := range p.ArchMap {
			if a.Arch == native {
				out.Architectures = append(append(out.Architectures, a.Arch), a.SubArches...)
			}
		}
	}
	kernel := kernelRelease()
	for _, r := range p.Syscalls {
		if r == nil {
			continue
		}
		if r.Name != "" {
			if len(r.Names) != 0 {
				return nil, errdefs.Invalid("use either 'name' or 'names'")
			}
			r.Names = []string{r.Name}
		}
		if f := r.Excludes; f != nil {
			if slices.Contains(f.Arches, runtime.GOARCH) || slices.ContainsFunc(f.Caps, func(c string) bool { return slices.Contains(caps, c) }) {
				continue
			}
			if f.MinKernel != "" {
				ok, err := kernelAtLeast(kernel, f.MinKernel)
				if err != nil {
					return nil, err
				}
				if ok {
					continue
				}
			}
		}
		if f := r.Includes; f != nil {
			if len(f.Arches) > 0 && !slices.Contains(f.Arches, runtime.GOARCH) {
				continue
			}
			if !allIn(f.Caps, caps) {
				continue
			}
			if f.MinKernel != "" {
				ok, err := kernelAtLeast(kernel, f.MinKernel)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
			}
		}
		out.Syscalls = append(out.Syscalls, r.LinuxSyscall)
	}
	// What the runtime would refuse at start is the request's fault: say
	// so now, as a 400 at create.
	if _, err := seccomp.Compile(&out, ""); err != nil {
		return nil, errdefs.Invalid("invalid seccomp profile: %v", err)
	}
	return &out, nil
}

func allIn(want, have []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return string(u.Release[:bytes.IndexByte(u.Release[:], 0)])
}

// kernelAtLeast compares a release ("6.18.0-1-amd64") with a profile's
// "major.minor".
func kernelAtLeast(release, min string) (bool, error) {
	parse := func(s string) (int, int, bool) {
		maj, rest, _ := strings.Cut(s, ".")
		mi := strings.FieldsFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		a, err1 := strconv.Atoi(maj)
		if err1 != nil || len(mi) == 0 {
			return 0, 0, false
		}
		b, err2 := strconv.Atoi(mi[0])
		return a, b, err2 == nil
	}
	wa, wb, ok := parse(min)
	if !ok {
		return false, errdefs.Invalid("invalid kernel version %q in the seccomp profile (want major.minor)", min)
	}
	ha, hb, ok := parse(release)
	if !ok {
		return false, fmt.Errorf("seccomp: cannot read the kernel version %q", release)
	}
	return ha > wa || ha == wa && hb >= wb, nil
}

// CheckSecurityOpt checks --security-opt at create, so that a bad
// seccomp profile is a 400 then rather than a failed start.
func CheckSecurityOpt(hc *containertypes.HostConfig) error {
	caps, err := capabilities(hc.Privileged, hc.CapAdd, hc.CapDrop)
	if err != nil {
		return err
	}
	_, err = seccompFor(hc.SecurityOpt, hc.Privileged, caps)
	return err
}
