package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/common"
)

// apiPath is the path of an API endpoint at version v with its query.
func (c *Client) apiPath(v, p string, query url.Values) string {
	p = path.Join(c.basePath, "/v"+v, p)
	return (&url.URL{Path: p, RawQuery: query.Encode()}).String()
}

func (c *Client) newRequest(ctx context.Context, method, p string, header http.Header, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, p, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.userAgent != nil {
		if *c.userAgent == "" {
			req.Header.Del("User-Agent")
		} else {
			req.Header.Set("User-Agent", *c.userAgent)
		}
	}
	req.URL.Scheme, req.URL.Host = c.scheme, c.addr
	if c.proto == "unix" {
		req.Host = dummyHost
	}
	return req, nil
}

// send makes a request to an API endpoint; a status of 400 or more is an
// error carrying the daemon's message.
func (c *Client) send(ctx context.Context, method, p string, query url.Values, header http.Header, body io.Reader) (*http.Response, error) {
	resp, err := c.exchange(ctx, method, p, query, header, body, c.do)
	if err != nil {
		return nil, err
	}
	if err := responseError(resp); err != nil {
		closeBody(resp)
		return nil, err
	}
	return resp, nil
}

// exchange makes a request to an API endpoint through do at the client's
// API version, without a ping before it (a round trip on the path of
// every CLI call): settle learns the daemon's version from the answer and
// says when the daemon refused ours, and the request is made once more.
// A body that cannot be sent twice (a stream) waits for a ping instead.
func (c *Client) exchange(ctx context.Context, method, p string, query url.Values, header http.Header, body io.Reader,
	do func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	mem, _ := body.(*bytes.Reader)
	again := body == nil || mem != nil
	if !again {
		c.negotiate(ctx)
	}
	var saved bytes.Reader
	if mem != nil {
		saved = *mem
	}
	for {
		v := c.ClientVersion()
		req, err := c.newRequest(ctx, method, c.apiPath(v, p, query), header, body)
		if err != nil {
			return nil, err
		}
		resp, err := do(req)
		if err != nil {
			return nil, err
		}
		if !again || !c.settle(ctx, resp, v) {
			return resp, nil
		}
		closeBody(resp)
		again = false
		if mem != nil {
			r := saved
			body = &r
		}
	}
}

func (c *Client) get(ctx context.Context, p string, query url.Values) (*http.Response, error) {
	return c.send(ctx, http.MethodGet, p, query, nil, nil)
}

func (c *Client) delete(ctx context.Context, p string, query url.Values) (*http.Response, error) {
	return c.send(ctx, http.MethodDelete, p, query, nil, nil)
}

// post sends v (if not nil) as JSON.
func (c *Client) post(ctx context.Context, p string, query url.Values, header http.Header, v any) (*http.Response, error) {
	body, header, err := jsonBody(v, header)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, http.MethodPost, p, query, header, body)
}

func jsonBody(v any, header http.Header) (io.Reader, http.Header, error) {
	if v == nil {
		return nil, header, nil
	}
	b, err := marshal(v)
	if err != nil {
		return nil, nil, err
	}
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	return bytes.NewReader(b), h, nil
}

// do sends req; failing to reach the daemon is an errConnectionFailed
// worded as docker's client words it.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err == nil {
		return resp, nil
	}
	return nil, c.connectError(err)
}

func (c *Client) connectError(err error) error {
	var nErr net.Error
	var dnsErr *net.DNSError
	switch {
	case c.scheme != "https" && strings.Contains(err.Error(), "malformed HTTP response"):
		return errConnectionFailed{fmt.Errorf("%w.\n* Are you trying to connect to a TLS-enabled daemon without TLS?", err)}
	case c.scheme == "https" && (strings.Contains(err.Error(), "handshake failure") || strings.Contains(err.Error(), "bad certificate")):
		return errConnectionFailed{fmt.Errorf("the server probably has client authentication (--tlsverify) enabled; check your TLS client certification settings: %w", err)}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, os.ErrPermission):
		return errConnectionFailed{fmt.Errorf("permission denied while trying to connect to the docker API at %v", c.host)}
	case errors.Is(err, os.ErrNotExist):
		return errConnectionFailed{fmt.Errorf("failed to connect to the docker API at %v; check if the path is correct and if the daemon is running: %w", c.host, errors.Unwrap(err))}
	case errors.As(err, &dnsErr):
		return errConnectionFailed{fmt.Errorf("failed to connect to the docker API at %v: %w", c.host, dnsErr)}
	case errors.As(err, &nErr) && (nErr.Timeout() || strings.Contains(nErr.Error(), "connection refused") || strings.Contains(nErr.Error(), "dial unix")):
		// keeps the cause (ECONNREFUSED) for errors.Is, unlike moby's
		return errConnectionFailed{cannotConnect{host: c.host, cause: err}}
	}
	return errConnectionFailed{fmt.Errorf("error during connect: %w", err)}
}

// cannotConnect is docker's "Cannot connect to the Docker daemon" text.
type cannotConnect struct {
	host  string
	cause error
}

func (e cannotConnect) Error() string {
	return fmt.Sprintf("Cannot connect to the Docker daemon at %s. Is the docker daemon running?", e.host)
}
func (e cannotConnect) Unwrap() error { return e.cause }

type errConnectionFailed struct{ error }

func (e errConnectionFailed) Unwrap() error { return e.error }

// IsErrConnectionFailed says whether err is a failure to reach the daemon.
func IsErrConnectionFailed(err error) bool {
	return errors.As(err, &errConnectionFailed{})
}

