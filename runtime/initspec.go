package runtime

import specs "github.com/opencontainers/runtime-spec/specs-go"

// initSpec is the part of the spec the init uses, as sent over its config
// pipe (in the wire form, wire.go). Not the whole specs.Spec: the init needs
// none of the rest, and decoding it (with encoding/json, which builds codecs
// for every type a struct reaches on first use) cost a fresh init ~0.4 ms.
type initSpec struct {
	Version    string        `json:"ociVersion"`
	Root       *specs.Root   `json:"root,omitempty"`
	Hostname   string        `json:"hostname,omitempty"`
	Domainname string        `json:"domainname,omitempty"`
	Mounts     []specs.Mount `json:"mounts,omitempty"`
	Hooks      *initHooks    `json:"hooks,omitempty"`
	Linux      *initLinux    `json:"linux,omitempty"`
}

// initHooks are the hooks the init itself runs.
type initHooks struct {
	CreateContainer []specs.Hook `json:"createContainer,omitempty"`
	StartContainer  []specs.Hook `json:"startContainer,omitempty"`
}

type initLinux struct {
	Namespaces        []specs.LinuxNamespace `json:"namespaces,omitempty"`
	Devices           []specs.LinuxDevice    `json:"devices,omitempty"`
	Sysctl            map[string]string      `json:"sysctl,omitempty"`
	RootfsPropagation string                 `json:"rootfsPropagation,omitempty"`
	MaskedPaths       []string               `json:"maskedPaths,omitempty"`
	ReadonlyPaths     []string               `json:"readonlyPaths,omitempty"`
	// The filter itself travels compiled (initConfig.Seccomp).
	SeccompListenerPath     string `json:"seccompListenerPath,omitempty"`
	SeccompListenerMetadata string `json:"seccompListenerMetadata,omitempty"`
}

// toInitSpec takes from s what the init needs.
func toInitSpec(s *specs.Spec) *initSpec {
	if s == nil {
		return nil
	}
	w := &initSpec{Version: s.Version, Root: s.Root, Hostname: s.Hostname, Domainname: s.Domainname, Mounts: s.Mounts}
	if h := s.Hooks; h != nil && (len(h.CreateContainer) > 0 || len(h.StartContainer) > 0) {
		w.Hooks = &initHooks{CreateContainer: h.CreateContainer, StartContainer: h.StartContainer}
	}
	if l := s.Linux; l != nil {
		w.Linux = &initLinux{
			Namespaces: l.Namespaces, Devices: l.Devices, Sysctl: l.Sysctl, RootfsPropagation: l.RootfsPropagation,
			MaskedPaths: l.MaskedPaths, ReadonlyPaths: l.ReadonlyPaths,
		}
		if sc := l.Seccomp; sc != nil {
			w.Linux.SeccompListenerPath, w.Linux.SeccompListenerMetadata = sc.ListenerPath, sc.ListenerMetadata
		}
	}
	return w
}

// spec rebuilds the spec the init works from, with p as its process.
func (w *initSpec) spec(p *specs.Process) *specs.Spec {
	if w == nil {
		return nil
	}
	s := &specs.Spec{Version: w.Version, Process: p, Root: w.Root, Hostname: w.Hostname, Domainname: w.Domainname, Mounts: w.Mounts}
	if h := w.Hooks; h != nil {
		s.Hooks = &specs.Hooks{CreateContainer: h.CreateContainer, StartContainer: h.StartContainer}
	}
	if l := w.Linux; l != nil {
		s.Linux = &specs.Linux{
			Namespaces: l.Namespaces, Devices: l.Devices, Sysctl: l.Sysctl, RootfsPropagation: l.RootfsPropagation,
			MaskedPaths: l.MaskedPaths, ReadonlyPaths: l.ReadonlyPaths,
		}
		if l.SeccompListenerPath != "" {
			s.Linux.Seccomp = &specs.LinuxSeccomp{ListenerPath: l.SeccompListenerPath, ListenerMetadata: l.SeccompListenerMetadata}
		}
	}
	return s
}
