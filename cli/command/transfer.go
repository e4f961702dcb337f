package command

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"berth.dev/berth/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// terminalFd reports the descriptor of s if it is a terminal.
func terminalFd(s any) (uintptr, bool) {
	f, ok := s.(*os.File)
	if !ok {
		return 0, false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return f.Fd(), err == nil
}

// displayStream prints a daemon's JSON progress stream as docker does
// (bars on a terminal, lines otherwise); an error in the stream is the
// command's error.
func (c *CLI) displayStream(r io.Reader) error {
	fd, tty := terminalFd(c.Out)
	return jsonmessage.DisplayJSONMessagesStream(r, c.Out, fd, tty, nil)
}

func newLoadCommand(c *CLI) *cobra.Command {
	var input, platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := c.In
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			} else if _, tty := terminalFd(c.In); tty {
				return errors.New("requested load from stdin, but stdin is empty")
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			opts := []client.ImageLoadOption{}
			_, outTTY := terminalFd(c.Out)
			opts = append(opts, client.ImageLoadWithQuiet(quiet || !outTTY))
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts = append(opts, client.ImageLoadWithPlatforms(p))
			}
			res, err := cl.ImageLoad(cmd.Context(), in, opts...)
			if err != nil {
				return err
			}
			defer res.Close()
			return c.displayStream(res)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	f.BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	f.StringVar(&platform, "platform", "", "Load only the given platform variant")
	return cmd
}

func newSaveCommand(c *CLI) *cobra.Command {
	var output, platform string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				if _, tty := terminalFd(c.Out); tty {
					return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
				}
			} else if dir := filepath.Dir(output); dir != "" {
				if st, err := os.Stat(dir); err != nil || !st.IsDir() {
					return fmt.Errorf("failed to save image: invalid output path: directory %q does not exist", dir)
				}
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			var opts []client.ImageSaveOption
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts = append(opts, client.ImageSaveWithPlatforms(p))
			}
			body, err := cl.ImageSave(cmd.Context(), args, opts...)
			if err != nil {
				return err
			}
			defer body.Close()
			if output == "" {
				_, err := io.Copy(c.Out, body)
				return err
			}
			return copyToFile(output, body)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	cmd.Flags().StringVar(&platform, "platform", "", "Save only the given platform variant")
	return cmd
}

// copyToFile writes r to a temporary file beside path and renames it, so
// that a failed save leaves no half archive under the name.
func copyToFile(path string, r io.Reader) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".berth_temp_")
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("failed to save image: %w", err)
	}
	return nil
}

func newImportCommand(c *CLI) *cobra.Command {
	var changes []string
	var message, platform string
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args: func(cmd *cobra.Command, args []string) error {
			if err := minArgs(1)(cmd, args); err != nil {
				return err
			}
			return maxArgs(2)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			src := client.ImageImportSource{SourceName: "-"}
			switch name := args[0]; {
			case name == "-":
				src.Source = c.In
			case strings.HasPrefix(name, "http://") || strings.HasPrefix(name, "https://"):
				return fmt.Errorf("importing from a URL is not supported yet (%s): download it and import the file", name)
			default:
				f, err := os.Open(name)
				if err != nil {
					return err
				}
				defer f.Close()
				src.Source = f
			}
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			opts := client.ImageImportOptions{Message: message, Changes: changes}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platform = p
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			body, err := cl.ImageImport(cmd.Context(), src, ref, opts)
			if err != nil {
				return err
			}
			defer body.Close()
			return c.displayStream(body)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	f.StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	f.StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

// parsePlatform reads os[/arch[/variant]].
func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || parts[0] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: expected os[/arch[/variant]]", s)
	}
	p := ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}
