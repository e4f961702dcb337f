package registry

import (
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	h := http.Header{}
	h.Add("WWW-Authenticate", `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"`)
	h.Add("WWW-Authenticate", `Basic realm="x \"quoted\"", Bearer realm=https://t.example,error=insufficient_scope`)
	got := parseChallenges(h)
	want := []challenge{
		{scheme: "bearer", params: map[string]string{"realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull,push"}},
		{scheme: "basic", params: map[string]string{"realm": `x "quoted"`}},
		{scheme: "bearer", params: map[string]string{"realm": "https://t.example", "error": "insufficient_scope"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestNames(t *testing.T) {
	for term, want := range map[string][2]string{
		"busybox":                {"docker.io", "busybox"},
		"library/busybox":        {"docker.io", "library/busybox"},
		"127.0.0.1:5000/busy":    {"127.0.0.1:5000", "busy"},
		"localhost/x":            {"localhost", "x"},
		"registry.example.com/y": {"registry.example.com", "y"},
	} {
		d, r := SplitSearchTerm(term)
		if d != want[0] || r != want[1] {
			t.Errorf("SplitSearchTerm(%q) = %q, %q; want %q", term, d, r, want)
		}
	}
	for server, want := range map[string]string{
		"": "docker.io", IndexServer: "docker.io", "docker.io": "docker.io", "registry-1.docker.io": "docker.io",
		"127.0.0.1:5000": "127.0.0.1:5000", "https://r.example:443/v2/": "r.example:443", "http://h:1": "h:1",
	} {
		if got := ServerDomain(server); got != want {
			t.Errorf("ServerDomain(%q) = %q, want %q", server, got, want)
		}
	}
}

func TestEndpoints(t *testing.T) {
	certs := t.TempDir()
	if err := os.Mkdir(filepath.Join(certs, "127.0.0.1:5001"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{CertsDir: certs, Insecure: []string{"10.1.0.0/16", "reg.internal:5000"}, Mirrors: []string{"https://mirror.example"}})
	if err != nil {
		t.Fatal(err)
	}
	urls := func(domain string) (out []string) {
		for _, ep := range c.endpoints(domain) {
			s := ep.base.String()
			if ep.insecure {
				s += " insecure"
			}
			out = append(out, s)
		}
		return out
	}
	for domain, want := range map[string][]string{
		"docker.io":         {"https://mirror.example", "https://registry-1.docker.io"},
		"127.0.0.1:5000":    {"https://127.0.0.1:5000 insecure", "http://127.0.0.1:5000 insecure"},
		"localhost:5000":    {"https://localhost:5000 insecure", "http://localhost:5000 insecure"},
		"127.0.0.1:5001":    {"https://127.0.0.1:5001", "http://127.0.0.1:5001 insecure"}, // certs.d has it: verified TLS
		"10.1.2.3:5000":     {"https://10.1.2.3:5000 insecure", "http://10.1.2.3:5000 insecure"},
		"reg.internal:5000": {"https://reg.internal:5000 insecure", "http://reg.internal:5000 insecure"},
		"quay.io":           {"https://quay.io"},
	} {
		if got := urls(domain); !reflect.DeepEqual(got, want) {
			t.Errorf("endpoints(%s) = %q, want %q", domain, got, want)
		}
	}
	for _, bad := range []Config{{Mirrors: []string{"mirror.example"}}, {Mirrors: []string{"https://m.example/path"}}, {Insecure: []string{"a b"}}} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) took a bad setting", bad)
		}
	}
}
