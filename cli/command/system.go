package command

import (
	"errors"
	"fmt"
	"io"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"berth.dev/berth/cli/format"
	"berth.dev/berth/client"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
	"github.com/spf13/cobra"
)

func newSystemCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage berth", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	cmd.AddCommand(newDFCommand(c), newEventsCommand(c), newInfoCommand(c))
	return cmd
}

// clientVersion is the "Client" half of `version`, with docker's names.
type clientVersion struct {
	Platform          struct{ Name string } `json:",omitempty"`
	Version           string
	APIVersion        string `json:"ApiVersion"`
	DefaultAPIVersion string `json:"DefaultAPIVersion,omitempty"`
	GitCommit         string
	GoVersion         string
	Os                string
	Arch              string
	BuildTime         string `json:",omitempty"`
	Context           string
}

type versionInfo struct {
	Client clientVersion
	Server *system.VersionResponse
}

// ServerOK is used by the default template.
func (v versionInfo) ServerOK() bool { return v.Server != nil }

const versionTemplate = `{{with .Client -}}
Client:{{if .Platform.Name}} {{.Platform.Name}}{{end}}
 Version:	{{.Version}}
 API version:	{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Go version:	{{.GoVersion}}
 Git commit:	{{.GitCommit}}
 Built:	{{.BuildTime}}
 OS/Arch:	{{.Os}}/{{.Arch}}
 Context:	{{.Context}}
{{- end}}
{{- if .ServerOK}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine"}}
  Version:	{{.Version}}
  API version:	{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:	{{index .Details "GoVersion"}}
  Git commit:	{{index .Details "GitCommit"}}
  Built:	{{index .Details "BuildTime"}}
  OS/Arch:	{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:	{{index .Details "Experimental"}}
  {{- else}}
  Version:	{{$component.Version}}
  {{- range $key, $value := $component.Details}}
  {{$key}}:	{{$value}}
  {{- end}}
  {{- end}}
 {{- end}}
{{- end}}{{end}}
`

func newVersionCommand(c *CLI) *cobra.Command {
	var f string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the berth version information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			v := versionInfo{Client: clientVersion{Version: Version, APIVersion: client.MaxAPIVersion,
				DefaultAPIVersion: client.MaxAPIVersion, GoVersion: goruntime.Version(), GitCommit: "unknown", BuildTime: "unknown",
				Os: goruntime.GOOS, Arch: goruntime.GOARCH, Context: "default"}}
			v.Client.Platform.Name = "berth"
			sv, serr := cl.ServerVersion(cmd.Context(), client.ServerVersionOptions{})
			if serr == nil {
				v.Client.APIVersion = cl.ClientVersion()
				v.Server = serverVersion(sv)
			}
			tmpl := f
			if tmpl == "" {
				tmpl = versionTemplate
			} else if tmpl == format.JSONKey {
				tmpl = "{{json .}}"
			}
			t, err := format.Parse(tmpl)
			if err != nil {
				return statusError{code: ExitError, err: err}
			}
			var out io.Writer = c.Out
			var tw *tabwriter.Writer
			if f == "" {
				tw = tabwriter.NewWriter(c.Out, 20, 1, 1, ' ', 0)
				out = tw
			}
			if err := t.Execute(out, v); err != nil && serr == nil {
				return fmt.Errorf("template: %w", err)
			}
			if f != "" {
				fmt.Fprintln(c.Out)
			}
			if tw != nil {
				tw.Flush()
			}
			return serr
		},
	}
	cmd.Flags().StringVarP(&f, "format", "f", "", formatHelpNoTable)
	return cmd
}

// serverVersion is the daemon's /version answer with the Engine
// component's details lifted back to the fields docker templates name.
func serverVersion(sv client.ServerVersionResult) *system.VersionResponse {
	v := &system.VersionResponse{Version: sv.Version, APIVersion: sv.APIVersion, MinAPIVersion: sv.MinAPIVersion,
		Os: sv.Os, Arch: sv.Arch, Components: sv.Components}
	v.Platform.Name = sv.Platform.Name
	for _, comp := range sv.Components {
		if comp.Name != "Engine" {
			continue
		}
		d := comp.Details
		if bt, ok := d["BuildTime"]; ok {
			d["BuildTime"] = reformatDate(bt)
		}
		v.GoVersion, v.GitCommit, v.KernelVersion, v.BuildTime = d["GoVersion"], d["GitCommit"], d["KernelVersion"], d["BuildTime"]
		v.Experimental = d["Experimental"] == "true" //nolint:staticcheck // docker still shows it
	}
	return v
}

