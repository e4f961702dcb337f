package command

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"berth.dev/berth/cli/config"
	"berth.dev/berth/cli/format"
	"berth.dev/berth/client"
	"berth.dev/berth/image/reference"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client/pkg/jsonmessage"
	"github.com/moby/term"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// configFile loads config.json from the config directory (--config,
// $BERTH_CONFIG, $DOCKER_CONFIG, ~/.docker).
func (c *CLI) configFile() (*config.File, error) {
	return config.Load(c.configDir)
}

// registryAuth is X-Registry-Auth for a registry key: the stored
// credentials, "{}" when there are none.
func (c *CLI) registryAuth(key string) (string, error) {
	cfg, err := c.configFile()
	if err != nil {
		return "", err
	}
	ac, err := cfg.Get(key)
	if err != nil {
		return "", err
	}
	return authconfig.Encode(ac)
}

// privilegeFunc asks for credentials when the registry refused the stored
// ones (docker's "Login prior to pull:"); nil without a terminal to ask
// on (docker asks any stdin, and waits on one that never answers).
func (c *CLI) privilegeFunc(key, action string) func(context.Context) (string, error) {
	if _, tty := terminalFd(c.In); !tty {
		return nil
	}
	return func(ctx context.Context) (string, error) {
		fmt.Fprintf(c.Out, "\nLogin prior to %s:\n", action)
		var user string
		if cfg, err := c.configFile(); err == nil {
			if ac, err := cfg.Get(key); err == nil {
				user = ac.Username
			} else {
				fmt.Fprintf(c.Err, "Unable to retrieve stored credentials for %s, error: %s.\n", key, err)
			}
		}
		ac, err := c.promptCredentials(ctx, "", "", user, key)
		if err != nil {
			return "", err
		}
		return authconfig.Encode(ac)
	}
}

// promptCredentials asks on the terminal for what was not given: the user
// name (default the stored one) and the password, not echoed.
func (c *CLI) promptCredentials(ctx context.Context, user, password, defaultUser, key string) (registry.AuthConfig, error) {
	in := bufio.NewReader(c.In)
	readLine := func() (string, error) {
		type line struct {
			s   string
			err error
		}
		ch := make(chan line, 1)
		go func() {
			s, err := in.ReadString('\n')
			ch <- line{strings.TrimSpace(s), err}
		}()
		select {
		case <-ctx.Done():
			fmt.Fprintln(c.Out)
			return "", ctx.Err()
		case l := <-ch:
			if l.err != nil && !(errors.Is(l.err, io.EOF) && l.s != "") {
				return "", fmt.Errorf("reading input: %w", l.err)
			}
			return l.s, nil
		}
	}
	user = strings.TrimSpace(user)
	if user == "" {
		msg := "Username: "
		if defaultUser = strings.TrimSpace(defaultUser); defaultUser != "" {
			msg = fmt.Sprintf("Username (%s): ", defaultUser)
		}
		fmt.Fprint(c.Out, msg)
		s, err := readLine()
		if err != nil {
			return registry.AuthConfig{}, err
		}
		if user = s; user == "" {
			user = defaultUser
		}
		if user == "" {
			return registry.AuthConfig{}, errors.New("error: username is required")
		}
	}
	if strings.TrimSpace(password) == "" {
		if fd, tty := terminalFd(c.In); tty {
			state, err := term.SaveState(fd)
			if err != nil {
				return registry.AuthConfig{}, fmt.Errorf("saving the terminal's state: %w", err)
			}
			if err := term.DisableEcho(fd, state); err != nil {
				return registry.AuthConfig{}, fmt.Errorf("turning echo off: %w", err)
			}
			defer func() {
				if err := term.RestoreTerminal(fd, state); err != nil {
					fmt.Fprintln(c.Err, "Error: failed to restore terminal state to echo input:", err)
				}
			}()
		}
		fmt.Fprint(c.Out, "Password: ")
		s, err := readLine()
		if err != nil {
			return registry.AuthConfig{}, err
		}
		fmt.Fprintln(c.Out)
		if password = s; password == "" {
			return registry.AuthConfig{}, errors.New("error: password is required")
		}
	}
	return registry.AuthConfig{Username: user, Password: password, ServerAddress: key}, nil
}

type loginOptions struct {
	user, password string
	passwordStdin  bool
}

