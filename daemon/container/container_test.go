package container

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/leakcheck"
	containertypes "github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestStoreNamesAndReload(t *testing.T) {
	root := t.TempDir()
	s, bad, err := Open(root)
	if err != nil || len(bad) > 0 {
		t.Fatal(err, bad)
	}
	id1, id2 := NewID(), NewID()
	if len(id1) != 64 || id1 == id2 {
		t.Fatalf("ids %q %q", id1, id2)
	}
	c, err := s.New(id1, "web")
	if err != nil {
		t.Fatal(err)
	}
	c.Lock()
	c.Created = time.Now()
	c.Config, c.HostConfig = &containertypes.Config{Image: "busybox"}, &containertypes.HostConfig{}
	c.State.Status = StatusCreated
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	c.Unlock()
	if _, err := s.New(id2, "/web"); !errdefs.Is(err, errdefs.KindConflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	for _, bad := range []string{"x", "-a", "a b", "a/b"} {
		if _, err := s.New(id2, bad); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Fatalf("name %q: %v", bad, err)
		}
	}
	r, err := s.New(id2, "")
	if err != nil || !strings.Contains(r.Name, "_") || !strings.HasPrefix(r.Name, "/") {
		t.Fatalf("random name %q: %v", r.Name, err)
	}
	for _, ref := range []string{id1, "web", "/web", id1[:12]} {
		if got, err := s.Get(ref); err != nil || got != c {
			t.Fatalf("Get(%q): %v", ref, err)
		}
	}
	if _, err := s.Get("nosuch"); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("missing: %v", err)
	}
	// The unsaved record has no file: a reload skips it and says so.
	s2, bad, err := Open(root)
	if err != nil || len(bad) != 1 {
		t.Fatalf("reopen: %v %v", err, bad)
	}
	got, err := s2.Get("web")
	if err != nil || got.ID != id1 || got.Config.Image != "busybox" || got.Dir() != filepath.Join(root, id1) {
		t.Fatalf("reloaded: %+v %v", got, err)
	}
	if err := s2.Delete(got); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, id1)); !os.IsNotExist(err) {
		t.Fatalf("dir left: %v", err)
	}
	if _, err := s2.New(NewID(), "web"); err != nil {
		t.Fatalf("name free after delete: %v", err)
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestResolveUser(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc/passwd"), "root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n")
	writeFile(t, filepath.Join(root, "etc/group"), "root:x:0:\nstaff:x:50:app\napp:x:1002:\naudio:x:29:\n")
	cases := []struct {
		spec  string
		extra []string
		want  Creds
	}{
		{"", nil, Creds{0, 0, nil}},
		{"app", nil, Creds{1001, 1002, []uint32{50}}},
		{"1001", nil, Creds{1001, 1002, []uint32{50}}},
		{"app:audio", nil, Creds{1001, 29, nil}},
		{"4000:4001", []string{"audio", "7"}, Creds{4000, 4001, []uint32{29, 7}}},
	}
	for _, c := range cases {
		got, err := ResolveUser(root, c.spec, c.extra)
		if err != nil || got.UID != c.want.UID || got.GID != c.want.GID || !slices.Equal(got.Groups, c.want.Groups) {
			t.Errorf("%q: %+v %v, want %+v", c.spec, got, err, c.want)
		}
	}
	if _, err := ResolveUser(root, "nobody", nil); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := ResolveUser(root, "app:nogroup", nil); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("unknown group: %v", err)
	}
}

// An image whose /etc/passwd is an absolute symlink must not make the
// daemon read the host's: it resolves inside the root (and here finds
// nothing, so a name is unknown).
func TestResolveUserSymlinkStaysInRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/../../../../etc/passwd", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveUser(root, "root", nil); err == nil {
		t.Fatal("resolved root through a symlink out of the container's root")
	}
	writeFile(t, filepath.Join(root, "real"), "daemon:x:1:1::/:/bin/sh\n")
	os.Remove(filepath.Join(root, "etc/passwd"))
	if err := os.Symlink("/real", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if got, err := ResolveUser(root, "daemon", nil); err != nil || got.UID != 1 {
		t.Fatalf("symlink inside the root: %+v %v", got, err)
	}
}

