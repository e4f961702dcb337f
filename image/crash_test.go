package image_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth.dev/berth/image"
	"berth.dev/berth/internal/testutil"
)

// loadChildEnv makes the test binary a process that loads an archive into
// a store ("driver:root:archive") and is killed while it does.
const loadChildEnv = "BERTH_TEST_LOAD_CHILD"

func loadChild(spec string) {
	parts := strings.SplitN(spec, ":", 3)
	if err := loadInto(parts[0], parts[1], parts[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func loadInto(driver, root, path string) error {
	s, err := image.Open(root, driver)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	_, err = s.Load(context.Background(), f)
	return err
}

// TestLoadKilledMidway kills a load at several moments; each time the store
// opens again, holds nothing of the interrupted load, and loads afterwards.
func TestLoadKilledMidway(t *testing.T) {
	testutil.RequireRoot(t)
	// Twelve layers of a few MB each: long enough to be killed inside.
	base := testutil.BusyboxRootfs(t)
	var dirs []string
	for i := range 12 {
		d := writeFiles(t, map[string]string{fmt.Sprintf("layer%d/blob", i): strings.Repeat(fmt.Sprintf("%d", i), 3<<20)})
		dirs = append(dirs, d)
	}
	path := filepath.Join(t.TempDir(), "big.tar")
	dockerArchive(t, path, []string{"big:1"}, []string{"true"}, append([]string{base}, dirs...)...)

	for _, driver := range testDrivers {
		t.Run(driver, func(t *testing.T) {
			root := t.TempDir()
			killedInside := 0
			for i, delay := range []time.Duration{20, 60, 120, 200, 300, 450, 700} {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), loadChildEnv+"="+driver+":"+root+":"+path)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(delay * time.Millisecond)
				_ = cmd.Process.Signal(syscall.SIGKILL)
				err := cmd.Wait()
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					killedInside++
				} else if err != nil {
					t.Fatalf("kill %d: child failed by itself: %v", i, err)
				}
				e := &env{root: root}
				e.open(t, driver)
				imgs, err := e.store.List(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				blobs, snaps, ingests, layers := e.counts(t)
				if len(imgs) == 0 && blobs+snaps+ingests+layers != 0 {
					t.Fatalf("after a kill at %v: no image, but %d blobs, %d snapshots, %d ingests, %d layers left", delay*time.Millisecond, blobs, snaps, ingests, layers)
				}
				if len(imgs) == 1 {
					// It finished before the kill: a whole image, and
					// nothing else; start again from empty.
					if _, err := e.store.Remove(context.Background(), "big:1", false, false); err != nil {
						t.Fatal(err)
					}
				}
				e.close(t)
			}
			if killedInside == 0 {
				t.Fatal("every load finished before it was killed: the test proved nothing")
			}
			e := &env{root: root}
			e.open(t, driver)
			load(t, e.store, path)
			if _, err := e.store.Get(context.Background(), "big:1"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
