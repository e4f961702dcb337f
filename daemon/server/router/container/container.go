// Package container is the API's container area: create, list, inspect,
// start, stop, restart, kill, wait, remove, logs, attach and resize.
package container

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	ctr "berth.dev/berth/daemon/container"
	"berth.dev/berth/daemon/filters"
	"berth.dev/berth/daemon/server/httputils"
	"berth.dev/berth/errdefs"
	"berth.dev/berth/shim/logs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Backend is what the container routes need from the daemon.
type Backend interface {
	ContainerCreate(ctx context.Context, name string, cfg *containertypes.Config, hc *containertypes.HostConfig, nc *network.NetworkingConfig) (*containertypes.CreateResponse, error)
	Containers(ctx context.Context, o ctr.ListOptions) ([]containertypes.Summary, error)
	ContainerInspect(ctx context.Context, name string) (*containertypes.InspectResponse, error)
	ContainerStart(ctx context.Context, name string) error
	ContainerStop(ctx context.Context, name string, o ctr.StopOptions) error
	ContainerRestart(ctx context.Context, name string, o ctr.StopOptions) error
	ContainerKill(ctx context.Context, name, signal string) error
	ContainerWait(ctx context.Context, name, condition string) (func(context.Context) (int, error), error)
	ContainerRemove(ctx context.Context, name string, force, volumes bool) error
	ContainerLogs(ctx context.Context, name string, o ctr.LogsOptions) (bool, func(func(logs.Message) error) error, error)
	ContainerAttach(ctx context.Context, name string, o ctr.AttachOptions) error
	ContainerResize(ctx context.Context, name string, height, width int) error
	ContainerPause(ctx context.Context, name string) error
	ContainerUnpause(ctx context.Context, name string) error
	ContainerRename(ctx context.Context, name, newName string) error
	ContainersPrune(ctx context.Context, f filters.Args) (*containertypes.PruneReport, error)
	ContainerExecCreate(ctx context.Context, name string, req containertypes.ExecCreateRequest) (string, error)
	ContainerExecStart(ctx context.Context, id string, detach bool, getStreams func(tty bool) (io.Reader, io.Writer, io.Writer, error)) error
	ContainerExecInspect(ctx context.Context, id string) (*containertypes.ExecInspectResponse, error)
	ContainerExecResize(ctx context.Context, id string, height, width int) error
	ContainerTop(ctx context.Context, name, psArgs string) (*containertypes.TopResponse, error)
	ContainerCommit(ctx context.Context, o ctr.CommitOptions) (string, error)
	ContainerExport(ctx context.Context, name string, w io.Writer) error
	ContainerChanges(ctx context.Context, name string) ([]containertypes.FilesystemChange, error)
	ContainerUpdate(ctx context.Context, name string, u *containertypes.UpdateConfig) (*containertypes.UpdateResponse, error)
	ContainerStats(ctx context.Context, name string, stream, oneShot bool, fn func(*containertypes.StatsResponse) error) error
}

// Router serves the container routes.
type Router struct{ b Backend }

// New returns the container router over b.
func New(b Backend) *Router { return &Router{b: b} }

