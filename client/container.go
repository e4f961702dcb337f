package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ContainerCreateOptions is a container's configuration and name.
type ContainerCreateOptions struct {
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
	// Endpoints, when set, are sent for NetworkingConfig's endpoints: the
	// addresses asked for as text, as docker's CLI sends them.
	Endpoints map[string]*EndpointConfig
	Platform  *ocispec.Platform
	Name      string
	Image     string // instead of Config.Image
}

// ContainerCreateResult is the new container's ID and the daemon's warnings.
type ContainerCreateResult struct {
	ID       string
	Warnings []string
}

// ContainerCreate creates a container.
func (c *Client) ContainerCreate(ctx context.Context, o ContainerCreateOptions) (ContainerCreateResult, error) {
	cfg := o.Config
	if cfg == nil {
		cfg = &container.Config{}
	}
	if o.Image != "" {
		if cfg.Image != "" {
			return ContainerCreateResult{}, cerrdefs.ErrInvalidArgument.WithMessage("either Image or config.Image should be set")
		}
		cp := *cfg
		cp.Image = o.Image
		cfg = &cp
	}
	if cfg.Image == "" {
		return ContainerCreateResult{}, cerrdefs.ErrInvalidArgument.WithMessage("config.Image or Image is required")
	}
	q := url.Values{}
	if o.Platform != nil && o.Platform.OS != "" {
		q.Set("platform", formatPlatform(*o.Platform))
	}
	if o.Name != "" {
		q.Set("name", o.Name)
	}
	hc := o.HostConfig
	if hc != nil {
		n := *hc
		n.CapAdd, n.CapDrop = normalizeCaps(hc.CapAdd), normalizeCaps(hc.CapDrop)
		hc = &n
	}
	body := createBody{CreateRequest: container.CreateRequest{Config: cfg, HostConfig: hc}}
	if o.NetworkingConfig != nil {
		body.NetworkingConfig = o.NetworkingConfig
	}
	if o.Endpoints != nil {
		body.NetworkingConfig = &endpointsBody{EndpointsConfig: o.Endpoints}
	}
	if hasEndpointMAC(o) {
		if err := c.requiresVersion(ctx, "1.44", "specify mac-address per network"); err != nil {
			return ContainerCreateResult{}, err
		}
	}
	r, err := answer[container.CreateResponse](c.post(ctx, "/containers/create", q, nil, body))
	return ContainerCreateResult{ID: r.ID, Warnings: r.Warnings}, err
}

// createBody is moby's create request, the endpoints replaced when given
// as text.
type createBody struct {
	container.CreateRequest
	NetworkingConfig any `json:",omitempty"`
}

type endpointsBody struct {
	EndpointsConfig map[string]*EndpointConfig
}

// hasEndpointMAC says an endpoint asks for a MAC address: API 1.44 on.
func hasEndpointMAC(o ContainerCreateOptions) bool {
	for _, ep := range o.Endpoints {
		if ep != nil && len(ep.MacAddress) > 0 {
			return true
		}
	}
	if o.NetworkingConfig != nil {
		for _, ep := range o.NetworkingConfig.EndpointsConfig {
			if ep != nil && len(ep.MacAddress) > 0 {
				return true
			}
		}
	}
	return false
}

func formatPlatform(p ocispec.Platform) string { return path.Join(p.OS, p.Architecture, p.Variant) }

