package command

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"berth.dev/berth/cli/format"
	"berth.dev/berth/client"
	"berth.dev/berth/image/reference"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/spf13/cobra"
)

func newImageCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	ls := newImagesCommand(c)
	ls.Use, ls.Aliases = "ls [OPTIONS] [REPOSITORY[:TAG]]", []string{"list"}
	rm := newRmiCommand(c)
	rm.Use, rm.Aliases = "rm [OPTIONS] IMAGE [IMAGE...]", []string{"remove"}
	inspect := newImageInspectCommand(c)
	cmd.AddCommand(ls, rm, inspect, newHistoryCommand(c), newTagCommand(c), newImagePruneCommand(c),
		newLoadCommand(c), newSaveCommand(c), newImportCommand(c), newPullCommand(c), newPushCommand(c))
	return cmd
}

type imagesOptions struct {
	all, quiet, digests, noTrunc bool
	format                       string
	filter                       filterFlag
}

func newImagesCommand(c *CLI) *cobra.Command {
	o := &imagesOptions{}
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImages(cmd, c, o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Show all images (default hides intermediate images)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only show image IDs")
	f.BoolVar(&o.digests, "digests", false, "Show digests")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.StringVar(&o.format, "format", "", formatHelp)
	f.VarP(&o.filter, "filter", "f", "Filter output based on conditions provided")
	return cmd
}

func runImages(cmd *cobra.Command, c *CLI, o *imagesOptions, args []string) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	filters := o.filter.f.Clone()
	if len(args) == 1 {
		filters.Add("reference", args[0])
	}
	res, err := cl.ImageList(cmd.Context(), client.ImageListOptions{All: o.all, Filters: filters})
	if err != nil {
		return err
	}
	table := "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	if o.digests {
		table = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	}
	f := listFormat(o.format, o.quiet, "{{.ID}}", table)
	w, err := format.NewWriter(c.Out, f, imageRow{}.Headers())
	if err != nil {
		return err
	}
	for _, img := range res.Items {
		for _, r := range imageRows(img, !o.noTrunc, o.digests) {
			if err := w.Write(r); err != nil {
				return err
			}
		}
	}
	return w.Flush()
}

// imageRow is one line of `images`: an image under one repository and tag
// (an image with several has several lines).
type imageRow struct {
	i                 image.Summary
	repo, tag, digest string
	trunc             bool
}

func (imageRow) Headers() map[string]string {
	return map[string]string{"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
		"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
		"VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE"}
}

func (r imageRow) ID() string {
	if r.trunc {
		return format.TruncateID(r.i.ID)
	}
	return r.i.ID
}
func (r imageRow) Repository() string   { return r.repo }
func (r imageRow) Tag() string          { return r.tag }
func (r imageRow) Digest() string       { return r.digest }
func (r imageRow) CreatedSince() string { return format.Since(r.i.Created) }
func (r imageRow) CreatedAt() string    { return time.Unix(r.i.Created, 0).String() }
func (r imageRow) Size() string         { return format.Size(r.i.Size) }
func (r imageRow) VirtualSize() string  { return format.SizeDF(r.i.Size) } // docker's precision differs here
func (r imageRow) Containers() string {
	if r.i.Containers == -1 {
		return "N/A"
	}
	return strconv.FormatInt(r.i.Containers, 10)
}
func (r imageRow) SharedSize() string {
	if r.i.SharedSize == -1 {
		return "N/A"
	}
	return format.SizeDF(r.i.SharedSize)
}
func (r imageRow) UniqueSize() string {
	if r.i.Size == -1 || r.i.SharedSize == -1 {
		return "N/A"
	}
	return format.SizeDF(r.i.Size - r.i.SharedSize)
}
func (r imageRow) MarshalJSON() ([]byte, error) { return format.MarshalRow(r) }

