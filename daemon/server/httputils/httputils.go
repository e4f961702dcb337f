// Package httputils is what every API router shares: the handler and route
// types, the request's API version, JSON in and out, and the one place
// that maps errdefs kinds to HTTP status codes.
package httputils

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"berth.dev/berth/daemon/filters"
	"berth.dev/berth/errdefs"
	"github.com/moby/moby/api/types/common"
	"github.com/moby/moby/api/types/registry"
)

// HandlerFunc serves one route; vars are the path's named parts. A
// returned error is written as {"message": ...} with its mapped status,
// unless the handler has already written a response.
type HandlerFunc func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error

// Route is one method and path pattern. Patterns name parts as {name}
// (one segment) or {name:.*} (any, for image names with slashes).
type Route struct {
	Method  string
	Path    string
	Handler HandlerFunc
}

// Router is one API area's routes.
type Router interface {
	Routes() []Route
}

type versionKey struct{}

// WithVersion records the request's API version in ctx.
func WithVersion(ctx context.Context, v string) context.Context {
	return context.WithValue(ctx, versionKey{}, v)
}

// VersionFromContext is the API version the request speaks.
func VersionFromContext(ctx context.Context) string {
	v, _ := ctx.Value(versionKey{}).(string)
	return v
}

// CompareVersions compares API versions "1.24" and "1.50" as numbers.
func CompareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// VersionLess reports whether the request's version is below v.
func VersionLess(ctx context.Context, v string) bool {
	return CompareVersions(VersionFromContext(ctx), v) < 0
}

// WriteJSON writes v with status code.
func WriteJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// StatusCode is the one mapping from error kinds to HTTP status codes.
func StatusCode(err error) int {
	switch errdefs.KindOf(err) {
	case errdefs.KindNotFound:
		return http.StatusNotFound
	case errdefs.KindConflict:
		return http.StatusConflict
	case errdefs.KindInvalid:
		return http.StatusBadRequest
	case errdefs.KindUnauthorized:
		return http.StatusUnauthorized
	case errdefs.KindForbidden:
		return http.StatusForbidden
	case errdefs.KindUnavailable:
		return http.StatusServiceUnavailable
	case errdefs.KindNotImplemented:
		return http.StatusNotImplemented
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
}

// WriteError writes err as docker's error body.
func WriteError(w http.ResponseWriter, err error) {
	_ = WriteJSON(w, StatusCode(err), common.ErrorResponse{Message: err.Error()})
}

// BoolValue reads a query flag as docker does: absent, "", "0", "no",
// "false" and "none" are false.
func BoolValue(r *http.Request, k string) bool {
	switch strings.ToLower(strings.TrimSpace(r.Form.Get(k))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// ParseForm parses the query into r.Form, typing failures invalid. Only
// the query: no Engine API route takes a form body, and a body sent with
// curl's default form content type (a tar to load, say) must reach its
// handler unread.
func ParseForm(r *http.Request) error {
	if r.Form != nil {
		return nil
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errdefs.Invalid("parse request: %v", err)
	}
	r.Form = q
	return nil
}

// NoContent answers 204 when the operation that gave err succeeded.
func NoContent(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// FormFilters parses the request's form and its "filters" parameter.
func FormFilters(r *http.Request) (filters.Args, error) {
	if err := ParseForm(r); err != nil {
		return nil, err
	}
	return filters.Parse(r.Form.Get("filters"))
}

// DecodeJSON reads a JSON body into v; a malformed or wrong-typed body is
// invalid, with the decoder's message.
func DecodeJSON(r *http.Request, v any) error {
	if r.Body == nil || r.ContentLength == 0 {
		return errdefs.Invalid("request body is empty; expected JSON")
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<20))
	if err := dec.Decode(v); err != nil {
		return errdefs.Invalid("invalid JSON in request body: %v", err)
	}
	return nil
}

// LazyWriter delays the status and headers of a streamed body until its
// first byte, so that an error found before anything is written (a name
// that does not resolve) still gets its own status code.
type LazyWriter struct {
	W           http.ResponseWriter
	ContentType string
	Started     bool
}

func (l *LazyWriter) Write(p []byte) (int, error) {
	if !l.Started {
		l.Started = true
		l.W.Header().Set("Content-Type", l.ContentType)
		l.W.WriteHeader(http.StatusOK)
	}
	return l.W.Write(p)
}

// RegistryAuth decodes the X-Registry-Auth header: base64url JSON of the
// credentials (docker's encoding; standard base64 and missing padding are
// taken too). No header means anonymous.
func RegistryAuth(r *http.Request) (registry.AuthConfig, error) {
	var a registry.AuthConfig
	h := r.Header.Get(registry.AuthHeader)
	if h == "" {
		return a, nil
	}
	h = strings.TrimRight(h, "=")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(h)
	}
	if err != nil {
		return a, errdefs.Invalid("invalid X-Registry-Auth header: %v", err)
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, errdefs.Invalid("invalid X-Registry-Auth header: %v", err)
	}
	return a, nil
}