// Routes implements httputils.Router.
func (r *Router) Routes() []httputils.Route {
	return []httputils.Route{
		{Method: http.MethodPost, Path: "/containers/create", Handler: r.create},
		{Method: http.MethodGet, Path: "/containers/json", Handler: r.list},
		{Method: http.MethodGet, Path: "/containers/{name}/json", Handler: r.inspect},
		{Method: http.MethodPost, Path: "/containers/{name}/start", Handler: r.start},
		{Method: http.MethodPost, Path: "/containers/{name}/stop", Handler: r.stop},
		{Method: http.MethodPost, Path: "/containers/{name}/restart", Handler: r.restart},
		{Method: http.MethodPost, Path: "/containers/{name}/kill", Handler: r.kill},
		{Method: http.MethodPost, Path: "/containers/{name}/wait", Handler: r.wait},
		{Method: http.MethodGet, Path: "/containers/{name}/logs", Handler: r.logs},
		{Method: http.MethodPost, Path: "/containers/{name}/attach", Handler: r.attach},
		{Method: http.MethodPost, Path: "/containers/{name}/resize", Handler: r.resize},
		{Method: http.MethodPost, Path: "/containers/prune", Handler: r.prune},
		{Method: http.MethodPost, Path: "/containers/{name}/pause", Handler: r.pause},
		{Method: http.MethodPost, Path: "/containers/{name}/unpause", Handler: r.unpause},
		{Method: http.MethodPost, Path: "/containers/{name}/rename", Handler: r.rename},
		{Method: http.MethodDelete, Path: "/containers/{name}", Handler: r.remove},
		{Method: http.MethodPost, Path: "/containers/{name}/exec", Handler: r.execCreate},
		{Method: http.MethodGet, Path: "/containers/{name}/top", Handler: r.top},
		{Method: http.MethodGet, Path: "/containers/{name}/export", Handler: r.export},
		{Method: http.MethodPost, Path: "/commit", Handler: r.commit},
		{Method: http.MethodGet, Path: "/containers/{name}/changes", Handler: r.changes},
		{Method: http.MethodPost, Path: "/containers/{name}/update", Handler: r.update},
		{Method: http.MethodGet, Path: "/containers/{name}/stats", Handler: r.stats},
		{Method: http.MethodPost, Path: "/exec/{id}/start", Handler: r.execStart},
		{Method: http.MethodGet, Path: "/exec/{id}/json", Handler: r.execInspect},
		{Method: http.MethodPost, Path: "/exec/{id}/resize", Handler: r.execResize},
	}
}

func (r *Router) create(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	var body containertypes.CreateRequest
	if err := httputils.DecodeJSON(req, &body); err != nil {
		return err
	}
	if body.Config == nil {
		return errdefs.Invalid("config cannot be empty in order to create a container")
	}
	if err := checkCreateVersion(httputils.VersionFromContext(ctx), body.HostConfig); err != nil {
		return err
	}
	resp, err := r.b.ContainerCreate(ctx, req.Form.Get("name"), body.Config, body.HostConfig, body.NetworkingConfig)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusCreated, resp)
}

func (r *Router) list(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	f, err := httputils.FormFilters(req)
	if err != nil {
		return err
	}
	o := ctr.ListOptions{All: httputils.BoolValue(req, "all"), Size: httputils.BoolValue(req, "size"), Filters: f}
	if v := req.Form.Get("limit"); v != "" {
		if o.Limit, err = strconv.Atoi(v); err != nil {
			return errdefs.Invalid("invalid limit %q", v)
		}
	}
	out, err := r.b.Containers(ctx, o)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, out)
}

func (r *Router) inspect(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	out, err := r.b.ContainerInspect(ctx, vars["name"])
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, out)
}

func (r *Router) start(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	return httputils.NoContent(w, r.b.ContainerStart(ctx, vars["name"]))
}

func stopOptions(req *http.Request) (ctr.StopOptions, error) {
	if err := httputils.ParseForm(req); err != nil {
		return ctr.StopOptions{}, err
	}
	o := ctr.StopOptions{Signal: req.Form.Get("signal")}
	if v := req.Form.Get("t"); v != "" {
		t, err := strconv.Atoi(v)
		if err != nil {
			return o, errdefs.Invalid("invalid value for t: %q", v)
		}
		o.Timeout = &t
	}
	return o, nil
}

func (r *Router) stop(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	o, err := stopOptions(req)
	if err != nil {
		return err
	}
	return httputils.NoContent(w, r.b.ContainerStop(ctx, vars["name"], o))
}

func (r *Router) restart(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	o, err := stopOptions(req)
	if err != nil {
		return err
	}
	return httputils.NoContent(w, r.b.ContainerRestart(ctx, vars["name"], o))
}

func (r *Router) kill(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	return httputils.NoContent(w, r.b.ContainerKill(ctx, vars["name"], req.Form.Get("signal")))
}

