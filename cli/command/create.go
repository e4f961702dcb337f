package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"berth.dev/berth/cli/config"
	"berth.dev/berth/client"
	"berth.dev/berth/image/reference"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client/pkg/jsonmessage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newCreateCommand(c *CLI) *cobra.Command {
	o := &containerOptions{}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := o.config(cmd.Flags(), args)
			if err != nil {
				return withHelp(err, "create", ExitUsage)
			}
			if err := validatePull(o.pull); err != nil {
				return withHelp(err, "create", ExitUsage)
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			id, err := c.createContainer(cmd.Context(), cl, o, req)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.Out, id)
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// withHelp is docker's wording of a run or create that failed: the error
// after the program's name, then where help is, with the exit code given.
func withHelp(err error, command string, code int) error {
	return statusError{code: code, err: fmt.Errorf("berth: %w\n\nRun 'berth %s --help' for more information", err, command)}
}

// runStatus is the exit code docker's run gives a failure before the
// container's process runs: 127 when the command is not found, 126 when
// it cannot be invoked, else 125.
func runStatus(err error) error {
	msg := err.Error()
	code := ExitUsage
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory"):
		code = 127
	case strings.Contains(msg, syscall.EACCES.Error()) || strings.Contains(msg, syscall.EISDIR.Error()):
		code = 126
	}
	return withHelp(err, "run", code)
}

func validatePull(p string) error {
	switch p {
	case "always", "missing", "never", "":
		return nil
	}
	return fmt.Errorf("invalid pull option: '%s': must be one of %q, %q or %q", p, "always", "missing", "never")
}

// createContainer posts the create request; an image that is not there is
// pulled first (--pull missing, the default) with docker's words, and the
// ID goes to --cidfile.
func (c *CLI) createContainer(ctx context.Context, cl *client.Client, o *containerOptions, req *createRequest) (string, error) {
	if o.cidfile != "" {
		if _, err := os.Stat(o.cidfile); err == nil {
			return "", fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", o.cidfile)
		}
	}
	ref, err := reference.ParseAny(req.config.Image)
	if err != nil {
		return "", err
	}
	named := ref.Name() != "" // not an image ID
	ref = ref.TagNameOnly()
	var platform *ocispec.Platform
	if o.platform != "" {
		p, err := parsePlatform(o.platform)
		if err != nil {
			return "", fmt.Errorf("error parsing specified platform: %w", err)
		}
		platform = &p
	}
	pull := func() error {
		if !named {
			return fmt.Errorf("cannot pull %s: not a name", req.config.Image)
		}
		return c.pullImage(ctx, cl, ref.FamiliarString(), platform, o.quiet)
	}
	if o.pull == "always" {
		if err := pull(); err != nil {
			return "", err
		}
	}
	for _, dns := range req.host.DNS {
		if dns.IsLoopback() { // docker's warning, on the first only
			fmt.Fprintf(c.Err, "WARNING: Localhost DNS (%s) may fail in containers.\n", dns)
			break
		}
	}
	req.host.ConsoleSize[0], req.host.ConsoleSize[1] = c.ttySize()
	opts := client.ContainerCreateOptions{Config: req.config, HostConfig: req.host, Endpoints: req.endpoints,
		Platform: platform, Name: o.name}
	res, err := cl.ContainerCreate(ctx, opts)
	if err != nil && cerrdefs.IsNotFound(err) && named && o.pull == "missing" {
		if !o.quiet {
			fmt.Fprintf(c.Err, "Unable to find image '%s' locally\n", ref.FamiliarString())
		}
		if err := pull(); err != nil {
			return "", err
		}
		res, err = cl.ContainerCreate(ctx, opts)
	}
	if err != nil {
		return "", err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(c.Err, "WARNING:", w)
	}
	if o.cidfile != "" {
		if err := os.WriteFile(o.cidfile, []byte(res.ID), 0o644); err != nil {
			return "", fmt.Errorf("failed to write the container ID to the file: %w", err)
		}
	}
	return res.ID, nil
}

// pullImage pulls as docker's run does: progress on stderr.
func (c *CLI) pullImage(ctx context.Context, cl *client.Client, ref string, platform *ocispec.Platform, quiet bool) error {
	opts := client.ImagePullOptions{}
	if platform != nil {
		opts.Platforms = []ocispec.Platform{*platform}
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return err
	}
	if opts.RegistryAuth, err = c.registryAuth(config.AuthKey(named.Domain)); err != nil {
		return err
	}
	rc, err := cl.ImagePull(ctx, ref, opts)
	if err != nil {
		return err
	}
	defer rc.Close()
	var out io.Writer = c.Err
	if quiet {
		out = io.Discard
	}
	fd, tty := terminalFd(out)
	return jsonmessage.DisplayJSONMessagesStream(rc, out, fd, tty, nil)
}

// flagsOf is the flag set of the command being run (for Changed).
func flagsOf(cmd *cobra.Command) *pflag.FlagSet { return cmd.Flags() }

var errConflictAttachDetach = errors.New("conflicting options: cannot specify both --attach and --detach")
