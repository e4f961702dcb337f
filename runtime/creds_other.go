//go:build !(amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package runtime

import "golang.org/x/sys/unix"

// Elsewhere the 16/32-bit id syscalls differ; every thread changes (see creds.go).

func setgroupsThread(gids []int) error { return unix.Setgroups(gids) }
func setresgidThread(gid int) error    { return unix.Setresgid(gid, gid, gid) }
func setresuidThread(uid int) error    { return unix.Setresuid(uid, uid, uid) }
