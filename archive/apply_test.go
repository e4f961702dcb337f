package archive

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/testutil"
)

// gnuTar tars dir with GNU tar as image builders outside Go do.
func gnuTar(t testing.TB, dir string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "layer.tar")
	cmd := exec.Command("tar", append(append([]string{"--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", dir, "-cf", out}, args...), ".")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -c: %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compressWith runs the gzip or zstd command over b.
func compressWith(t testing.TB, tool string, b []byte) []byte {
	t.Helper()
	cmd := exec.Command(tool, "-c")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s -c: %v", tool, err)
	}
	return out
}

func applyBytes(t testing.TB, root string, b []byte, opts ApplyOptions) (Result, error) {
	t.Helper()
	return Apply(context.Background(), root, bytes.NewReader(b), opts)
}

func TestDetectCompression(t *testing.T) {
	plain := mktar(t, ent{name: "a", body: "hello"})
	cases := map[Compression][]byte{
		Uncompressed: plain,
		Gzip:         compressWith(t, "gzip", plain),
		Zstd:         compressWith(t, "zstd", plain),
	}
	for want, b := range cases {
		got, err := DetectCompression(bufio.NewReader(bytes.NewReader(b)))
		if err != nil || got != want {
			t.Errorf("DetectCompression(%s) = %s, %v", want, got, err)
		}
		rc, c, err := Decompress(bytes.NewReader(b))
		if err != nil || c != want {
			t.Fatalf("Decompress(%s) = %s, %v", want, c, err)
		}
		var out bytes.Buffer
		if _, err := out.ReadFrom(rc); err != nil {
			t.Fatalf("read %s: %v", want, err)
		}
		rc.Close()
		if !bytes.Equal(out.Bytes(), plain) {
			t.Errorf("Decompress(%s) gave %d bytes, not the %d of the tar", want, out.Len(), len(plain))
		}
		// And our own writers, read back by the tools.
		var cb bytes.Buffer
		w, err := Compress(&cb, want)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(plain)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if want != Uncompressed {
			cmd := exec.Command(map[Compression]string{Gzip: "gzip", Zstd: "zstd"}[want], "-dc")
			cmd.Stdin = &cb
			back, err := cmd.Output()
			if err != nil || !bytes.Equal(back, plain) {
				t.Errorf("%s -dc of Compress output: %v (%d bytes)", want, err, len(back))
			}
		}
	}
	for _, tiny := range [][]byte{nil, {0x1f}} {
		if c, err := DetectCompression(bufio.NewReader(bytes.NewReader(tiny))); err != nil || c != Uncompressed {
			t.Errorf("DetectCompression(%x) = %s, %v", tiny, c, err)
		}
	}
	xz := []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}
	if _, err := DetectCompression(bufio.NewReader(bytes.NewReader(xz))); !errdefs.Is(err, errdefs.KindNotImplemented) {
		t.Errorf("xz: %v, want not implemented", err)
	}
}

// TestApplyGNUTar applies GNU tar's tar of the busybox rootfs, in all three
// compressions, and finds the same tree with the digests of the bytes.
func TestApplyGNUTar(t *testing.T) {
	testutil.RequireRoot(t)
	src := testutil.BusyboxRootfs(t)
	// Some metadata GNU tar must carry over: owners, set-id bits, xattrs,
	// a fifo, a device, a hardlink.
	must(t, os.Chown(filepath.Join(src, "home/user"), 1000, 1000))
	must(t, os.Chmod(filepath.Join(src, "bin/busybox"), 0o4755))
	must(t, os.WriteFile(filepath.Join(src, "etc/motd"), []byte("hi\n"), 0o600))
	must(t, os.Link(filepath.Join(src, "etc/motd"), filepath.Join(src, "etc/motd.hard")))
	must(t, unix.Setxattr(filepath.Join(src, "etc/motd"), "user.berth", []byte("x"), 0))
	must(t, unix.Setxattr(filepath.Join(src, "bin/busybox"), "security.capability", fileCapNetBind, 0))
	must(t, exec.Command("mkfifo", filepath.Join(src, "run/fifo")).Run())
	must(t, exec.Command("mknod", filepath.Join(src, "dev/null"), "c", "1", "3").Run())
	want := scan(t, src)
	plain := gnuTar(t, src)
	for _, c := range []struct {
		name string
		b    []byte
		c    Compression
	}{
		{"plain", plain, Uncompressed},
		{"gzip", compressWith(t, "gzip", plain), Gzip},
		{"zstd", compressWith(t, "zstd", plain), Zstd},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			res, err := applyBytes(t, root, c.b, ApplyOptions{
				Expected: digest.FromBytes(c.b), ExpectedDiffID: digest.FromBytes(plain), Sync: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Compression != c.c || res.Size != int64(len(plain)) || res.Digest != digest.FromBytes(c.b) || res.DiffID != digest.FromBytes(plain) {
				t.Errorf("result %+v; want %s, size %d", res, c.c, len(plain))
			}
			got := scan(t, root)
			if d := diffTrees(want, got, false); len(d) > 0 {
				t.Errorf("applied tree differs from the source:\n%s", strings.Join(d, "\n"))
			}
			if g := hardlinkGroups(got); len(g) != 1 || g[0] != "etc/motd=etc/motd.hard" {
				t.Errorf("hardlinks %v", g)
			}
		})
	}
}

