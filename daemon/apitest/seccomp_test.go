package apitest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestContainerSeccompProfile runs custom seccomp profiles as the docker
// CLI sends them (the file's JSON in --security-opt).
func TestContainerSeccompProfile(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	denyMkdir := write("deny-mkdir.json", `{
  "defaultAction": "SCMP_ACT_ALLOW",
  "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
              {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
  "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "comment": "no mkdir"}]
}`)
	out, code := d.exitCode("run", "--rm", "--security-opt", "seccomp="+denyMkdir, "busybox", "mkdir", "/x")
	if code == 0 || !strings.Contains(out, "Operation not permitted") {
		t.Fatalf("mkdir under a profile denying it: %d %q", code, out)
	}
	d.mustDocker("run", "--rm", "busybox", "mkdir", "/x") // the default allows it
	// --privileged runs without seccomp, whatever the profile.
	d.mustDocker("run", "--rm", "--privileged", "--security-opt", "seccomp="+denyMkdir, "busybox", "mkdir", "/x")

	// Rules that apply only with (includes) or without (excludes) a capability.
	byCap := write("by-cap.json", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
  {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
  {"name": "rmdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
  {"names": ["symlink", "symlinkat"], "action": "SCMP_ACT_ERRNO", "excludes": {"arches": ["amd64", "arm64"]}}]}`)
	out, _ = d.exitCode("run", "--rm", "--security-opt", "seccomp="+byCap, "busybox", "sh", "-c", "mkdir /x && rmdir /x; ln -s a /l && echo linked")
	if !strings.Contains(out, "Permission denied") || !strings.Contains(out, "linked") {
		t.Fatalf("profile without CAP_SYS_ADMIN: %d %q", code, out)
	}
	out, code = d.exitCode("run", "--rm", "--cap-add", "SYS_ADMIN", "--security-opt", "seccomp="+byCap, "busybox", "sh", "-c", "mkdir /x")
	if code == 0 || !strings.Contains(out, "Operation not permitted") {
		t.Fatalf("profile with CAP_SYS_ADMIN: %d %q", code, out)
	}
	// Rules on arguments: chmod refused for mode 0700 only.
	byArg := write("by-arg.json", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
  {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 448, "op": "SCMP_CMP_EQ"}]},
  {"names": ["fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 2, "value": 448, "op": "SCMP_CMP_EQ"}]}]}`)
	out, _ = d.exitCode("run", "--rm", "--security-opt", "seccomp="+byArg, "busybox", "sh", "-c", "touch /f; chmod 755 /f && echo mode-755; chmod 700 /f && echo mode-700")
	if !strings.Contains(out, "mode-755") || strings.Contains(out, "mode-700") || !strings.Contains(out, "Operation not permitted") {
		t.Fatalf("profile with argument rules: %q", out)
	}
	// A default action other than allow, with its errno.
	denyAll := write("deny-all.json", `{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
  {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
  {"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"}]}`)
	if out, code := d.exitCode("run", "--rm", "--security-opt", "seccomp="+denyAll, "busybox", "true"); code == 0 {
		t.Fatalf("a profile that refuses everything let the container run: %q", out)
	}
	// One that refuses exit and exit_group too would leave processes
	// spinning in their exit forever (moby/moby#40205): refused.
	denyExit := write("deny-exit.json", `{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}`)
	if out, code := d.exitCode("run", "--rm", "--security-opt", "seccomp="+denyExit, "busybox", "true"); code == 0 || !strings.Contains(out, "could never exit") {
		t.Fatalf("a profile that refuses exit: %d %q", code, out)
	}

	// Bad profiles: 400 at create, in dockerd's words.
	wrongType := write("wrong-type.json", `{"defaultAction": 5}`)
	out, code = d.exitCode("run", "--rm", "--security-opt", "seccomp="+wrongType, "busybox", "true")
	if code != 125 || !strings.Contains(out, "Decoding seccomp profile failed") {
		t.Fatalf("profile of the wrong type: %d %q", code, out)
	}
	both := write("both.json", `{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
  "archMap": [{"architecture": "SCMP_ARCH_X86_64"}], "syscalls": []}`)
	out, code = d.exitCode("create", "--security-opt", "seccomp="+both, "busybox", "true")
	if code == 0 || !strings.Contains(out, "both 'architectures' and 'archMap' are specified") {
		t.Fatalf("profile with architectures and archMap: %d %q", code, out)
	}
	for body, msg := range map[string]string{
		`{"Image":"busybox","HostConfig":{"SecurityOpt":["seccomp={bad"]}}`:                                                                                                                   "Decoding seccomp profile failed",
		`{"Image":"busybox","HostConfig":{"SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_BOGUS\"}"]}}`:                                                                                 "invalid seccomp profile",
		`{"Image":"busybox","HostConfig":{"SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"name\":\"a\",\"names\":[\"b\"],\"action\":\"SCMP_ACT_ERRNO\"}]}"]}}`: "use either 'name' or 'names'",
	} {
		mustContain(t, "create "+body, d.curl("-i", "-X", "POST", "-H", "Content-Type: application/json", "-d", body,
			"http://berth/containers/create"), "HTTP/1.1 400", msg)
	}
	d.mustDocker("run", "--rm", "busybox", "true") // still serving
}
