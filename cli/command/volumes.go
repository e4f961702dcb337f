package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"berth.dev/berth/cli/format"
	"berth.dev/berth/client"
	"github.com/moby/moby/api/types/volume"
	"github.com/spf13/cobra"
)

func newVolumeCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{Use: "volume COMMAND", Short: "Manage volumes", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	cmd.AddCommand(newVolumeCreateCommand(c), newVolumeLsCommand(c), newVolumeInspectCommand(c),
		newVolumeRmCommand(c), newVolumePruneCommand(c))
	return cmd
}

// volumeLabelFlag is volume create's --label: "k=v" or "k" (empty value).
type volumeLabelFlag map[string]string

func (l volumeLabelFlag) String() string { return "" }
func (l volumeLabelFlag) Type() string   { return "list" }
func (l volumeLabelFlag) Set(v string) error {
	k, val, _ := strings.Cut(v, "=")
	l[k] = val
	return nil
}

func newVolumeCreateCommand(c *CLI) *cobra.Command {
	var name, driver string
	opts, labels := mapFlag{}, volumeLabelFlag{}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" {
					return statusError{code: ExitError, err: errors.New("conflicting options: cannot specify a volume-name through both --name and as a positional arg")}
				}
				name = args[0]
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.VolumeCreate(cmd.Context(), client.VolumeCreateOptions{Name: name, Driver: driver, DriverOpts: opts, Labels: labels})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.Out, res.Volume.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	f.StringVar(&name, "name", "", "Specify volume name")
	_ = f.MarkHidden("name")
	f.Var(labels, "label", "Set metadata for a volume")
	f.VarP(&opts, "opt", "o", "Set driver specific options")
	return cmd
}

func newVolumeLsCommand(c *CLI) *cobra.Command {
	var quiet bool
	var f string
	var filter filterFlag
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			f = listFormat(f, quiet, "{{.Name}}", "table {{.Driver}}\t{{.Name}}")
			res, err := cl.VolumeList(cmd.Context(), client.VolumeListOptions{Filters: filter.f})
			if err != nil {
				return err
			}
			vols := res.Items
			sort.Slice(vols, func(i, j int) bool { return naturalLess(vols[i].Name, vols[j].Name) })
			w, err := format.NewWriter(c.Out, f, volumeRow{}.Headers())
			if err != nil {
				return err
			}
			for _, v := range vols {
				if err := w.Write(volumeRow{v}); err != nil {
					return err
				}
			}
			return w.Flush()
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	fl.StringVar(&f, "format", "", formatHelp)
	fl.VarP(&filter, "filter", "f", `Provide filter values (e.g. "dangling=true")`)
	return cmd
}

// naturalLess orders names as docker's CLI does: runs of digits by value.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, _ := strconv.ParseUint(a[:da], 10, 64)
			nb, _ := strconv.ParseUint(b[:db], 10, 64)
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// volumeRow is one line of `volume ls`, with docker's columns.
type volumeRow struct{ v volume.Volume }

func (volumeRow) Headers() map[string]string {
	return map[string]string{"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
		"Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Availability": "AVAILABILITY", "Group": "GROUP"}
}

func (r volumeRow) Name() string       { return r.v.Name }
func (r volumeRow) Driver() string     { return r.v.Driver }
func (r volumeRow) Scope() string      { return r.v.Scope }
func (r volumeRow) Mountpoint() string { return r.v.Mountpoint }
func (r volumeRow) Availability() string {
	return "N/A"
}
func (r volumeRow) Group() string { return "N/A" }

// Status is a cluster volume's; local ones have none.
func (r volumeRow) Status() string { return "N/A" }

func (r volumeRow) Labels() string { return strings.Join(sortedPairs(r.v.Labels), ",") }

// Label is one label's value, as in {{.Label "k"}}.
func (r volumeRow) Label(name string) string { return r.v.Labels[name] }

func (r volumeRow) Links() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return strconv.FormatInt(r.v.UsageData.RefCount, 10)
}

func (r volumeRow) Size() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return format.SizeDF(r.v.UsageData.Size)
}

func (r volumeRow) MarshalJSON() ([]byte, error) { return format.MarshalRow(r) }

func newVolumeInspectCommand(c *CLI) *cobra.Command {
	return inspectCommand(c, "inspect [OPTIONS] VOLUME [VOLUME...]", "Display detailed information on one or more volumes", inspectVolume)
}

func inspectVolume(ctx context.Context, cl *client.Client, name string) ([]byte, any, error) {
	res, err := cl.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	if err != nil {
		return nil, nil, err
	}
	return bytes.TrimSpace(res.Raw), res.Volume, nil
}

func newVolumeRmCommand(c *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Long:    "Remove one or more volumes. You cannot remove a volume that is in use by a container.",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return c.each(args, func(name string) error {
				_, err := cl.VolumeRemove(cmd.Context(), name, client.VolumeRemoveOptions{Force: force})
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

func newVolumePruneCommand(c *CLI) *cobra.Command {
	var all, force bool
	var filter filterFlag
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all && filter.f["all"] != nil {
				return statusError{code: ExitError, err: errors.New(`conflicting options: cannot specify both --all and --filter all=1`)}
			}
			warning := "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
			if all {
				warning = "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
			}
			if !force && !c.confirm(warning) {
				return statusError{code: ExitError, err: errors.New("volume prune has been cancelled")}
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.VolumePrune(cmd.Context(), client.VolumePruneOptions{All: all, Filters: filter.f})
			if err != nil {
				return err
			}
			c.printPruned("Deleted Volumes:", res.Report.VolumesDeleted, res.Report.SpaceReclaimed)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(&filter, "filter", `Provide filter values (e.g. "label=<label>")`)
	return cmd
}
