// Package image is the API's image area: list, inspect, history, tag,
// remove, prune, load, save, import (and pull, refused until the registry
// client exists).
package image

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"berth.dev/berth/daemon/backend"
	"berth.dev/berth/daemon/filters"
	"berth.dev/berth/daemon/server/httputils"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	registrytypes "github.com/moby/moby/api/types/registry"
)

// Backend is what the image routes need from the daemon.
type Backend interface {
	Images(ctx context.Context, opts backend.ImageListOptions) ([]imagetypes.Summary, error)
	ImageInspect(ctx context.Context, name string) (*imagetypes.InspectResponse, error)
	ImageHistory(ctx context.Context, name string) ([]imagetypes.HistoryResponseItem, error)
	TagImage(ctx context.Context, source, repo, tag string) (string, error)
	ImageDelete(ctx context.Context, name string, force, noPrune bool) ([]imagetypes.DeleteResponse, error)
	ImagesPrune(ctx context.Context, f filters.Args) (*imagetypes.PruneReport, error)
	LoadImage(ctx context.Context, r io.Reader, progress func(id string, current, total int64)) ([]backend.LoadedImage, error)
	ExportImages(ctx context.Context, names []string, w io.Writer) error
	ImportImage(ctx context.Context, r io.Reader, opts backend.ImportOptions) (string, error)
	PullImage(ctx context.Context, o backend.PullOptions) error
	PushImage(ctx context.Context, o backend.PushOptions) error
	SearchImages(ctx context.Context, o backend.SearchOptions) ([]registrytypes.SearchResult, error)
}

// Router serves the image routes.
type Router struct{ b Backend }

// New returns the image router over b.
func New(b Backend) *Router { return &Router{b: b} }

// Routes implements httputils.Router.
func (r *Router) Routes() []httputils.Route {
	return []httputils.Route{
		{Method: http.MethodGet, Path: "/images/json", Handler: r.list},
		{Method: http.MethodGet, Path: "/images/get", Handler: r.save},
		{Method: http.MethodPost, Path: "/images/load", Handler: r.load},
		{Method: http.MethodPost, Path: "/images/create", Handler: r.create},
		{Method: http.MethodPost, Path: "/images/prune", Handler: r.prune},
		{Method: http.MethodGet, Path: "/images/{name:.+}/json", Handler: r.inspect},
		{Method: http.MethodGet, Path: "/images/{name:.+}/history", Handler: r.history},
		{Method: http.MethodGet, Path: "/images/{name:.+}/get", Handler: r.save},
		{Method: http.MethodPost, Path: "/images/{name:.+}/tag", Handler: r.tag},
		{Method: http.MethodPost, Path: "/images/{name:.+}/push", Handler: r.push},
		{Method: http.MethodGet, Path: "/images/search", Handler: r.search},
		{Method: http.MethodDelete, Path: "/images/{name:.+}", Handler: r.remove},
	}
}

func (r *Router) list(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	f, err := httputils.FormFilters(req)
	if err != nil {
		return err
	}
	// API < 1.41 had ?filter=name as a reference filter.
	if v := req.Form.Get("filter"); v != "" {
		f.Add("reference", v)
	}
	imgs, err := r.b.Images(ctx, backend.ImageListOptions{
		All: httputils.BoolValue(req, "all"), Filters: f,
		SharedSize: httputils.BoolValue(req, "shared-size"), Manifests: httputils.BoolValue(req, "manifests"),
	})
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, imgs)
}

func (r *Router) inspect(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	img, err := r.b.ImageInspect(ctx, vars["name"])
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, img)
}

func (r *Router) history(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	h, err := r.b.ImageHistory(ctx, vars["name"])
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, h)
}

func (r *Router) tag(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	if _, err := r.b.TagImage(ctx, vars["name"], req.Form.Get("repo"), req.Form.Get("tag")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (r *Router) remove(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	items, err := r.b.ImageDelete(ctx, vars["name"], httputils.BoolValue(req, "force"), httputils.BoolValue(req, "noprune"))
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, items)
}

func (r *Router) prune(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	f, err := httputils.FormFilters(req)
	if err != nil {
		return err
	}
	rep, err := r.b.ImagesPrune(ctx, f)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, rep)
}

// load answers with the JSON message stream dockerd writes; the CLI prints
// its "stream" lines.
func (r *Router) load(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	// Progress, unless quiet (the docker CLI asks for it on a terminal):
	// "Loading layer" per layer, as dockerd. The status is sent with the
	// first message; an error after that goes in the stream, as dockerd
	// sends all of its load errors.
	st := newStream(w)
	var progress func(string, int64, int64)
	if !httputils.BoolValue(req, "quiet") {
		progress = func(id string, current, total int64) {
			st.send(jsonstream.Message{Status: "Loading layer", ID: id, Progress: &jsonstream.Progress{Current: current, Total: total}})
		}
	}
	loaded, err := r.b.LoadImage(ctx, req.Body, progress)
	if err != nil {
		return st.fail(err)
	}
	for _, l := range loaded {
		if len(l.Refs) == 0 {
			st.send(jsonstream.Message{Stream: "Loaded image ID: " + l.ID + "\n"})
		}
		for _, ref := range l.Refs {
			st.send(jsonstream.Message{Stream: "Loaded image: " + ref + "\n"})
		}
	}
	st.begin()
	return nil
}