// imageRows splits an image into its lines: one per repository and tag
// (and digest with --digests); an image with no name is <none>:<none>.
// Repositories keep the order of the image's first reference to them.
func imageRows(img image.Summary, trunc, digests bool) []imageRow {
	row := func(repo, tag, dg string) imageRow {
		return imageRow{i: img, repo: repo, tag: tag, digest: dg, trunc: trunc}
	}
	tags, dgs := map[string][]string{}, map[string][]string{}
	var repos []string
	add := func(m map[string][]string, repo, v string) {
		if _, ok := tags[repo]; !ok {
			if _, ok := dgs[repo]; !ok {
				repos = append(repos, repo)
			}
		}
		m[repo] = append(m[repo], v)
	}
	for _, s := range img.RepoTags {
		if ref, err := reference.ParseNormalizedNamed(s); err == nil {
			if ref.Tag != "" {
				add(tags, ref.FamiliarName(), ref.Tag)
			}
		}
	}
	for _, s := range img.RepoDigests {
		if ref, err := reference.ParseNormalizedNamed(s); err == nil {
			if ref.Digest != "" {
				add(dgs, ref.FamiliarName(), ref.Digest.String())
			}
		}
	}
	if len(repos) == 0 {
		return []imageRow{row("<none>", "<none>", "<none>")}
	}
	var rows []imageRow
	for _, repo := range repos {
		ts, ds := tags[repo], dgs[repo]
		if !digests {
			ds = nil
		}
		switch {
		case len(ts) == 0 && digests:
			for _, d := range ds {
				rows = append(rows, row(repo, "<none>", d))
			}
		case len(ts) == 0:
			rows = append(rows, row(repo, "<none>", ""))
		}
		for _, t := range ts {
			if len(ds) == 0 {
				rows = append(rows, row(repo, t, "<none>"))
			}
			for _, d := range ds {
				rows = append(rows, row(repo, t, d))
			}
		}
	}
	return rows
}

func newImageInspectCommand(c *CLI) *cobra.Command {
	return inspectCommand(c, "inspect [OPTIONS] IMAGE [IMAGE...]", "Display detailed information on one or more images", inspectImage)
}

func inspectImage(ctx context.Context, cl *client.Client, ref string) ([]byte, any, error) {
	var raw bytes.Buffer
	if _, err := cl.ImageInspect(ctx, ref, client.ImageInspectWithRawResponse(&raw)); err != nil {
		return nil, nil, err
	}
	var typed imageInspect
	if err := json.Unmarshal(raw.Bytes(), &typed); err != nil {
		return nil, nil, err
	}
	return raw.Bytes(), typed, nil
}

// imageInspect is the image as templates see it: the API's, with the
// fields docker's CLI still knows although newer API types dropped them
// (templates naming them print empty values rather than fail).
type imageInspect struct {
	image.InspectResponse
	Parent          string
	Container       string            `json:",omitempty"`
	ContainerConfig *container.Config `json:",omitempty"`
	DockerVersion   string            `json:",omitempty"`
	VirtualSize     int64             `json:"VirtualSize,omitempty"`
}

// newInspectCommand is the top-level inspect: a container, else an image
// (or only the --type given), as docker looks them up.
func newInspectCommand(c *CLI) *cobra.Command {
	var f, typ string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on berth objects",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if typ != "" && typ != "image" && typ != "container" && typ != "volume" && typ != "network" {
				return fmt.Errorf("%q is not a valid value for --type", typ)
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			return inspectAll(c, f, args, func(ref string) ([]byte, any, error) {
				switch typ {
				case "container":
					return inspectContainer(ctx, cl, ref, size)
				case "image":
					return inspectImage(ctx, cl, ref)
				case "volume":
					return inspectVolume(ctx, cl, ref)
				case "network":
					return inspectNetwork(ctx, cl, ref, false)
				}
				raw, v, err := inspectContainer(ctx, cl, ref, size)
				if err == nil || !cerrdefs.IsNotFound(err) {
					return raw, v, err
				}
				raw, v, err = inspectImage(ctx, cl, ref)
				if err != nil && cerrdefs.IsNotFound(err) {
					raw, v, err = inspectVolume(ctx, cl, ref)
				}
				if err != nil && cerrdefs.IsNotFound(err) {
					raw, v, err = inspectNetwork(ctx, cl, ref, false)
				}
				if err != nil && cerrdefs.IsNotFound(err) {
					return nil, nil, fmt.Errorf("Error: No such object: %s", ref)
				}
				return raw, v, err
			})
		},
	}
	cmd.Flags().StringVarP(&f, "format", "f", "", formatHelpNoTable)
	cmd.Flags().StringVar(&typ, "type", "", "Only inspect objects of the given type")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container")
	return cmd
}

