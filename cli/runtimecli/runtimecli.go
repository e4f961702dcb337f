// Package runtimecli is `berth runtime`: a runc-compatible command line over
// package runtime, so tools that drive runc (containerd, the OCI validation
// suite) can drive berth. Commands, flags, output and exit codes follow runc.
package runtimecli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/runtime"
)

type globals struct {
	root      string
	logPath   string
	logFormat string
	debug     bool
	logFile   *os.File
	log       *slog.Logger
}

// Command returns the `runtime` command tree; name is how it is invoked
// ("runtime" under berth, or the program name as berth-runtime).
func Command(name string) *cobra.Command {
	g := &globals{}
	cmd := &cobra.Command{
		Use:           name,
		Short:         "Run containers from OCI bundles (runc-compatible)",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return g.setup()
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&g.root, "root", runtime.DefaultRoot, "directory for container state")
	pf.StringVar(&g.logPath, "log", "", "log file (default: stderr)")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	pf.BoolVar(&g.debug, "debug", false, "log debug messages")
	var ignored bool
	var ignoredS string
	pf.BoolVar(&ignored, "systemd-cgroup", false, "not supported: cgroups are managed directly")
	pf.StringVar(&ignoredS, "rootless", "auto", "ignored: berth detects rootless itself")
	pf.StringVar(&ignoredS, "criu", "", "ignored: checkpoint/restore is not supported")
	cmd.SetVersionTemplate(versionTemplate) // -v, --version
	cmd.AddCommand(
		g.createCmd(), g.startCmd(), g.runCmd(), g.stateCmd(), g.killCmd(), g.deleteCmd(),
		g.listCmd(), g.psCmd(), g.execCmd(), g.pauseCmd(), g.resumeCmd(), g.specCmd(),
		g.featuresCmd(), g.eventsCmd(), g.updateCmd(),
	)
	return cmd
}

// Main runs the runtime CLI with args and returns the process exit code.
func Main(name string, args []string) int {
	cmd := Command(name)
	cmd.SetArgs(args)
	err := cmd.Execute()
	var ee exitError
	if errors.As(err, &ee) {
		return int(ee)
	}
	if err != nil {
		logError(err)
		return 1
	}
	return 0
}

// exitError carries a container's exit status out as ours (run, exec).
type exitError int

func (e exitError) Error() string { return "exit status " + strconv.Itoa(int(e)) }

var errLog *slog.Logger

func logError(err error) {
	fmt.Fprintf(os.Stderr, "berth: %v\n", err)
	if errLog != nil {
		errLog.Error(err.Error())
	}
}

func (g *globals) setup() error {
	level := slog.LevelInfo
	if g.debug {
		level = slog.LevelDebug
	}
	var w io.Writer = os.Stderr
	if g.logPath != "" {
		f, err := os.OpenFile(g.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return fmt.Errorf("open log %s: %w", g.logPath, err)
		}
		g.logFile = f
		w = f
	}
	// Levels in lower case, as runc's (logrus) logs, which callers such
	// as containerd's shim parse for "level":"error".
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.LevelKey {
			a.Value = slog.StringValue(strings.ToLower(a.Value.String()))
		}
		return a
	}}
	switch g.logFormat {
	case "json":
		g.log = slog.New(slog.NewJSONHandler(w, opts))
	case "text":
		g.log = slog.New(slog.NewTextHandler(w, opts))
	default:
		return fmt.Errorf("unknown --log-format %q: use text or json", g.logFormat)
	}
	if g.logPath != "" {
		errLog = g.log
	}
	return nil
}

func (g *globals) runtime() (*runtime.Runtime, error) {
	return runtime.New(g.root, g.log)
}

func (g *globals) load(id string) (*runtime.Container, error) {
	rt, err := g.runtime()
	if err != nil {
		return nil, err
	}
	return rt.Load(id)
}

func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%q requires exactly %d argument(s): %s", cmd.CommandPath(), n, usage)
		}
		return nil
	}
}

type createFlags struct {
	bundle, consoleSocket, pidFile string
	noPivot, noNewKeyring          bool
	preserveFds                    int
}