// reformatDate prints an RFC 3339 build time as docker version does.
func reformatDate(s string) string {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.Format(time.ANSIC)
	}
	return s
}

// infoData is what `info --format` sees: the daemon's info with docker's
// client additions.
type infoData struct {
	*system.Info
	ClientInfo   clientInfo
	ClientErrors []string
	ServerErrors []string
}

type clientInfo struct {
	Debug     bool
	Version   string
	GoVersion string
	Context   string
	Plugins   []string
	Warnings  []string
}

func newInfoCommand(c *CLI) *cobra.Command {
	var f string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			d := infoData{ClientInfo: clientInfo{Debug: c.debug, Version: Version, GoVersion: goruntime.Version(), Context: "default", Plugins: []string{}}}
			res, err := cl.Info(cmd.Context(), client.InfoOptions{})
			if err != nil {
				d.ServerErrors = append(d.ServerErrors, err.Error())
			} else {
				d.Info = &res.Info
			}
			if f != "" {
				if d.Info == nil {
					return err
				}
				return format.Execute(c.Out, f, d)
			}
			printInfo(c.Out, c.Err, d)
			if d.Info == nil {
				return statusError{code: ExitError, err: errors.New("errors pretty printing info")}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&f, "format", "f", "", formatHelpNoTable)
	return cmd
}

func newDFCommand(c *CLI) *cobra.Command {
	var verbose bool
	var f string
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth disk usage",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			du, err := cl.DiskUsage(cmd.Context(), client.DiskUsageOptions{Containers: true, Images: true,
				BuildCache: true, Volumes: true, Verbose: true})
			if err != nil {
				return err
			}
			if verbose && (f == "" || f == format.TableKey) {
				return printDFVerbose(c.Out, du)
			}
			if f == "" || f == format.TableKey {
				f = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
			}
			w, err := format.NewWriter(c.Out, f, dfRow{}.Headers())
			if err != nil {
				return err
			}
			for _, r := range dfRows(du) {
				if err := w.Write(r); err != nil {
					return err
				}
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Show detailed information on space usage")
	cmd.Flags().StringVar(&f, "format", "", formatHelp)
	return cmd
}

// dfRow is one line of `system df`.
type dfRow struct {
	typ                       string
	total, active, size, recl int64
	percent                   bool
}

func (dfRow) Headers() map[string]string {
	return map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}
}
func (r dfRow) Type() string       { return r.typ }
func (r dfRow) TotalCount() string { return strconv.FormatInt(r.total, 10) }
func (r dfRow) Active() string     { return strconv.FormatInt(r.active, 10) }
func (r dfRow) Size() string       { return format.SizeDF(r.size) }
func (r dfRow) Reclaimable() string {
	if !r.percent {
		return format.SizeDF(r.recl)
	}
	return format.Percent(r.recl, r.size)
}
func (r dfRow) MarshalJSON() ([]byte, error) { return format.MarshalRow(r) }

func dfRows(du client.DiskUsageResult) []dfRow {
	// Images as docker counts them: everything but what used images hold alone.
	var used int64
	for _, i := range du.Images.Items {
		if i.Containers > 0 && i.Size != -1 && i.SharedSize != -1 {
			used += i.Size - i.SharedSize
		}
	}
	imgRecl := du.Images.Reclaimable
	if du.Images.Items != nil {
		imgRecl = du.Images.TotalSize - used
	}
	return []dfRow{
		{typ: "Images", total: du.Images.TotalCount, active: du.Images.ActiveCount, size: du.Images.TotalSize, recl: imgRecl, percent: true},
		{typ: "Containers", total: du.Containers.TotalCount, active: du.Containers.ActiveCount, size: du.Containers.TotalSize, recl: du.Containers.Reclaimable, percent: true},
		{typ: "Local Volumes", total: du.Volumes.TotalCount, active: du.Volumes.ActiveCount, size: du.Volumes.TotalSize, recl: du.Volumes.Reclaimable, percent: true},
		{typ: "Build Cache", total: du.BuildCache.TotalCount, active: du.BuildCache.ActiveCount, size: du.BuildCache.TotalSize, recl: du.BuildCache.Reclaimable},
	}
}

