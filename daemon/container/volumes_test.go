package container

import (
	"strings"
	"testing"

	"berth.dev/berth/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

func TestPlanVolumes(t *testing.T) {
	host := t.TempDir()
	hc := &containertypes.HostConfig{
		Binds: []string{"data:/data", "logs:/var/log:ro,nocopy", host + ":/host"},
		Mounts: []mount.Mount{
			{Type: mount.TypeVolume, Target: "/m"},
			{Type: mount.TypeVolume, Source: "opt", Target: "/o", ReadOnly: true, VolumeOptions: &mount.VolumeOptions{
				NoCopy: true, DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}}}},
		},
		Tmpfs: map[string]string{"/run": ""},
	}
	inherited := []MountPoint{{Name: "from", Destination: "/from", RW: true}, {Name: "shadowed", Destination: "/data", RW: true}}
	// The image's /data, /host and /run are covered; /cache is not.
	img := map[string]struct{}{"/data": {}, "/host": {}, "/run": {}, "/cache/": {}}
	got, err := PlanVolumes(hc, inherited, map[string]struct{}{"/anon": {}}, img)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, mp := range got {
		lines = append(lines, strings.Join([]string{mp.Name, mp.Destination, mp.Mode, pick(mp.RW, "rw", "ro"), pick(mp.CopyData, "copy", "nocopy"), pick(mp.Anonymous, "anonymous", "named"), mp.DriverOpts["type"]}, " "))
	}
	want := []string{
		"data /data z rw copy named ",
		"logs /var/log ro,nocopy ro nocopy named ",
		" /m z rw copy anonymous ",
		"opt /o z ro nocopy named tmpfs",
		"from /from  rw nocopy named ",
		" /anon  rw copy anonymous ",
		" /cache  rw copy anonymous ",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	for _, c := range []struct {
		hc   containertypes.HostConfig
		want string
	}{
		{containertypes.HostConfig{Binds: []string{"a1:/d", "b1:/d"}}, "Duplicate mount point: /d"},
		{containertypes.HostConfig{Binds: []string{"a1:/d", host + ":/d/"}}, "Duplicate mount point: /d"},
		{containertypes.HostConfig{Binds: []string{"a1:/d:rx"}}, "invalid mode: rx"},
		{containertypes.HostConfig{Binds: []string{"a1:relative"}}, "destination must be an absolute path"},
		{containertypes.HostConfig{Binds: []string{"a1:/"}}, "destination must be an absolute path other than /"},
		{containertypes.HostConfig{Binds: []string{"bad!:/d"}}, "includes invalid characters for a local volume name"},
		{containertypes.HostConfig{Binds: []string{"../x:/d"}}, "includes invalid characters"},
		{containertypes.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "a/b", Target: "/d"}}}, "includes invalid characters"},
		{containertypes.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Target: "d"}}}, "mount path must be absolute"},
	} {
		_, err := PlanVolumes(&c.hc, nil, nil, nil)
		if !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.hc, err, c.want)
		}
	}
	_, err = PlanVolumes(&containertypes.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Target: "/d",
		VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "nfs"}}}}}, nil, nil, nil)
	if !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("unknown driver: %v", err)
	}
	_, err = PlanVolumes(&containertypes.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "v1", Target: "/d",
		VolumeOptions: &mount.VolumeOptions{Subpath: "sub/x"}}}}, nil, nil, nil)
	if err != nil {
		t.Errorf("subpath: %v", err)
	}
	for _, m := range []mount.Mount{{Type: mount.TypeVolume, Source: "v1", Target: "/d", VolumeOptions: &mount.VolumeOptions{Subpath: "../x"}},
		{Type: mount.TypeVolume, Source: "v1", Target: "/d", VolumeOptions: &mount.VolumeOptions{Subpath: "/x"}},
		{Type: mount.TypeVolume, Target: "/d", VolumeOptions: &mount.VolumeOptions{Subpath: "x"}}} {
		if _, err := PlanVolumes(&containertypes.HostConfig{Mounts: []mount.Mount{m}}, nil, nil, nil); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("subpath %q of %q: %v", m.VolumeOptions.Subpath, m.Source, err)
		}
	}
	if _, err := PlanVolumes(&containertypes.HostConfig{VolumeDriver: "nfs"}, nil, nil, nil); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("--volume-driver nfs: %v", err)
	}
	if _, err := PlanVolumes(&containertypes.HostConfig{}, nil, map[string]struct{}{"rel": {}}, nil); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("relative VOLUME: %v", err)
	}
}

func pick(v bool, yes, no string) string {
	if v {
		return yes
	}
	return no
}

// A volume under a bind, or a bind under a volume, is mounted after its
// parent whatever their kinds.
func TestSpecMountOrder(t *testing.T) {
	host := t.TempDir()
	c := testContainer(t)
	c.HostConfig.Binds = []string{host + ":/data/sub", "named:/data"}
	mps, err := PlanVolumes(c.HostConfig, nil, nil, map[string]struct{}{"/etc": {}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Spec(c, SpecOptions{Rootfs: t.TempDir(), Volumes: VolumeSpecMounts(mps, map[string]string{"named": "/v/named", "": "/v/anon"})})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, m := range s.Mounts {
		switch m.Destination {
		case "/data", "/data/sub", "/etc", "/etc/hosts":
			order = append(order, m.Destination)
		}
	}
	if strings.Join(order, " ") != "/data /etc /etc/hosts /data/sub" {
		t.Fatalf("order: %v", order)
	}
}
