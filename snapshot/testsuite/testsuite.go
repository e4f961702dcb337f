// Package testsuite is the test suite every graph driver passes: the
// snapshot lifecycle, errors, real mounts through snapshot.MountAll,
// copy-up, whiteouts from real layer tars, deep chains, diff and re-apply,
// usage, concurrency and crash recovery.
package testsuite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/testutil"
	"berth.dev/berth/snapshot"
)

// Options tune the suite for a driver.
type Options struct {
	// ChainDepth is how many layers the deep-chain test stacks.
	ChainDepth int
	// Reopen opens a driver on the root of one Run's newDriver made (after
	// it was closed); without it the crash test is skipped.
	Reopen func(root string) (snapshot.Driver, error)
}

// Option sets an Option.
type Option func(*Options)

// ChainDepth sets Options.ChainDepth (default 20).
func ChainDepth(n int) Option { return func(o *Options) { o.ChainDepth = n } }

// Reopen sets Options.Reopen.
func Reopen(fn func(root string) (snapshot.Driver, error)) Option {
	return func(o *Options) { o.Reopen = fn }
}

// Rooter is what the crash test needs of a driver: where it keeps its
// snapshots.
type Rooter interface{ Root() string }

type suite struct {
	newDriver func(t *testing.T) snapshot.Driver
	opts      Options
}

// Run runs the suite; newDriver must return a fresh driver on an empty
// root that the test cleans up.
func Run(t *testing.T, newDriver func(t *testing.T) snapshot.Driver, opts ...Option) {
	testutil.RequireRoot(t)
	s := &suite{newDriver: newDriver, opts: Options{ChainDepth: 20}}
	for _, o := range opts {
		o(&s.opts)
	}
	t.Run("Lifecycle", s.testLifecycle)
	t.Run("StatWalk", s.testStatWalk)
	t.Run("Errors", s.testErrors)
	t.Run("MountParent", s.testMountParent)
	t.Run("CopyUp", s.testCopyUp)
	t.Run("Whiteouts", s.testWhiteouts)
	t.Run("DeepChain", s.testDeepChain)
	t.Run("DiffApply", s.testDiffApply)
	t.Run("Usage", s.testUsage)
	t.Run("Concurrent", s.testConcurrent)
	t.Run("Crash", s.testCrash)
	t.Run("Image", s.testImage)
}

func (s *suite) driver(t *testing.T) snapshot.Driver {
	d := s.newDriver(t)
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return d
}

var ctx = context.Background()

// mount mounts key on a new directory and returns it with an unmount
// function (also run at cleanup).
func mount(t *testing.T, d snapshot.Driver, key string) (string, func()) {
	t.Helper()
	mounts, err := d.Mounts(ctx, key)
	if err != nil {
		t.Fatalf("mounts of %s: %v", key, err)
	}
	target := t.TempDir()
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatalf("mount %s: %v", key, err)
	}
	var once sync.Once
	unmount := func() {
		once.Do(func() {
			if err := snapshot.UnmountAll(target); err != nil {
				t.Errorf("unmount %s: %v", key, err)
			}
		})
	}
	t.Cleanup(unmount)
	return target, unmount
}

func prepare(t *testing.T, d snapshot.Driver, key, parent string) {
	t.Helper()
	if _, err := d.Prepare(ctx, key, parent); err != nil {
		t.Fatalf("prepare %s on %q: %v", key, parent, err)
	}
}

func commit(t *testing.T, d snapshot.Driver, name, key string) {
	t.Helper()
	if err := d.Commit(ctx, name, key); err != nil {
		t.Fatalf("commit %s as %s: %v", key, name, err)
	}
}

// layer makes committed snapshot name on parent with the files written by
// fill into its mount.
func layer(t *testing.T, d snapshot.Driver, name, parent string, fill func(root string)) {
	t.Helper()
	key := name + "-active"
	prepare(t, d, key, parent)
	root, unmount := mount(t, d, key)
	fill(root)
	unmount()
	commit(t, d, name, key)
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantKind(t *testing.T, err error, k errdefs.Kind, what string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %s", what, k)
		return
	}
	if got := errdefs.KindOf(err); got != k {
		t.Errorf("%s: error %q is of kind %s, want %s", what, err, got, k)
	}
}

