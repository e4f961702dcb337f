package container

import (
	"runtime"
	"slices"
	"testing"

	"berth.dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ruleNames(s *specs.LinuxSeccomp) [][]string {
	var out [][]string
	for _, r := range s.Syscalls {
		out = append(out, r.Names)
	}
	return out
}

// TestCustomSeccomp turns docker-format profiles into the OCI section:
// rules kept or dropped by capability, architecture and kernel, archMap
// expanded for this host, the one-name form, and bad profiles refused as
// invalid (400).
func TestCustomSeccomp(t *testing.T) {
	profile := `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"flags":["SECCOMP_FILTER_FLAG_LOG"],
 "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]},
            {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
 "syscalls":[
  {"names":["read","exit_group"],"action":"SCMP_ACT_ALLOW"},
  {"name":"mount","action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
  {"names":["kcmp"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN"]}},
  {"names":["here"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["` + runtime.GOARCH + `"]}},
  {"names":["elsewhere"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["nosucharch"]}},
  {"names":["old-kernel-ok"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"2.6"}},
  {"names":["future-kernel"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"99.0"}},
  {"names":["until-new-kernel"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"2.6"}}]}`
	without, err := customSeccomp(profile, []string{"CAP_CHOWN"})
	if err != nil {
		t.Fatal(err)
	}
	with, err := customSeccomp(profile, []string{"CAP_CHOWN", "CAP_SYS_ADMIN"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ruleNames(without), [][]string{{"read", "exit_group"}, {"kcmp"}, {"here"}, {"old-kernel-ok"}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("rules without CAP_SYS_ADMIN: %v, want %v", got, want)
	}
	if got, want := ruleNames(with), [][]string{{"read", "exit_group"}, {"mount"}, {"here"}, {"old-kernel-ok"}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("rules with CAP_SYS_ADMIN: %v, want %v", got, want)
	}
	if without.DefaultAction != specs.ActErrno || without.DefaultErrnoRet == nil || *without.DefaultErrnoRet != 38 {
		t.Fatalf("default: %v %v", without.DefaultAction, without.DefaultErrnoRet)
	}
	if !slices.Equal(without.Flags, []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}) {
		t.Fatalf("flags: %v", without.Flags)
	}
	if runtime.GOARCH == "amd64" && !slices.Equal(without.Architectures, []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}) {
		t.Fatalf("archMap on amd64: %v", without.Architectures)
	}

	if s, err := customSeccomp(`{}`, nil); s != nil || err != nil {
		t.Fatalf("empty profile: %v %v", s, err)
	}
	for _, bad := range []string{
		`{bad`,
		`{"defaultAction":5}`,
		`{"defaultAction":"SCMP_ACT_BOGUS"}`,
		`{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_BOGUS"]}`,
		`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","args":[{"index":9,"value":1,"op":"SCMP_CMP_EQ"}]}]}`,
		`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}`,
		`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}`,
		`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","includes":{"minKernel":"x"}}]}`,
	} {
		if _, err := customSeccomp(bad, nil); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("profile %s: %v, want an invalid-argument error", bad, err)
		}
	}
	// Privileged wins over a profile; "builtin" is the default one.
	if s, err := seccompFor([]string{"seccomp=" + profile}, true, nil); s != nil || err != nil {
		t.Fatalf("privileged with a profile: %v %v", s, err)
	}
	if s, err := seccompFor([]string{"seccomp=builtin"}, false, nil); err != nil || len(s.Syscalls) != len(defaultSeccomp(nil).Syscalls) {
		t.Fatalf("builtin: %v", err)
	}
}
