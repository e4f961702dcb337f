package container

import (
	"runtime"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// berth's default seccomp profile allows by default and refuses (EPERM)
// what reaches kernel facilities that are not namespaced, or that a
// container cannot use anyway without a capability it lacks: module and
// kexec loading, keyrings, the clock, swap, accounting, bpf and perf, mount
// and namespace calls, io_uring (a long record of exploits) and the
// file-handle calls of the "shocker" escape. A call stays allowed when the
// container holds the capability that governs it, as docker's profile
// does. clone3 answers ENOSYS so that libc falls back to clone, whose flags
// a classic filter can see.
var seccompDenied = []struct {
	caps  []string // any of these allows the calls
	calls []string
}{
	{nil, []string{"userfaultfd", "keyctl", "add_key", "request_key", "io_uring_setup", "io_uring_enter", "io_uring_register",
		"uselib", "ustat", "sysfs", "_sysctl", "nfsservctl", "create_module", "get_kernel_syms", "query_module", "vm86", "vm86old"}},
	{[]string{"CAP_SYS_MODULE"}, []string{"init_module", "finit_module", "delete_module"}},
	{[]string{"CAP_SYS_BOOT"}, []string{"reboot", "kexec_load", "kexec_file_load"}},
	{[]string{"CAP_SYS_TIME"}, []string{"settimeofday", "clock_settime", "clock_adjtime", "stime"}},
	{[]string{"CAP_SYS_RAWIO"}, []string{"iopl", "ioperm"}},
	{[]string{"CAP_SYS_PACCT"}, []string{"acct"}},
	{[]string{"CAP_SYS_PTRACE"}, []string{"kcmp"}},
	{[]string{"CAP_SYS_NICE"}, []string{"mbind", "set_mempolicy", "migrate_pages", "move_pages"}},
	{[]string{"CAP_SYSLOG"}, []string{"syslog"}},
	{[]string{"CAP_SYS_TTY_CONFIG"}, []string{"vhangup"}},
	{[]string{"CAP_DAC_READ_SEARCH"}, []string{"open_by_handle_at"}},
	{[]string{"CAP_SYS_ADMIN", "CAP_BPF"}, []string{"bpf"}},
	{[]string{"CAP_SYS_ADMIN", "CAP_PERFMON"}, []string{"perf_event_open"}},
	{[]string{"CAP_SYS_ADMIN"}, []string{"mount", "umount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen",
		"fsconfig", "fsmount", "fspick", "mount_setattr", "setns", "unshare", "quotactl", "quotactl_fd", "lookup_dcookie",
		"name_to_handle_at", "swapon", "swapoff", "fanotify_init"}},
}

// cloneNamespaceFlags are clone(2)'s flags that make namespaces.
var cloneNamespaceFlags = []uint64{unix.CLONE_NEWNS, unix.CLONE_NEWCGROUP, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC,
	unix.CLONE_NEWUSER, unix.CLONE_NEWPID, unix.CLONE_NEWNET}

// defaultSeccomp is the profile a container gets unless it is privileged or
// asked for seccomp=unconfined; caps is its capability set.
func defaultSeccomp(caps []string) *specs.LinuxSeccomp {
	eperm := uint(unix.EPERM)
	enosys := uint(unix.ENOSYS)
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: seccompArchs()}
	for _, g := range seccompDenied {
		if slices.ContainsFunc(g.caps, func(c string) bool { return slices.Contains(caps, c) }) {
			continue
		}
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: g.calls, Action: specs.ActErrno, ErrnoRet: &eperm})
	}
	s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys})
	if !slices.Contains(caps, "CAP_SYS_ADMIN") {
		for _, f := range cloneNamespaceFlags {
			s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"clone"}, Action: specs.ActErrno, ErrnoRet: &eperm,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: f, ValueTwo: f, Op: specs.OpMaskedEqual}}})
		}
	}
	return s
}

// seccompArchs lists the native ABI and the compat ones it can run, so that
// 32-bit calls meet the same rules (an unlisted ABI is refused outright).
func seccompArchs() []specs.Arch {
	switch runtime.GOARCH {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	case "arm64":
		return []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	}
	return nil // the native one only
}

// seccompFor reads the seccomp part of --security-opt: the default profile,
// none ("seccomp=unconfined", or privileged, which wins over any
// profile, as in dockerd), or a custom one (the profile's JSON).
func seccompFor(securityOpt []string, privileged bool, caps []string) (*specs.LinuxSeccomp, error) {
	for _, o := range securityOpt {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		if !ok || k != "seccomp" {
			continue
		}
		switch {
		case v == "unconfined" || privileged:
			return nil, nil
		case v == "builtin":
			return defaultSeccomp(caps), nil
		}
		return customSeccomp(v, caps)
	}
	if privileged {
		return nil, nil
	}
	return defaultSeccomp(caps), nil
}