func keys(t *testing.T, d snapshot.Driver) map[string]snapshot.Info {
	t.Helper()
	m := map[string]snapshot.Info{}
	if err := d.Walk(ctx, func(i snapshot.Info) error {
		if _, dup := m[i.Key]; dup {
			return fmt.Errorf("walk gave %q twice", i.Key)
		}
		m[i.Key] = i
		return nil
	}); err != nil {
		t.Fatalf("walk: %v", err)
	}
	return m
}

func (s *suite) testLifecycle(t *testing.T) {
	d := s.driver(t)
	layer(t, d, "base", "", func(root string) { write(t, filepath.Join(root, "hello"), "world") })
	if _, err := d.Stat(ctx, "base-active"); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("the active key lives on after commit: %v", err)
	}
	prepare(t, d, "c1", "base")
	root, unmount := mount(t, d, "c1")
	if got := read(t, filepath.Join(root, "hello")); got != "world" {
		t.Errorf("c1 sees hello=%q", got)
	}
	unmount()
	for _, k := range []string{"c1", "base"} {
		if err := d.Remove(ctx, k); err != nil {
			t.Fatalf("remove %s: %v", k, err)
		}
		if _, err := d.Stat(ctx, k); !errdefs.Is(err, errdefs.KindNotFound) {
			t.Errorf("stat %s after remove: %v", k, err)
		}
	}
	if m := keys(t, d); len(m) != 0 {
		t.Errorf("snapshots left after removing all: %v", m)
	}
	// A removed key can be used again.
	prepare(t, d, "base", "")
	if err := d.Remove(ctx, "base"); err != nil {
		t.Fatal(err)
	}
}

