package seccomp

import (
	"fmt"
	"runtime"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

//go:generate go run mktables.go

type sysEntry struct {
	name string
	nr   uint32
}

// sysTable is sorted by name. It is a slice literal, not a map, so that the
// tables cost nothing at program start (the linker lays them out).
type sysTable []sysEntry

func (t sysTable) lookup(name string) (uint32, bool) {
	i := sort.Search(len(t), func(i int) bool { return t[i].name >= name })
	if i < len(t) && t[i].name == name {
		return t[i].nr, true
	}
	return 0, false
}

// x32SyscallBit marks x32 syscalls, which arrive with AUDIT_ARCH_X86_64.
const x32SyscallBit = 0x40000000

// auditArchLE is __AUDIT_ARCH_LE from linux/audit.h.
const auditArchLE = 0x40000000

type arch struct {
	name  specs.Arch
	audit uint32
	table sysTable
	// bits32: arguments are 32-bit; like libseccomp only the low word is compared.
	bits32 bool
}

// bigEndian says where the high word of a 64-bit argument sits in
// seccomp_data: the kernel stores args in the CPU's byte order.
func (a *arch) bigEndian() bool { return a.audit&auditArchLE == 0 }

// archs lists every architecture the spec names. Those without a syscall
// table are known (so they are not "unknown arch" errors) but cannot be
// compiled for.
var archs = []*arch{
	{specs.ArchX86_64, unix.AUDIT_ARCH_X86_64, sysAmd64, false},
	{specs.ArchX86, unix.AUDIT_ARCH_I386, sys386, true},
	{specs.ArchX32, unix.AUDIT_ARCH_X86_64, sysX32, false},
	{specs.ArchAARCH64, unix.AUDIT_ARCH_AARCH64, sysArm64, false},
	{specs.ArchARM, unix.AUDIT_ARCH_ARM, sysArm, true},
	{specs.ArchRISCV64, unix.AUDIT_ARCH_RISCV64, sysRiscv64, false},
	{specs.ArchPPC64LE, unix.AUDIT_ARCH_PPC64LE, sysPpc64, false},
	{specs.ArchPPC64, unix.AUDIT_ARCH_PPC64, sysPpc64, false},
	{specs.ArchPPC, unix.AUDIT_ARCH_PPC, sysPpc, true},
	{specs.ArchS390X, unix.AUDIT_ARCH_S390X, sysS390x, false},
	{specs.ArchMIPS, unix.AUDIT_ARCH_MIPS, sysMips, true},
	{specs.ArchMIPSEL, unix.AUDIT_ARCH_MIPSEL, sysMips, true},
	{specs.ArchMIPS64, unix.AUDIT_ARCH_MIPS64, sysMips64, false},
	{specs.ArchMIPSEL64, unix.AUDIT_ARCH_MIPSEL64, sysMips64, false},
	{specs.ArchLOONGARCH64, unix.AUDIT_ARCH_LOONGARCH64, sysLoong64, false},
	{specs.ArchS390, unix.AUDIT_ARCH_S390, nil, true},
	{specs.ArchMIPS64N32, unix.AUDIT_ARCH_MIPS64N32, nil, true},
	{specs.ArchMIPSEL64N32, unix.AUDIT_ARCH_MIPSEL64N32, nil, true},
	{specs.ArchPARISC, unix.AUDIT_ARCH_PARISC, nil, true},
	{specs.ArchPARISC64, unix.AUDIT_ARCH_PARISC64, nil, false},
	{specs.ArchM68K, unix.AUDIT_ARCH_M68K, nil, true},
	{specs.ArchSH, unix.AUDIT_ARCH_SHEL, nil, true},
	{specs.ArchSHEB, unix.AUDIT_ARCH_SH, nil, true},
}

func archByName(n specs.Arch) (*arch, error) {
	for _, a := range archs {
		if a.name == n {
			if a.table == nil {
				return nil, fmt.Errorf("architecture %s is not supported (no syscall table)", n)
			}
			return a, nil
		}
	}
	return nil, fmt.Errorf("unknown architecture %q", n)
}

// nativeArchName is the architecture of the running kernel's ABI as seen by
// this binary; like libseccomp it is always part of the filter.
func nativeArchName() specs.Arch {
	switch runtime.GOARCH {
	case "amd64":
		return specs.ArchX86_64
	case "386":
		return specs.ArchX86
	case "arm64":
		return specs.ArchAARCH64
	case "arm":
		return specs.ArchARM
	case "riscv64":
		return specs.ArchRISCV64
	case "ppc64le":
		return specs.ArchPPC64LE
	case "ppc64":
		return specs.ArchPPC64
	case "s390x":
		return specs.ArchS390X
	case "mips":
		return specs.ArchMIPS
	case "mipsle":
		return specs.ArchMIPSEL
	case "mips64":
		return specs.ArchMIPS64
	case "mips64le":
		return specs.ArchMIPSEL64
	case "loong64":
		return specs.ArchLOONGARCH64
	}
	return ""
}

// Archs lists the architectures Compile accepts (for `features`).
func Archs() []string {
	var out []string
	for _, a := range archs {
		if a.table != nil {
			out = append(out, string(a.name))
		}
	}
	return out
}