// normalizeCaps spells capabilities as the daemon expects: CAP_X, sorted,
// once each.
func normalizeCaps(caps []string) []string {
	out := slices.Clone(caps)
	for i, c := range out {
		c = strings.ToUpper(c)
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		out[i] = c
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ContainerInspectOptions asks for sizes too.
type ContainerInspectOptions struct{ Size bool }

// ContainerInspectResult is the decoded inspect and its raw JSON.
type ContainerInspectResult struct {
	Container container.InspectResponse
	Raw       json.RawMessage
}

// ContainerInspect inspects a container.
func (c *Client) ContainerInspect(ctx context.Context, id string, o ContainerInspectOptions) (ContainerInspectResult, error) {
	id, err := trimID("container", id)
	if err != nil {
		return ContainerInspectResult{}, err
	}
	q := url.Values{}
	if o.Size {
		q.Set("size", "1")
	}
	resp, err := c.get(ctx, "/containers/"+id+"/json", q)
	if err != nil {
		return ContainerInspectResult{}, err
	}
	var r ContainerInspectResult
	r.Raw, err = decodeRaw(resp, &r.Container)
	return r, err
}

// decodeRaw decodes a JSON response and keeps its bytes.
func decodeRaw(resp *http.Response, v any) (json.RawMessage, error) {
	defer closeBody(resp)
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return b, json.Unmarshal(b, v)
}

// ContainerListOptions selects containers.
type ContainerListOptions struct {
	Size    bool
	All     bool
	Limit   int
	Filters Filters
	Latest  bool
	Since   string
	Before  string
}

// ContainerListResult is the containers listed.
type ContainerListResult struct{ Items []container.Summary }

// ContainerList lists containers.
func (c *Client) ContainerList(ctx context.Context, o ContainerListOptions) (ContainerListResult, error) {
	q := url.Values{}
	if o.All {
		q.Set("all", "1")
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Size {
		q.Set("size", "1")
	}
	o.Filters.set(q)
	items, err := answer[[]container.Summary](c.get(ctx, "/containers/json", q))
	return ContainerListResult{Items: items}, err
}

// ContainerStartOptions are checkpoint options (not used by berth).
type ContainerStartOptions struct{ CheckpointID, CheckpointDir string }

// ContainerStartResult is empty.
type ContainerStartResult struct{}

// ContainerStart starts a container.
func (c *Client) ContainerStart(ctx context.Context, id string, o ContainerStartOptions) (ContainerStartResult, error) {
	q := url.Values{}
	if o.CheckpointID != "" {
		q.Set("checkpoint", o.CheckpointID)
	}
	if o.CheckpointDir != "" {
		q.Set("checkpoint-dir", o.CheckpointDir)
	}
	return ContainerStartResult{}, c.containerPost(ctx, id, "start", q)
}

// containerPost is a POST /containers/{id}/{op} without body or result.
func (c *Client) containerPost(ctx context.Context, id, op string, q url.Values) error {
	id, err := trimID("container", id)
	if err != nil {
		return err
	}
	resp, err := c.post(ctx, "/containers/"+id+"/"+op, q, nil, nil)
	if err != nil {
		return err
	}
	closeBody(resp)
	return nil
}

// ContainerStopOptions: the signal and seconds before SIGKILL.
type ContainerStopOptions struct {
	Signal  string `json:",omitempty"`
	Timeout *int   `json:",omitempty"`
}

// ContainerStopResult is empty.
type ContainerStopResult struct{}

// ContainerStop stops a container.
func (c *Client) ContainerStop(ctx context.Context, id string, o ContainerStopOptions) (ContainerStopResult, error) {
	return ContainerStopResult{}, c.containerPost(ctx, id, "stop", stopQuery(o.Signal, o.Timeout))
}

func stopQuery(signal string, timeout *int) url.Values {
	q := url.Values{}
	if timeout != nil {
		q.Set("t", strconv.Itoa(*timeout))
	}
	if signal != "" {
		q.Set("signal", signal)
	}
	return q
}

// ContainerRestartOptions are ContainerStopOptions.
type ContainerRestartOptions ContainerStopOptions

// ContainerRestartResult is empty.
type ContainerRestartResult struct{}

// ContainerRestart restarts a container.
func (c *Client) ContainerRestart(ctx context.Context, id string, o ContainerRestartOptions) (ContainerRestartResult, error) {
	return ContainerRestartResult{}, c.containerPost(ctx, id, "restart", stopQuery(o.Signal, o.Timeout))
}

// ContainerKillOptions is the signal (default the daemon's, SIGKILL).
type ContainerKillOptions struct {
	Signal string `json:",omitempty"`
}

// ContainerKillResult is empty.
type ContainerKillResult struct{}

// ContainerKill signals a container.
func (c *Client) ContainerKill(ctx context.Context, id string, o ContainerKillOptions) (ContainerKillResult, error) {
	q := url.Values{}
	if o.Signal != "" {
		q.Set("signal", o.Signal)
	}
	return ContainerKillResult{}, c.containerPost(ctx, id, "kill", q)
}

// ContainerPauseOptions is empty.
type ContainerPauseOptions struct{}

// ContainerPauseResult is empty.
type ContainerPauseResult struct{}

// ContainerPause freezes a container.
func (c *Client) ContainerPause(ctx context.Context, id string, _ ContainerPauseOptions) (ContainerPauseResult, error) {
	return ContainerPauseResult{}, c.containerPost(ctx, id, "pause", nil)
}

// ContainerUnpauseOptions is empty.
type ContainerUnpauseOptions struct{}

// ContainerUnpauseResult is empty.
type ContainerUnpauseResult struct{}

// ContainerUnpause thaws a container.
func (c *Client) ContainerUnpause(ctx context.Context, id string, _ ContainerUnpauseOptions) (ContainerUnpauseResult, error) {
	return ContainerUnpauseResult{}, c.containerPost(ctx, id, "unpause", nil)
}

// ContainerRenameOptions is the new name.
type ContainerRenameOptions struct{ NewName string }

// ContainerRenameResult is empty.
type ContainerRenameResult struct{}

// ContainerRename renames a container.
func (c *Client) ContainerRename(ctx context.Context, id string, o ContainerRenameOptions) (ContainerRenameResult, error) {
	name := strings.TrimSpace(o.NewName)
	if strings.TrimPrefix(name, "/") == "" {
		return ContainerRenameResult{}, cerrdefs.ErrInvalidArgument.WithMessage("new name cannot be blank")
	}
	return ContainerRenameResult{}, c.containerPost(ctx, id, "rename", url.Values{"name": {name}})
}

// ContainerResizeOptions is a terminal's size.
type ContainerResizeOptions struct{ Height, Width uint }

// ContainerResizeResult is empty.
type ContainerResizeResult struct{}

// ContainerResize resizes a container's terminal.
func (c *Client) ContainerResize(ctx context.Context, id string, o ContainerResizeOptions) (ContainerResizeResult, error) {
	return ContainerResizeResult{}, c.containerPost(ctx, id, "resize", sizeQuery(o.Height, o.Width))
}

func sizeQuery(h, w uint) url.Values {
	return url.Values{"h": {strconv.FormatUint(uint64(h), 10)}, "w": {strconv.FormatUint(uint64(w), 10)}}
}

// ContainerRemoveOptions: also its anonymous volumes, links; kill first.
type ContainerRemoveOptions struct {
	RemoveVolumes bool
	RemoveLinks   bool
	Force         bool
}

// ContainerRemoveResult is empty.
type ContainerRemoveResult struct{}

// ContainerRemove removes a container.
func (c *Client) ContainerRemove(ctx context.Context, id string, o ContainerRemoveOptions) (ContainerRemoveResult, error) {
	id, err := trimID("container", id)
	if err != nil {
		return ContainerRemoveResult{}, err
	}
	q := url.Values{}
	for k, on := range map[string]bool{"v": o.RemoveVolumes, "link": o.RemoveLinks, "force": o.Force} {
		if on {
			q.Set(k, "1")
		}
	}
	resp, err := c.delete(ctx, "/containers/"+id, q)
	if err != nil {
		return ContainerRemoveResult{}, err
	}
	closeBody(resp)
	return ContainerRemoveResult{}, nil
}

// ContainerWaitOptions is the condition waited for (default not-running).
type ContainerWaitOptions struct{ Condition container.WaitCondition }

// ContainerWaitResult delivers the exit once, or an error.
type ContainerWaitResult struct {
	Result <-chan container.WaitResponse
	Error  <-chan error
}

// ContainerWait waits for a container: the request is made before it
// returns (the wait is registered), the answer comes on Result.
func (c *Client) ContainerWait(ctx context.Context, id string, o ContainerWaitOptions) ContainerWaitResult {
	result := make(chan container.WaitResponse)
	errc := make(chan error, 1)
	res := ContainerWaitResult{Result: result, Error: errc}
	id, err := trimID("container", id)
	if err != nil {
		errc <- err
		return res
	}
	q := url.Values{}
	if o.Condition != "" {
		q.Set("condition", string(o.Condition))
	}
	resp, err := c.post(ctx, "/containers/"+id+"/wait", q, nil, nil)
	if err != nil {
		errc <- err
		return res
	}
	go func() {
		defer closeBody(resp)
		var text bytes.Buffer
		body := io.TeeReader(resp.Body, &text)
		var r container.WaitResponse
		if err := json.NewDecoder(body).Decode(&r); err != nil {
			if errors.As(err, new(*json.SyntaxError)) {
				// not JSON: the daemon's text is the error
				_, _ = io.Copy(io.Discard, io.LimitReader(body, 2048))
				err = errors.New(text.String())
			}
			errc <- err
			return
		}
		result <- r
	}()
	return res
}

// ContainerLogsOptions selects a container's log lines.
type ContainerLogsOptions struct {
	ShowStdout bool
	ShowStderr bool
	Since      string
	Until      string
	Timestamps bool
	Follow     bool
	Tail       string
	Details    bool
}

// ContainerLogsResult is the log stream (multiplexed unless a tty).
type ContainerLogsResult interface{ io.ReadCloser }

// ContainerLogs streams a container's logs.
func (c *Client) ContainerLogs(ctx context.Context, id string, o ContainerLogsOptions) (ContainerLogsResult, error) {
	id, err := trimID("container", id)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	for k, on := range map[string]bool{"stdout": o.ShowStdout, "stderr": o.ShowStderr, "timestamps": o.Timestamps,
		"details": o.Details, "follow": o.Follow} {
		if on {
			q.Set(k, "1")
		}
	}
	for k, v := range map[string]string{"since": o.Since, "until": o.Until} {
		if v == "" {
			continue
		}
		ts, err := Timestamp(v, time.Now())
		if err != nil {
			return nil, fmt.Errorf("invalid value for %q: %w", k, err)
		}
		q.Set(k, ts)
	}
	if o.Tail != "" && o.Tail != "all" {
		q.Set("tail", o.Tail)
	}
	resp, err := c.get(ctx, "/containers/"+id+"/logs", q)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ContainerTopOptions are ps's arguments.
type ContainerTopOptions struct{ Arguments []string }

// ContainerTopResult is ps's table.
type ContainerTopResult struct {
	Processes [][]string
	Titles    []string
}

// ContainerTop lists a container's processes.
func (c *Client) ContainerTop(ctx context.Context, id string, o ContainerTopOptions) (ContainerTopResult, error) {
	id, err := trimID("container", id)
	if err != nil {
		return ContainerTopResult{}, err
	}
	q := url.Values{}
	if len(o.Arguments) > 0 {
		q.Set("ps_args", strings.Join(o.Arguments, " "))
	}
	r, err := answer[container.TopResponse](c.get(ctx, "/containers/"+id+"/top", q))
	return ContainerTopResult{Processes: r.Processes, Titles: r.Titles}, err
}

// ContainerPruneOptions selects what is pruned.
type ContainerPruneOptions struct{ Filters Filters }

// ContainerPruneResult is what was removed.
type ContainerPruneResult struct{ Report container.PruneReport }

// ContainerPrune removes stopped containers.
func (c *Client) ContainerPrune(ctx context.Context, o ContainerPruneOptions) (ContainerPruneResult, error) {
	rep, err := prune[container.PruneReport](ctx, c, "/containers/prune", o.Filters, "error retrieving disk usage")
	return ContainerPruneResult{Report: rep}, err
}

// ContainerUpdateOptions are the new limits and restart policy.
type ContainerUpdateOptions struct {
	Resources     *container.Resources
	RestartPolicy *container.RestartPolicy
}

// ContainerUpdateResult is the daemon's warnings.
type ContainerUpdateResult struct{ Warnings []string }

// ContainerUpdate changes a container's limits.
func (c *Client) ContainerUpdate(ctx context.Context, id string, o ContainerUpdateOptions) (ContainerUpdateResult, error) {
	id, err := trimID("container", id)
	if err != nil {
		return ContainerUpdateResult{}, err
	}
	var u container.UpdateConfig
	if o.Resources != nil {
		u.Resources = *o.Resources
	}
	if o.RestartPolicy != nil {
		u.RestartPolicy = *o.RestartPolicy
	}
	r, err := answer[container.UpdateResponse](c.post(ctx, "/containers/"+id+"/update", nil, nil, u))
	return ContainerUpdateResult{Warnings: r.Warnings}, err
}

// ContainerStatsOptions: a stream, or one sample (with the previous one
// for CPU percentages unless one-shot).
type ContainerStatsOptions struct {
	Stream                bool
	IncludePreviousSample bool
}

// ContainerStatsResult is the JSON stream of stats.
type ContainerStatsResult struct{ Body io.ReadCloser }

// ContainerStats streams a container's resource usage.
func (c *Client) ContainerStats(ctx context.Context, id string, o ContainerStatsOptions) (ContainerStatsResult, error) {
	id, err := trimID("container", id)
	if err != nil {
		return ContainerStatsResult{}, err
	}
	q := url.Values{"stream": {strconv.FormatBool(o.Stream)}}
	if !o.Stream && !o.IncludePreviousSample {
		q.Set("one-shot", "true")
	}
	resp, err := c.get(ctx, "/containers/"+id+"/stats", q)
	if err != nil {
		return ContainerStatsResult{}, err
	}
	return ContainerStatsResult{Body: resp.Body}, nil
}
