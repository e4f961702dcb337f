package runtime

import (
	"os"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestWireRoundTrip sends an init config with every kind of field set (and
// some left nil or empty, which must stay so) through the wire form.
func TestWireRoundTrip(t *testing.T) {
	mode := os.FileMode(0o620)
	uid, umask, oom, timeout := uint32(7), uint32(0o22), -500, 3
	cfg := initConfig{
		ID: "c1",
		Spec: &initSpec{
			Version: "1.2.1", Root: &specs.Root{Path: "/r", Readonly: true}, Hostname: "h",
			Mounts: []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", ""}},
				{Destination: "/m", UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}}},
			Hooks: &initHooks{StartContainer: []specs.Hook{{Path: "/bin/x", Args: []string{"x"}, Timeout: &timeout}}},
			Linux: &initLinux{
				Namespaces:  []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}},
				Devices:     []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode, UID: &uid}},
				Sysctl:      map[string]string{"net.ipv4.ip_forward": "1", "kernel.msgmax": "8192"},
				MaskedPaths: []string{"/proc/kcore"}, SeccompListenerPath: "/run/l.sock",
			},
		},
		Process: &specs.Process{
			Terminal: true, ConsoleSize: &specs.Box{Height: 24, Width: 80},
			User: specs.User{UID: 1, GID: 2, Umask: &umask, AdditionalGids: []uint32{3, 4}},
			Args: []string{"sh", "-c", "echo ünïcode"}, Env: []string{"A=1"}, Cwd: "/",
			Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Ambient: []string{}},
			Rlimits:      []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1 << 40, Soft: 1024}},
			OOMScoreAdj:  &oom, Scheduler: &specs.Scheduler{Policy: "SCHED_OTHER", Nice: -5, Flags: []specs.LinuxSchedulerFlag{"SCHED_FLAG_RESET_ON_FORK"}},
		},
		NoNewKeyring: true, Seccomp: []byte{0, 1, 2, 255}, NewUTS: true,
		CgroupTasks: []string{"/sys/fs/cgroup/cpu/x"}, HostPid: 4242,
		State: specs.State{Version: "1.2.1", ID: "c1", Status: StatusCreated, Pid: 4242, Annotations: map[string]string{"k": "v"}},
		Fds:   initFds{Sync: 3, Fifo: 4, Preserve: 0},
	}
	b, err := marshalWire(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got initConfig
	if err := unmarshalWire(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", got, cfg)
	}
	if got.Process.Capabilities.Ambient == nil || got.Spec.Linux.ReadonlyPaths != nil {
		t.Fatal("empty and nil slices must stay apart")
	}
	for _, n := range []int{0, 1, len(b) / 2, len(b) - 1} {
		var c initConfig
		if err := unmarshalWire(b[:n], &c); err == nil {
			t.Errorf("a message cut to %d of %d bytes decoded", n, len(b))
		}
	}
	var m syncMsg
	if err := unmarshalWire(append(b, 0), &m); err == nil {
		t.Error("a config decoded as a sync message")
	}
}
