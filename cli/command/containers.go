package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"berth.dev/berth/client"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/spf13/cobra"
)

func newContainerInspectCommand(c *CLI) *cobra.Command {
	var size bool
	cmd := inspectCommand(c, "inspect [OPTIONS] CONTAINER [CONTAINER...]", "Display detailed information on one or more containers",
		func(ctx context.Context, cl *client.Client, ref string) ([]byte, any, error) {
			return inspectContainer(ctx, cl, ref, size)
		})
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes")
	return cmd
}

func inspectContainer(ctx context.Context, cl *client.Client, ref string, size bool) ([]byte, any, error) {
	res, err := cl.ContainerInspect(ctx, ref, client.ContainerInspectOptions{Size: size})
	if err != nil {
		return nil, nil, err
	}
	return res.Raw, res.Container, nil
}

type logsOptions struct {
	follow, timestamps, details bool
	since, until, tail          string
}

func newLogsCommand(c *CLI) *cobra.Command {
	o := &logsOptions{}
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			ctr, err := cl.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			rc, err := cl.ContainerLogs(cmd.Context(), args[0], client.ContainerLogsOptions{
				ShowStdout: true, ShowStderr: true, Since: o.since, Until: o.until,
				Timestamps: o.timestamps, Follow: o.follow, Tail: o.tail, Details: o.details})
			if err != nil {
				return err
			}
			defer rc.Close()
			// A terminal's output is one stream; otherwise frames say which.
			if ctr.Container.Config != nil && ctr.Container.Config.Tty {
				_, err = io.Copy(c.Out, rc)
			} else {
				_, err = stdcopy.StdCopy(c.Out, c.Err, rc)
			}
			if err != nil && cmd.Context().Err() != nil {
				return nil // interrupted while following
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.details, "details", false, "Show extra details provided to logs")
	f.BoolVarP(&o.follow, "follow", "f", false, "Follow log output")
	f.StringVar(&o.since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	f.StringVarP(&o.tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	f.BoolVarP(&o.timestamps, "timestamps", "t", false, "Show timestamps")
	f.StringVar(&o.until, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	return cmd
}

// each runs op on every object named, printing each name that
// succeeded as docker does; the errors are reported together (exit 1).
func (c *CLI) each(names []string, op func(string) error) error {
	var errs []string
	for _, n := range names {
		if err := op(n); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		fmt.Fprintln(c.Out, n)
	}
	return joinedErrors(errs)
}

// joinedErrors reports the messages of the objects that failed together,
// one a line, with exit 1, as docker does; nil when none did.
func joinedErrors(errs []string) error {
	if len(errs) == 0 {
		return nil
	}
	return statusError{code: ExitError, err: errors.New(strings.Join(errs, "\n"))}
}

// containersCommand is a command that runs op on every container named (at
// least one), printing each one that succeeded.
func containersCommand(c *CLI, use, short string, op func(ctx context.Context, cl *client.Client, name string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return c.each(args, func(n string) error { return op(cmd.Context(), cl, n) })
		},
	}
}

func newStartCommand(c *CLI) *cobra.Command {
	var attach, stdin bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if attach || stdin {
				if len(args) > 1 {
					return errors.New("you cannot start and attach multiple containers at once")
				}
				return c.startAttached(cmd.Context(), args[0], detachKeys, stdin)
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			var failed []string
			for _, n := range args {
				if _, err := cl.ContainerStart(cmd.Context(), n, client.ContainerStartOptions{}); err != nil {
					fmt.Fprintln(c.Err, err)
					failed = append(failed, n)
					continue
				}
				fmt.Fprintln(c.Out, n)
			}
			if len(failed) > 0 {
				return fmt.Errorf("Error: failed to start containers: %s", strings.Join(failed, ", "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	f.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	f.BoolVarP(&stdin, "interactive", "i", false, "Attach container's STDIN")
	return cmd
}

// stopFlags are stop's and restart's -s and -t.
type stopFlags struct {
	signal  string
	timeout int
}

func (s *stopFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&s.signal, "signal", "s", "", "Signal to send to the container")
	cmd.Flags().IntVarP(&s.timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	cmd.Flags().IntVar(&s.timeout, "time", 0, "Seconds to wait before killing the container")
	_ = cmd.Flags().MarkDeprecated("time", "use --timeout instead") // docker's old name
}

func (s *stopFlags) timeoutPtr(cmd *cobra.Command) *int {
	if cmd.Flags().Changed("time") || cmd.Flags().Changed("timeout") {
		t := s.timeout
		return &t
	}
	return nil
}

func newStopCommand(c *CLI) *cobra.Command {
	var s stopFlags
	var cmd *cobra.Command
	cmd = containersCommand(c, "stop [OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers",
		func(ctx context.Context, cl *client.Client, n string) error {
			_, err := cl.ContainerStop(ctx, n, client.ContainerStopOptions{Signal: s.signal, Timeout: s.timeoutPtr(cmd)})
			return err
		})
	s.add(cmd)
	return cmd
}

func newRestartCommand(c *CLI) *cobra.Command {
	var s stopFlags
	var cmd *cobra.Command
	cmd = containersCommand(c, "restart [OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers",
		func(ctx context.Context, cl *client.Client, n string) error {
			_, err := cl.ContainerRestart(ctx, n, client.ContainerRestartOptions{Signal: s.signal, Timeout: s.timeoutPtr(cmd)})
			return err
		})
	s.add(cmd)
	return cmd
}

func newKillCommand(c *CLI) *cobra.Command {
	var sig string
	cmd := containersCommand(c, "kill [OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers",
		func(ctx context.Context, cl *client.Client, n string) error {
			_, err := cl.ContainerKill(ctx, n, client.ContainerKillOptions{Signal: sig})
			return err
		})
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func newRmCommand(c *CLI, use string, aliases ...string) *cobra.Command {
	var force, volumes, link bool
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS] CONTAINER [CONTAINER...]",
		Aliases: aliases,
		Short:   "Remove one or more containers",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			var errs []string
			for _, n := range args {
				n = strings.Trim(n, "/")
				_, err := cl.ContainerRemove(cmd.Context(), n, client.ContainerRemoveOptions{Force: force, RemoveVolumes: volumes, RemoveLinks: link})
				switch {
				case err != nil && force && cerrdefs.IsNotFound(err):
					// -f: what is already gone is only worth a word, as docker
					fmt.Fprintln(c.Err, err)
				case err != nil:
					errs = append(errs, err.Error())
				default:
					fmt.Fprintln(c.Out, n)
				}
			}
			return joinedErrors(errs)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&link, "link", "l", false, "Remove the specified link")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	return cmd
}

func newWaitCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			var errs []string
			for _, n := range args {
				w := cl.ContainerWait(cmd.Context(), n, client.ContainerWaitOptions{})
				select {
				case r := <-w.Result:
					fmt.Fprintln(c.Out, r.StatusCode)
				case err := <-w.Error:
					errs = append(errs, err.Error())
				}
			}
			return joinedErrors(errs)
		},
	}
}

func newPauseCommand(c *CLI) *cobra.Command {
	return containersCommand(c, "pause CONTAINER [CONTAINER...]", "Pause all processes within one or more containers",
		func(ctx context.Context, cl *client.Client, n string) error {
			_, err := cl.ContainerPause(ctx, n, client.ContainerPauseOptions{})
			return err
		})
}

func newUnpauseCommand(c *CLI) *cobra.Command {
	return containersCommand(c, "unpause CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers",
		func(ctx context.Context, cl *client.Client, n string) error {
			_, err := cl.ContainerUnpause(ctx, n, client.ContainerUnpauseOptions{})
			return err
		})
}

func newRenameCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			old, name := strings.TrimSpace(args[0]), strings.TrimSpace(args[1])
			if old == "" || name == "" {
				return errors.New("Error: Neither old nor new names may be empty")
			}
			if _, err := cl.ContainerRename(cmd.Context(), old, client.ContainerRenameOptions{NewName: name}); err != nil {
				return fmt.Errorf("%w\nError: failed to rename container named %s", err, old)
			}
			return nil
		},
	}
}

func newTopCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.ContainerTop(cmd.Context(), args[0], client.ContainerTopOptions{Arguments: args[1:]})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.Out, 20, 1, 3, ' ', 0)
			fmt.Fprintln(w, strings.Join(res.Titles, "\t"))
			for _, p := range res.Processes {
				fmt.Fprintln(w, strings.Join(p, "\t"))
			}
			return w.Flush()
		},
	}
}

func newContainerPruneCommand(c *CLI) *cobra.Command {
	var force bool
	var filter filterFlag
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force && !c.confirm("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ") {
				return statusError{code: ExitError, err: errors.New("container prune has been cancelled")}
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.ContainerPrune(cmd.Context(), client.ContainerPruneOptions{Filters: filter.f})
			if err != nil {
				return err
			}
			c.printPruned("Deleted Containers:", res.Report.ContainersDeleted, res.Report.SpaceReclaimed)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(&filter, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}
