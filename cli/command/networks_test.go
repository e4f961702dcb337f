package command_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"berth.dev/berth/internal/testutil"
)

// requireNetworkRoutes skips a test on berth's daemon while it has no
// network routes: GET /networks answering 404.
func requireNetworkRoutes(t *testing.T, d daemon) {
	t.Helper()
	if d.name != "berth" {
		return
	}
	hc := unixClient(strings.TrimPrefix(d.host, "unix://"))
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://berth/networks")
	if err != nil {
		t.Fatalf("GET /networks: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		t.Skip("berth daemon answers 404 for GET /networks: the network routes (/networks, /networks/{id}, create, connect, disconnect, prune) are not there yet")
	}
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}, Timeout: time.Minute}
}

// hexIDs are object IDs, which differ between two objects made alike.
var hexIDs = regexp.MustCompile(`\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b`)

// TestNetworksSameAsDocker runs the network commands, port and ps's
// network columns with berth and with docker against the same daemon
// (dockerd, then berth's): output, errors and exit codes must agree. The
// docker CLI's output on berth's daemon must also be dockerd's, where
// nothing daemon-specific is in it.
func TestNetworksSameAsDocker(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	daemonOut := map[string][]result{}
	var crossCases [][]string
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			requireNetworkRoutes(t, d)
			berth := func(args ...string) result { return run(t, nil, bin, d.host, args...) }
			docker := func(args ...string) result { return run(t, nil, dockerCLI, d.host, args...) }
			if r := berth("load", "-i", one); r.code != 0 {
				t.Fatalf("load: %s", r)
			}
			t.Cleanup(func() {
				docker("rm", "-f", "nuser", "nuser2", "pub")
				docker("network", "rm", "bn1", "bn2", "bn10", "ra", "rb", "ia", "ib", "pa", "pb")
			})
			for _, args := range [][]string{
				{"network", "create", "--subnet", "10.213.1.0/24", "--gateway", "10.213.1.1", "--label", "team=a", "-o", "foo=bar", "bn1"},
				{"network", "create", "bn2"},
				{"network", "create", "--internal", "--label", "team=b", "bn10"},
				{"run", "-d", "--name", "nuser", "--network", "bn1", "berthtest/one:v1", "sleep", "300"},
				{"run", "-d", "--name", "nuser2", "--network", "bn2", "berthtest/one:v1", "sleep", "300"},
			} {
				if r := docker(args...); r.code != 0 {
					t.Fatalf("docker %v: %s", args, r)
				}
			}
			cases := [][]string{
				{"network", "ls", "-f", "type=custom"},
				{"network", "ls"},
				{"network", "list", "-q"},
				{"network", "ls", "--no-trunc"},
				{"network", "ls", "--format", "json"},
				{"network", "ls", "--format", `{{json .}}`},
				{"network", "ls", "--format", `{{.ID}}|{{.Name}}|{{.Driver}}|{{.Scope}}|{{.IPv4}}|{{.IPv6}}|{{.Internal}}|{{.Labels}}|{{.Label "team"}}|{{.CreatedAt}}`},
				{"network", "ls", "--format", `table {{.Name}}\t{{.Labels}}\t{{.Internal}}`},
				{"network", "ls", "-f", "driver=bridge", "-q"},
				{"network", "ls", "-f", "name=bn1"},
				{"network", "ls", "-f", "label=team", "--format", "{{.Name}}"},
				{"network", "ls", "-f", "label=team=a", "--format", "{{.Name}}"},
				{"network", "ls", "-f", "type=builtin", "--format", "{{.Name}}"},
				{"network", "ls", "-f", "dangling=true", "--format", "{{.Name}}"},
				{"network", "ls", "-f", "dangling=false", "--format", "{{.Name}}"},
				{"network", "ls", "-f", "scope=local", "-f", "type=custom", "--format", "{{.Name}}"},
				{"network", "ls", "-f", "bogus=1"},
				{"network", "ls", "-f", "type=bogus"},
				{"network", "ls", "-f", "dangling=maybe"},
				{"network", "ls", "--format", "{{.Nope}}"},
				{"network", "ls", "x"},
				{"network", "inspect", "bn1"},
				{"network", "inspect", "bn1", "bn10"},
				{"network", "inspect", "-v", "bn2"},
				{"network", "inspect", "-f", "json", "bn1", "bn2"},
				{"network", "inspect", "-f", "{{json .}}", "bn10"},
				{"network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}} {{.Internal}} {{.IPAM.Driver}} {{.IPAM.Config}} {{json .Labels}} {{.Options}}", "bn1", "bn10"},
				{"network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}} [{{.IPv6Address}}]{{end}}", "bn1"},
				{"network", "inspect", "nosuch"},
				{"network", "inspect", "-f", "{{.Name}}", "bn1", "nosuch"},
				{"network", "inspect"},
				{"inspect", "--type", "network", "-f", "{{.Name}} {{.Internal}}", "bn10"},
				{"inspect", "-f", "{{.Name}} {{.Driver}}", "bn2"},
				{"inspect", "--type", "network", "nosuch"},
				{"network", "rm", "nosuch"},
				{"network", "rm", "-f", "nosuch"},
				{"network", "rm"},
				{"network", "create", "bn1"},
				{"network", "create"},
				{"network", "create", "a", "b"},
				{"network", "create", "--subnet", "bogus", "x9"},
				{"network", "create", "--gateway", "10.213.9.1", "x9"},
				{"network", "create", "--subnet", "10.213.9.0/24", "--ip-range", "bogus", "x9"},
				{"network", "create", "--subnet", "10.213.9.0/24", "--ip-range", "10.213.8.0/25", "x9"},
				{"network", "create", "--subnet", "10.213.9.0/24", "--gateway", "10.213.8.1", "x9"},
				{"network", "create", "--subnet", "bogus", "--gateway", "10.213.9.1", "x9"},
				{"network", "create", "--subnet", "10.213.9.0/24", "--subnet", "10.213.9.0/25", "x9"},
				{"network", "create", "--subnet", "10.213.9.0/24", "--aux-address", "a=10.213.8.5", "x9"},
				{"network", "create", "--label", "", "x9"},
				{"network", "create", "-d", "nosuchdriver", "x9"},
				{"network", "create", "--config-from", "nosuch", "x9"},
				{"network", "connect", "bn2", "nosuch"},
				{"network", "connect", "nosuchnet", "nuser"},
				{"network", "connect", "--ip", "bogus", "bn2", "nosuch"},
				{"network", "connect", "--link", "a:b:c", "bn2", "nuser"},
				{"network", "connect", "--driver-opt", "bad", "bn2", "nuser"},
				{"network", "connect", "bn2"},
				{"network", "disconnect", "bn2", "nosuch"},
				{"network", "disconnect", "-f", "bn2", "nosuch"},
				{"network", "disconnect", "bn2"},
				{"network", "prune", "--bogus"},
				{"network", "prune", "x"},
				{"port"},
				{"port", "nosuch"},
				{"port", "nuser"},
				{"port", "nuser", "80"},
				{"port", "nuser", "abc"},
				{"port", "nuser", "99999"},
				{"container", "port", "a", "b", "c"},
				{"ps", "-a", "--format", "{{.Names}} {{.Networks}}"},
				{"ps", "-a", "--filter", "network=bn1", "--format", "{{.Names}}"},
				{"inspect", "-f", "{{.HostConfig.NetworkMode}}", "nuser"},
			}
			for _, args := range cases {
				b, k := berth(args...), docker(args...)
				if aligned(b.out) != aligned(k.out) || b.code != k.code || normalize(b.err) != normalize(k.err) {
					t.Errorf("%s: berth and docker differ\nberth: %s\ndocker: %s", strings.Join(args, " "), b, k)
				}
			}

			// Commands that change things: each CLI on its own network
			// (and container); the names, IDs and subnets are then made alike.
			swap := strings.NewReplacer("ra", "rX", "rb", "rX", "ia", "iX", "ib", "iX", "pa", "pX", "pb", "pX",
				"10.213.2.", "10.213.X.", "10.213.3.", "10.213.X.", "nuser2", "nuserX", "nuser", "nuserX")
			same := func(s string) string { return hexIDs.ReplaceAllString(swap.Replace(s), "ID") }
			epTmpl := `{{range $n, $e := .NetworkSettings.Networks}}{{if or (eq $n "ia") (eq $n "ib")}}{{$n}} {{$e.IPAddress}} {{json $e.IPAMConfig}} {{range $e.Aliases}}{{if eq . "al"}}al{{end}}{{end}}{{end}}{{end}}`
			for _, pair := range [][2][]string{
				{{"network", "create", "--label", "x=y", "ra"}, {"network", "create", "--label", "x=y", "rb"}},
				{{"network", "create", "ra"}, {"network", "create", "rb"}},
				{{"network", "rm", "ra", "nosuch"}, {"network", "rm", "rb", "nosuch"}},
				{{"network", "create", "--subnet", "10.213.2.0/24", "--gateway", "10.213.2.1", "--ip-range", "10.213.2.128/25",
					"--aux-address", "a=10.213.2.5", "--ipam-opt", "q=r", "-o", "k=v", "--internal", "--attachable", "--label", "w", "ia"},
					{"network", "create", "--subnet", "10.213.3.0/24", "--gateway", "10.213.3.1", "--ip-range", "10.213.3.128/25",
						"--aux-address", "a=10.213.3.5", "--ipam-opt", "q=r", "-o", "k=v", "--internal", "--attachable", "--label", "w", "ib"}},
				{{"network", "inspect", "-f", "{{json .IPAM}} {{.Internal}} {{.Attachable}} {{json .Options}} {{json .Labels}} {{.Driver}}", "ia"},
					{"network", "inspect", "-f", "{{json .IPAM}} {{.Internal}} {{.Attachable}} {{json .Options}} {{json .Labels}} {{.Driver}}", "ib"}},
				{{"network", "connect", "--ip", "10.213.2.9", "--alias", "al", "ia", "nuser"},
					{"network", "connect", "--ip", "10.213.3.9", "--alias", "al", "ib", "nuser2"}},
				{{"network", "connect", "ia", "nuser"}, {"network", "connect", "ib", "nuser2"}},
				{{"inspect", "-f", epTmpl, "nuser"},
					{"inspect", "-f", epTmpl, "nuser2"}},
				{{"network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "ia"},
					{"network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "ib"}},
				{{"network", "rm", "ia"}, {"network", "rm", "ib"}},
				{{"network", "disconnect", "ia", "nuser"}, {"network", "disconnect", "ib", "nuser2"}},
				{{"network", "disconnect", "ia", "nuser"}, {"network", "disconnect", "ib", "nuser2"}},
				{{"network", "rm", "ia"}, {"network", "rm", "ib"}},
				{{"network", "create", "--label", "which=a", "pa"}, {"network", "create", "--label", "which=b", "pb"}},
				{{"network", "prune", "-f", "--filter", "label=which=a"}, {"network", "prune", "-f", "--filter", "label=which=b"}},
				{{"network", "prune", "-f", "--filter", "label=which=a"}, {"network", "prune", "-f", "--filter", "label=which=b"}},
			} {
				b, k := berth(pair[0]...), docker(pair[1]...)
				if same(b.out) != same(k.out) || b.code != k.code || normalize(same(b.err)) != normalize(same(k.err)) {
					t.Errorf("%v / %v: berth and docker differ\nberth: %s\ndocker: %s", pair[0], pair[1], b, k)
				}
			}
			b, k := run(t, []byte("n\n"), bin, d.host, "network", "prune"), run(t, []byte("n\n"), dockerCLI, d.host, "network", "prune")
			if b != k {
				t.Errorf("prune declined: berth and docker differ\nberth: %s\ndocker: %s", b, k)
			}

			// Published ports: port and ps's PORTS. 127.0.0.1 only; the
			// host ports are the daemon's choice but for one pair.
			lo := freePorts(t)
			pub := fmt.Sprintf("127.0.0.1:%d-%d:%d-%d", lo, lo+1, lo, lo+1)
			if r := docker("run", "-d", "--name", "pub", "--network", "bn2", "-p", "127.0.0.1::80", "-p", "127.0.0.1::53/udp",
				"-p", pub, "--expose", "7000-7002", "berthtest/one:v1", "sleep", "300"); r.code != 0 {
				t.Fatalf("docker run pub: %s", r)
			}
			for _, args := range [][]string{
				{"port", "pub"},
				{"port", "pub", "80"},
				{"port", "pub", "80/tcp"},
				{"port", "pub", "53/udp"},
				{"port", "pub", "53"},
				{"port", "pub", fmt.Sprint(lo + 1)},
				{"container", "port", "pub", "7000"},
				{"ps", "--filter", "name=pub", "--format", "{{.Ports}}"},
				{"ps", "--filter", "name=pub", "--format", "table {{.Names}}\t{{.Ports}}"},
				{"inspect", "-f", "{{json .HostConfig.PortBindings}} {{json .Config.ExposedPorts}}", "pub"},
			} {
				b, k := berth(args...), docker(args...)
				if b.out != k.out || b.code != k.code || normalize(b.err) != normalize(k.err) {
					t.Errorf("%s: berth and docker differ\nberth: %s\ndocker: %s", strings.Join(args, " "), b, k)
				}
			}

			// The daemon's side: the docker CLI's output from berth's
			// daemon must be dockerd's.
			crossCases = [][]string{
				{"network", "ls", "-f", "type=custom", "--format", "{{.Name}} {{.Driver}} {{.Scope}} {{.Internal}} {{.Labels}}"},
				{"network", "ls", "-f", "label=team=a", "--format", "{{.Name}}"},
				// (Not dangling=true: dockerd 20.10 calls networks with
				// running containers dangling; berth does not.)
				{"network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}} {{.Internal}} {{.Attachable}} {{json .Labels}} {{.IPAM.Driver}} {{json .IPAM.Config}}", "bn1"},
				// bn10's subnet is the first free pool: each daemon's host differs.
				{"network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}} {{.Internal}} {{.Attachable}} {{json .Labels}} {{.IPAM.Driver}} {{len .IPAM.Config}}", "bn10"},
				{"network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "bn1"},
				{"network", "inspect", "nosuch"},
				{"network", "rm", "nosuch"},
				{"network", "create", "bn1"},
				{"network", "create", "--subnet", "bogus", "x9"},
				{"network", "connect", "bn2", "nosuch"},
				{"network", "disconnect", "bn2", "nosuch"},
				{"ps", "-a", "--filter", "network=bn1", "--format", "{{.Names}} {{.Networks}}"},
				{"port", "pub", "80/tcp"},
			}
			for _, args := range crossCases {
				daemonOut[dd.name] = append(daemonOut[dd.name], docker(args...))
			}
		})
	}
	dk, bt := daemonOut["dockerd"], daemonOut["berth"]
	if len(dk) != len(bt) {
		return // a daemon skipped
	}
	// The daemon's choice of host port differs.
	hostPort := regexp.MustCompile(`127\.0\.0\.1:\d+`)
	for i, args := range crossCases {
		k, b := dk[i], bt[i]
		k.out, b.out = hostPort.ReplaceAllString(k.out, "HP"), hostPort.ReplaceAllString(b.out, "HP")
		if b.out != k.out || b.code != k.code || b.err != k.err {
			t.Errorf("docker %s: berth's daemon and dockerd differ\nberth: %s\ndockerd: %s", strings.Join(args, " "), b, k)
		}
	}
}

// freePorts finds two consecutive free TCP ports on 127.0.0.1 and
// returns the first.
func freePorts(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no two consecutive free ports")
	return 0
}

// recorder is a proxy to a daemon that keeps the bodies of the requests
// sent through it.
type recorder struct {
	host string
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path string
	body         []byte
}

func newRecorder(t *testing.T, target string) *recorder {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{host: "unix://" + sock}
	p := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: "daemon"})
	p.Transport = unixClient(strings.TrimPrefix(target, "unix://")).Transport
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(b))
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{req.Method, req.URL.Path, b})
		r.mu.Unlock()
		p.ServeHTTP(w, req)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		_ = srv.Close()
		p.Transport.(*http.Transport).CloseIdleConnections()
	})
	return r
}

// take returns and forgets the bodies of the requests to paths ending in
// suffix.
func (r *recorder) take(suffix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, q := range r.reqs {
		if strings.HasSuffix(q.path, suffix) {
			out = append(out, string(q.body))
		}
	}
	r.reqs = nil
	return out
}
