package client_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"berth.dev/berth/client"
	"berth.dev/berth/internal/testutil"
	"github.com/moby/moby/api/types/container"
)

// unixServer serves h on a unix socket of its own, as a daemon does.
func unixServer(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return "unix://" + sock
}

func newClient(t *testing.T, host string) *client.Client {
	t.Helper()
	cl, err := client.New(client.WithHost(host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// TestTransportClosed: a daemon that closes the connection without an
// answer is a connection failure, worded as with net/http's transport.
func TestTransportClosed(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			http.ReadRequest(bufio.NewReader(c)) //nolint:errcheck // read, then hang up
			c.Close()
		}
	}()
	cl := newClient(t, "unix://"+sock)
	_, err = cl.Info(context.Background(), client.InfoOptions{})
	u := url.URL{Scheme: "http", Host: sock, Path: "/v1.56/info"}
	want := `error during connect: Get "` + u.String() + `": EOF`
	if err == nil || err.Error() != want || !client.IsErrConnectionFailed(err) {
		t.Errorf("%v, want %s", err, want)
	}
	_, err = cl.ContainerAttach(context.Background(), "x", client.ContainerAttachOptions{Stream: true})
	want = `error during connect: EOF`
	if err == nil || err.Error() != want || !client.IsErrConnectionFailed(err) {
		t.Errorf("attach: %v, want %s", err, want)
	}
}

// TestTransportEarlyAnswer: a daemon refuses the version before it reads
// a body larger than the socket's buffers and hangs up; its answer is
// still read, and the body is sent whole at the daemon's version.
func TestTransportEarlyAnswer(t *testing.T) {
	big := strings.Repeat("x", 4<<20)
	var got testutil.LockedBuffer
	host := unixServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(&got, "%s %s,", r.Method, r.URL.Path)
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/v1.56/") {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"message":"client version 1.56 is too new. Maximum supported API version is 1.41"}`)
			return
		}
		var req container.CreateRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Config == nil || req.Labels["big"] != big {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"message":"body: %v"}`, err)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"Id":"abc","Warnings":[]}`)
	}))
	cl := newClient(t, host)
	res, err := cl.ContainerCreate(context.Background(), client.ContainerCreateOptions{
		Config: &container.Config{Image: "busybox", Labels: map[string]string{"big": big}}})
	if err != nil || res.ID != "abc" {
		t.Errorf("create: %+v %v", res, err)
	}
	if s := got.String(); s != "POST /v1.56/containers/create,POST /v1.41/containers/create," {
		t.Errorf("requests: %s", s)
	}
}

// TestTransportStreams: an endless answer is read as it comes, closing
// it does not wait for its end, and a cancelled context ends a read with
// the cancellation; a request body that is a stream is sent whole.
func TestTransportStreams(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var loaded atomic.Int64
	host := unixServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.56")
		switch {
		case strings.HasSuffix(r.URL.Path, "/images/load"):
			n, err := io.Copy(io.Discard, r.Body)
			loaded.Store(n)
			if err != nil {
				w.WriteHeader(http.StatusInternalServerError)
			}
			fmt.Fprintf(w, `{"stream":"Loaded image: x\n"}`)
			return
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			return
		}
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, `{"Type":"container","Action":"start","time":%d}`+"\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if i > 2 {
				select {
				case <-r.Context().Done():
					return
				case <-release:
					return
				}
			}
		}
	}))
	cl := newClient(t, host)

	ctx, cancel := context.WithCancel(context.Background())
	ev := cl.Events(ctx, client.EventsListOptions{})
	for i := 0; i < 3; i++ {
		if m := <-ev.Messages; m.Time != int64(i) {
			t.Errorf("event %d: %+v", i, m)
		}
	}
	cancel()
	for err := range ev.Err {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled events: %v", err)
		}
	}

	logs, err := cl.ContainerLogs(context.Background(), "x", client.ContainerLogsOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(logs).ReadString('\n')
	if err != nil || !strings.Contains(line, `"time":0`) {
		t.Errorf("first line %q %v", line, err)
	}
	logs.Close()
	if _, err := logs.Read(make([]byte, 10)); err == nil || err.Error() != "http: read on closed response body" {
		t.Errorf("read after close: %v", err)
	}

	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 100; i++ {
			pw.Write(make([]byte, 64<<10)) //nolint:errcheck // the reader's error is the test's
		}
		pw.Close()
	}()
	rc, err := cl.ImageLoad(context.Background(), pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if loaded.Load() != 100*64<<10 || !strings.Contains(string(b), "Loaded image: x") {
		t.Errorf("load: %d bytes sent, answer %s", loaded.Load(), b)
	}
}
