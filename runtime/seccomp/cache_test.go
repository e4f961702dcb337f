package seccomp

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	s := dockerProfile(t)
	f1, err := Compile(s, dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir: %v %v", st.Mode(), err)
	}
	file := filepath.Join(dir, cacheKey(s)+".bpf")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(f1.Bytes()) {
		t.Fatal("cache file differs from the filter")
	}
	f2, err := Compile(s, dir)
	if err != nil || string(f2.Bytes()) != string(b) {
		t.Fatalf("cached compile: %v", err)
	}

	// A corrupt or short cache file is ignored and rewritten.
	for _, bad := range [][]byte{b[:len(b)/2], {}, append([]byte("XXXX"), b[4:]...)} {
		if err := os.WriteFile(file, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		f3, err := Compile(s, dir)
		if err != nil || string(f3.Bytes()) != string(b) {
			t.Fatalf("after corruption: %v", err)
		}
		if got, _ := os.ReadFile(file); string(got) != string(b) {
			t.Fatal("corrupt cache file not rewritten")
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("cache dir holds %d entries, want 1 (temp files left?)", len(ents))
	}

	// Any change to the spec changes the key.
	keys := map[string]bool{cacheKey(s): true}
	variants := []func(*specs.LinuxSeccomp){
		func(s *specs.LinuxSeccomp) { s.DefaultErrnoRet = nil },
		func(s *specs.LinuxSeccomp) { s.DefaultErrnoRet = uptr(2) },
		func(s *specs.LinuxSeccomp) { s.Architectures = s.Architectures[:1] },
		func(s *specs.LinuxSeccomp) { s.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog} },
		func(s *specs.LinuxSeccomp) { s.ListenerPath = "/x" },
		func(s *specs.LinuxSeccomp) { s.Syscalls[0].Names = s.Syscalls[0].Names[1:] },
		func(s *specs.LinuxSeccomp) { withArgs(s).Args[0].Value++ },
		func(s *specs.LinuxSeccomp) { withArgs(s).Args[0].ValueTwo++ },
		func(s *specs.LinuxSeccomp) { withArgs(s).Args[0].Index++ },
		func(s *specs.LinuxSeccomp) { s.Syscalls[0].ErrnoRet = uptr(1) },
		func(s *specs.LinuxSeccomp) { // move a name across entries: same strings, other structure
			s.Syscalls[0].Names = append(s.Syscalls[0].Names, s.Syscalls[1].Names...)
			s.Syscalls[1].Names = nil
		},
	}
	for i, v := range variants {
		c := dockerProfile(t)
		v(c)
		k := cacheKey(c)
		if keys[k] {
			t.Errorf("variant %d: same cache key", i)
		}
		keys[k] = true
	}
}

// An unwritable cache does not fail the compile.
func TestCacheUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Compile(dockerProfile(t), filepath.Join(file, "sub")); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkCompileDefaultProfile(b *testing.B) {
	s := dockerProfile(b)
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := Compile(s, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		dir := b.TempDir()
		if _, err := Compile(s, dir); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := Compile(s, dir); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func withArgs(s *specs.LinuxSeccomp) *specs.LinuxSyscall {
	for i := range s.Syscalls {
		if len(s.Syscalls[i].Args) > 0 {
			return &s.Syscalls[i]
		}
	}
	panic("no syscall rule with args")
}
