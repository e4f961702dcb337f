package command

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// parseRun parses run's flags and args as cobra would.
func parseRun(t *testing.T, args ...string) (*createRequest, error) {
	t.Helper()
	o := &containerOptions{}
	f := pflag.NewFlagSet("run", pflag.ContinueOnError)
	o.addFlags(f)
	if err := f.Parse(args); err != nil {
		return nil, err
	}
	return o.config(f, f.Args())
}

// TestContainerOptions: docker's flags land in the create request's
// fields as docker's CLI puts them.
func TestContainerOptions(t *testing.T) {
	t.Setenv("BERTH_OPT_TEST", "v")
	req, err := parseRun(t, "-i", "-t", "-m", "512m", "--memory-swap", "-1", "--memory-reservation", "1g",
		"--cpus", "1.5", "--cpu-shares", "512", "--pids-limit", "10", "--ulimit", "nofile=10:20", "--ulimit", "nproc=5",
		"--restart", "on-failure:3", "--mount", "type=bind,src=/a,dst=/b,readonly", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770",
		"--device", "/dev/fuse", "--device", "/dev/a:/dev/b:r", "--device", "/dev/c:rw",
		"-p", "127.0.0.1:8080:80/udp", "-p", "9000-9001:9000-9001", "--expose", "7000",
		"--health-cmd", "true", "--health-interval", "2s", "-e", "A=1", "-e", "BERTH_OPT_TEST", "-e", "BERTH_OPT_UNSET",
		"--entrypoint=", "-v", "/h:/c:ro", "-v", "/anon", "--tmpfs", "/run:size=1m", "--volumes-from", "a:ro", "--volumes-from", "b",
		"--mount", "type=volume,src=v,dst=/v,volume-subpath=sub/x,volume-driver=local,volume-opt=o=1,volume-label=l=2,volume-nocopy", "--init", "--stop-timeout", "4",
		"--sysctl", "net.ipv4.ip_forward=1", "--log-opt", "max-size=1m", "--network", "none", "--shm-size", "64m",
		"--security-opt", "no-new-privileges", "--group-add", "10", "--oom-score-adj", "-5",
		"busybox", "sh", "-c", "x")
	if err != nil {
		t.Fatal(err)
	}
	c, h := req.config, req.host
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %#v, want %#v", name, got, want)
		}
	}
	check("image", c.Image, "busybox")
	check("cmd", []string(c.Cmd), []string{"sh", "-c", "x"})
	check("entrypoint", []string(c.Entrypoint), []string{""})
	check("stdin", []bool{c.AttachStdin, c.AttachStdout, c.AttachStderr, c.OpenStdin, c.StdinOnce, c.Tty}, []bool{true, true, true, true, true, true})
	check("env", c.Env, []string{"A=1", "BERTH_OPT_TEST=v", "BERTH_OPT_UNSET"})
	check("memory", []int64{h.Memory, h.MemorySwap, h.MemoryReservation, h.ShmSize}, []int64{512 << 20, -1, 1 << 30, 64 << 20})
	check("cpus", []int64{h.NanoCPUs, h.CPUShares, *h.PidsLimit}, []int64{1_500_000_000, 512, 10})
	check("ulimits", h.Ulimits, []*container.Ulimit{{Name: "nofile", Soft: 10, Hard: 20}, {Name: "nproc", Soft: 5, Hard: 5}})
	check("restart", h.RestartPolicy, container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3})
	check("mounts", h.Mounts, []mount.Mount{{Type: "bind", Source: "/a", Target: "/b", ReadOnly: true},
		{Type: "tmpfs", Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1770}},
		{Type: "volume", Source: "v", Target: "/v", VolumeOptions: &mount.VolumeOptions{Subpath: "sub/x", NoCopy: true,
			Labels: map[string]string{"l": "2"}, DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"o": "1"}}}}})
	check("volumes-from", h.VolumesFrom, []string{"a:ro", "b"})
	check("devices", h.Devices, []container.DeviceMapping{{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
		{PathOnHost: "/dev/a", PathInContainer: "/dev/b", CgroupPermissions: "r"}, {PathOnHost: "/dev/c", PathInContainer: "/dev/c", CgroupPermissions: "rw"}})
	udp := network.MustParsePort("80/udp")
	if b := h.PortBindings[udp]; len(b) != 1 || b[0].HostPort != "8080" || b[0].HostIP.String() != "127.0.0.1" {
		t.Errorf("port bindings of 80/udp: %+v", b)
	}
	for _, p := range []string{"80/udp", "9000/tcp", "9001/tcp", "7000/tcp"} {
		if _, ok := c.ExposedPorts[network.MustParsePort(p)]; !ok {
			t.Errorf("%s not exposed: %v", p, c.ExposedPorts)
		}
	}
	check("health", *c.Healthcheck, container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: 2 * time.Second})
	check("binds", h.Binds, []string{"/h:/c:ro"})
	check("volumes", c.Volumes, map[string]struct{}{"/anon": {}})
	check("tmpfs", h.Tmpfs, map[string]string{"/run": "size=1m"})
	check("init", *h.Init, true)
	check("stop timeout", *c.StopTimeout, 4)
	check("sysctls", h.Sysctls, map[string]string{"net.ipv4.ip_forward": "1"})
	check("log opts", h.LogConfig.Config, map[string]string{"max-size": "1m"})
	check("network", string(h.NetworkMode), "none")
	check("security", h.SecurityOpt, []string{"no-new-privileges"})
	check("groups", h.GroupAdd, []string{"10"})
	check("oom", h.OomScoreAdj, -5)

	// Defaults: attached to stdout and stderr only, no pointers set.
	req, err = parseRun(t, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	c, h = req.config, req.host
	check("default attach", []bool{c.AttachStdin, c.AttachStdout, c.AttachStderr, c.OpenStdin, c.StdinOnce}, []bool{false, true, true, false, false})
	if c.Entrypoint != nil || c.Cmd != nil || h.Init != nil || h.PidsLimit != nil || c.StopTimeout != nil || c.Healthcheck != nil {
		t.Errorf("defaults set: %+v %+v", c, h)
	}
	check("default network", string(h.NetworkMode), "default")
	check("default restart", h.RestartPolicy.Name, container.RestartPolicyMode("no"))

	// -a: only what is named (and stdin with -i).
	req, _ = parseRun(t, "-a", "STDERR", "-i", "busybox")
	check("-a stderr -i", []bool{req.config.AttachStdin, req.config.AttachStdout, req.config.AttachStderr}, []bool{true, false, true})

	for _, bad := range [][]string{
		{"--mount", "type=bind,src=/a", "x"},
		{"--mount", "type=bind,bogus=1,dst=/b", "x"},
		{"--mount", "src", "x"},
		{"-p", "bogus", "x"},
		{"-p", "999.1.1.1:80:80", "x"},
		{"--expose", "x", "x"},
		{"--dns", "nope", "x"},
		{"--device", "a:b:c:d", "x"},
		{"--memory-swap", "x", "x"},
		{"--restart", ":1", "x"},
		{"--no-healthcheck", "--health-retries", "1", "x"},
	} {
		if _, err := parseRun(t, bad...); err == nil {
			t.Errorf("%s: no error", strings.Join(bad, " "))
		}
	}
}