func newLoginCommand(c *CLI) *cobra.Command {
	o := &loginOptions{}
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Long:  "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) > 0 {
				server = args[0]
			}
			return c.runLogin(cmd.Context(), o, server)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.user, "username", "u", "", "Username")
	f.StringVarP(&o.password, "password", "p", "", "Password or Personal Access Token (PAT)")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	return cmd
}

// runLogin is docker's login: stored credentials are tried first when
// none are given, then the user is asked (on a terminal); what the daemon
// accepts is stored, an identity token in place of the password.
func (c *CLI) runLogin(ctx context.Context, o *loginOptions, server string) error {
	switch {
	case o.password != "" && o.passwordStdin:
		return errors.New("conflicting options: cannot specify both --password and --password-stdin")
	case o.passwordStdin && o.user == "":
		return errors.New("the --password-stdin option requires --username to be set")
	case o.password != "":
		fmt.Fprintln(c.Err, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
	}
	if o.passwordStdin {
		b, err := io.ReadAll(c.In)
		if err != nil {
			return fmt.Errorf("reading the password from stdin: %w", err)
		}
		o.password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	key := config.ServerKey(server)
	cfg, err := c.configFile()
	if err != nil {
		return err
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	var stored registry.AuthConfig
	if o.user == "" && o.password == "" {
		stored, err = cfg.Get(key)
	}
	status := ""
	if err == nil && stored.Username != "" && stored.Password != "" {
		status, err = c.loginStored(ctx, cl, cfg, stored, key)
	}
	if err != nil || stored.Username == "" || stored.Password == "" {
		if (o.user == "" || o.password == "") && !isTerminal(c.In) {
			return errors.New("Error: Cannot perform an interactive login from a non TTY device")
		}
		ac, err := c.promptCredentials(ctx, o.user, o.password, stored.Username, key)
		if err != nil {
			return err
		}
		res, err := cl.RegistryLogin(ctx, client.RegistryLoginOptions{Username: ac.Username, Password: ac.Password, ServerAddress: key})
		if err != nil {
			return err
		}
		if res.Auth.IdentityToken != "" {
			ac.Password, ac.IdentityToken = "", res.Auth.IdentityToken
		}
		if err := c.storeCredentials(cfg, ac); err != nil {
			return err
		}
		status = res.Auth.Status
	}
	if status != "" {
		fmt.Fprintln(c.Out, status)
	}
	return nil
}

// loginStored checks the stored credentials with the daemon as docker
// does: a refusal is reported and the user is asked next.
func (c *CLI) loginStored(ctx context.Context, cl *client.Client, cfg *config.File, ac registry.AuthConfig, key string) (string, error) {
	fmt.Fprintf(c.Err, "Authenticating with existing credentials... [Username: %s]\n", ac.Username)
	fmt.Fprintf(c.Err, "\n Info -> To login with a different account, run 'berth logout' followed by 'berth login'\n\n\n")
	res, err := cl.RegistryLogin(ctx, client.RegistryLoginOptions{Username: ac.Username, Password: ac.Password,
		ServerAddress: key, IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken})
	if err != nil {
		if cerrdefs.IsUnauthorized(err) {
			fmt.Fprintln(c.Err, "Stored credentials invalid or expired")
		} else {
			fmt.Fprintf(c.Err, "Login did not succeed, error: %s\n", err)
		}
		return "", err
	}
	if res.Auth.IdentityToken != "" {
		ac.Password, ac.IdentityToken = "", res.Auth.IdentityToken
		ac.ServerAddress = key
		if err := c.storeCredentials(cfg, ac); err != nil {
			return "", err
		}
	}
	return res.Auth.Status, nil
}

// storeCredentials stores what the daemon accepted, with docker's warning
// when the secrets went into config.json.
func (c *CLI) storeCredentials(cfg *config.File, ac registry.AuthConfig) error {
	plain, err := cfg.Store(ac)
	if err != nil {
		return fmt.Errorf("Error saving credentials: %w", err)
	}
	if plain {
		fmt.Fprintf(c.Err, "\nWARNING! Your credentials are stored unencrypted in '%s'.\n"+
			"Configure a credential helper to remove this warning. See\n"+
			"https://docs.docker.com/go/credential-store/\n\n", cfg.Path)
	}
	return nil
}

func isTerminal(s any) bool { _, tty := terminalFd(s); return tty }

func newLogoutCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Long:  "Log out from a registry.\nIf no server is specified, the default is defined by the daemon.",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) > 0 {
				server = args[0]
			}
			return c.runLogout(server)
		},
	}
}