// stream is dockerd's JSON message stream: the status is sent with the
// first message; an error before it is an HTTP error, an error after it
// goes in the stream (the CLI prints it and fails).
type stream struct {
	w       http.ResponseWriter
	enc     *json.Encoder
	started bool
}

func newStream(w http.ResponseWriter) *stream { return &stream{w: w, enc: json.NewEncoder(w)} }

func (s *stream) begin() {
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", "application/json")
		s.w.WriteHeader(http.StatusOK)
	}
}

func (s *stream) send(m jsonstream.Message) {
	s.begin()
	_ = s.enc.Encode(m)
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

// progress sends a pull's or push's progress event.
func (s *stream) progress(ev backend.ProgressEvent) {
	m := jsonstream.Message{ID: ev.ID, Status: ev.Status}
	if ev.Total > 0 || ev.Current > 0 {
		m.Progress = &jsonstream.Progress{Current: ev.Current, Total: ev.Total}
	}
	if ev.Aux != nil {
		raw, err := json.Marshal(ev.Aux)
		if err == nil {
			m.Aux = (*json.RawMessage)(&raw)
		}
	}
	s.send(m)
}

// fail ends the stream with err.
func (s *stream) fail(err error) error {
	if !s.started {
		return err
	}
	// With the old "error" field too, which dockerd still sends and older
	// clients read.
	s.begin()
	_ = s.enc.Encode(struct {
		ErrorDetail jsonstream.Error `json:"errorDetail"`
		Error       string           `json:"error"`
	}{jsonstream.Error{Message: err.Error()}, err.Error()})
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

func (r *Router) save(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	names := req.Form["names"]
	if n := vars["name"]; n != "" {
		names = []string{n}
	}
	lw := &httputils.LazyWriter{W: w, ContentType: "application/x-tar"}
	return r.b.ExportImages(ctx, names, lw)
}

// create is POST /images/create: import with fromSrc=- (the body is the
// rootfs tar), pull with fromImage.
func (r *Router) create(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	if img := req.Form.Get("fromImage"); img != "" {
		tag := req.Form.Get("tag")
		if tag != "" {
			if strings.HasPrefix(tag, "sha256:") {
				img += "@" + tag
			} else {
				img += ":" + tag
			}
		}
		auth, err := httputils.RegistryAuth(req)
		if err != nil {
			return err
		}
		st := newStream(w)
		err = r.b.PullImage(ctx, backend.PullOptions{Ref: img, AllTags: tag == "" && !strings.Contains(img, "@"), Platform: req.Form.Get("platform"), Auth: auth, Progress: st.progress})
		if err != nil {
			return st.fail(err)
		}
		st.begin()
		return nil
	}
	src := req.Form.Get("fromSrc")
	if src != "-" {
		if src == "" {
			return errInvalid("fromImage or fromSrc is required")
		}
		return errNotImplemented("import from a URL is not supported; send the tar in the body with fromSrc=-")
	}
	id, err := r.b.ImportImage(ctx, req.Body, backend.ImportOptions{
		Repo: req.Form.Get("repo"), Tag: req.Form.Get("tag"), Message: req.Form.Get("message"),
		Changes: req.Form["changes"], Platform: req.Form.Get("platform"),
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return json.NewEncoder(w).Encode(jsonstream.Message{Status: id})
}

// push is POST /images/{name}/push?tag=: docker push, progress streamed.
func (r *Router) push(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	auth, err := httputils.RegistryAuth(req)
	if err != nil {
		return err
	}
	ref := vars["name"]
	if tag := req.Form.Get("tag"); tag != "" {
		ref += ":" + tag
	}
	st := newStream(w)
	if err := r.b.PushImage(ctx, backend.PushOptions{Ref: ref, Auth: auth, Progress: st.progress}); err != nil {
		return st.fail(err)
	}
	st.begin()
	return nil
}

// search is GET /images/search?term=&limit=&filters=.
func (r *Router) search(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	auth, err := httputils.RegistryAuth(req)
	if err != nil {
		return err
	}
	f, err := httputils.FormFilters(req)
	if err != nil {
		return err
	}
	limit := 0
	if l := req.Form.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil {
			return errInvalid("invalid limit " + strconv.Quote(l))
		}
	}
	term := req.Form.Get("term")
	if term == "" {
		return errInvalid("a search term is required")
	}
	res, err := r.b.SearchImages(ctx, backend.SearchOptions{Term: term, Limit: limit, Filters: f, Auth: auth})
	if err != nil {
		return err
	}
	if res == nil {
		res = []registrytypes.SearchResult{}
	}
	return httputils.WriteJSON(w, http.StatusOK, res)
}
