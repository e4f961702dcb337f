// Package command is the `berth` CLI: docker's commands, flags, output
// formats and exit codes over the Docker Engine API (berth.dev/berth/client),
// so that `berth` can be typed where `docker` was.
package command

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"berth.dev/berth/cli/config"
	"berth.dev/berth/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// DefaultHost is where berth daemon listens by default.
const DefaultHost = "unix:///run/berth/berth.sock"

// Exit codes as docker's CLI gives them.
const (
	ExitError = 1   // a command failed (daemon error, bad argument)
	ExitUsage = 125 // flags did not parse; later also `run` failing in the daemon
)

// Version is the CLI's version (set at link time).
var Version = "0.0.0-dev"

// CLI is what every command needs: streams, global options, the client.
type CLI struct {
	In       io.Reader
	Out, Err io.Writer

	hosts                       []string
	tls, tlsVerify              bool
	tlsCACert, tlsCert, tlsKey  string
	configDir, logLevel, ctxArg string
	debug                       bool

	client *client.Client
	// proxying says the signals go to a container (--sig-proxy): they
	// then do not end the CLI.
	proxying atomic.Bool
}

// statusError is an error with its own exit code.
type statusError struct {
	code int
	err  error
}

func (e statusError) Error() string { return e.err.Error() }
func (e statusError) Unwrap() error { return e.err }

// usageError marks cobra's flag and argument errors, printed with the
// command's usage line as docker prints them.
type usageError struct {
	cmd  *cobra.Command
	err  error
	code int
	see  bool // docker words some hints "See '... --help'"
}

func (e usageError) Error() string { return e.err.Error() }

// Main runs `berth args...` with the process's streams and returns the exit
// code.
// SIGINT and SIGTERM cancel the command; the exit code is then 128 plus
// the signal's number, as docker's.
func Main(args []string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var got atomic.Int32
	c := &CLI{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}
	go func() {
		for s := range sigs {
			if c.proxying.Load() {
				continue
			}
			got.Store(int32(s.(syscall.Signal)))
			cancel()
			return
		}
	}()
	code := Run(ctx, c, args)
	if s := got.Load(); s != 0 {
		return 128 + int(s)
	}
	return code
}

// Run runs the CLI on given streams.
func Run(ctx context.Context, c *CLI, args []string) int {
	root := newRoot(c, commandWord(args))
	root.SetArgs(args)
	root.SetIn(c.In)
	root.SetOut(c.Out)
	root.SetErr(c.Err)
	err := root.ExecuteContext(ctx)
	if c.client != nil {
		c.client.Close()
	}
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		prefix := "berth: "
		if ue.code == ExitUsage {
			prefix = "" // docker prints flag errors bare
		}
		hint := "Run"
		if ue.see {
			hint = "See"
		}
		fmt.Fprintf(c.Err, "%s%s\n\nUsage:  %s\n\n%s '%s --help' for more information\n", prefix, ue.err, ue.cmd.UseLine(), hint, ue.cmd.CommandPath())
		return ue.code
	}
	if strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintf(c.Err, "berth: %s\n\nRun 'berth --help' for more information\n", err)
		return ExitError
	}
	if client.IsErrConnectionFailed(err) && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)) {
		host, _ := c.Host()
		fmt.Fprintf(c.Err, "Cannot connect to the berth daemon at %s. Is the berth daemon running?\n", host)
		return ExitError
	}
	var se statusError
	if errors.As(err, &se) {
		if msg := se.err.Error(); msg != "" {
			fmt.Fprintln(c.Err, msg)
		}
		return se.code
	}
	fmt.Fprintln(c.Err, err)
	return ExitError
}

// NewRoot builds the command tree on c.
func NewRoot(c *CLI) *cobra.Command { return newRoot(c, "") }