func (s *suite) testStatWalk(t *testing.T) {
	d := s.driver(t)
	layer(t, d, "l1", "", func(string) {})
	layer(t, d, "l2", "l1", func(string) {})
	prepare(t, d, "c", "l2")
	m := keys(t, d)
	want := map[string]struct {
		parent string
		kind   snapshot.Kind
	}{"l1": {"", snapshot.KindCommitted}, "l2": {"l1", snapshot.KindCommitted}, "c": {"l2", snapshot.KindActive}}
	if len(m) != len(want) {
		t.Errorf("walk: %v, want keys l1 l2 c", m)
	}
	for k, w := range want {
		info, err := d.Stat(ctx, k)
		if err != nil {
			t.Fatalf("stat %s: %v", k, err)
		}
		if info.Key != k || info.Parent != w.parent || info.Kind != w.kind || info.Created.IsZero() {
			t.Errorf("stat %s = %+v, want parent %q kind %s", k, info, w.parent, w.kind)
		}
		if m[k] != info {
			t.Errorf("walk %s = %+v, stat %+v", k, m[k], info)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := d.Walk(ctx, func(snapshot.Info) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("walk does not stop at fn's error: %v after %d", err, n)
	}
}

func (s *suite) testErrors(t *testing.T) {
	d := s.driver(t)
	prepare(t, d, "active", "")
	_, err := d.Prepare(ctx, "child", "active")
	wantKind(t, err, errdefs.KindInvalid, "prepare on an active parent")
	_, err = d.Prepare(ctx, "child", "missing")
	wantKind(t, err, errdefs.KindNotFound, "prepare on a missing parent")
	_, err = d.Prepare(ctx, "active", "")
	wantKind(t, err, errdefs.KindConflict, "prepare of an existing key")
	_, err = d.Prepare(ctx, "", "")
	wantKind(t, err, errdefs.KindInvalid, "prepare of an empty key")

	commit(t, d, "parent", "active")
	prepare(t, d, "child", "parent")
	wantKind(t, d.Remove(ctx, "parent"), errdefs.KindConflict, "remove of a parent with children")
	wantKind(t, d.Commit(ctx, "parent", "child"), errdefs.KindConflict, "commit onto an existing name")
	wantKind(t, d.Commit(ctx, "x", "parent"), errdefs.KindInvalid, "commit of a committed snapshot")
	_, err = d.Apply(ctx, "parent", nil, applyOpts)
	wantKind(t, err, errdefs.KindInvalid, "apply onto a committed snapshot")

	_, err = d.Stat(ctx, "nope")
	wantKind(t, err, errdefs.KindNotFound, "stat of an unknown key")
	_, err = d.Mounts(ctx, "nope")
	wantKind(t, err, errdefs.KindNotFound, "mounts of an unknown key")
	_, err = d.Usage(ctx, "nope")
	wantKind(t, err, errdefs.KindNotFound, "usage of an unknown key")
	wantKind(t, d.Remove(ctx, "nope"), errdefs.KindNotFound, "remove of an unknown key")
	wantKind(t, d.Commit(ctx, "x", "nope"), errdefs.KindNotFound, "commit of an unknown key")
	wantKind(t, d.Diff(ctx, "nope", new(discard)), errdefs.KindNotFound, "diff of an unknown key")

	// Nothing above changed anything.
	if m := keys(t, d); len(m) != 2 || m["parent"].Kind != snapshot.KindCommitted || m["child"].Kind != snapshot.KindActive {
		t.Errorf("after the errors: %v", m)
	}
	if err := d.Remove(ctx, "child"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, "parent"); err != nil {
		t.Errorf("remove of a parent whose child is gone: %v", err)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (s *suite) testMountParent(t *testing.T) {
	d := s.driver(t)
	layer(t, d, "l1", "", func(root string) {
		write(t, filepath.Join(root, "etc/os-release"), "berth")
		if err := os.Symlink("os-release", filepath.Join(root, "etc/link")); err != nil {
			t.Fatal(err)
		}
	})
	layer(t, d, "l2", "l1", func(root string) { write(t, filepath.Join(root, "bin/tool"), "v2") })
	prepare(t, d, "c", "l2")
	root, _ := mount(t, d, "c")
	if got := read(t, filepath.Join(root, "etc/link")); got != "berth" {
		t.Errorf("etc/link reads %q", got)
	}
	if got := read(t, filepath.Join(root, "bin/tool")); got != "v2" {
		t.Errorf("bin/tool reads %q", got)
	}
	write(t, filepath.Join(root, "new"), "x") // active mounts are writable

	// Committed snapshots mount read-only.
	for _, k := range []string{"l1", "l2"} {
		croot, _ := mount(t, d, k)
		if got := read(t, filepath.Join(croot, "etc/os-release")); got != "berth" {
			t.Errorf("%s: etc/os-release reads %q", k, got)
		}
		err := os.WriteFile(filepath.Join(croot, "new"), nil, 0o644)
		if !errors.Is(err, os.ErrPermission) && !isErofs(err) {
			t.Errorf("%s: writing into a committed snapshot's mount: %v, want EROFS", k, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "bin/tool")); err != nil {
		t.Error(err)
	}
}

func (s *suite) testCopyUp(t *testing.T) {
	d := s.driver(t)
	layer(t, d, "l1", "", func(root string) {
		write(t, filepath.Join(root, "etc/conf"), "one")
		write(t, filepath.Join(root, "etc/other"), "same")
	})
	prepare(t, d, "c1", "l1")
	prepare(t, d, "c2", "l1")
	r1, _ := mount(t, d, "c1")
	r2, _ := mount(t, d, "c2")
	f, err := os.OpenFile(filepath.Join(r1, "etc/conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("+two"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chmod(filepath.Join(r1, "etc/other"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(r1, "etc/conf")); got != "one+two" {
		t.Errorf("c1 reads %q after its write", got)
	}
	if got := read(t, filepath.Join(r2, "etc/conf")); got != "one" {
		t.Errorf("c2 sees c1's write: %q", got)
	}
	if st, err := os.Stat(filepath.Join(r2, "etc/other")); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("c2 sees c1's chmod: %v %v", st.Mode(), err)
	}
	lower, _ := mount(t, d, "l1")
	if got := read(t, filepath.Join(lower, "etc/conf")); got != "one" {
		t.Errorf("the parent changed under c1's write: %q", got)
	}
}

func (s *suite) testDeepChain(t *testing.T) {
	d := s.driver(t)
	n := s.opts.ChainDepth
	parent := ""
	for i := range n {
		name := fmt.Sprintf("layer%03d", i)
		layer(t, d, name, parent, func(root string) {
			write(t, filepath.Join(root, "layers", name), name)
			write(t, filepath.Join(root, "top"), name)
		})
		parent = name
	}
	prepare(t, d, "c", parent)
	root, _ := mount(t, d, "c")
	ents, err := os.ReadDir(filepath.Join(root, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != n {
		t.Errorf("the container sees %d of %d layers", len(ents), n)
	}
	if got := read(t, filepath.Join(root, "top")); got != parent {
		t.Errorf("top reads %q, want the last layer's %q", got, parent)
	}
	if got := read(t, filepath.Join(root, "layers/layer000")); got != "layer000" {
		t.Errorf("the first layer's file reads %q", got)
	}
	write(t, filepath.Join(root, "layers/layer000"), "changed")
	// And the committed top mounts too (lowers only).
	top, _ := mount(t, d, parent)
	if got := read(t, filepath.Join(top, "layers/layer000")); got != "layer000" {
		t.Errorf("the committed top reads %q", got)
	}
}

func (s *suite) testConcurrent(t *testing.T) {
	d := s.driver(t)
	layer(t, d, "base", "", func(root string) { write(t, filepath.Join(root, "f"), "x") })
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("c%02d", i)
			if _, err := d.Prepare(ctx, key, "base"); err != nil {
				errs <- err
				return
			}
			// Racing duplicates must lose with a conflict.
			if _, err := d.Prepare(ctx, key, "base"); !errdefs.Is(err, errdefs.KindConflict) {
				errs <- fmt.Errorf("second prepare of %s: %v", key, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if m := keys(t, d); len(m) != n+1 {
		t.Fatalf("%d snapshots after %d concurrent prepares, want %d", len(m), n, n+1)
	}
	wantKind(t, d.Remove(ctx, "base"), errdefs.KindConflict, "remove of a parent of many")
	errs = make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if err := d.Remove(ctx, fmt.Sprintf("c%02d", i)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Whole chains built and torn down side by side on the shared base.
	errs = make(chan error, n)
	for g := range 6 {
		wg.Go(func() {
			parent := "base"
			var made []string
			for i := range 4 {
				key, name := fmt.Sprintf("g%d-%d-a", g, i), fmt.Sprintf("g%d-%d", g, i)
				if _, err := d.Prepare(ctx, key, parent); err != nil {
					errs <- err
					return
				}
				if err := d.Commit(ctx, name, key); err != nil {
					errs <- err
					return
				}
				made = append(made, name)
				parent = name
			}
			if _, err := d.Mounts(ctx, parent); err != nil {
				errs <- err
			}
			for i := len(made) - 1; i >= 0; i-- {
				if err := d.Remove(ctx, made[i]); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := d.Remove(ctx, "base"); err != nil {
		t.Errorf("remove base after its children: %v", err)
	}
	if m := keys(t, d); len(m) != 0 {
		t.Errorf("left: %v", m)
	}

	// Removing a parent while a child is prepared on it: exactly one wins.
	for i := range 10 {
		parent, child := fmt.Sprint("p", i), fmt.Sprint("c", i)
		layer(t, d, parent, "", func(string) {})
		var prepErr, rmErr error
		wg.Go(func() { _, prepErr = d.Prepare(ctx, child, parent) })
		wg.Go(func() { rmErr = d.Remove(ctx, parent) })
		wg.Wait()
		switch {
		case prepErr == nil && errdefs.Is(rmErr, errdefs.KindConflict):
			must(t, d.Remove(ctx, child))
			must(t, d.Remove(ctx, parent))
		case rmErr == nil && (errdefs.Is(prepErr, errdefs.KindNotFound) || errdefs.Is(prepErr, errdefs.KindConflict)):
		default:
			t.Fatalf("prepare on a parent being removed: prepare %v, remove %v", prepErr, rmErr)
		}
	}
	if m := keys(t, d); len(m) != 0 {
		t.Errorf("left: %v", m)
	}
}