func TestParseBind(t *testing.T) {
	dir := t.TempDir()
	m, err := ParseBind(dir + ":/data:ro")
	if err != nil || m.Source != dir || m.Destination != "/data" || !slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "rbind") {
		t.Fatalf("%+v %v", m, err)
	}
	missing := filepath.Join(dir, "made")
	if _, err := ParseBind(missing + ":/x"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(missing); err != nil || !st.IsDir() {
		t.Fatalf("missing source not made: %v", err)
	}
	for _, b := range []string{"/a", dir + ":rel", dir + ":/", dir + ":/x:bogus", "a:b:c:d"} {
		if _, err := ParseBind(b); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("%q: %v", b, err)
		}
	}
	if _, err := ParseBind("vol:/data"); !errdefs.Is(err, errdefs.KindNotImplemented) {
		t.Errorf("named volume: %v", err)
	}
}

func TestEnv(t *testing.T) {
	got := MergeEnv([]string{"PATH=/bin", "A=1"}, []string{"A=2", "B=3"})
	if !slices.Equal(got, []string{"PATH=/bin", "A=2", "B=3"}) {
		t.Fatalf("merge: %v", got)
	}
	if got := Env([]string{"A=1"}, true); !slices.Equal(got, []string{"A=1", "PATH=" + DefaultPath, "TERM=xterm"}) {
		t.Fatalf("env: %v", got)
	}
	if got := Env([]string{"PATH=/x"}, false); !slices.Equal(got, []string{"PATH=/x"}) {
		t.Fatalf("env: %v", got)
	}
}

func TestResolvConf(t *testing.T) {
	host := []byte("search example.com\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\n")
	for _, c := range []struct {
		name string
		o    EtcOptions
		want string
	}{
		{"host's without loopback", EtcOptions{HostResolv: host}, "nameserver 10.0.0.2\nsearch example.com\noptions edns0\n"},
		{"only loopback", EtcOptions{HostResolv: []byte("nameserver 127.0.0.1\n")}, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
		{"host network keeps it", EtcOptions{HostResolv: host, HostNetwork: true}, string(host)},
		{"--dns, --dns-search, --dns-option", EtcOptions{HostResolv: host, Nameservers: []netip.Addr{netip.MustParseAddr("10.1.1.1")},
			Search: []string{"a.test", "b.test"}, Options: []string{"timeout:1"}}, "nameserver 10.1.1.1\nsearch a.test b.test\noptions timeout:1\n"},
		{"embedded server", EtcOptions{HostResolv: host, Nameservers: []netip.Addr{netip.MustParseAddr("172.18.0.1")}, Embedded: true},
			"nameserver 172.18.0.1\nsearch example.com\noptions ndots:0 edns0\n"},
		{"--dns-search .", EtcOptions{HostResolv: host, Search: []string{"."}}, "nameserver 10.0.0.2\noptions edns0\n"},
	} {
		if got := string(ResolvConf(c.o)); got != c.want {
			t.Errorf("%s:\n%s\nwant\n%s", c.name, got, c.want)
		}
	}
}

func TestHosts(t *testing.T) {
	got := string(Hosts(EtcOptions{Hostname: "web", Domainname: "example.com",
		IPs:        []netip.Addr{netip.MustParseAddr("172.18.0.2")},
		ExtraHosts: []string{"db:10.0.0.9", "v6=[fd00::1]", "gw:host-gateway"}, LinkLines: []string{"172.18.0.3\tcache c"}}))
	want := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\n" +
		"ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n10.0.0.9\tdb\nfd00::1\tv6\nhost-gateway\tgw\n172.18.0.3\tcache c\n" +
		"172.18.0.2\tweb.example.com web\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func testContainer(t *testing.T) *Container {
	c := &Container{ID: strings.Repeat("ab", 32), Path: "sh", Args: []string{"-c", "true"}, dir: t.TempDir(),
		Config: &containertypes.Config{Env: []string{"A=1"}, Labels: map[string]string{"l": "v"}}, HostConfig: &containertypes.HostConfig{}}
	return c
}

func nsTypes(s *specs.Spec) []specs.LinuxNamespaceType {
	var out []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		out = append(out, n.Type)
	}
	return out
}

