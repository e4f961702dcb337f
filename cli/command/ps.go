package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"berth.dev/berth/cli/format"
	"berth.dev/berth/client"
	"berth.dev/berth/image/reference"
	"berth.dev/berth/internal/lazyregexp"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

func newContainerCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{Use: "container", Short: "Manage containers", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	ls := newPsCommand(c)
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"list", "ps"}
	cmd.AddCommand(ls, newContainerInspectCommand(c), newLogsCommand(c), newStartCommand(c),
		newStopCommand(c), newRestartCommand(c), newKillCommand(c), newRmCommand(c, "rm", "remove"),
		newWaitCommand(c), newPauseCommand(c), newUnpauseCommand(c), newRenameCommand(c),
		newTopCommand(c), newContainerPruneCommand(c), newCpCommand(c), newUpdateCommand(c), newStatsCommand(c), newPortCommand(c))
	cmd.AddCommand(newRunCommand(c), newCreateCommand(c), newAttachCommand(c), newExecCommand(c))
	for _, sub := range cmd.Commands() {
		setContainerAliases(sub, sub.Name())
	}
	return cmd
}

// setContainerAliases gives a container command that also exists at the
// top level (`berth ps` is `berth container ls`) docker's help line naming
// all its spellings.
func setContainerAliases(cmd *cobra.Command, name string) {
	line := ""
	switch name {
	case "ls":
		line = "berth container ls, berth container list, berth container ps, berth ps"
	case "rm":
		line = "berth container rm, berth container remove, berth rm"
	case "logs", "start", "stop", "restart", "kill", "wait", "pause", "unpause", "rename", "top", "cp", "update", "stats",
		"port", "run", "create", "attach", "exec":
		line = "berth container " + name + ", berth " + name
	default:
		return
	}
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations["aliases"] = line
}

type psOptions struct {
	all, quiet, size, noTrunc, latest bool
	last                              int
	format                            string
	filter                            filterFlag
}

func newPsCommand(c *CLI) *cobra.Command {
	o := &psOptions{}
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runPs(cmd, c, o) },
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Show all containers (default shows just running)")
	f.VarP(&o.filter, "filter", "f", "Filter output based on conditions provided")
	f.StringVar(&o.format, "format", "", formatHelp)
	f.IntVarP(&o.last, "last", "n", -1, "Show n last created containers (includes all states)")
	f.BoolVarP(&o.latest, "latest", "l", false, "Show the latest created container (includes all states)")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only display container IDs")
	f.BoolVarP(&o.size, "size", "s", false, "Display total file sizes")
	return cmd
}

func runPs(cmd *cobra.Command, c *CLI, o *psOptions) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	table := "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
	if o.size {
		table += "\t{{.Size}}"
	}
	f := listFormat(o.format, o.quiet, "{{.ID}}", table)
	opts := client.ContainerListOptions{All: o.all, Limit: o.last, Filters: o.filter.f,
		// docker asks for sizes only when they are shown: they are costly.
		Size: o.size || strings.Contains(f, ".Size") || wholeJSON.MatchString(f)}
	if o.latest && o.last == -1 {
		opts.Limit = 1
	}
	res, err := cl.ContainerList(cmd.Context(), opts)
	if err != nil {
		return err
	}
	w, err := format.NewWriter(c.Out, f, psRow{}.Headers())
	if err != nil {
		return err
	}
	for _, s := range res.Items {
		if err := w.Write(psRow{c: s, trunc: !o.noTrunc}); err != nil {
			if inner := errors.Unwrap(err); inner != nil {
				err = fmt.Errorf("failed to execute template: %w", inner) // ps's words
			}
			return err
		}
	}
	return w.Flush()
}

// psRow is one line of `ps`, with docker's columns.
type psRow struct {
	c     container.Summary
	trunc bool
}

func (psRow) Headers() map[string]string {
	return map[string]string{"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
		"RunningFor": "CREATED", "CreatedAt": "CREATED AT", "Status": "STATUS",
		"Ports": "PORTS", "Names": "NAMES", "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS",
		"Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES", "State": "STATE"}
}

func (r psRow) ID() string {
	if r.trunc {
		return format.TruncateID(r.c.ID)
	}
	return r.c.ID
}