// topLevel makes each top-level command, by name: a command line that
// names one gets the root with that command alone (building the ~40
// others, their flags and sub-commands, was a tenth of a CLI call's CPU).
var topLevel = []struct {
	name string
	make func(*CLI) *cobra.Command
}{
	{"version", newVersionCommand}, {"info", newInfoCommand}, {"system", newSystemCommand},
	{"events", newEventsCommand}, {"image", newImageCommand}, {"images", newImagesCommand},
	{"history", newHistoryCommand}, {"tag", newTagCommand}, {"rmi", newRmiCommand},
	{"load", newLoadCommand}, {"save", newSaveCommand}, {"import", newImportCommand},
	{"inspect", newInspectCommand}, {"container", newContainerCommand}, {"ps", newPsCommand},
	{"logs", newLogsCommand}, {"start", newStartCommand}, {"stop", newStopCommand},
	{"restart", newRestartCommand}, {"kill", newKillCommand},
	{"rm", func(c *CLI) *cobra.Command { return newRmCommand(c, "rm") }},
	{"wait", newWaitCommand}, {"pause", newPauseCommand}, {"unpause", newUnpauseCommand},
	{"rename", newRenameCommand}, {"top", newTopCommand}, {"volume", newVolumeCommand},
	{"cp", newCpCommand}, {"update", newUpdateCommand}, {"stats", newStatsCommand},
	{"run", newRunCommand}, {"create", newCreateCommand}, {"attach", newAttachCommand},
	{"exec", newExecCommand}, {"login", newLoginCommand}, {"logout", newLogoutCommand},
	{"pull", newPullCommand}, {"push", newPushCommand}, {"search", newSearchCommand},
	{"network", newNetworkCommand}, {"port", newPortCommand},
}

// rootValueFlags are the root's options that take a value, as they may be
// spelt before the command.
var rootValueFlags = map[string]bool{
	"-H": true, "--host": true, "--tlscacert": true, "--tlscert": true, "--tlskey": true,
	"--config": true, "-c": true, "--context": true, "-l": true, "--log-level": true,
}

// commandWord is the top-level command args name, or "" when that is not
// plain (help, an unknown word or option, none): then the whole tree is
// built and cobra answers as always.
func commandWord(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case rootValueFlags[a]:
			i++
		case strings.HasPrefix(a, "--") && strings.Contains(a, "="):
			if !rootValueFlags[a[:strings.IndexByte(a, '=')]] {
				return ""
			}
		case a == "--tls" || a == "--tlsverify" || a == "-D" || a == "--debug":
		case strings.HasPrefix(a, "-"):
			return ""
		default:
			for _, t := range topLevel {
				if t.name == a {
					return a
				}
			}
			return ""
		}
	}
	return ""
}

// newRoot builds the tree with every command, or with only the one named.
func newRoot(c *CLI, only string) *cobra.Command {
	root := &cobra.Command{
		Use:              "berth [OPTIONS] COMMAND [ARG...]",
		Short:            "A self-sufficient runtime for containers",
		SilenceUsage:     true,
		SilenceErrors:    true,
		TraverseChildren: true,
		Args:             noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if v, _ := cmd.Flags().GetBool("version"); v {
				fmt.Fprintf(c.Out, "Berth version %s\n", Version)
				return nil
			}
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return c.setup() },
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{cmd: cmd, err: err, code: ExitUsage}
	})
	// Global options go before the command, as docker's: on the root only
	// (children may reuse their letters: history -H is --human).
	f := root.Flags()
	f.VarP((*listFlag)(&c.hosts), "host", "H", "Daemon socket to connect to (env BERTH_HOST or DOCKER_HOST; default "+DefaultHost+")")
	f.BoolVar(&c.tls, "tls", false, "Use TLS; implied by --tlsverify")
	f.BoolVar(&c.tlsVerify, "tlsverify", os.Getenv(client.EnvTLSVerify) != "", "Use TLS and verify the remote")
	f.StringVar(&c.tlsCACert, "tlscacert", certFile("ca.pem"), "Trust certs signed only by this CA")
	f.StringVar(&c.tlsCert, "tlscert", certFile("cert.pem"), "Path to TLS certificate file")
	f.StringVar(&c.tlsKey, "tlskey", certFile("key.pem"), "Path to TLS key file")
	f.StringVar(&c.configDir, "config", defaultConfigDir(), "Location of client config files")
	f.StringVarP(&c.ctxArg, "context", "c", "", `Name of the context to use (not supported: use -H or BERTH_HOST)`)
	f.BoolVarP(&c.debug, "debug", "D", false, "Enable debug mode")
	f.StringVarP(&c.logLevel, "log-level", "l", "info", `Set the logging level ("debug", "info", "warn", "error", "fatal")`)
	f.BoolP("version", "v", false, "Print version information and quit")

	for _, t := range topLevel {
		if only == "" || t.name == only {
			root.AddCommand(t.make(c))
		}
	}
	for _, cmd := range root.Commands() {
		name := cmd.Name()
		if name == "ps" {
			name = "ls"
		}
		setContainerAliases(cmd, name)
	}
	disableFlagsInUseLine(root)
	root.SetUsageTemplate(usageTemplate)
	root.SetHelpTemplate("{{.UsageString}}")
	return root
}