func TestSpec(t *testing.T) {
	root := t.TempDir()
	c := testContainer(t)
	pids := int64(50)
	c.HostConfig.Resources = containertypes.Resources{Memory: 64 << 20, CPUShares: 512, NanoCPUs: 1500000000, CpusetCpus: "0", PidsLimit: &pids, BlkioWeight: 300}
	c.HostConfig.Binds = []string{t.TempDir() + ":/data:ro"}
	c.HostConfig.Tmpfs = map[string]string{"/run": "size=1m"}
	c.HostConfig.ReadonlyRootfs = true
	s, err := Spec(c, SpecOptions{Rootfs: root})
	if err != nil {
		t.Fatal(err)
	}
	if s.Root.Path != root || !s.Root.Readonly || s.Hostname != c.ID[:12] || s.Linux.CgroupsPath != "/berth/"+c.ID {
		t.Fatalf("root/hostname/cgroups: %+v %q %q", s.Root, s.Hostname, s.Linux.CgroupsPath)
	}
	if !slices.Equal(s.Process.Args, []string{"sh", "-c", "true"}) || s.Process.Cwd != "/" || s.Process.Terminal || s.Annotations["l"] != "v" {
		t.Fatalf("process: %+v", s.Process)
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 128<<20 || *r.CPU.Shares != 512 || *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 ||
		r.CPU.Cpus != "0" || r.Pids.Limit != 50 || *r.BlockIO.Weight != 300 {
		t.Fatalf("resources: %+v %+v %+v", r.Memory, r.CPU, r.Pids)
	}
	if !slices.Contains(nsTypes(s), specs.NetworkNamespace) {
		t.Fatal("no network namespace")
	}
	dests := map[string]specs.Mount{}
	for _, m := range s.Mounts {
		dests[m.Destination] = m
	}
	for _, d := range []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/data", "/run", "/proc"} {
		if _, ok := dests[d]; !ok {
			t.Fatalf("mount %s missing: %+v", d, s.Mounts)
		}
	}
	if !slices.Contains(dests["/data"].Options, "ro") || !slices.Contains(dests["/run"].Options, "size=1m") {
		t.Fatalf("bind/tmpfs options: %+v %+v", dests["/data"], dests["/run"])
	}
	if slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") || !slices.Contains(s.Process.Capabilities.Bounding, "CAP_CHOWN") {
		t.Fatalf("caps: %v", s.Process.Capabilities.Bounding)
	}

	// Privileged, host network, --init, cap changes.
	c = testContainer(t)
	yes := true
	c.HostConfig.Privileged, c.HostConfig.NetworkMode, c.HostConfig.Init = true, "host", &yes
	s, err = Spec(c, SpecOptions{Rootfs: root, InitBinary: "/proc/self/exe"})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(nsTypes(s), specs.NetworkNamespace) || s.Linux.MaskedPaths != nil || !slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") ||
		!s.Linux.Resources.Devices[0].Allow || len(s.Linux.Devices) == 0 {
		t.Fatalf("privileged/host: ns %v caps %v", nsTypes(s), s.Process.Capabilities.Bounding)
	}
	if !slices.Equal(s.Process.Args[:3], []string{InitPath, "init-reaper", "--"}) {
		t.Fatalf("init args: %v", s.Process.Args)
	}
	c = testContainer(t)
	c.HostConfig.CapDrop, c.HostConfig.CapAdd = []string{"ALL"}, []string{"net_admin"}
	if s, err = Spec(c, SpecOptions{Rootfs: root}); err != nil || !slices.Equal(s.Process.Capabilities.Bounding, []string{"CAP_NET_ADMIN"}) {
		t.Fatalf("cap-drop ALL cap-add net_admin: %v %v", s.Process.Capabilities.Bounding, err)
	}
	c.HostConfig.CapAdd = []string{"bogus"}
	if _, err := Spec(c, SpecOptions{Rootfs: root}); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Fatalf("bogus cap: %v", err)
	}
	c = testContainer(t)
	c.Config.WorkingDir = "rel"
	if _, err := Spec(c, SpecOptions{Rootfs: root}); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Fatalf("relative workdir: %v", err)
	}
}
