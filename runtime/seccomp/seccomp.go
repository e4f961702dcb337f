// Package seccomp compiles OCI seccomp profiles into classic BPF programs,
// caches compiled programs on disk so a profile is compiled once, and loads
// them into the calling thread.
//
// CONTRACT (used by package runtime; keep the exported API stable):
//
//	f, err := seccomp.Compile(spec *specs.LinuxSeccomp, cacheDir string) // parent side, cached
//	b := f.Bytes(); f2, err := seccomp.FromBytes(b)                      // ship it to the init over a pipe
//	fd, err := f.Load()   // in the init, just before execve; returns the notify listener fd or -1
//
// The compiler is pure Go (no libseccomp, no cgo). The program checks the
// architecture, then finds the syscall number by binary search over ranges
// of numbers that share an action, and only then evaluates argument rules.
package seccomp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// compilerVersion is part of the cache key: bump it whenever the code a
// given spec compiles to changes.
const compilerVersion = "1"

// Filter is a compiled seccomp program with the flags to load it with.
type Filter struct {
	prog     []unix.SockFilter
	flags    uint32 // SECCOMP_FILTER_FLAG_* from the spec
	listener bool   // an action is SCMP_ACT_NOTIFY: load with NEW_LISTENER
}

// Len is the number of BPF instructions.
func (f *Filter) Len() int { return len(f.prog) }

// Listener reports whether Load returns a notify listener fd.
func (f *Filter) Listener() bool { return f.listener }

// Instructions returns a copy of the program.
func (f *Filter) Instructions() []unix.SockFilter {
	return append([]unix.SockFilter(nil), f.prog...)
}

// Compile compiles s for the native architecture plus those s lists.
// With a cacheDir, the program is looked up there first by a hash of s, the
// compiler version and the native architecture, and stored there after
// compiling. Failing to write the cache is not an error: it only costs time.
// A profile under which no process could exit is refused (see errNoExit).
func Compile(s *specs.LinuxSeccomp, cacheDir string) (*Filter, error) {
	f, err := compileCached(s, cacheDir)
	if err != nil {
		return nil, err
	}
	if err := checkExit(f); err != nil {
		return nil, err
	}
	return f, nil
}

func compileCached(s *specs.LinuxSeccomp, cacheDir string) (*Filter, error) {
	if s == nil {
		return nil, errors.New("no seccomp configuration")
	}
	if cacheDir == "" {
		return compile(s)
	}
	file := filepath.Join(cacheDir, cacheKey(s)+".bpf")
	if b, err := os.ReadFile(file); err == nil {
		if f, err := FromBytes(b); err == nil {
			return f, nil
		}
		// Corrupt or short: compile again and overwrite it.
	}
	f, err := compile(s)
	if err != nil {
		return nil, err
	}
	_ = writeCache(cacheDir, file, f.Bytes())
	return f, nil
}