// runLogout erases the credentials of a registry under each key docker
// may have stored them (host, and older http:// and https:// URLs);
// failing for all is a warning, not an error, as for docker.
func (c *CLI) runLogout(server string) error {
	cfg, err := c.configFile()
	if err != nil {
		return err
	}
	keys := []string{config.IndexServer}
	host := config.IndexServer
	if server != "" {
		host = config.ConvertToHostname(server)
		keys = []string{server, host, "http://" + host, "https://" + host}
	}
	fmt.Fprintln(c.Out, "Removing login credentials for", host)
	// As docker: each key is erased (twice when the argument was a bare
	// host); the failures are kept by key, and the warning is printed
	// only when there are as many as there were erasures.
	errs := map[string]error{}
	for _, k := range keys {
		if err := cfg.Erase(k); err != nil {
			errs[k] = err
		}
	}
	if len(errs) == len(keys) {
		fmt.Fprintln(c.Err, "WARNING: could not erase credentials:")
		failed := slices.Sorted(maps.Keys(errs))
		for _, k := range failed {
			fmt.Fprintf(c.Err, "%s: %s\n", k, errs[k])
		}
	}
	return nil
}

type transferOptions struct {
	all, quiet, untrusted bool
	platform              string
}

func addTransferFlags(cmd *cobra.Command, o *transferOptions, verb string) {
	f := cmd.Flags()
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress verbose output")
	// Content trust (notary) is not berth's: the flag is accepted, as
	// docker's default (disabled) is the only behaviour.
	f.BoolVar(&o.untrusted, "disable-content-trust", true, "Skip image "+verb+" (no effect: berth has no content trust)")
}

func newPullCommand(c *CLI) *cobra.Command {
	o := &transferOptions{}
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runPull(cmd.Context(), o, args[0])
		},
		Annotations: map[string]string{"aliases": "berth image pull, berth pull"},
	}
	cmd.Flags().BoolVarP(&o.all, "all-tags", "a", false, "Download all tagged images in the repository")
	addTransferFlags(cmd, o, "verification")
	cmd.Flags().StringVar(&o.platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	return cmd
}

// transferRef parses a pull's or push's reference as docker does: a name
// alone is its "latest" tag unless all tags are asked for.
func (c *CLI) transferRef(s string, o *transferOptions) (reference.Named, error) {
	ref, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return ref, err
	}
	nameOnly := ref.Tag == "" && ref.Digest == ""
	switch {
	case o.all && !nameOnly:
		return ref, errors.New("tag can't be used with --all-tags/-a")
	case !o.all && nameOnly:
		ref = ref.TagNameOnly()
		if !o.quiet {
			fmt.Fprintln(c.Out, "Using default tag:", ref.Tag)
		}
	}
	return ref, nil
}

func (c *CLI) runPull(ctx context.Context, o *transferOptions, arg string) error {
	ref, err := c.transferRef(arg, o)
	if err != nil {
		return err
	}
	opts := client.ImagePullOptions{All: o.all}
	if o.platform != "" {
		p, err := parsePlatform(o.platform)
		if err != nil {
			return err
		}
		opts.Platforms = []ocispec.Platform{p}
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	key := config.AuthKey(ref.Domain)
	if opts.RegistryAuth, err = c.registryAuth(key); err != nil {
		return err
	}
	opts.PrivilegeFunc = c.privilegeFunc(key, "pull")
	rc, err := cl.ImagePull(ctx, ref.FamiliarString(), opts)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := c.displayQuiet(rc, o.quiet); err != nil {
		return err
	}
	fmt.Fprintln(c.Out, ref.String())
	return nil
}

// displayQuiet renders a progress stream on stdout, or reads it through
// for its error alone.
func (c *CLI) displayQuiet(r io.Reader, quiet bool) error {
	if quiet {
		return jsonmessage.DisplayJSONMessagesStream(r, io.Discard, 0, false, nil)
	}
	return c.displayStream(r)
}

func newPushCommand(c *CLI) *cobra.Command {
	o := &transferOptions{}
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runPush(cmd.Context(), o, args[0])
		},
		Annotations: map[string]string{"aliases": "berth image push, berth push"},
	}
	cmd.Flags().BoolVarP(&o.all, "all-tags", "a", false, "Push all tags of an image to the repository")
	addTransferFlags(cmd, o, "signing")
	cmd.Flags().StringVar(&o.platform, "platform", "", `Push a platform-specific manifest as a single-platform image to the registry.
Image index won't be pushed, meaning that other manifests, including attestations won't be preserved.
'os[/arch[/variant]]': Explicit platform (eg. linux/amd64)`)
	return cmd
}