// inspectCommand is an object kind's `inspect` (container, image, volume):
// names to inspectAll, get fetching one object (its raw JSON and typed
// value), -f/--format.
func inspectCommand(c *CLI, use, short string, get func(ctx context.Context, cl *client.Client, ref string) ([]byte, any, error)) *cobra.Command {
	var f string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return inspectAll(c, f, args, func(ref string) ([]byte, any, error) {
				return get(cmd.Context(), cl, ref)
			})
		},
	}
	cmd.Flags().StringVarP(&f, "format", "f", "", formatHelpNoTable)
	return cmd
}

// inspectAll prints objects as docker inspect does: without a template, one
// indented JSON array of the daemon's own bytes; with one, a line per object
// (executed on the typed value, its addresses as text, or on the raw JSON
// if that fails). Objects
// that fail are reported after, and the exit code is 1.
func inspectAll(c *CLI, tmpl string, refs []string, get func(string) ([]byte, any, error)) error {
	var raws [][]byte
	var errs []string
	var out bytes.Buffer
	// -f json is docker's raw objects, a compact array.
	t, compact := tmpl, tmpl == format.JSONKey
	if compact {
		t = ""
	}
	for _, ref := range refs {
		raw, typed, err := get(ref)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if t == "" {
			raws = append(raws, bytes.TrimSpace(raw))
			continue
		}
		if err := format.Execute(&out, t, format.TextView(typed)); err != nil {
			// As docker: the typed value first, then the raw JSON, where a
			// missing key is an error.
			var generic any
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if dec.Decode(&generic) != nil {
				return err
			}
			tm, perr := format.Parse(t)
			if perr != nil {
				return perr
			}
			var b bytes.Buffer
			if err := tm.Option("missingkey=error").Execute(&b, generic); err != nil {
				errs = append(errs, fmt.Sprintf("template parsing error: %v", err))
				continue
			}
			out.Write(b.Bytes())
			out.WriteByte('\n')
		}
	}
	if t != "" && out.Len() == 0 {
		out.WriteByte('\n') // docker's template inspector prints an empty line
	}
	if t == "" {
		if len(raws) == 0 {
			out.WriteString("[]")
		} else {
			arr := append([]byte("["), bytes.Join(raws, []byte(","))...)
			arr = append(arr, ']')
			var err error
			if compact {
				err = json.Compact(&out, arr)
			} else {
				err = json.Indent(&out, arr, "", "    ")
			}
			if err != nil {
				return err
			}
		}
		out.WriteByte('\n')
	}
	if _, err := out.WriteTo(c.Out); err != nil {
		return err
	}
	return joinedErrors(errs)
}

type historyOptions struct {
	human, noTrunc, quiet bool
	format, platform      string
}

func newHistoryCommand(c *CLI) *cobra.Command {
	o := &historyOptions{}
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.ImageHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			f := listFormat(o.format, o.quiet, "{{.ID}}", "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}")
			w, err := format.NewWriter(c.Out, f, historyRow{human: o.human}.Headers())
			if err != nil {
				return err
			}
			for _, h := range res.Items {
				if err := w.Write(historyRow{h: h, human: o.human, trunc: !o.noTrunc}); err != nil {
					return err
				}
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.human, "human", "H", true, "Print sizes and dates in human readable format")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only show image IDs")
	f.StringVar(&o.format, "format", "", formatHelp)
	f.StringVar(&o.platform, "platform", "", "Show history for the given platform (not supported yet)")
	return cmd
}