func writeCache(dir, file string, b []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// cacheKey hashes a canonical encoding of s: every field, in a fixed order,
// length-prefixed, so that distinct specs never encode alike.
func cacheKey(s *specs.LinuxSeccomp) string {
	e := keyEncoder{b: make([]byte, 0, 8192)}
	e.str("berth-seccomp/" + compilerVersion + "/" + tablesVersion)
	e.str(string(nativeArchName()))
	e.str(string(s.DefaultAction))
	e.optUint(s.DefaultErrnoRet)
	e.num(uint64(len(s.Architectures)))
	for _, a := range s.Architectures {
		e.str(string(a))
	}
	e.num(uint64(len(s.Flags)))
	for _, f := range s.Flags {
		e.str(string(f))
	}
	e.str(s.ListenerPath)
	e.str(s.ListenerMetadata)
	e.num(uint64(len(s.Syscalls)))
	for _, sc := range s.Syscalls {
		e.num(uint64(len(sc.Names)))
		for _, n := range sc.Names {
			e.str(n)
		}
		e.str(string(sc.Action))
		e.optUint(sc.ErrnoRet)
		e.num(uint64(len(sc.Args)))
		for _, a := range sc.Args {
			e.num(uint64(a.Index))
			e.num(a.Value)
			e.num(a.ValueTwo)
			e.str(string(a.Op))
		}
	}
	sum := sha256.Sum256(e.b)
	return hex.EncodeToString(sum[:])
}

type keyEncoder struct{ b []byte }

func (e *keyEncoder) num(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }

func (e *keyEncoder) str(s string) {
	e.num(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *keyEncoder) optUint(p *uint) {
	if p == nil {
		e.num(0)
		return
	}
	e.num(1)
	e.num(uint64(*p))
}

// Serialized form (little endian):
//
//	magic "BSCF", version u8, listener u8, 2 reserved bytes, flags u32,
//	count u32, count × {code u16, jt u8, jf u8, k u32}, crc32c u32 of all before.
const (
	magic      = "BSCF"
	fmtVersion = 1
	headerLen  = 16
)

// castagnoli is made on first use: building the SSE4.2 tables costs about
// 0.1 ms, which every berth process paid at start.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// Bytes serializes f for FromBytes (and the on-disk cache).
func (f *Filter) Bytes() []byte {
	b := make([]byte, headerLen+8*len(f.prog)+4)
	copy(b, magic)
	b[4] = fmtVersion
	if f.listener {
		b[5] = 1
	}
	binary.LittleEndian.PutUint32(b[8:], f.flags)
	binary.LittleEndian.PutUint32(b[12:], uint32(len(f.prog)))
	p := b[headerLen:]
	for _, in := range f.prog {
		binary.LittleEndian.PutUint16(p, in.Code)
		p[2], p[3] = in.Jt, in.Jf
		binary.LittleEndian.PutUint32(p[4:], in.K)
		p = p[8:]
	}
	n := len(b) - 4
	binary.LittleEndian.PutUint32(b[n:], crc32.Checksum(b[:n], castagnoli()))
	return b
}

// FromBytes decodes what Bytes produced, rejecting anything truncated,
// corrupted or written by another format version.
func FromBytes(b []byte) (*Filter, error) {
	if len(b) < headerLen+4 || string(b[:4]) != magic {
		return nil, errors.New("not a compiled seccomp filter")
	}
	if b[4] != fmtVersion {
		return nil, fmt.Errorf("compiled seccomp filter has format version %d, want %d", b[4], fmtVersion)
	}
	n := binary.LittleEndian.Uint32(b[12:])
	if n == 0 || n > maxInsns || len(b) != headerLen+8*int(n)+4 {
		return nil, errors.New("compiled seccomp filter has a bad length")
	}
	end := len(b) - 4
	if crc32.Checksum(b[:end], castagnoli()) != binary.LittleEndian.Uint32(b[end:]) {
		return nil, errors.New("compiled seccomp filter is corrupt (checksum)")
	}
	f := &Filter{
		listener: b[5] == 1,
		flags:    binary.LittleEndian.Uint32(b[8:]),
		prog:     make([]unix.SockFilter, n),
	}
	p := b[headerLen:]
	for i := range f.prog {
		f.prog[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(p), Jt: p[2], Jf: p[3], K: binary.LittleEndian.Uint32(p[4:])}
		p = p[8:]
	}
	return f, nil
}

// Raw returns the program as the kernel takes it (struct sock_filter
// array, native byte order) and the SECCOMP_FILTER_FLAG_* to load it with,
// for a loader that is not Go (the C init, runtime/nsenter). A filter with
// a listener needs Load.
func (f *Filter) Raw() (prog []byte, flags uint32) {
	prog = make([]byte, 0, 8*len(f.prog))
	for _, in := range f.prog {
		prog = binary.NativeEndian.AppendUint16(prog, in.Code)
		prog = append(prog, in.Jt, in.Jf)
		prog = binary.NativeEndian.AppendUint32(prog, in.K)
	}
	return prog, f.flags &^ flagWaitKillableRecv
}
