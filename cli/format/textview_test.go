package format

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// TestTextView: templates see a missing address as docker's CLI does
// (nothing, false), a present one as its text, and the rest of the value
// (promoted fields, JSON) as before.
func TestTextView(t *testing.T) {
	gw := netip.MustParseAddr("10.0.0.1")
	v := container.InspectResponse{
		Name:       "/c",
		HostConfig: &container.HostConfig{Resources: container.Resources{Memory: 42}, DNS: []netip.Addr{gw}},
		NetworkSettings: &container.NetworkSettings{
			Networks: map[string]*network.EndpointSettings{"n": {Gateway: gw, IPAMConfig: &network.EndpointIPAMConfig{}}},
			Ports:    network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8080"}}},
		},
	}
	tmpl := `{{.Name}} {{range .NetworkSettings.Networks}}[{{.IPAddress}}] {{.Gateway}} {{if .IPAddress}}ip{{else}}none{{end}} {{.IPAMConfig}}{{end}} ` +
		`{{.HostConfig.Memory}} {{.HostConfig.DNS}} {{.NetworkSettings.Ports}}`
	var out bytes.Buffer
	if err := Execute(&out, tmpl, TextView(v)); err != nil {
		t.Fatal(err)
	}
	if want := "/c [] 10.0.0.1 none {  []} 42 [10.0.0.1] map[80/tcp:[{ 8080}]]\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	a, _ := json.Marshal(v)
	b, _ := json.Marshal(TextView(v))
	if !bytes.Equal(a, b) {
		t.Errorf("JSON changed:\n%s\n%s", a, b)
	}
	// Values without addresses are left alone (their methods too).
	p := &container.RestartPolicy{Name: "always"}
	if TextView(p) != any(p) {
		t.Error("a value without addresses was copied")
	}
}
