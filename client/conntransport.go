package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// connTransport makes each request on a connection of its own, on the
// caller's goroutine: dial, write the request, read the answer; closing
// the body closes the connection. net/http's Transport runs a reading and
// a writing goroutine per connection and hands every request and answer
// between them and the caller (scheduler wake-ups on every request, a
// sizeable part of a short CLI call's CPU), and a CLI makes too few
// requests for its keep-alive to pay. Requests whose body is a stream go
// to streams (net/http's), which reads the answer while it writes.
type connTransport struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	streams http.RoundTripper
}

func (t *connTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.GetBody == nil {
		return t.streams.RoundTrip(req)
	}
	ctx := req.Context()
	conn, err := t.dial(ctx, "", "")
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, _, err := roundTripOn(ctx, conn, req)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// roundTripOn sends req on conn and reads its answer, whose body then
// owns conn (closing it closes conn; a cancelled ctx closes it too). The
// reader is conn's, for a connection the daemon took over (101). On an
// error conn is closed.
func roundTripOn(ctx context.Context, conn net.Conn, req *http.Request) (*http.Response, *bufio.Reader, error) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	br := bufio.NewReader(conn)
	// A daemon may answer before it has read the whole body (a refused
	// version) and close: its answer is still to be read.
	werr := req.Write(conn)
	// Nothing at all is io.EOF, as net/http says it (ReadResponse would
	// say unexpected EOF).
	_, err := br.Peek(1)
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(br, req)
	}
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
		resp, err = http.ReadResponse(br, req) // 100 Continue and such come before the answer
	}
	if err != nil {
		stop()
		conn.Close()
		switch {
		case ctx.Err() != nil:
			return nil, nil, ctx.Err()
		case werr != nil:
			return nil, nil, werr
		}
		return nil, nil, err // EOF: closed without an answer, as net/http says it
	}
	resp.Body = &connBody{body: resp.Body, conn: conn, ctx: ctx, stop: stop}
	return resp, br, nil
}

// connBody is an answer's body that closes its connection: read to its
// end or not, the connection serves nothing else.
type connBody struct {
	body   io.ReadCloser
	conn   net.Conn
	ctx    context.Context
	stop   func() bool
	closed atomic.Bool
}

var errReadOnClosedBody = errors.New("http: read on closed response body")

func (b *connBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errReadOnClosedBody
	}
	n, err := b.body.Read(p)
	if err != nil && err != io.EOF {
		if b.closed.Load() {
			err = errReadOnClosedBody
		} else if b.ctx.Err() != nil {
			err = b.ctx.Err() // as net/http: the cancellation, not the closed socket
		}
	}
	return n, err
}

// Close closes the connection without reading the rest (the body's own
// Close would read a stream to its end).
func (b *connBody) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.stop()
	return b.conn.Close()
}