// wait answers with its headers at once (clients return from the request
// then, and start the container), the status when the condition is met.
func (r *Router) wait(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	waitFn, err := r.b.ContainerWait(ctx, vars["name"], req.Form.Get("condition"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).Flush()
	code, err := waitFn(ctx)
	resp := containertypes.WaitResponse{StatusCode: int64(code)}
	if err != nil {
		resp.Error = &containertypes.WaitExitError{Message: err.Error()}
	}
	return json.NewEncoder(w).Encode(resp)
}

func (r *Router) remove(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	if httputils.BoolValue(req, "link") {
		return errdefs.NotImplemented("links are not supported")
	}
	return httputils.NoContent(w, r.b.ContainerRemove(ctx, vars["name"], httputils.BoolValue(req, "force"), httputils.BoolValue(req, "v")))
}

// parseTime takes the API's times: unix seconds with optional fraction
// ("1700000000.123456789"), or RFC 3339.
func parseTime(v string) (time.Time, error) {
	if v == "" || v == "0" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	sec, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, errdefs.Invalid("invalid time %q", v)
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, errdefs.Invalid("invalid time %q", v)
		}
	}
	return time.Unix(s, ns), nil
}

func (r *Router) logs(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	o := ctr.LogsOptions{Stdout: httputils.BoolValue(req, "stdout"), Stderr: httputils.BoolValue(req, "stderr"),
		Follow: httputils.BoolValue(req, "follow"), Tail: -1}
	var err error
	if o.Since, err = parseTime(req.Form.Get("since")); err != nil {
		return err
	}
	if o.Until, err = parseTime(req.Form.Get("until")); err != nil {
		return err
	}
	if t := req.Form.Get("tail"); t != "" && t != "all" {
		if o.Tail, err = strconv.Atoi(t); err != nil {
			return errdefs.Invalid("invalid tail %q", t)
		}
	}
	timestamps := httputils.BoolValue(req, "timestamps")
	tty, read, err := r.b.ContainerLogs(ctx, vars["name"], o)
	if err != nil {
		return err
	}
	ct := "application/vnd.docker.multiplexed-stream"
	if tty {
		ct = "application/vnd.docker.raw-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	var buf []byte
	err = read(func(m logs.Message) error {
		buf = buf[:0]
		if !tty {
			buf = append(buf, 1, 0, 0, 0, 0, 0, 0, 0)
			if m.Stream == "stderr" {
				buf[0] = 2
			}
		}
		if timestamps {
			buf = append(buf, m.Time.UTC().Format("2006-01-02T15:04:05.000000000Z07:00")...)
			buf = append(buf, ' ')
		}
		buf = append(buf, m.Line...)
		if !tty {
			n := len(buf) - 8
			buf[4], buf[5], buf[6], buf[7] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if o.Follow {
			return rc.Flush()
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs: %w", err) // the headers are out: the server only logs it
	}
	return nil
}

// attach hijacks the connection as dockerd does (101 UPGRADED when the
// client asked to upgrade) and hands its two directions to the daemon.
func (r *Router) attach(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	o := ctr.AttachOptions{
		Stream: httputils.BoolValue(req, "stream"), Logs: httputils.BoolValue(req, "logs"),
		Stdin: httputils.BoolValue(req, "stdin"), Stdout: httputils.BoolValue(req, "stdout"), Stderr: httputils.BoolValue(req, "stderr"),
		DetachKeys: req.Form.Get("detachKeys"),
	}
	h := &hijacker{w: w, req: req}
	o.GetStreams = h.streams
	return h.finish(r.b.ContainerAttach(ctx, vars["name"], o))
}

// hijacker takes over a request's connection as dockerd does for attach
// and exec start: 101 UPGRADED when the client asked to upgrade, else 200,
// then the raw stream both ways.
type hijacker struct {
	w    http.ResponseWriter
	req  *http.Request
	conn net.Conn
}

func (h *hijacker) streams(tty bool) (io.Reader, io.Writer, io.Writer, error) {
	c, brw, err := http.NewResponseController(h.w).Hijack()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("hijack the connection: %w", err)
	}
	h.conn = c
	_ = c.SetDeadline(time.Time{})
	ct := "application/vnd.docker.multiplexed-stream"
	if tty {
		ct = "application/vnd.docker.raw-stream"
	}
	if strings.Contains(strings.ToLower(h.req.Header.Get("Connection")), "upgrade") {
		fmt.Fprintf(c, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", ct)
	} else {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", ct)
	}
	var in io.Reader = c
	if brw != nil && brw.Reader.Buffered() > 0 {
		in = io.MultiReader(io.LimitReader(brw.Reader, int64(brw.Reader.Buffered())), c)
	}
	return in, c, c, nil
}

// finish ends a hijacked stream (an error goes into it: the status line
// is out) or returns err for an ordinary answer.
func (h *hijacker) finish(err error) error {
	if h.conn == nil {
		return err
	}
	if err != nil {
		fmt.Fprintf(h.conn, "Error: %s\n", err)
	}
	if cw, ok := h.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	h.conn.Close()
	return nil
}

func (r *Router) execCreate(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var body containertypes.ExecCreateRequest
	if err := httputils.DecodeJSON(req, &body); err != nil {
		return err
	}
	id, err := r.b.ContainerExecCreate(ctx, vars["name"], body)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusCreated, containertypes.ExecCreateResponse{ID: id})
}

func (r *Router) execStart(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var body containertypes.ExecStartRequest
	if req.ContentLength != 0 {
		if err := httputils.DecodeJSON(req, &body); err != nil {
			return err
		}
	}
	if body.Detach {
		if err := r.b.ContainerExecStart(ctx, vars["id"], true, nil); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	h := &hijacker{w: w, req: req}
	return h.finish(r.b.ContainerExecStart(ctx, vars["id"], false, h.streams))
}

func (r *Router) execInspect(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	out, err := r.b.ContainerExecInspect(ctx, vars["id"])
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, out)
}

func (r *Router) execResize(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	return resizeWith(w, req, func(h, wd int) error { return r.b.ContainerExecResize(ctx, vars["id"], h, wd) })
}

func (r *Router) resize(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	return resizeWith(w, req, func(h, wd int) error { return r.b.ContainerResize(ctx, vars["name"], h, wd) })
}

// resizeWith reads a resize request's h and w and answers 200 when fn
// resized.
func resizeWith(w http.ResponseWriter, req *http.Request, fn func(h, wd int) error) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	h, err1 := strconv.Atoi(req.Form.Get("h"))
	wd, err2 := strconv.Atoi(req.Form.Get("w"))
	if err1 != nil || err2 != nil || h < 0 || wd < 0 {
		return errdefs.Invalid("invalid resize: h=%q w=%q", req.Form.Get("h"), req.Form.Get("w"))
	}
	if err := fn(h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (r *Router) pause(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	return httputils.NoContent(w, r.b.ContainerPause(ctx, vars["name"]))
}

func (r *Router) unpause(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	return httputils.NoContent(w, r.b.ContainerUnpause(ctx, vars["name"]))
}

func (r *Router) rename(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	return httputils.NoContent(w, r.b.ContainerRename(ctx, vars["name"], req.Form.Get("name")))
}

func (r *Router) prune(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	f, err := httputils.FormFilters(req)
	if err != nil {
		return err
	}
	rep, err := r.b.ContainersPrune(ctx, f)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, rep)
}

func (r *Router) top(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	out, err := r.b.ContainerTop(ctx, vars["name"], req.Form.Get("ps_args"))
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, out)
}

func (r *Router) export(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	lw := &httputils.LazyWriter{W: w, ContentType: "application/x-tar"}
	err := r.b.ContainerExport(ctx, vars["name"], lw)
	if err != nil && lw.Started {
		return nil // the status is out: the stream just ends
	}
	return err
}

func (r *Router) commit(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	o := ctr.CommitOptions{Container: req.Form.Get("container"), Repo: req.Form.Get("repo"), Tag: req.Form.Get("tag"),
		Comment: req.Form.Get("comment"), Author: req.Form.Get("author"), Changes: req.Form["changes"],
		Pause: req.Form.Get("pause") == "" || httputils.BoolValue(req, "pause")} // pause unless told not to
	if req.ContentLength > 0 {
		o.Config = &containertypes.Config{}
		if err := httputils.DecodeJSON(req, o.Config); err != nil {
			return err
		}
	}
	id, err := r.b.ContainerCommit(ctx, o)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusCreated, containertypes.CommitResponse{ID: id})
}

func (r *Router) changes(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	out, err := r.b.ContainerChanges(ctx, vars["name"])
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, out)
}