func printDFVerbose(out io.Writer, du client.DiskUsageResult) error {
	tw := tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
	fmt.Fprintln(out, "Images space usage:")
	fmt.Fprintln(out)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS")
	for _, img := range du.Images.Items {
		// One line per image, under its first tag, as docker prints it.
		one := img
		one.RepoDigests = nil
		if len(one.RepoTags) > 1 {
			one.RepoTags = one.RepoTags[:1]
		}
		for _, r := range imageRows(one, true, false) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Repository(), r.Tag(), r.ID(), r.CreatedSince(),
				r.Size(), r.SharedSize(), r.UniqueSize(), r.Containers())
		}
	}
	tw.Flush()
	fmt.Fprintln(out, "\nContainers space usage:")
	fmt.Fprintln(out)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES")
	for _, ct := range du.Containers.Items {
		name := ""
		if len(ct.Names) > 0 {
			name = strings.TrimPrefix(ct.Names[0], "/")
		}
		vols := 0
		for _, m := range ct.Mounts {
			if m.Type == "volume" {
				vols++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%q\t%d\t%s\t%s\t%s\t%s\n", format.TruncateID(ct.ID), ct.Image, format.Ellipsis(ct.Command, 20),
			vols, format.Size(ct.SizeRw), format.Since(ct.Created), ct.Status, name)
	}
	tw.Flush()
	fmt.Fprintln(out, "\nLocal Volumes space usage:")
	fmt.Fprintln(out)
	fmt.Fprintln(tw, "VOLUME NAME\tLINKS\tSIZE")
	for _, v := range du.Volumes.Items {
		links, size := "N/A", "N/A"
		if v.UsageData != nil {
			links = strconv.FormatInt(v.UsageData.RefCount, 10)
			if v.UsageData.Size >= 0 {
				size = format.SizeDF(v.UsageData.Size)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, links, size)
	}
	tw.Flush()
	fmt.Fprintf(out, "\nBuild cache usage: %s\n\n", format.SizeDF(du.BuildCache.TotalSize))
	fmt.Fprintln(tw, "CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED")
	for _, b := range du.BuildCache.Items {
		last := ""
		if b.LastUsedAt != nil {
			last = format.Since(b.LastUsedAt.Unix())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%v\n", format.TruncateID(b.ID), b.Type, format.SizeDF(b.Size),
			format.Since(b.CreatedAt.Unix()), last, b.UsageCount, b.Shared)
	}
	return tw.Flush()
}

func newEventsCommand(c *CLI) *cobra.Command {
	var since, until, f string
	var filter filterFlag
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			tmpl := f
			if tmpl == format.JSONKey {
				tmpl = "{{json .}}"
			}
			var t interface {
				Execute(io.Writer, any) error
			}
			if tmpl != "" {
				if t, err = format.Parse(tmpl); err != nil {
					return statusError{code: ExitError, err: err}
				}
			}
			res := cl.Events(cmd.Context(), client.EventsListOptions{Since: since, Until: until, Filters: filter.f})
			for {
				select {
				case ev := <-res.Messages:
					if t != nil {
						if err := t.Execute(c.Out, ev); err != nil {
							return err
						}
						fmt.Fprintln(c.Out)
					} else {
						printEvent(c.Out, ev)
					}
				case err := <-res.Err:
					if err == io.EOF || errors.Is(err, cmd.Context().Err()) && cmd.Context().Err() != nil {
						return nil
					}
					return err
				}
			}
		},
	}
	fl := cmd.Flags()
	fl.VarP(&filter, "filter", "f", "Filter output based on conditions provided")
	fl.StringVar(&f, "format", "", formatHelpNoTable)
	fl.StringVar(&since, "since", "", "Show all events created since timestamp")
	fl.StringVar(&until, "until", "", "Stream events until this timestamp")
	return cmd
}

// printEvent prints an event as docker events does.
func printEvent(w io.Writer, ev events.Message) {
	const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"
	if ev.TimeNano != 0 {
		fmt.Fprintf(w, "%s ", time.Unix(0, ev.TimeNano).Format(rfc3339NanoFixed))
	} else if ev.Time != 0 {
		fmt.Fprintf(w, "%s ", time.Unix(ev.Time, 0).Format(rfc3339NanoFixed))
	}
	fmt.Fprintf(w, "%s %s %s", ev.Type, ev.Action, ev.Actor.ID)
	if len(ev.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(ev.Actor.Attributes))
		for k := range ev.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		attrs := make([]string, len(keys))
		for i, k := range keys {
			attrs[i] = k + "=" + ev.Actor.Attributes[k]
		}
		fmt.Fprintf(w, " (%s)", strings.Join(attrs, ", "))
	}
	fmt.Fprintln(w)
}