// Names drops the leading slash, and, truncated, the names links give.
func (r psRow) Names() string {
	var names []string
	for _, n := range r.c.Names {
		n = strings.TrimPrefix(n, "/")
		if r.trunc && strings.Contains(n, "/") {
			continue
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

// Image is the name the container was made from, without a digest unless
// --no-trunc, or a short ID when that is all there is.
func (r psRow) Image() string {
	img := r.c.Image
	if r.trunc {
		if t := format.TruncateID(r.c.ImageID); t == format.TruncateID(img) {
			img = t
		}
		if ref, err := reference.ParseNormalizedNamed(img); err == nil {
			ref.Digest = "" // the name and tag only
			img = ref.FamiliarString()
		}
	}
	if img == "" {
		return "<no image>"
	}
	return img
}

func (r psRow) Command() string {
	cmd := r.c.Command
	if r.trunc {
		cmd = format.Ellipsis(cmd, 20)
	}
	return strconv.Quote(cmd)
}

func (r psRow) CreatedAt() string  { return time.Unix(r.c.Created, 0).String() }
func (r psRow) RunningFor() string { return format.Since(r.c.Created) }
func (r psRow) Status() string     { return r.c.Status }
func (r psRow) State() string      { return string(r.c.State) }

func (r psRow) Size() string {
	rw := format.Size(r.c.SizeRw)
	if r.c.SizeRootFs > 0 {
		return fmt.Sprintf("%s (virtual %s)", rw, format.Size(r.c.SizeRw+r.c.SizeRootFs))
	}
	return rw
}

func (r psRow) Labels() string { return strings.Join(sortedPairs(r.c.Labels), ",") }

// Label is one label's value, as in {{.Label "k"}}.
func (r psRow) Label(name string) string { return r.c.Labels[name] }

func (r psRow) Mounts() string {
	var m []string
	for _, mp := range r.c.Mounts {
		name := mp.Name
		if name == "" {
			name = mp.Source
		}
		if r.trunc {
			name = format.Ellipsis(name, 15)
		}
		m = append(m, name)
	}
	return strings.Join(m, ",")
}

func (r psRow) LocalVolumes() string {
	n := 0
	for _, mp := range r.c.Mounts {
		if mp.Driver == "local" {
			n++
		}
	}
	return strconv.Itoa(n)
}

func (r psRow) Networks() string {
	if r.c.NetworkSettings == nil {
		return ""
	}
	var n []string
	for k := range r.c.NetworkSettings.Networks {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ",")
}

// Ports lists ports as docker does: published ones on their own host port
// as "0.0.0.0:8080->80/tcp", the rest folded into runs ("80-82/tcp",
// "0.0.0.0:80-81->80-81/tcp" where host and container ports agree).
func (r psRow) Ports() string {
	ps := append([]container.PortSummary(nil), r.c.Ports...)
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		switch {
		case a.PrivatePort != b.PrivatePort:
			return a.PrivatePort < b.PrivatePort
		case a.IP != b.IP:
			return ipText(a.IP) < ipText(b.IP) // docker compares the text
		case a.PublicPort != b.PublicPort:
			return a.PublicPort < b.PublicPort
		}
		return a.Type < b.Type
	})
	type run struct {
		ip          string
		typ         string
		first, last uint16
	}
	var out, mapped []string
	var keys []string
	runs := map[string]*run{}
	show := func(g *run) string {
		s := strconv.Itoa(int(g.first))
		if g.last != g.first {
			s += "-" + strconv.Itoa(int(g.last))
		}
		if g.ip != "" {
			s = net.JoinHostPort(g.ip, s) + "->" + s
		}
		return s + "/" + g.typ
	}
	for _, p := range ps {
		ip := ""
		if p.IP.IsValid() {
			ip = p.IP.String()
			if p.PublicPort != p.PrivatePort {
				mapped = append(mapped, fmt.Sprintf("%s->%d/%s", net.JoinHostPort(ip, strconv.Itoa(int(p.PublicPort))), p.PrivatePort, p.Type))
				continue
			}
		}
		key := ip + "/" + p.Type
		g := runs[key]
		switch {
		case g == nil:
			runs[key] = &run{ip: ip, typ: p.Type, first: p.PrivatePort, last: p.PrivatePort}
			keys = append(keys, key)
		case p.PrivatePort == g.last+1:
			g.last = p.PrivatePort
		default:
			out = append(out, show(g))
			runs[key] = &run{ip: ip, typ: p.Type, first: p.PrivatePort, last: p.PrivatePort}
		}
	}
	for _, k := range keys {
		out = append(out, show(runs[k]))
	}
	return strings.Join(append(out, mapped...), ", ")
}

func ipText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// wholeJSON finds {{json .}}, which shows every column, Size too.
var wholeJSON = lazyregexp.New(`\{\{-?\s*json\s+\.\s*-?\}\}`)

// MarshalJSON is the row's columns, and docker's Platform (always null
// here: summaries do not carry it).
func (r psRow) MarshalJSON() ([]byte, error) {
	b, err := format.MarshalRow(r)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["Platform"] = nil
	return json.Marshal(m)
}
