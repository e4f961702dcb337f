package runtime

import (
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features describes what this runtime implements, per the spec's features.md.
func Features(seccompActions, seccompOps, seccompArchs, seccompFlags []string) *features.Features {
	t, f := true, false
	var caps []string
	for name := range capByName() {
		caps = append(caps, name)
	}
	sort.Strings(caps)
	ns := make([]string, 0, len(nsFlag))
	for t := range nsFlag {
		ns = append(ns, string(t))
	}
	sort.Strings(ns)
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions: []string{
			"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand", "noatime",
			"nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow",
			"private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable",
			"rw", "shared", "slave", "strictatime", "suid", "sync", "tmpcopyup", "unbindable",
		},
		Linux: &features.Linux{
			Namespaces:   ns,
			Capabilities: caps,
			Cgroup:       &features.Cgroup{V1: &t, V2: &t, Systemd: &f, SystemdUser: &f, Rdma: &f},
			Seccomp: &features.Seccomp{
				Enabled: &t, Actions: seccompActions, Operators: seccompOps, Archs: seccompArchs,
				KnownFlags: seccompFlags, SupportedFlags: seccompFlags,
			},
			Apparmor:        &features.Apparmor{Enabled: &f},
			Selinux:         &features.Selinux{Enabled: &f},
			IntelRdt:        &features.IntelRdt{Enabled: &f},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &f}},
		},
	}
}
