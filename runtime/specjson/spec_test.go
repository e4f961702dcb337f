package specjson

import (
	"encoding/json"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth.dev/berth/runtime/spec"
)

// full is a spec with every field Decode takes set, several of them to
// values at the edges of their types.
const full = `{
 "ociVersion": "1.2.1",
 "process": {"terminal": true, "consoleSize": {"height": 24, "width": 80},
  "user": {"uid": 4294967295, "gid": 0, "umask": 18, "additionalGids": [1, 2], "username": "u"},
  "args": ["sh", "-c", "echo \"hi\" \\ \u00e9 \ud83d\ude00 \ud800 x\/y\b\f\n\r\t"], "env": [], "cwd": "/",
  "capabilities": {"bounding": ["CAP_KILL"], "effective": [], "inheritable": ["CAP_KILL"], "permitted": ["CAP_KILL"], "ambient": []},
  "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 18446744073709551615, "soft": 1024}],
  "noNewPrivileges": true, "apparmorProfile": "p", "oomScoreAdj": -1000, "selinuxLabel": "l"},
 "root": {"path": "rootfs", "readonly": true},
 "hostname": "h", "domainname": "d",
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"],
   "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}], "gidMappings": []}],
 "hooks": {"prestart": [{"path": "/bin/true", "args": ["true"], "env": ["A=b"], "timeout": 5}], "createRuntime": [],
   "createContainer": [{"path": "/x"}], "startContainer": [], "poststart": [], "poststop": [{"path": "/y"}]},
 "annotations": {"a": "b", "": ""},
 "linux": {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}], "gidMappings": [],
  "sysctl": {"net.ipv4.ip_forward": "1"},
  "resources": {"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": -1, "access": "r"}],
   "memory": {"limit": -1, "reservation": 1, "swap": 9223372036854775807, "kernel": 0, "kernelTCP": 0, "swappiness": 0,
     "disableOOMKiller": false, "useHierarchy": true, "checkBeforeUpdate": true},
   "cpu": {"shares": 1024, "quota": -1, "burst": 0, "period": 100000, "realtimeRuntime": 0, "realtimePeriod": 0, "cpus": "0-1", "mems": "0", "idle": 1},
   "pids": {"limit": -1}, "unified": {"memory.high": "max"}},
  "cgroupsPath": "/berth/x",
  "namespaces": [{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"}],
  "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}],
  "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"], "flags": [],
    "listenerPath": "/l", "listenerMetadata": "m",
    "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 38, "args": [{"index": 1, "value": 2, "valueTwo": 3, "op": "SCMP_CMP_EQ"}]}]},
  "rootfsPropagation": "rprivate", "maskedPaths": ["/proc/kcore"], "readonlyPaths": [], "mountLabel": ""}
}`

func defaultSpec(t testing.TB) []byte {
	b, err := json.Marshal(spec.Default())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// check holds Decode to encoding/json: where Decode takes b, the results
// are equal and encoding/json takes it too.
func check(t *testing.T, b []byte) bool {
	t.Helper()
	got, ok := Decode(b)
	var want specs.Spec
	err := json.Unmarshal(b, &want)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("Decode took what encoding/json refuses (%v):\n%s", err, b)
	}
	if !reflect.DeepEqual(got, &want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(&want)
		t.Fatalf("Decode differs from encoding/json for\n%s\ngot  %s\nwant %s", b, g, w)
	}
	return true
}

func TestTaken(t *testing.T) {
	for name, b := range map[string][]byte{
		"full": []byte(full), "default": defaultSpec(t), "empty": []byte(`{}`), "spaced": []byte(" \n{ \"ociVersion\" : \"1\" }\t\n"),
	} {
		if !check(t, b) {
			t.Errorf("%s: not taken", name)
		}
	}
}

// TestLeftToEncodingJSON: what Decode does not take, encoding/json decides.
func TestLeftToEncodingJSON(t *testing.T) {
	for _, b := range []string{
		`{"ociVersion": "1", "ociVersion": "2"}`,      // a key twice
		`{"OCIVersion": "1"}`,                         // another spelling
		`{"process": null}`,                           // null
		`{"windows": {}}`,                             // not a Linux field
		`{"process": {"scheduler": {"policy": "x"}}}`, // a field it does not know
		`{"process": {"user": {"uid": 1.0}}}`,         // a number with a fraction
		`{"process": {"user": {"uid": 1e3}}}`,         // an exponent
		`{"process": {"user": {"uid": 01}}}`,          // a leading zero
		`{"process": {"user": {"uid": -1}}}`,          // out of range
		`{"process": {"user": {"uid": 4294967296}}}`,  // out of range
		`{"process": {"args": ["a` + "\x01" + `"]}}`,  // a control byte
		`{"hostname": "` + "\xff" + `"}`,              // not UTF-8
		`{"hostname": "\x"}`,                          // a bad escape
		`{"hostname": "\u12"}`,                        // a short escape
		`{"hostname": "a"} x`,                         // trailing data
		`{"hostname": "a"`,                            // cut short
		`[]`,                                          // not an object
		`{"process": {"terminal": "yes"}}`,            // a wrong type
		`{"linux": {"resources": {"memory": {"limit": "1"}}}}`,
	} {
		if check(t, []byte(b)) {
			t.Errorf("took %s", b)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(full))
	f.Add(defaultSpec(f))
	f.Add([]byte(`{"process": {"args": ["\ud83d\ude00\ud800\udc00\udbff"]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, b)
	})
}

func BenchmarkDecode(b *testing.B) {
	in := []byte(full)
	for b.Loop() {
		if _, ok := Decode(in); !ok {
			b.Fatal("not taken")
		}
	}
}

func TestLoneSurrogates(t *testing.T) {
	for _, s := range []string{`\ud800`, `\ud800x`, `\ud800\u0041`, `\udc00\ud800`, `\ud83d\ude00`} {
		if !check(t, []byte(`{"hostname": "`+s+`"}`)) {
			t.Errorf("%s not taken", s)
		}
	}
}
