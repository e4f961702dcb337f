package client_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"berth.dev/berth/client"
	"berth.dev/berth/internal/testutil"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// recordingProxy passes connections on its own socket to a daemon's and
// notes the requests made through it.
type recordingProxy struct {
	host string
	l    net.Listener
	mu   sync.Mutex
	sent []*testutil.LockedBuffer // what each connection's client sent, in accept order
	wg   sync.WaitGroup
}

func startProxy(t *testing.T, daemonHost string) *recordingProxy {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{host: "unix://" + sock, l: l}
	var conns []net.Conn
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("unix", strings.TrimPrefix(daemonHost, "unix://"))
			if err != nil {
				in.Close()
				continue
			}
			rec := &testutil.LockedBuffer{}
			p.mu.Lock()
			p.sent = append(p.sent, rec)
			conns = append(conns, in, out)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() {
				defer p.wg.Done()
				// Recorded before it is passed on: the answer, and the
				// test's look at what was sent, may follow at once.
				io.Copy(io.MultiWriter(rec, out), in) //nolint:errcheck // ends with either side
				out.Close()
			}()
			go func() {
				defer p.wg.Done()
				io.Copy(in, out) //nolint:errcheck // ends with either side
				in.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

var requestLine = regexp.MustCompile(`(?m)^(GET|HEAD|POST|PUT|DELETE) (\S+) HTTP/1\.1\r$`)

// requests are the request lines sent since the last call ("POST /v1.41/x").
func (p *recordingProxy) requests() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, b := range p.sent {
		for _, m := range requestLine.FindAllStringSubmatch(b.String(), -1) {
			path, _, _ := strings.Cut(m[2], "?")
			out = append(out, m[1]+" "+path)
		}
	}
	p.sent = nil
	return strings.Join(out, ",")
}

// TestVersionNoPing: a berth daemon is asked at the client's own version
// without a ping first; a request whose body is a stream (it cannot be
// sent twice) pings first.
func TestVersionNoPing(t *testing.T) {
	testutil.RequireRoot(t)
	_, host := startBerthd(t)
	p := startProxy(t, host)
	ctx := context.Background()
	cl, err := client.New(client.WithHost(p.host))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Info(ctx, client.InfoOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ContainerInspect(ctx, "nosuch", client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect: %v", err)
	}
	if got, want := p.requests(), "GET /v1.56/info,GET /v1.56/containers/nosuch/json"; got != want {
		t.Errorf("requests %s, want %s", got, want)
	}
	if cl.ClientVersion() != client.MaxAPIVersion {
		t.Errorf("version %s", cl.ClientVersion())
	}

	fresh, err := client.New(client.WithHost(p.host))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	loadBusybox(t, fresh)
	if got, want := p.requests(), "HEAD /_ping,POST /v1.56/images/load"; got != want {
		t.Errorf("a stream first: requests %s, want %s", got, want)
	}
}

// TestVersionRefused: dockerd 20.10 (API 1.41 at most) refuses the
// client's version; the request is made again at dockerd's, the body
// whole, and the version stays for the next requests. A version fixed
// by the user is not changed.
func TestVersionRefused(t *testing.T) {
	testutil.RequireRoot(t)
	d, err := testutil.StartDockerd("")
	if err != nil {
		t.Skip(err)
	}
	defer d.Stop()
	tarPath := filepath.Join(t.TempDir(), "bb.tar")
	if _, err := testutil.DockerArchive(tarPath, []string{"berthtest/bb:v1"}, []string{"/bin/sh"}, testutil.BusyboxRootfs(t)); err != nil {
		t.Fatal(err)
	}
	if out, err := d.Docker("load", "-q", "-i", tarPath); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	p := startProxy(t, d.Host)
	ctx := context.Background()
	newClient := func(opts ...client.Opt) *client.Client {
		cl, err := client.New(append([]client.Opt{client.WithHost(p.host)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		return cl
	}

	cl := newClient()
	res, err := cl.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "refused",
		Config: &container.Config{Image: "berthtest/bb:v1", Cmd: []string{"echo", "hi"}, Labels: map[string]string{"k": "v"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Docker("rm", "-f", res.ID) //nolint:errcheck // cleanup
	if got, want := p.requests(), "POST /v1.56/containers/create,POST /v1.41/containers/create"; got != want {
		t.Errorf("create: requests %s, want %s", got, want)
	}
	if cl.ClientVersion() != "1.41" {
		t.Errorf("version %s after the refusal", cl.ClientVersion())
	}
	out, err := d.Docker("ps", "-aq", "--no-trunc")
	if err != nil || strings.TrimSpace(out) != res.ID {
		t.Errorf("containers %q (%v), want the one created", out, err)
	}
	out, err = d.Docker("inspect", "-f", "{{.Name}} {{.Config.Cmd}} {{.Config.Labels.k}}", res.ID)
	if err != nil || out != "/refused [echo hi] v\n" {
		t.Errorf("the body sent again: %q %v", out, err)
	}
	if _, err := cl.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{}); err != nil {
		t.Error(err)
	}
	if got, want := p.requests(), "GET /v1.41/containers/"+res.ID+"/json"; got != want {
		t.Errorf("next request: %s, want %s", got, want)
	}

	// The version answer, and a hijacked request, refused at first.
	v, err := newClient().ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil || v.APIVersion != "1.41" {
		t.Errorf("version: %s %v", v.APIVersion, err)
	}
	_, err = newClient().ContainerAttach(ctx, "nosuch", client.ContainerAttachOptions{Stream: true, Stdout: true})
	if err == nil || err.Error() != "Error response from daemon: No such container: nosuch" || !cerrdefs.IsNotFound(err) {
		t.Errorf("attach: %v", err)
	}
	if got, want := p.requests(), "GET /v1.56/version,GET /v1.41/version,POST /v1.56/containers/nosuch/attach,POST /v1.41/containers/nosuch/attach"; got != want {
		t.Errorf("requests %s, want %s", got, want)
	}

	// A stream first: a ping, then the stream once.
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	load, err := newClient().ImageLoad(ctx, f, client.ImageLoadWithQuiet(true))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(load)
	load.Close()
	if !bytes.Contains(b, []byte("berthtest/bb:v1")) {
		t.Errorf("load: %s", b)
	}
	if got, want := p.requests(), "HEAD /_ping,POST /v1.41/images/load"; got != want {
		t.Errorf("load: requests %s, want %s", got, want)
	}

	// Versions the user fixed are used as they are, refused or not.
	_, err = newClient(client.WithAPIVersion("1.44")).Info(ctx, client.InfoOptions{})
	if err == nil || err.Error() != "Error response from daemon: client version 1.44 is too new. Maximum supported API version is 1.41" || !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("fixed 1.44: %v", err)
	}
	if _, err := newClient(client.WithAPIVersion("1.40")).Info(ctx, client.InfoOptions{}); err != nil {
		t.Errorf("fixed 1.40: %v", err)
	}
	if got, want := p.requests(), "GET /v1.44/info,GET /v1.40/info"; got != want {
		t.Errorf("fixed versions: requests %s, want %s", got, want)
	}
}
