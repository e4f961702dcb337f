package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"berth.dev/berth/cli/format"
	"berth.dev/berth/client"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/spf13/cobra"
)

type statsOptions struct {
	all, noStream, noTrunc bool
	format                 string
}

func newStatsCommand(c *CLI) *cobra.Command {
	o := &statsOptions{}
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStats(cmd.Context(), c, o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Show all containers (default shows just running)")
	f.StringVar(&o.format, "format", "", formatHelp)
	f.BoolVar(&o.noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Do not truncate output")
	return cmd
}

// Timing of the display, as docker's CLI: a redraw every half second, and
// a container with no sample for two seconds shows "--".
const (
	statsRedraw  = 500 * time.Millisecond
	statsTimeout = 2 * time.Second
)

// statsSet is the containers shown, in the order they were added.
type statsSet struct {
	mu   sync.Mutex
	list []*statsCollector
}

// add makes a collector for key unless one follows it already.
func (s *statsSet) add(ctx context.Context, key string) (*statsCollector, context.Context, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.list {
		if c.key == key {
			return nil, nil, false
		}
	}
	col := &statsCollector{key: key, first: make(chan struct{})}
	ctx, col.cancel = context.WithCancel(ctx)
	s.list = append(s.list, col)
	return col, ctx, true
}

func (s *statsSet) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range s.list {
		if c.key == id {
			c.cancel()
			s.list = append(s.list[:i], s.list[i+1:]...)
			return
		}
	}
}

func (s *statsSet) rows(trunc bool) []statsRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]statsRow, 0, len(s.list))
	for _, c := range s.list {
		out = append(out, c.row(trunc))
	}
	return out
}

func (s *statsSet) errs() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, c := range s.list {
		c.mu.Lock()
		if c.err != nil {
			errs = append(errs, c.err)
		}
		c.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (s *statsSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.list)
}

// statsCollector follows one container's stats response and keeps its
// last computed line.
type statsCollector struct {
	key       string // as the user named it, or the ID when listed
	first     chan struct{}
	firstOnce sync.Once
	cancel    context.CancelFunc

	mu      sync.Mutex
	e       statsEntry
	err     error
	invalid bool
}

func (c *statsCollector) done() { c.firstOnce.Do(func() { close(c.first) }) }

func (c *statsCollector) set(e statsEntry) {
	c.mu.Lock()
	c.e, c.err, c.invalid = e, nil, false
	c.mu.Unlock()
	c.done()
}

// fail zeroes the line ("--") and keeps err for the command's result.
func (c *statsCollector) fail(err error) {
	c.mu.Lock()
	c.e, c.err, c.invalid = statsEntry{name: c.e.name, id: c.e.id}, err, true
	c.mu.Unlock()
	c.done()
}

func (c *statsCollector) row(trunc bool) statsRow {
	c.mu.Lock()
	defer c.mu.Unlock()
	return statsRow{e: c.e, container: c.key, invalid: c.invalid, trunc: trunc}
}

// collect reads samples until ctx ends or the response does: one with
// --no-stream (taken by the daemon over a second, so CPU % has a delta).
func (c *statsCollector) collect(ctx context.Context, cl *client.Client, stream bool) {
	got := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-got:
			case <-time.After(statsTimeout):
				c.fail(errors.New("timeout waiting for stats"))
			}
		}
	}()
	res, err := cl.ContainerStats(ctx, c.key, client.ContainerStatsOptions{Stream: stream, IncludePreviousSample: true})
	if err != nil {
		c.fail(err)
		c.cancel()
		return
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var v container.StatsResponse
		if err := dec.Decode(&v); err != nil {
			if ctx.Err() == nil {
				c.fail(err)
			}
			return
		}
		c.set(entryOf(&v))
		select {
		case got <- struct{}{}:
		default:
		}
		if !stream {
			c.cancel()
			return
		}
	}
}

// statsEntry is one sample as docker's CLI computes it.
type statsEntry struct {
	name, id                 string
	cpu, mem, memLimit, memP float64
	netRx, netTx             float64
	blkRead, blkWrite        float64
	pids                     uint64
}

func entryOf(v *container.StatsResponse) statsEntry {
	e := statsEntry{name: v.Name, id: v.ID, pids: v.PidsStats.Current}
	e.cpu = cpuPercent(v)
	e.mem = memNoCache(v.MemoryStats)
	e.memLimit = float64(v.MemoryStats.Limit)
	if e.memLimit != 0 {
		e.memP = e.mem / e.memLimit * 100
	}
	for _, b := range v.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(b.Op) {
		case "read":
			e.blkRead += float64(b.Value)
		case "write":
			e.blkWrite += float64(b.Value)
		}
	}
	for _, n := range v.Networks {
		e.netRx += float64(n.RxBytes)
		e.netTx += float64(n.TxBytes)
	}
	return e
}

