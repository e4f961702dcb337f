package daemon

import (
	"slices"
	"strings"
	"testing"
	"time"

	"berth.dev/berth/daemon/container"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/image"
	containertypes "github.com/moby/moby/api/types/container"
)

// TestMergeHealthcheck: the image's HEALTHCHECK under the request's, field
// by field; NONE kept (it turns the check off); bad values refused.
func TestMergeHealthcheck(t *testing.T) {
	img := image.ContainerConfig{Shell: []string{"/bin/ash", "-c"}, Healthcheck: &image.HealthConfig{
		Test: []string{"CMD-SHELL", "test -f /ok"}, Interval: time.Second, Timeout: 2 * time.Second, Retries: 7}}
	cfg := &containertypes.Config{Healthcheck: &containertypes.HealthConfig{Retries: 2, StartPeriod: time.Minute}}
	if err := mergeHealthcheck(cfg, img); err != nil {
		t.Fatal(err)
	}
	want := containertypes.HealthConfig{Test: []string{"CMD-SHELL", "test -f /ok"}, Interval: time.Second, Timeout: 2 * time.Second,
		StartPeriod: time.Minute, Retries: 2}
	if h := cfg.Healthcheck; !slices.Equal(h.Test, want.Test) || h.Interval != want.Interval || h.Timeout != want.Timeout ||
		h.StartPeriod != want.StartPeriod || h.Retries != want.Retries {
		t.Fatalf("merged: %+v, want %+v", *h, want)
	}
	c := &container.Container{Config: cfg}
	if got := probeCmd(c); !slices.Equal(got, []string{"/bin/ash", "-c", "test -f /ok"}) {
		t.Fatalf("probe under the image's shell: %q", got)
	}

	none := &containertypes.Config{Healthcheck: &containertypes.HealthConfig{Test: []string{"NONE"}}}
	if err := mergeHealthcheck(none, img); err != nil || probeCmd(&container.Container{Config: none}) != nil {
		t.Fatalf("NONE: %v %v", err, none.Healthcheck)
	}
	exe := &containertypes.Config{Healthcheck: &containertypes.HealthConfig{Test: []string{"CMD", "/bin/check", "-q"}}}
	if err := mergeHealthcheck(exe, image.ContainerConfig{}); err != nil || !slices.Equal(probeCmd(&container.Container{Config: exe}), []string{"/bin/check", "-q"}) {
		t.Fatalf("CMD: %v", err)
	}
	for _, h := range []containertypes.HealthConfig{{Interval: time.Microsecond}, {Timeout: -1}, {StartPeriod: 5}, {StartInterval: 1}, {Retries: -1}} {
		if err := mergeHealthcheck(&containertypes.Config{Healthcheck: &h}, img); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("%+v: %v", h, err)
		}
	}
}

func TestLimitedBuffer(t *testing.T) {
	var b limitedBuffer
	b.Write([]byte(strings.Repeat("a", 4000)))
	if b.String() != strings.Repeat("a", 4000) {
		t.Fatal("short output changed")
	}
	n, err := b.Write([]byte(strings.Repeat("b", 200)))
	if n != 200 || err != nil {
		t.Fatalf("write: %d %v", n, err)
	}
	if want := strings.Repeat("a", 4000) + strings.Repeat("b", 96) + "..."; b.String() != want {
		t.Fatalf("cut output: %d bytes", len(b.String()))
	}
}
