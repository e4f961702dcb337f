// Command imagebench times loading and saving a Debian image of about
// 200 MB (debootstrap minbase, one layer) with berth's image service beside
// docker load/save (a private dockerd of Debian's docker.io), skopeo copy
// and umoci unpack, in one run. File creation on this machine's root disk is
// slow and noisy, so the tools take turns run by run (the order rotates each
// round) and the page cache is synced before each timed run. It prints the
// median of each and berth's ratios to the others.
//
//	go run ./bench/imagebench [-rounds 5] [-dir /var/tmp] [-driver overlay2]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"berth.dev/berth/image"
	"berth.dev/berth/internal/testutil"
)

type task struct {
	name string
	prep func() error // untimed
	run  func() error // timed
}

func main() {
	rounds := flag.Int("rounds", 5, "timed runs of each tool")
	dir := flag.String("dir", "/var/tmp", "where the work happens (the disk being measured)")
	driver := flag.String("driver", "overlay2", "berth's graph driver")
	flag.Parse()
	if err := bench(*rounds, *dir, *driver); err != nil {
		fmt.Fprintln(os.Stderr, "imagebench:", err)
		os.Exit(1)
	}
}

func sh(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func loadFile(s *image.Store, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = s.Load(context.Background(), f)
	return err
}

func saveFile(s *image.Store, path, ref string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := s.Save(context.Background(), f, []string{ref}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func bench(rounds int, dir, driver string) error {
	for _, tool := range []string{"skopeo", "umoci", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed: %w", tool, err)
		}
	}
	tmpl, err := testutil.DebianTemplate()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(dir, "berth-imagebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	archive := filepath.Join(work, "debian.tar")
	if _, err := testutil.DockerArchive(archive, []string{"debian:bench"}, []string{"bash"}, tmpl); err != nil {
		return err
	}
	st, err := os.Stat(archive)
	if err != nil {
		return err
	}
	ociDir := filepath.Join(work, "oci")
	if err := sh("skopeo", "copy", "-q", "docker-archive:"+archive, "oci:"+ociDir+":bench"); err != nil {
		return err
	}
	d, err := testutil.StartDockerd(work)
	if err != nil {
		return err
	}
	defer d.Stop()
	saver, err := image.Open(filepath.Join(work, "berth-save"), driver)
	if err != nil {
		return err
	}
	defer saver.Close()
	if err := loadFile(saver, archive); err != nil {
		return err
	}

	var berthRoot string
	var loaded *image.Store
	n := 0
	out := filepath.Join(work, "out.tar")
	rmOut := func() error { return os.RemoveAll(out) }
	loads := []task{
		{"berth load", func() error {
			n++
			berthRoot = filepath.Join(work, fmt.Sprintf("berth-%d", n))
			loaded, err = image.Open(berthRoot, driver)
			return err
		}, func() error {
			defer func() { loaded.Close(); os.RemoveAll(berthRoot) }()
			return loadFile(loaded, archive)
		}},
		{"docker load", func() error {
			_, _ = d.Docker("rmi", "-f", "debian:bench")
			return nil
		}, func() error { _, err := d.Docker("load", "-q", "-i", archive); return err }},
		{"skopeo copy (store only)", func() error { return os.RemoveAll(filepath.Join(work, "skopeo")) },
			func() error {
				return sh("skopeo", "copy", "-q", "docker-archive:"+archive, "oci:"+filepath.Join(work, "skopeo")+":bench")
			}},
		{"umoci unpack (extract only)", func() error { return os.RemoveAll(filepath.Join(work, "bundle")) },
			func() error { return sh("umoci", "unpack", "--image", ociDir+":bench", filepath.Join(work, "bundle")) }},
	}
	saves := []task{
		{"berth save", rmOut, func() error { return saveFile(saver, out, "debian:bench") }},
		{"docker save", rmOut, func() error { _, err := d.Docker("save", "-o", out, "debian:bench"); return err }},
		{"skopeo copy oci->docker-archive", rmOut, func() error {
			return sh("skopeo", "copy", "-q", "oci:"+ociDir+":bench", "docker-archive:"+out+":debian:bench")
		}},
	}
	fmt.Printf("image: %s, %d MB, one layer; %d rounds, work in %s, berth driver %s\n\n", filepath.Base(tmpl), st.Size()>>20, rounds, dir, driver)
	for _, group := range []struct {
		title string
		tasks []task
	}{{"load", loads}, {"save", saves}} {
		times, err := runRounds(group.tasks, rounds)
		if err != nil {
			return err
		}
		// docker needs the image for save: the last docker load left it.
		report(group.title, group.tasks, times, st.Size())
	}
	return nil
}

// runRounds runs every task once per round, rotating their order.
func runRounds(tasks []task, rounds int) (map[string][]time.Duration, error) {
	times := map[string][]time.Duration{}
	for r := range rounds {
		for i := range tasks {
			t := tasks[(i+r)%len(tasks)]
			if err := t.prep(); err != nil {
				return nil, fmt.Errorf("%s: prepare: %w", t.name, err)
			}
			if err := sh("sync"); err != nil {
				return nil, err
			}
			start := time.Now()
			if err := t.run(); err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			times[t.name] = append(times[t.name], time.Since(start))
		}
	}
	return times, nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func report(title string, tasks []task, times map[string][]time.Duration, size int64) {
	fmt.Printf("%s\n", title)
	berth := median(times[tasks[0].name])
	for _, t := range tasks {
		m := median(times[t.name])
		fmt.Printf("  %-34s median %7.0f ms  min %7.0f ms  %6.0f MB/s", t.name, ms(m), ms(slices.Min(times[t.name])), float64(size)/1e6/m.Seconds())
		if t.name != tasks[0].name {
			fmt.Printf("   %s/%s = %.2f", strings.Fields(tasks[0].name)[0], strings.Fields(t.name)[0], berth.Seconds()/m.Seconds())
		}
		fmt.Println()
	}
	fmt.Println()
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