func TestApplyDigestMismatch(t *testing.T) {
	plain := mktar(t, ent{name: "a", body: "hello"})
	gz := compressWith(t, "gzip", plain)
	other := digest.FromString("something else")
	for _, opts := range []ApplyOptions{{Expected: other}, {ExpectedDiffID: other}} {
		res, err := applyBytes(t, t.TempDir(), gz, opts)
		if !errdefs.Is(err, errdefs.KindInvalid) {
			t.Fatalf("%+v: err %v, want invalid", opts, err)
		}
		for _, d := range []digest.Digest{other, res.Digest, res.DiffID} {
			if d == other || (opts.Expected != "" && d == res.Digest) || (opts.ExpectedDiffID != "" && d == res.DiffID) {
				if !strings.Contains(err.Error(), d.String()) {
					t.Errorf("error %q does not name %s", err, d)
				}
			}
		}
	}
	if _, err := applyBytes(t, t.TempDir(), gz, ApplyOptions{Expected: "sha256:nothex"}); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("malformed expected digest: %v", err)
	}
}

// fileCapNetBind is a VFS_CAP_REVISION_2 security.capability value giving
// cap_net_bind_service=ep, as setcap writes it.
var fileCapNetBind = []byte{0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// lateReader fails the test when it is read after Apply returned.
type lateReader struct {
	t        *testing.T
	r        io.Reader
	returned atomic.Bool
}

func (l *lateReader) Read(p []byte) (int, error) {
	if l.returned.Load() {
		l.t.Errorf("Read after Apply returned")
	}
	time.Sleep(time.Millisecond) // give the read-ahead a chance to run late
	return l.r.Read(p)
}

// TestApplyStopsReading: a layer refused early leaves the rest of the
// stream unread, and Apply does not read the stream once it returned (the
// caller closes it).
func TestApplyStopsReading(t *testing.T) {
	bad := mktar(t, ent{name: "../x", body: "x"}, ent{name: "big", body: strings.Repeat("y", 8<<20)})
	for _, b := range [][]byte{bad, compressWith(t, "gzip", bad)} {
		lr := &lateReader{t: t, r: bytes.NewReader(b)}
		_, err := Apply(context.Background(), t.TempDir(), lr, ApplyOptions{})
		lr.returned.Store(true)
		if err == nil {
			t.Fatal("a bad layer applied")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestApplyCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, t.TempDir(), bytes.NewReader(mktar(t, ent{name: "a", body: "x"})), ApplyOptions{})
	if err != context.Canceled {
		t.Errorf("Apply with a canceled context: %v", err)
	}
}

// TestApplyHardlinkToSymlink: as in tar, a hardlink names the symlink
// itself, whatever it points to.
func TestApplyHardlinkToSymlink(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	b := mktar(t, ent{name: "s", typ: '2', link: "/etc/passwd"}, ent{name: "h", typ: '1', link: "s"})
	if _, err := applyBytes(t, root, b, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	s, h := stat(t, filepath.Join(root, "s")), stat(t, filepath.Join(root, "h"))
	if h.Type != "symlink" || h.Ino != s.Ino || h.Target != "/etc/passwd" {
		t.Errorf("h is %v (inode %d), s inode %d", h, h.Ino, s.Ino)
	}
}

// TestApplySparse applies GNU tar's sparse files (both encodings): same
// contents, holes kept, and their size counted against MaxBytes since the
// tar itself is tiny.
func TestApplySparse(t *testing.T) {
	testutil.RequireRoot(t)
	src := t.TempDir()
	big := filepath.Join(src, "big")
	must(t, os.WriteFile(big, nil, 0o644))
	must(t, os.Truncate(big, 100<<20))
	f, err := os.OpenFile(big, os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt([]byte("data in the middle"), 50<<20)
	f.Close()
	must(t, err)
	want := stat(t, big)
	for _, format := range []string{"pax", "gnu"} {
		t.Run(format, func(t *testing.T) {
			b, err := exec.Command("tar", "--sparse", "--format="+format, "-C", src, "-cf", "-", ".").Output()
			must(t, err)
			if len(b) > 1<<20 {
				t.Fatalf("GNU tar wrote %d bytes: not sparse", len(b))
			}
			root := t.TempDir()
			if _, err := applyBytes(t, root, b, ApplyOptions{}); err != nil {
				t.Fatal(err)
			}
			got := stat(t, filepath.Join(root, "big"))
			if got.Sum != want.Sum || got.Size != want.Size {
				t.Errorf("applied %v, want %v", got, want)
			}
			var st unix.Stat_t
			must(t, unix.Stat(filepath.Join(root, "big"), &st))
			if st.Blocks*512 > 1<<20 {
				t.Errorf("the holes were written: %d bytes allocated", st.Blocks*512)
			}
			_, err = applyBytes(t, t.TempDir(), b, ApplyOptions{MaxBytes: 10 << 20})
			if !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "sparse") {
				t.Errorf("MaxBytes on a sparse file: %v", err)
			}
		})
	}
}

// stallingReader gives its bytes, then blocks until released.
type stallingReader struct {
	r       io.Reader
	release chan struct{}
}

func (s *stallingReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		<-s.release
	}
	return n, err
}

// TestApplyCanceledWhileStalled: a layer whose input stops arriving (a
// stuck download) gives up when the context is canceled.
func TestApplyCanceledWhileStalled(t *testing.T) {
	b := mktar(t, ent{name: "a", body: "x"})
	sr := &stallingReader{r: bytes.NewReader(b[:1024]), release: make(chan struct{})}
	defer close(sr.release)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := Apply(ctx, t.TempDir(), sr, ApplyOptions{})
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if err != context.Canceled {
			t.Errorf("Apply: %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute): // a hang, not a timing
		t.Fatal("Apply did not return after its context was canceled")
	}
}