// responseError is the error of a response of status 400 or more:
// "Error response from daemon: <message>", of the errdefs kind the status
// says (cerrdefs.IsNotFound and friends).
func responseError(resp *http.Response) error {
	if resp.StatusCode < http.StatusBadRequest {
		return nil
	}
	status := resp.Status
	if status == "" {
		status = http.StatusText(resp.StatusCode)
	}
	var body []byte
	if resp.Request == nil || resp.Request.Method != http.MethodHead {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return err
		}
		body = b
	}
	var err error
	switch {
	case len(body) == 0:
		err = fmt.Errorf("request returned %s for API route and version %s, check if the server supports the requested API version", status, resp.Request.URL)
	case resp.Header.Get("Content-Type") == "application/json":
		var e common.ErrorResponse
		if jerr := json.Unmarshal(body, &e); jerr != nil {
			err = fmt.Errorf("error reading JSON: %w", jerr)
		} else if e.Message == "" {
			err = fmt.Errorf("Error response from daemon: API returned a %d (%s) but provided no error-message", resp.StatusCode, http.StatusText(resp.StatusCode))
		} else {
			err = fmt.Errorf("Error response from daemon: %s", strings.TrimSpace(e.Message))
		}
	default:
		err = fmt.Errorf("Error response from daemon: %s", strings.TrimSpace(string(body)))
	}
	return httpError{err: err, kind: kindOf(resp.StatusCode)}
}

// httpError is a daemon's error: its text, and the errdefs kind of its
// status for errors.Is.
type httpError struct {
	err  error
	kind error
}

func (e httpError) Error() string        { return e.err.Error() }
func (e httpError) Unwrap() error        { return e.err }
func (e httpError) Is(target error) bool { return errors.Is(e.kind, target) }

func kindOf(status int) error {
	switch status {
	case http.StatusBadRequest:
		return cerrdefs.ErrInvalidArgument
	case http.StatusUnauthorized:
		return cerrdefs.ErrUnauthenticated
	case http.StatusForbidden:
		return cerrdefs.ErrPermissionDenied
	case http.StatusNotFound:
		return cerrdefs.ErrNotFound
	case http.StatusConflict:
		return cerrdefs.ErrConflict
	case http.StatusPreconditionFailed:
		return cerrdefs.ErrFailedPrecondition
	case http.StatusNotImplemented:
		return cerrdefs.ErrNotImplemented
	case http.StatusServiceUnavailable:
		return cerrdefs.ErrUnavailable
	}
	if status < 500 {
		return cerrdefs.ErrInvalidArgument
	}
	return cerrdefs.ErrInternal
}

// closeBody drains a little of the body (so the connection can be reused)
// and closes it.
func closeBody(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 512)
	_ = resp.Body.Close()
}

// prune posts a prune with its filters and decodes the report; a report
// that does not decode is an error that starts with what (moby's words).
func prune[T any](ctx context.Context, c *Client, path string, f Filters, what string) (T, error) {
	q := url.Values{}
	f.set(q)
	resp, err := c.post(ctx, path, q, nil, nil)
	if err != nil {
		var zero T
		return zero, err
	}
	rep, err := answer[T](resp, nil)
	if err != nil {
		return rep, fmt.Errorf("%s: %w", what, err)
	}
	return rep, nil
}

// answer decodes a request's JSON answer; it takes the request's results
// as they come: answer[T](c.get(...)).
func answer[T any](resp *http.Response, err error) (T, error) {
	var v T
	if err == nil {
		err = decode(resp, &v)
	}
	return v, err
}

// decode reads a JSON response into v and closes it.
func decode(resp *http.Response, v any) error {
	defer closeBody(resp)
	return json.NewDecoder(resp.Body).Decode(v)
}

// emptyIDError is a call naming no object.
type emptyIDError string

func (e emptyIDError) Error() string { return "invalid " + string(e) + " name or ID: value is empty" }
func (e emptyIDError) Is(target error) bool {
	return target == cerrdefs.ErrInvalidArgument
}

func trimID(kind, id string) (string, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return "", emptyIDError(kind)
	}
	return id, nil
}

// Filters are the API's filters: term → values.
type Filters map[string]map[string]bool

// Add adds values to term and returns f.
func (f Filters) Add(term string, values ...string) Filters {
	if f[term] == nil {
		f[term] = map[string]bool{}
	}
	for _, v := range values {
		f[term][v] = true
	}
	return f
}

func (f Filters) set(q url.Values) {
	if len(f) > 0 {
		b, _ := json.Marshal(f) // maps of strings always marshal
		q.Set("filters", string(b))
	}
}

// objectNotFound is a call naming no object where docker's client answers
// "No such" itself.
type objectNotFound struct{ kind, id string }

func (e objectNotFound) Error() string        { return fmt.Sprintf("Error: No such %s: %s", e.kind, e.id) }
func (e objectNotFound) Is(target error) bool { return target == cerrdefs.ErrNotFound }

func notFound(kind, id string) error { return objectNotFound{kind, id} }

func errInvalid(msg string) error { return cerrdefs.ErrInvalidArgument.WithMessage(msg) }

func isUnauthorized(err error) bool { return cerrdefs.IsUnauthorized(err) }

// Clone is a deep copy of f.
func (f Filters) Clone() Filters {
	out := make(Filters, len(f))
	for term, values := range f {
		out[term] = maps.Clone(values)
	}
	return out
}
