// Package seccomp compiles OCI seccomp profiles into classic BPF programs,
// caches compiled programs on disk so a profile is compiled once, and loads
// them into the calling thread.
//
// CONTRACT (used by package runtime; keep the exported API stable):
//
//	f, err := seccomp.Compile(spec *specs.LinuxSeccomp, cacheDir string) // parent side, cached
//	b := f.Bytes(); f2, err := seccomp.FromBytes(b)                      // ship it to the init over a pipe
//	fd, err := f.Load()   // in the init, just before execve; returns the notify listener fd or -1
package seccomp