// usageTemplate lays help out as docker's does: usage line, description,
// aliases, options, commands.
const usageTemplate = `Usage:  {{if .HasAvailableSubCommands}}{{.CommandPath}} [OPTIONS] COMMAND{{else}}{{.UseLine}}{{end}}

{{if .Long}}{{.Long | trimTrailingWhitespaces}}{{else}}{{.Short | trimTrailingWhitespaces}}{{end}}
{{- if index .Annotations "aliases"}}

Aliases:
  {{index .Annotations "aliases"}}
{{- else if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}
{{- end}}
{{- if .HasAvailableSubCommands}}

Commands:
{{- range .Commands}}{{if .IsAvailableCommand}}
  {{rpad .Name .NamePadding}} {{.Short}}
{{- end}}{{end}}
{{- end}}
{{- if .HasAvailableLocalFlags}}

{{if .HasParent}}Options{{else}}Global Options{{end}}:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}
{{- end}}
{{- if .HasAvailableSubCommands}}

Run '{{.CommandPath}} COMMAND --help' for more information on a command.
{{- end}}
`

// disableFlagsInUseLine keeps "[flags]" out of usage lines: ours spell
// [OPTIONS] as docker's do.
func disableFlagsInUseLine(cmd *cobra.Command) {
	cmd.DisableFlagsInUseLine = true
	for _, sub := range cmd.Commands() {
		disableFlagsInUseLine(sub)
	}
}

func certFile(name string) string {
	dir := os.Getenv(client.EnvOverrideCertPath)
	if dir == "" {
		dir = defaultConfigDir()
	}
	return filepath.Join(dir, name)
}

// defaultConfigDir is docker's (~/.docker, $DOCKER_CONFIG) unless
// $BERTH_CONFIG names another: config.json's logins are shared with docker.
func defaultConfigDir() string { return config.Dir() }

// setup applies the global flags: logging, then the client (made lazily on
// first use, so that help and completion need no daemon).
func (c *CLI) setup() error {
	level := slog.LevelInfo
	if c.debug {
		level = slog.LevelDebug
	} else if err := level.UnmarshalText([]byte(strings.Replace(c.logLevel, "fatal", "error", 1))); err != nil {
		return statusError{code: ExitUsage, err: fmt.Errorf("unable to parse logging level: %s", c.logLevel)}
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(c.Err, &slog.HandlerOptions{Level: level})))
	if c.ctxArg != "" && c.ctxArg != "default" {
		return statusError{code: ExitUsage, err: fmt.Errorf("--context is not supported by berth (use -H or BERTH_HOST)")}
	}
	return nil
}

// Host is the daemon address: -H, else $BERTH_HOST, else $DOCKER_HOST,
// else the default socket.
func (c *CLI) Host() (string, error) {
	switch {
	case len(c.hosts) > 1:
		return "", fmt.Errorf("specify only one -H")
	case len(c.hosts) == 1:
		return c.hosts[0], nil
	case os.Getenv("BERTH_HOST") != "":
		return os.Getenv("BERTH_HOST"), nil
	case os.Getenv(client.EnvOverrideHost) != "":
		return os.Getenv(client.EnvOverrideHost), nil
	}
	return DefaultHost, nil
}

