package seccomp

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// eval runs f on a seccomp_data in x/net/bpf's interpreter. That VM loads
// words big-endian (network order), so each 32-bit word is stored that way;
// which word of an argument is the high one follows the arch, as in the kernel.
func eval(t testing.TB, f *Filter, audit uint32, nr uint32, args ...uint64) uint32 {
	t.Helper()
	raw := make([]bpf.Instruction, len(f.prog))
	for i, in := range f.prog {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}.Disassemble()
	}
	vm, err := bpf.NewVM(raw)
	if err != nil {
		t.Fatalf("bpf VM rejects the program: %v", err)
	}
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], nr)
	binary.BigEndian.PutUint32(data[4:], audit)
	le := audit&auditArchLE != 0
	for i, a := range args {
		off := 16 + 8*i
		lo, hi := off, off+4
		if !le {
			lo, hi = off+4, off
		}
		binary.BigEndian.PutUint32(data[lo:], uint32(a))
		binary.BigEndian.PutUint32(data[hi:], uint32(a>>32))
	}
	r, err := vm.Run(data)
	if err != nil {
		t.Fatalf("bpf VM: %v", err)
	}
	return uint32(r)
}

func nrOf(t testing.TB, a specs.Arch, name string) uint32 {
	t.Helper()
	ar, err := archByName(a)
	if err != nil {
		t.Fatal(err)
	}
	nr, ok := ar.table.lookup(name)
	if !ok {
		t.Fatalf("%s has no syscall %s", a, name)
	}
	return nr
}

func mustCompile(t testing.TB, s *specs.LinuxSeccomp) *Filter {
	t.Helper()
	f, err := compile(s)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return f
}

func uptr(v uint) *uint { return &v }

// dockerCaps is docker's default capability set.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

type mobyFilter struct {
	Caps      []string `json:"caps"`
	Arches    []string `json:"arches"`
	MinKernel string   `json:"minKernel"`
}

type mobyProfile struct {
	DefaultAction   specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet *uint                    `json:"defaultErrnoRet"`
	ArchMap         []struct {
		Arch specs.Arch   `json:"architecture"`
		Sub  []specs.Arch `json:"subArchitectures"`
	} `json:"archMap"`
	Syscalls []struct {
		specs.LinuxSyscall
		Includes mobyFilter `json:"includes"`
		Excludes mobyFilter `json:"excludes"`
	} `json:"syscalls"`
}

func has(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// dockerProfile turns moby's default.json into the OCI seccomp section that
// docker would put in config.json here: native arch with its sub-arches,
// docker's default capabilities (minKernel is below this kernel throughout).
func dockerProfile(t testing.TB) *specs.LinuxSeccomp {
	t.Helper()
	b, err := os.ReadFile("testdata/docker-default.json")
	if err != nil {
		t.Fatal(err)
	}
	var p mobyProfile
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	s := &specs.LinuxSeccomp{DefaultAction: p.DefaultAction, DefaultErrnoRet: p.DefaultErrnoRet}
	for _, am := range p.ArchMap {
		if am.Arch == nativeArchName() {
			s.Architectures = append([]specs.Arch{am.Arch}, am.Sub...)
		}
	}
	goarch := runtime.GOARCH
	for _, sc := range p.Syscalls {
		if len(sc.Includes.Arches) > 0 && !has(sc.Includes.Arches, goarch) {
			continue
		}
		ok := true
		for _, c := range sc.Includes.Caps {
			ok = ok && has(dockerCaps, c)
		}
		for _, c := range sc.Excludes.Caps {
			ok = ok && !has(dockerCaps, c)
		}
		if !ok || has(sc.Excludes.Arches, goarch) {
			continue
		}
		s.Syscalls = append(s.Syscalls, sc.LinuxSyscall)
	}
	return s
}