func (c *CLI) runPush(ctx context.Context, o *transferOptions, arg string) error {
	var opts client.ImagePushOptions
	if o.platform != "" {
		p, err := parsePlatform(o.platform)
		if err != nil {
			fmt.Fprintf(c.Err, "Invalid platform %s", o.platform)
			return err
		}
		opts.Platform = &p
	}
	ref, err := c.transferRef(arg, o)
	if err != nil {
		return err
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	key := config.AuthKey(ref.Domain)
	if opts.RegistryAuth, err = c.registryAuth(key); err != nil {
		return err
	}
	opts.All = o.all
	opts.PrivilegeFunc = c.privilegeFunc(key, "push")
	rc, err := cl.ImagePush(ctx, ref.FamiliarString(), opts)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := c.displayQuiet(rc, o.quiet); err != nil {
		return err
	}
	if o.quiet {
		fmt.Fprintln(c.Out, ref.String())
	}
	return nil
}

func newSearchCommand(c *CLI) *cobra.Command {
	var noTrunc bool
	var limit int
	var f string
	var filter filterFlag
	cmd := &cobra.Command{
		Use:   "search [OPTIONS] TERM",
		Short: "Search Docker Hub for images",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			term := args[0]
			key := config.AuthKey(searchIndex(term))
			auth, err := c.registryAuth(key)
			if err != nil {
				return err
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.ImageSearch(cmd.Context(), term, client.ImageSearchOptions{RegistryAuth: auth,
				PrivilegeFunc: c.privilegeFunc(key, "search"), Filters: filter.f, Limit: limit})
			if err != nil {
				return err
			}
			// In the registry's order: docker 28 no longer sorts by stars.
			items := res.Items
			if f == "" || f == format.TableKey {
				f = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}"
			}
			w, err := format.NewWriter(c.Out, f, searchRow{}.Headers())
			if err != nil {
				return err
			}
			for _, r := range items {
				if err := w.Write(searchRow{r: r, trunc: !noTrunc}); err != nil {
					return err
				}
			}
			return w.Flush()
		},
	}
	fl := cmd.Flags()
	fl.VarP(&filter, "filter", "f", "Filter output based on conditions provided")
	fl.StringVar(&f, "format", "", "Pretty-print search using a Go template")
	fl.IntVar(&limit, "limit", 0, "Max number of search results")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	return cmd
}

// searchIndex is the registry a search term names, as docker reads it: a
// first path element with a dot or a port, or "localhost", is a registry;
// anything else searches Docker Hub.
func searchIndex(term string) string {
	first, _, ok := strings.Cut(term, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return "docker.io"
	}
	return first
}

// searchRow is one line of `search`, docker 28's columns.
type searchRow struct {
	r     registry.SearchResult
	trunc bool
	json  bool
}

func (searchRow) Headers() map[string]string {
	return map[string]string{"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS", "IsOfficial": "OFFICIAL"}
}

func (s searchRow) Name() string { return s.r.Name }

func (s searchRow) Description() string {
	d := strings.NewReplacer("\n", " ", "\r", " ").Replace(s.r.Description)
	if s.trunc {
		d = format.Ellipsis(d, 45)
	}
	return d
}

func (s searchRow) StarCount() string { return strconv.Itoa(s.r.StarCount) }

// IsOfficial is "[OK]" or nothing in a table, true or false in JSON.
func (s searchRow) IsOfficial() string {
	switch {
	case s.json:
		return strconv.FormatBool(s.r.IsOfficial)
	case s.r.IsOfficial:
		return "[OK]"
	}
	return ""
}

func (s searchRow) MarshalJSON() ([]byte, error) {
	s.json = true
	return format.MarshalRow(s)
}
