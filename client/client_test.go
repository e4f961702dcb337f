package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth.dev/berth/client"
	cerrdefs "github.com/containerd/errdefs"
)

// TestConnectionFailed: an absent socket and a refused port are
// connection failures worded as docker's client words them, keeping the
// system error for the CLI's own message.
func TestConnectionFailed(t *testing.T) {
	ctx := context.Background()
	sock := filepath.Join(t.TempDir(), "none.sock")
	cl, err := client.New(client.WithHost("unix://" + sock))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, err = cl.Info(ctx, client.InfoOptions{})
	want := "failed to connect to the docker API at unix://" + sock + "; check if the path is correct and if the daemon is running: dial unix " + sock + ": connect: no such file or directory"
	if !client.IsErrConnectionFailed(err) || !errors.Is(err, syscall.ENOENT) || err.Error() != want {
		t.Errorf("absent socket: %v (connection failed %v)\nwant %s", err, client.IsErrConnectionFailed(err), want)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cl2, err := client.New(client.WithHost("tcp://" + addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	_, err = cl2.ContainerInspect(ctx, "x", client.ContainerInspectOptions{})
	want = "Cannot connect to the Docker daemon at tcp://" + addr + ". Is the docker daemon running?"
	if !client.IsErrConnectionFailed(err) || !errors.Is(err, syscall.ECONNREFUSED) || err.Error() != want {
		t.Errorf("refused: %v\nwant %s", err, want)
	}
	if client.IsErrConnectionFailed(errors.New("x")) {
		t.Error("any error is a connection failure")
	}
}

func TestOptions(t *testing.T) {
	for _, h := range []string{"", "foo", "unix://"} {
		if _, err := client.New(client.WithHost(h)); err == nil || err.Error() != "unable to parse docker host `"+h+"`" {
			t.Errorf("host %q: %v", h, err)
		}
	}
	t.Setenv(client.EnvOverrideAPIVersion, "1.4x")
	if _, err := client.New(client.WithAPIVersionFromEnv()); err == nil || !strings.Contains(err.Error(), "invalid API version (1.4x)") {
		t.Errorf("bad DOCKER_API_VERSION: %v", err)
	}
	t.Setenv(client.EnvOverrideAPIVersion, "v1.41")
	cl, err := client.New(client.WithAPIVersionFromEnv())
	if err != nil || cl.ClientVersion() != "1.41" {
		t.Errorf("DOCKER_API_VERSION=v1.41: %v %v", cl, err)
	}
	if _, err := client.New(client.WithTLSClientConfig(filepath.Join(t.TempDir(), "ca.pem"), "", "")); err == nil || !strings.Contains(err.Error(), "could not read CA certificate") {
		t.Errorf("absent CA: %v", err)
	}
}

// TestNegotiation: requests use the lower of the daemon's API version and
// ours, learnt from the first answer (this daemon refuses ours, as a
// 400 that is not dockerd's words); a fixed version is used as is.
func TestNegotiation(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.Method+" "+r.URL.Path)
		w.Header().Set("Api-Version", "1.41")
		if r.URL.Path == "/_ping" {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1.41/containers/gone/json":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"No such container: gone"}`))
		case "/v1.41/containers/busy/stop":
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"message":"  busy  "}`))
		case "/v1.41/info":
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"message":""}`))
		default:
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte("page not found\n"))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	cl, err := client.New(client.WithHost("tcp://" + strings.TrimPrefix(srv.URL, "http://")))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, err = cl.ContainerInspect(ctx, "gone", client.ContainerInspectOptions{})
	if err == nil || err.Error() != "Error response from daemon: No such container: gone" || !cerrdefs.IsNotFound(err) {
		t.Errorf("404: %v", err)
	}
	_, err = cl.ContainerStop(ctx, "busy", client.ContainerStopOptions{})
	if err == nil || err.Error() != "Error response from daemon: busy" || !cerrdefs.IsConflict(err) {
		t.Errorf("409: %v", err)
	}
	_, err = cl.Info(ctx, client.InfoOptions{})
	if err == nil || err.Error() != "Error response from daemon: API returned a 500 (Internal Server Error) but provided no error-message" {
		t.Errorf("500: %v", err)
	}
	_, err = cl.VolumeList(ctx, client.VolumeListOptions{})
	if err == nil || err.Error() != "Error response from daemon: page not found" || !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("400 text: %v", err)
	}
	if _, err := cl.ContainerInspect(ctx, "  ", client.ContainerInspectOptions{}); err == nil || err.Error() != "invalid container name or ID: value is empty" || !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("empty ID: %v", err)
	}
	if got := strings.Join(paths, ","); got != "GET /v1.56/containers/gone/json,GET /v1.41/containers/gone/json,POST /v1.41/containers/busy/stop,GET /v1.41/info,GET /v1.41/volumes" {
		t.Errorf("requests: %s", got)
	}
	if cl.ClientVersion() != "1.41" {
		t.Errorf("negotiated %s", cl.ClientVersion())
	}

	paths = nil
	fixed, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithAPIVersion("1.44"))
	if err != nil {
		t.Fatal(err)
	}
	defer fixed.Close()
	fixed.Info(ctx, client.InfoOptions{}) //nolint:errcheck // the path is what is checked
	if got := strings.Join(paths, ","); got != "GET /v1.44/info" {
		t.Errorf("fixed version: %s", got)
	}
}

func TestTimestamp(t *testing.T) {
	now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, c := range []struct{ in, want string }{
		{"10m", "1714978689"},
		{"1714978689", "1714978689"},
		{"1714978689.5", "1714978689.5"},
		{"2024-05-06", "1714953600.000000000"},
		{"2024-05-06T07:08:09Z", "1714979289.000000000"},
		{"2024-05-06T07:08", "1714979280.000000000"},
		{"2024-05-06T07:08:09.25+02:00", "1714972089.250000000"},
		{"0", "0"},
	} {
		got, err := client.Timestamp(c.in, now)
		if err != nil || got != c.want {
			t.Errorf("%s: %q %v, want %q", c.in, got, err, c.want)
		}
	}
	if _, err := client.Timestamp("yesterday", now); err == nil || err.Error() != `failed to parse value as time or duration: "yesterday"` {
		t.Errorf("yesterday: %v", err)
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