func (f *createFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.bundle, "bundle", "b", ".", "path to the bundle directory")
	fl.StringVar(&f.consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	fl.StringVar(&f.pidFile, "pid-file", "", "file to write the init's pid to")
	fl.BoolVar(&f.noPivot, "no-pivot", false, "do not use pivot_root (for roots on ramfs)")
	fl.BoolVar(&f.noNewKeyring, "no-new-keyring", false, "keep the caller's session keyring")
	fl.IntVar(&f.preserveFds, "preserve-fds", 0, "pass this many fds after stdio (3..) to the container")
}

func (f *createFlags) opts() runtime.CreateOpts {
	return runtime.CreateOpts{
		Bundle: f.bundle, ConsoleSocket: f.consoleSocket, PidFile: f.pidFile,
		NoPivot: f.noPivot, NoNewKeyring: f.noNewKeyring, PreserveFds: f.preserveFds,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Spare: runtime.CLISpare(), // started by this process's constructor
	}
}

func (g *globals) createCmd() *cobra.Command {
	var f createFlags
	cmd := &cobra.Command{
		Use:   "create [flags] <container-id>",
		Short: "Create a container, waiting for start",
		Args:  exactArgs(1, "<container-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			_, err = rt.Create(args[0], f.opts())
			return err
		},
	}
	f.register(cmd)
	return cmd
}

func (g *globals) startCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "start <container-id>",
		Short: "Start the user process of a created container",
		Args:  exactArgs(1, "<container-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			return c.Start()
		},
	}
}

// stateJSON is runc's state output: the spec's state plus rootfs, created, owner.
type stateJSON struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func stateOf(c *runtime.Container) stateJSON {
	st := c.State()
	status := c.Status()
	return stateJSON{
		OCIVersion: st.Version, ID: st.ID, Pid: st.Pid, Status: string(status), Bundle: st.Bundle,
		Rootfs: c.Saved.Rootfs, Created: c.Saved.Created, Owner: c.Saved.Owner, Annotations: st.Annotations,
	}
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (g *globals) stateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "state <container-id>",
		Short: "Print the state of a container",
		Args:  exactArgs(1, "<container-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			return printJSON(stateOf(c))
		},
	}
}

func (g *globals) killCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [flags] <container-id> [signal]",
		Short: "Send a signal (default SIGTERM) to a container's init",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig := syscall.SIGTERM
			if len(args) == 2 {
				s, err := ParseSignal(args[1])
				if err != nil {
					return err
				}
				sig = s
			}
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			return c.Kill(sig, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "signal every process of the container")
	return cmd
}

// ParseSignal accepts "9", "KILL" and "SIGKILL".
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal number %d", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	if strings.HasPrefix(name, "SIGRTMIN") || strings.HasPrefix(name, "SIGRTMAX") {
		base, off := 34, name[8:]
		if name[5:8] == "MAX" {
			base = 64
		}
		n := 0
		if off != "" {
			v, err := strconv.Atoi(off)
			if err != nil {
				return 0, fmt.Errorf("unknown signal %q", s)
			}
			n = v
		}
		return syscall.Signal(base + n), nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func (g *globals) deleteCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete [flags] <container-id>...",
		Short: "Delete containers and everything they hold",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, id := range args {
				c, err := g.load(id)
				if err != nil {
					if force && errdefs.Is(err, errdefs.KindNotFound) {
						continue
					}
					errs = append(errs, err)
					continue
				}
				if err := c.Delete(force); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running container first")
	return cmd
}

func (g *globals) listCmd() *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List containers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			cs, err := rt.List()
			if err != nil {
				return err
			}
			if quiet {
				for _, c := range cs {
					fmt.Println(c.ID())
				}
				return nil
			}
			switch format {
			case "json":
				out := make([]stateJSON, 0, len(cs))
				for _, c := range cs {
					out = append(out, stateOf(c))
				}
				return json.NewEncoder(os.Stdout).Encode(out)
			case "table", "":
				w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
				fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
				for _, c := range cs {
					s := stateOf(c)
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
				}
				return w.Flush()
			default:
				return fmt.Errorf("invalid --format %q: use table or json", format)
			}
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only ids")
	return cmd
}

func (g *globals) pauseCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pause <container-id>",
		Short: "Freeze every process of a container",
		Args:  exactArgs(1, "<container-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			return c.Pause()
		},
	}
}

func (g *globals) resumeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "resume <container-id>",
		Short: "Thaw a paused container",
		Args:  exactArgs(1, "<container-id>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load(args[0])
			if err != nil {
				return err
			}
			return c.Resume()
		},
	}
}