// historyRow is one layer of `history`.
type historyRow struct {
	h            image.HistoryResponseItem
	human, trunc bool
}

func (r historyRow) Headers() map[string]string {
	since := "CREATED"
	if !r.human {
		since = "CREATED AT" // the column holds CreatedAt then
	}
	return map[string]string{"ID": "IMAGE", "CreatedSince": since, "CreatedAt": "CREATED AT",
		"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}
}

func (r historyRow) ID() string {
	if r.trunc {
		return format.TruncateID(r.h.ID)
	}
	return r.h.ID
}
func (r historyRow) CreatedAt() string { return time.Unix(r.h.Created, 0).Format(time.RFC3339) }
func (r historyRow) CreatedSince() string {
	if !r.human {
		return r.CreatedAt()
	}
	return format.Since(r.h.Created)
}
func (r historyRow) CreatedBy() string {
	s := strings.ReplaceAll(r.h.CreatedBy, "\t", " ")
	if r.trunc {
		return format.Ellipsis(s, 45)
	}
	return s
}
func (r historyRow) Size() string {
	if r.human {
		return format.Size(r.h.Size)
	}
	return strconv.FormatInt(r.h.Size, 10)
}
func (r historyRow) Comment() string              { return r.h.Comment }
func (r historyRow) MarshalJSON() ([]byte, error) { return format.MarshalRow(r) }

func newTagCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			// Checked here for docker's wording; the client checks again.
			if _, err := reference.ParseAny(args[0]); err != nil {
				return fmt.Errorf("Error parsing reference: %q is not a valid repository/tag: %w", args[0], err)
			}
			if _, err := reference.ParseNormalizedNamed(args[1]); err != nil {
				return fmt.Errorf("Error parsing reference: %q is not a valid repository/tag: %w", args[1], err)
			}
			_, err = cl.ImageTag(cmd.Context(), client.ImageTagOptions{Source: args[0], Target: args[1]})
			return err
		},
	}
}

func newRmiCommand(c *CLI) *cobra.Command {
	var force, noPrune bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			var errs []string
			for _, ref := range args {
				res, err := cl.ImageRemove(cmd.Context(), ref, client.ImageRemoveOptions{Force: force, PruneChildren: !noPrune})
				if err != nil {
					errs = append(errs, err.Error())
					continue
				}
				for _, d := range res.Items {
					if d.Deleted != "" {
						fmt.Fprintf(c.Out, "Deleted: %s\n", d.Deleted)
					} else {
						fmt.Fprintf(c.Out, "Untagged: %s\n", d.Untagged)
					}
				}
			}
			return joinedErrors(errs)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "Do not delete untagged parents")
	return cmd
}

func newImagePruneCommand(c *CLI) *cobra.Command {
	var all, force bool
	var filter filterFlag
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			warning := "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
			if all {
				warning = "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] "
			}
			if !force && !c.confirm(warning) {
				return statusError{code: ExitError, err: fmt.Errorf("image prune has been cancelled")}
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			filters := filter.f.Clone()
			filters.Add("dangling", strconv.FormatBool(!all))
			res, err := cl.ImagePrune(cmd.Context(), client.ImagePruneOptions{Filters: filters})
			if err != nil {
				return err
			}
			var lines []string
			for _, d := range res.Report.ImagesDeleted {
				if d.Untagged != "" {
					lines = append(lines, "untagged: "+d.Untagged)
				} else {
					lines = append(lines, "deleted: "+d.Deleted)
				}
			}
			c.printPruned("Deleted Images:", lines, res.Report.SpaceReclaimed)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(&filter, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

// confirm asks a yes/no question on the CLI's streams.
func (c *CLI) confirm(q string) bool {
	fmt.Fprint(c.Out, q)
	var b [1]byte
	var line []byte
	for {
		n, err := c.In.Read(b[:])
		if n == 1 && b[0] != '\n' {
			line = append(line, b[0])
			continue
		}
		if n == 1 || err != nil {
			break
		}
	}
	a := strings.ToLower(strings.TrimSpace(string(line)))
	return a == "y" || a == "yes"
}