// cpuPercent is the container's share of the host's CPU time between the
// two samples, times the CPUs (100% is one CPU busy).
func cpuPercent(v *container.StatsResponse) float64 {
	cpuDelta := float64(v.CPUStats.CPUUsage.TotalUsage) - float64(v.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(v.CPUStats.SystemUsage) - float64(v.PreCPUStats.SystemUsage)
	cpus := float64(v.CPUStats.OnlineCPUs)
	if cpus == 0 {
		cpus = float64(len(v.CPUStats.CPUUsage.PercpuUsage))
	}
	if sysDelta > 0 && cpuDelta > 0 {
		return cpuDelta / sysDelta * cpus * 100
	}
	return 0
}

// memNoCache leaves out the page cache the kernel can drop: usage less
// total_inactive_file on cgroup v1, inactive_file on v2.
func memNoCache(m container.MemoryStats) float64 {
	if v, ok := m.Stats["total_inactive_file"]; ok && v < m.Usage {
		return float64(m.Usage - v)
	}
	if v := m.Stats["inactive_file"]; v < m.Usage {
		return float64(m.Usage - v)
	}
	return float64(m.Usage)
}

// statsRow is one line of `stats`, with docker's columns.
type statsRow struct {
	e         statsEntry
	container string
	invalid   bool
	trunc     bool
}

func (statsRow) Headers() map[string]string {
	return map[string]string{"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME",
		"CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
		"NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
}

func (r statsRow) MarshalJSON() ([]byte, error) { return format.MarshalRow(r) }

func (r statsRow) Container() string { return r.container }

func (r statsRow) Name() string {
	if len(r.e.name) > 1 {
		return r.e.name[1:]
	}
	return "--"
}

func (r statsRow) ID() string {
	if r.trunc {
		return format.TruncateID(r.e.id)
	}
	return r.e.id
}

func (r statsRow) CPUPerc() string {
	if r.invalid {
		return "--"
	}
	return fmt.Sprintf("%.2f%%", r.e.cpu)
}

func (r statsRow) MemUsage() string {
	if r.invalid {
		return "-- / --"
	}
	return units.BytesSize(r.e.mem) + " / " + units.BytesSize(r.e.memLimit)
}

func (r statsRow) MemPerc() string {
	if r.invalid {
		return "--"
	}
	return fmt.Sprintf("%.2f%%", r.e.memP)
}

func (r statsRow) NetIO() string {
	if r.invalid {
		return "--"
	}
	return units.HumanSizeWithPrecision(r.e.netRx, 3) + " / " + units.HumanSizeWithPrecision(r.e.netTx, 3)
}

func (r statsRow) BlockIO() string {
	if r.invalid {
		return "--"
	}
	return units.HumanSizeWithPrecision(r.e.blkRead, 3) + " / " + units.HumanSizeWithPrecision(r.e.blkWrite, 3)
}

func (r statsRow) PIDs() string {
	if r.invalid {
		return "--"
	}
	return strconv.FormatUint(r.e.pids, 10)
}

func runStats(ctx context.Context, c *CLI, o *statsOptions, names []string) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	set := &statsSet{}
	stream := !o.noStream
	start := func(key string) *statsCollector {
		col, cctx, ok := set.add(ctx, key)
		if !ok {
			return nil
		}
		go col.collect(cctx, cl, stream)
		return col
	}
	var started []*statsCollector
	var evErr <-chan error
	if len(names) == 0 {
		if stream {
			// Subscribe before listing so that no start is missed.
			evErr = watchStatsEvents(ctx, cl, o.all, start, set)
		}
		res, err := cl.ContainerList(ctx, client.ContainerListOptions{All: o.all})
		if err != nil {
			return err
		}
		for _, s := range res.Items {
			if col := start(s.ID); col != nil {
				started = append(started, col)
			}
		}
	} else {
		for _, n := range names {
			if col := start(n); col != nil {
				started = append(started, col)
			}
		}
	}
	for _, col := range started {
		<-col.first
	}
	if len(names) > 0 {
		if err := set.errs(); err != nil {
			return err
		}
	}
	f := o.format
	if f == "" || f == format.TableKey {
		f = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
	}
	render := func(out io.Writer) error {
		w, err := format.NewWriter(out, f, statsRow{}.Headers())
		if err != nil {
			return err
		}
		for _, r := range set.rows(!o.noTrunc) {
			if err := w.Write(r); err != nil {
				return err
			}
		}
		return w.Flush()
	}
	if !stream {
		return render(c.Out) // a header alone when nothing runs, as docker 28
	}
	_, tty := terminalFd(c.Out)
	tick := time.NewTicker(statsRedraw)
	defer tick.Stop()
	var buf bytes.Buffer
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-evErr:
			if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || ctx.Err() != nil {
				return nil // the daemon went away: end quietly, as docker
			}
			return err
		case <-tick.C:
		}
		buf.Reset()
		if err := render(&buf); err != nil {
			return err
		}
		if tty {
			// Redraw in place: home, each line then erase to its end,
			// then erase what a longer previous table left below.
			var screen bytes.Buffer
			screen.WriteString("\033[H")
			for _, line := range strings.Split(buf.String(), "\n") {
				screen.WriteString(line + " \033[K\n")
			}
			screen.WriteString("\033[J")
			buf = screen
		}
		if _, err := c.Out.Write(buf.Bytes()); err != nil {
			return err
		}
		if set.len() == 0 && len(names) > 0 {
			return nil
		}
	}
}

// watchStatsEvents follows container events while `stats` (without
// names) streams: a start adds the container, a create too with --all;
// a die removes it without --all, a destroy always.
func watchStatsEvents(ctx context.Context, cl *client.Client, all bool, start func(string) *statsCollector, set *statsSet) <-chan error {
	res := cl.Events(ctx, client.EventsListOptions{Filters: make(client.Filters).Add("type", string(events.ContainerEventType))})
	errc := make(chan error, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-res.Err:
				errc <- err
				return
			case ev := <-res.Messages:
				switch {
				case ev.Action == events.ActionStart, ev.Action == events.ActionCreate && all:
					start(ev.Actor.ID)
				case ev.Action == events.ActionDie && !all, ev.Action == events.ActionDestroy:
					set.remove(ev.Actor.ID)
				}
			}
		}
	}()
	return errc
}
