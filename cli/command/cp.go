package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"berth.dev/berth/archive"
	"berth.dev/berth/client"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// docker cp's rules, from both ends: where a copy lands depends on
// whether the source is a directory, whether the destination exists and
// is one, and on trailing "/" and "/." (a directory's contents). The tar
// sent or received is renamed so that the extracting side only has to
// unpack it into a directory.

type cpOptions struct {
	archive, followLink, quiet bool
}

func newCpCommand(c *CLI) *cobra.Command {
	o := &cpOptions{}
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Long: `Copy files/folders between a container and the local filesystem

Use '-' as the source to read a tar archive from stdin
and extract it to a directory destination in a container.
Use '-' as the destination to stream a tar archive of a
container source to stdout.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return errors.New("source can not be empty")
			}
			if args[1] == "" {
				return errors.New("destination can not be empty")
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			srcCtr, srcPath := splitCpArg(args[0])
			dstCtr, dstPath := splitCpArg(args[1])
			switch {
			case srcCtr != "" && dstCtr != "":
				return errors.New("copying between containers is not supported")
			case srcCtr != "":
				return c.copyFromContainer(cmd.Context(), cl, o, srcCtr, srcPath, dstPath)
			case dstCtr != "":
				return c.copyToContainer(cmd.Context(), cl, o, dstCtr, dstPath, srcPath)
			}
			return errors.New("must specify at least one container source")
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.archive, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	f.BoolVarP(&o.followLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached")
	return cmd
}

// splitCpArg splits CONTAINER:PATH; an absolute path or one starting with
// "." is local whatever colons it holds.
func splitCpArg(arg string) (ctr, path string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	ctr, path, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(ctr, ".") {
		return "", arg
	}
	return ctr, path
}

// keepTrailing puts back the trailing "/" or "/." that cleaning dropped:
// they say "a directory" and "its contents".
func keepTrailing(cleaned, orig string) string {
	if strings.HasSuffix(orig, "/.") || orig == "." {
		if cleaned != "/" {
			cleaned += "/"
		}
		return cleaned + "."
	}
	if strings.HasSuffix(orig, "/") && !strings.HasSuffix(cleaned, "/") {
		return cleaned + "/"
	}
	return cleaned
}

// splitDirEntry is docker's SplitPathDirEntry: the parent and the last
// element, "." for a path naming a directory's contents.
func splitDirEntry(p string) (dir, base string) {
	cleaned := filepath.Clean(p)
	if strings.HasSuffix(p, "/.") || p == "." {
		cleaned += "/."
	}
	return filepath.Dir(cleaned), filepath.Base(cleaned)
}

// assertsDir says whether p must name a directory (trailing "/" or "/.").
func assertsDir(p string) bool {
	return strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || p == "."
}

// copyInfo is what each end knows of a path.
type copyInfo struct {
	path          string
	exists, isDir bool
	rebase        string // the name the source goes by (-L: the link's)
}

// placement decides, as docker's PrepareArchiveCopy, the directory a copy
// is extracted into and the name its top entry gets there ("" keeps the
// source's name).
func placement(src, dst copyInfo) (dir, name string, err error) {
	_, dstBase := splitDirEntry(dst.path)
	dstParent, _ := splitDirEntry(dst.path)
	switch {
	case dst.exists && dst.isDir:
		return dst.path, "", nil
	case dst.exists && src.isDir:
		return "", "", errors.New("cannot copy directory")
	case dst.exists:
		return dstParent, dstBase, nil
	case src.isDir:
		return dstParent, dstBase, nil
	case assertsDir(dst.path):
		return "", "", errors.New("no such directory")
	}
	return dstParent, dstBase, nil
}

// copiedLine is docker's closing message on stderr, written only when
// stdout is a terminal (docker 28 suppresses its progress without one,
// and the line with it).
func (c *CLI) copiedLine(o *cpOptions, n int64, to string) {
	if _, tty := terminalFd(c.Out); tty && !o.quiet {
		fmt.Fprintln(c.Err, "Successfully copied", units.HumanSizeWithPrecision(float64(n), 3), "to", to)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (cr *countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.n += int64(n)
	return n, err
}

func (c *CLI) copyFromContainer(ctx context.Context, cl *client.Client, o *cpOptions, ctr, srcPath, dstPath string) error {
	if dstPath != "-" {
		abs, err := filepath.Abs(dstPath)
		if err != nil {
			return err
		}
		dstPath = keepTrailing(abs, dstPath)
		if err := validateOutputPath(dstPath); err != nil {
			return err
		}
	}
	rebase := ""
	if o.followLink {
		st, err := cl.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: srcPath})
		if err == nil && st.Stat.Mode&os.ModeSymlink != 0 {
			target := st.Stat.LinkTarget
			if !filepath.IsAbs(target) {
				parent, _ := splitDirEntry(srcPath)
				target = filepath.Join(parent, target)
			}
			_, rebase = splitDirEntry(srcPath)
			_, targetBase := splitDirEntry(target)
			if rebase == targetBase {
				rebase = ""
			}
			srcPath = target
		}
	}
	res, err := cl.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: srcPath})
	if err != nil {
		return err
	}
	defer res.Content.Close()
	if dstPath == "-" {
		_, err := io.Copy(c.Out, res.Content)
		return err
	}
	counted := &countingReader{r: res.Content}
	src := copyInfo{path: srcPath, exists: true, isDir: res.Stat.Mode.IsDir(), rebase: rebase}
	err = copyToLocal(ctx, counted, src, dstPath)
	c.copiedLine(o, counted.n, dstPath)
	return err
}

func (c *CLI) copyToContainer(ctx context.Context, cl *client.Client, o *cpOptions, ctr, dstPath, srcPath string) error {
	if srcPath != "-" {
		abs, err := filepath.Abs(srcPath)
		if err != nil {
			return err
		}
		srcPath = keepTrailing(abs, srcPath)
	}
	dst := copyInfo{path: dstPath}
	st, err := cl.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: dstPath})
	if err == nil && st.Stat.Mode&os.ModeSymlink != 0 {
		target := st.Stat.LinkTarget
		if !filepath.IsAbs(target) {
			parent, _ := splitDirEntry(dstPath)
			target = filepath.Join(parent, target)
		}
		dst.path = target
		st, err = cl.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: target})
	}
	if err == nil {
		if m := st.Stat.Mode; !m.IsDir() && !m.IsRegular() {
			return fmt.Errorf("destination \"%s:%s\" must be a directory or a regular file", ctr, dstPath)
		}
		dst.exists, dst.isDir = true, st.Stat.Mode.IsDir()
	}
	opts := client.CopyToContainerOptions{CopyUIDGID: o.archive}
	if srcPath == "-" {
		if !dst.isDir {
			return fmt.Errorf("destination \"%s:%s\" must be a directory", ctr, dstPath)
		}
		opts.DestinationPath, opts.Content = dst.path, c.In
		_, err := cl.CopyToContainer(ctx, ctr, opts)
		c.copiedLine(o, 0, ctr+":"+dst.path)
		return err
	}
	src, err := localSource(srcPath, o.followLink)
	if err != nil {
		return err
	}
	dir, name, err := placement(src, dst)
	if err != nil {
		return err
	}
	if name == "" {
		_, name = splitDirEntry(src.path)
		if src.rebase != "" {
			name = src.rebase
		}
	}
	srcDir, srcBase := splitDirEntry(src.path)
	pfd, err := unix.Open(srcDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: srcDir, Err: err}
	}
	defer unix.Close(pfd)
	pr, pw := io.Pipe()
	go func() {
		base := srcBase
		if base == "." {
			base = ""
		}
		pw.CloseWithError(archive.WriteCopy(pw, pfd, base, name))
	}()
	counted := &countingReader{r: pr}
	opts.DestinationPath, opts.Content = dir, counted
	_, err = cl.CopyToContainer(ctx, ctr, opts)
	pr.CloseWithError(io.ErrClosedPipe) // ends the writer if the request stopped early
	c.copiedLine(o, counted.n, ctr+":"+dst.path)
	return err
}