// Client returns the API client, made on first use. The API version is
// negotiated with the daemon on the first request, unless
// $DOCKER_API_VERSION fixes it.
func (c *CLI) Client() (*client.Client, error) {
	if c.client != nil {
		return c.client, nil
	}
	host, err := c.Host()
	if err != nil {
		return nil, err
	}
	opts := []client.Opt{client.WithHost(host), client.WithAPIVersionFromEnv(),
		client.WithUserAgent("Berth-Client/" + Version)}
	if c.tls || c.tlsVerify {
		if !strings.HasPrefix(host, "tcp://") && !strings.HasPrefix(host, "https://") {
			slog.Debug("TLS flags ignored: host is not tcp", "host", host)
		} else {
			opt, err := c.tlsOpt()
			if err != nil {
				return nil, err
			}
			opts = append(opts, opt)
		}
	}
	cl, err := client.New(opts...)
	if err != nil {
		return nil, err
	}
	c.client = cl
	return cl, nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// tlsOpt is docker's TLS: --tlsverify checks the server against
// --tlscacert; --tls alone encrypts without checking. A client certificate
// is sent when its files exist.
func (c *CLI) tlsOpt() (client.Opt, error) {
	cert, key := c.tlsCert, c.tlsKey
	if !exists(cert) || !exists(key) {
		cert, key = "", ""
	}
	if c.tlsVerify {
		ca := c.tlsCACert
		if !exists(ca) {
			ca = ""
		}
		return client.WithTLSClientConfig(ca, cert, key), nil
	}
	cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // --tls without --tlsverify, as docker
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("could not load X509 key pair: %w", err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return client.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}), nil
}

// noArgs and friends check argument counts with docker's messages.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		err := fmt.Errorf("unknown command: %s %s", cmd.CommandPath(), args[0])
		if cmd.HasParent() {
			return usageError{cmd: cmd, code: ExitError, err: err}
		}
		return err
	}
	return usageError{cmd: cmd, code: ExitError, err: fmt.Errorf("'%s' accepts no arguments", cmd.CommandPath())}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return usageError{cmd: cmd, code: ExitError, err: fmt.Errorf("'%s' requires %d %s", cmd.CommandPath(), n, plural(n))}
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		// docker's own inconsistency: "See", where exact counts say "Run"
		return usageError{cmd: cmd, code: ExitError, see: true, err: fmt.Errorf("'%s' requires at least %d %s", cmd.CommandPath(), n, plural(n))}
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) <= n {
			return nil
		}
		return usageError{cmd: cmd, code: ExitError, err: fmt.Errorf("'%s' requires at most %d %s", cmd.CommandPath(), n, plural(n))}
	}
}

func rangeArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= min && len(args) <= max {
			return nil
		}
		return usageError{cmd: cmd, code: ExitError, err: fmt.Errorf("'%s' requires at least %d and at most %d %s", cmd.CommandPath(), min, max, plural(max))}
	}
}

func plural(n int) string {
	if n == 1 {
		return "argument"
	}
	return "arguments"
}

// listFlag is a repeatable string option, shown as docker shows it.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Type() string       { return "list" }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// filterFlag is docker's -f/--filter key=value, repeatable.
type filterFlag struct{ f client.Filters }

func (f *filterFlag) String() string { return "" }
func (f *filterFlag) Type() string   { return "filter" }
func (f *filterFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("bad format of filter (expected name=value)")
	}
	if f.f == nil {
		f.f = client.Filters{}
	}
	f.f.Add(strings.ToLower(strings.TrimSpace(k)), val)
	return nil
}

var _ pflag.Value = (*filterFlag)(nil)

// formatHelp is docker's --format help text for lists.
const formatHelp = `Format output using a custom template:
'table':            Print output in table format with column headers (default)
'table TEMPLATE':   Print output in table format using the given Go template
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates`

// formatHelpNoTable is the --format help of single objects.
const formatHelpNoTable = `Format output using a custom template:
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates`
