// Command registrybench times pull and push against a local registry
// (Debian's docker-registry on 127.0.0.1, plain HTTP) with a berth daemon
// beside a private dockerd of Debian's docker.io, for two images: Debian
// (debootstrap minbase, one layer of about 200 MB) and a many-layer image
// (busybox and -layers layers of varied files, about -layer-mb MB each).
// The images get into the source registry with skopeo, so the bench does
// not depend on either daemon's push.
//
// Pull: before each timed pull the image is removed (rmi, image prune -a)
// so its layers are really gone; the pull is `docker -H <daemon> pull`
// (the same client for both daemons) and `berth -H <berth> pull` when the
// berth CLI has pull.
//
// Push: each timed push goes to a fresh, empty registry (its own port and
// storage), so every blob is uploaded: a push to the source registry would
// be a few cross-repository mounts (dockerd remembers where its layers came
// from). It is timed twice: of the image as the last pull left it, and of
// the image loaded from the archive (docker load, untimed). dockerd
// compresses the layers anew (gzip) in either; a daemon that keeps the
// compressed blobs it pulled need not in the first. "pushed N MB" is what
// a push put in the registry (its manifest's sizes): it tells compressed
// layers from uncompressed ones; MB/s of a push are of those bytes, of a
// pull of the image's size in the source registry.
//
// The tools take turns run by run (the order rotates each round) and the
// page cache is synced before each timed run. It prints each one's median
// and min, and docker/berth ratios of the medians: >1 is berth faster. A
// tool that fails is reported with its error and left out of later rounds;
// the others go on. On a slow disk, pulls of few big layers are bound by
// writing: berth keeps the compressed blobs in its content store and
// fsyncs them, dockerd keeps no compressed copy and leaves the writeback
// of the files to later (the sync before the next run, not timed);
// -sync-pull times a sync after each pull, for both.
//
//	go run ./bench/registrybench -berth bin/berth [-rounds 5] [-dir /var/tmp] [-layers 30] [-layer-mb 4]
//		[-images debian,layers] [-ops pull,push] [-sync-pull] [-settle 61s]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"berth.dev/berth/internal/testutil"
)

func main() {
	o := options{}
	flag.IntVar(&o.rounds, "rounds", 5, "timed runs of each tool")
	flag.StringVar(&o.dir, "dir", "/var/tmp", "where the work happens (daemons' roots, registries' storage)")
	flag.StringVar(&o.berth, "berth", "", "the berth binary (required)")
	flag.IntVar(&o.layers, "layers", 30, "layers of the many-layer image, besides busybox")
	flag.IntVar(&o.layerMB, "layer-mb", 4, "size of each of those layers, MB (half of it compressible)")
	images := flag.String("images", "debian,layers", "which images: debian, layers")
	ops := flag.String("ops", "pull,push", "which operations: pull, push")
	flag.DurationVar(&settle, "settle", 0, "wait this long after each untimed removal, before the timed run: ext4 without a journal skips inodes freed in the last 60 s (longer while their inode table is dirty) at every create, so a pull right after any removal (its own or the other daemon's) pays for it; -settle 61s measures the engines without that memory of the file system")
	flag.BoolVar(&o.syncPull, "sync-pull", false, "time a sync after each pull too: until the image is on disk (berth fsyncs the blobs it keeps, dockerd syncs nothing)")
	flag.Parse()
	o.images, o.ops = strings.Split(*images, ","), strings.Split(*ops, ",")
	if o.berth == "" {
		fmt.Fprintln(os.Stderr, "registrybench: -berth is required")
		os.Exit(2)
	}
	if err := bench(o); err != nil {
		fmt.Fprintln(os.Stderr, "registrybench:", err)
		os.Exit(1)
	}
}

type options struct {
	rounds, layers, layerMB int
	dir, berth              string
	images, ops             []string
	syncPull                bool
}

// task is one tool's timed operation.
type task struct {
	name string
	prep func() error // untimed, before
	run  func() error // timed
	post func() error // untimed, after
	err  error        // the first failure; the task is out from then on
	// pushed is what the last push put in the registry (layers and
	// config, as its manifest says): the layers' compression shows here.
	pushed int64
}

// daemon is a docker API endpoint: dockerd or berth's.
type daemon struct {
	name string
	host string
}

func (d daemon) docker(args ...string) (string, error) {
	return run("docker", append([]string{"-H", d.host}, args...)...)
}

var run = testutil.Output

// image is one bench image: its archive and where it is in the source registry.
type image struct {
	name    string
	archive string // docker-archive
	ref     string // in the source registry
	size    int64  // archive (uncompressed layers)
	blobs   int64  // compressed layers and config in the registry
	layers  int
}

func bench(o options) error {
	for _, tool := range []string{"skopeo", "docker", "dockerd", "tar", testutil.RegistryBinary} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install skopeo docker.io docker-registry): %w", tool, err)
		}
	}
	work, err := os.MkdirTemp(o.dir, "berth-registrybench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	src, err := testutil.NewRegistry(work, testutil.RegistryOptions{})
	if err != nil {
		return err
	}
	defer src.Close()
	var imgs []*image
	for _, name := range o.images {
		img, err := makeImage(name, work, src, o)
		if err != nil {
			return fmt.Errorf("image %s: %w", name, err)
		}
		imgs = append(imgs, img)
	}

	d, err := testutil.StartDockerd(work)
	if err != nil {
		return err
	}
	defer d.Stop()
	b, err := testutil.StartBerthDaemon(o.berth, work, false)
	if err != nil {
		return err
	}
	defer b.Stop()
	dockerd := daemon{"docker", d.Host}
	berthd := daemon{"berth", b.Host}
	// An unknown command's --help is the top-level help, exit status 0.
	berthCLI, berthQuiet := "", false
	if help, err := run(o.berth, "pull", "--help"); err == nil && strings.Contains(help, "berth pull") {
		berthCLI, berthQuiet = o.berth, strings.Contains(help, "--quiet")
	}

	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("registry %s (docker-registry, plain HTTP); %d rounds; work in %s; load %s", src.Addr, o.rounds, o.dir, load)
	if o.syncPull {
		fmt.Println("pull times include a sync after the pull")
	}
	if berthCLI == "" {
		fmt.Println("the berth CLI has no pull: berth is driven by the docker CLI only")
	}
	for _, img := range imgs {
		fmt.Printf("\n%s: %s, %d layers, %d MB uncompressed, %d MB in the registry\n\n", img.name, img.ref, img.layers, img.size>>20, img.blobs>>20)
		for _, op := range o.ops {
			var tasks []*task
			switch op {
			case "pull":
				tasks = []*task{pullTask("docker pull", dockerd, "docker", true, o.syncPull, img), pullTask("berth pull (docker CLI)", berthd, "docker", true, o.syncPull, img)}
				if berthCLI != "" {
					tasks = append(tasks, pullTask("berth pull (berth CLI)", berthd, berthCLI, berthQuiet, o.syncPull, img))
				}
			case "push":
				// After a pull berth may push the compressed blobs it
				// keeps; after a load it compresses, as docker always does.
				for _, loaded := range []bool{false, true} {
					tasks = []*task{pushTask("docker push", dockerd, work, loaded, img), pushTask("berth push (docker CLI)", berthd, work, loaded, img)}
					times := runRounds(tasks, o.rounds)
					report(map[bool]string{false: "push of the pulled image", true: "push of the image loaded from the archive"}[loaded], tasks, times, img.blobs)
				}
				continue
			default:
				return fmt.Errorf("unknown operation %q (pull, push)", op)
			}
			times := runRounds(tasks, o.rounds)
			report(op, tasks, times, img.blobs)
		}
	}
	return nil
}

// makeImage builds the named image's archive and pushes it to the registry with skopeo.
func makeImage(name, work string, r *testutil.Registry, o options) (*image, error) {
	img := &image{name: name, archive: filepath.Join(work, name+".tar"), ref: r.Addr + "/" + name + ":bench"}
	var dirs []string
	switch name {
	case "debian":
		tmpl, err := testutil.DebianTemplate()
		if err != nil {
			return nil, err
		}
		dirs = []string{tmpl}
	case "layers":
		base, err := testutil.BusyboxTemplate()
		if err != nil {
			return nil, err
		}
		dirs = []string{base}
		rng := rand.New(rand.NewPCG(1, 2)) // the same image every run
		for i := range o.layers {
			dir := filepath.Join(work, fmt.Sprintf("layer-%d", i))
			if err := writeLayer(rng, dir, i, o.layerMB<<20); err != nil {
				return nil, err
			}
			defer os.RemoveAll(dir)
			dirs = append(dirs, dir)
		}
	default:
		return nil, fmt.Errorf("unknown image (debian, layers)")
	}
	img.layers = len(dirs)
	if _, err := testutil.DockerArchive(img.archive, []string{name + ":bench"}, []string{"sh"}, dirs...); err != nil {
		return nil, err
	}
	st, err := os.Stat(img.archive)
	if err != nil {
		return nil, err
	}
	img.size = st.Size()
	if err := r.PushAs("", "docker-archive:"+img.archive, name+":bench"); err != nil {
		return nil, err
	}
	img.blobs, err = blobSize(r, name)
	return img, err
}

// writeLayer writes about size bytes of files of varied sizes in a few
// directories: half of each file random (incompressible), half text.
func writeLayer(rng *rand.Rand, dir string, n, size int) error {
	text := []byte(strings.Repeat(fmt.Sprintf("layer %d: the quick brown fox jumps over the lazy dog\n", n), 64))
	for i, left := 0, size; left > 0; i++ {
		sz := min(left, 4<<10+rng.IntN(512<<10))
		left -= sz
		p := filepath.Join(dir, fmt.Sprintf("usr/share/bench%d/d%d/f%d", n, i%5, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		data := make([]byte, sz)
		for j := range sz / 2 {
			data[j] = byte(rng.Uint32())
		}
		for j := sz / 2; j < sz; j += len(text) {
			copy(data[j:], text)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// blobSize sums the sizes in the image's manifest in the registry.
func blobSize(r *testutil.Registry, name string) (int64, error) {
	req, err := http.NewRequest("GET", r.URL()+"/v2/"+name+"/manifests/bench", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := r.Client().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var m struct {
		Config struct{ Size int64 }
		Layers []struct{ Size int64 }
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return 0, fmt.Errorf("manifest of %s: %s: %w", name, resp.Status, err)
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

// removeAll takes every image out of the daemon, layers and all.
func removeAll(d daemon) error {
	out, err := d.docker("image", "ls", "-aq")
	if err != nil {
		return err
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		if _, err := d.docker(append([]string{"rmi", "-f"}, ids...)...); err != nil {
			return err
		}
	}
	if _, err := d.docker("image", "prune", "-af"); err != nil {
		return err
	}
	if out, err := d.docker("image", "ls", "-aq"); err != nil || strings.TrimSpace(out) != "" {
		return fmt.Errorf("images left after rmi and prune: %q %v", out, err)
	}
	return nil
}

// pullTask pulls img into d with the client cli (docker or berth), with
// -q when the client has it (progress output is not what is measured).
func pullTask(name string, d daemon, cli string, quiet, sync bool, img *image) *task {
	args := []string{"-H", d.host, "pull", img.ref}
	if quiet {
		args = []string{"-H", d.host, "pull", "-q", img.ref}
	}
	return &task{
		name: name,
		prep: func() error { return removeAll(d) },
		run: func() error {
			if _, err := run(cli, args...); err != nil || !sync {
				return err
			}
			_, err := run("sync")
			return err
		},
		post: func() error {
			// What the pull stored is the image (guards against a pull that did nothing).
			out, err := d.docker("image", "inspect", "-f", "{{len .RootFS.Layers}}", img.ref)
			if err != nil {
				return err
			}
			if n := strings.TrimSpace(out); n != fmt.Sprint(img.layers) {
				return fmt.Errorf("pulled %s has %s layers, want %d", img.ref, n, img.layers)
			}
			return nil
		},
	}
}

// pushTask pushes img from d to a fresh registry: every blob is uploaded.
// The image is the one a pull left or, when loaded is set or no pull did,
// one loaded from the archive.
func pushTask(name string, d daemon, work string, loaded bool, img *image) *task {
	var dst *testutil.Registry
	var ref string
	t := &task{name: name}
	*t = task{
		name: name,
		prep: func() error {
			dst = nil
			if loaded {
				if err := removeAll(d); err != nil {
					return err
				}
			}
			if _, err := d.docker("image", "inspect", img.ref); err != nil {
				if _, err := d.docker("load", "-q", "-i", img.archive); err != nil {
					return err
				}
				if _, err := d.docker("tag", img.name+":bench", img.ref); err != nil {
					return err
				}
			}
			var err error
			if dst, err = testutil.NewRegistry(work, testutil.RegistryOptions{}); err != nil {
				return err
			}
			ref = dst.Addr + "/" + img.name + ":bench"
			_, err = d.docker("tag", img.ref, ref)
			return err
		},
		run: func() error {
			_, err := d.docker("push", "-q", ref)
			return err
		},
		post: func() error {
			if dst == nil {
				return nil
			}
			_, err := d.docker("rmi", ref)
			got, err2 := blobSize(dst, img.name)
			t.pushed = got
			if err == nil && err2 != nil {
				err = fmt.Errorf("after the push: %w", err2)
			} else if err == nil && got == 0 {
				err = errors.New("after the push: an empty manifest in the registry")
			}
			err = errors.Join(err, dst.Close())
			dst = nil
			return err
		},
	}
	return t
}

// runRounds runs every task once per round, rotating their order. A task
// that fails is out from then on (its error is in task.err).
func runRounds(tasks []*task, rounds int) map[string][]time.Duration {
	times := map[string][]time.Duration{}
	for r := range rounds {
		for i := range tasks {
			t := tasks[(i+r)%len(tasks)]
			if t.err != nil {
				continue
			}
			t.err = timeOne(t, times)
		}
	}
	return times
}

// settle is -settle: a pause after the untimed preparation.
var settle time.Duration

func timeOne(t *task, times map[string][]time.Duration) (err error) {
	defer func() {
		if perr := t.post(); err == nil && perr != nil {
			err = fmt.Errorf("check: %w", perr)
		}
	}()
	if err := t.prep(); err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	if _, err := run("sync"); err != nil {
		return err
	}
	time.Sleep(settle)
	start := time.Now()
	if err := t.run(); err != nil {
		return err
	}
	times[t.name] = append(times[t.name], time.Since(start))
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// report prints each task's median and min, and docker's median over each
// berth task's (the speed-up; the first task is docker's).
func report(title string, tasks []*task, times map[string][]time.Duration, size int64) {
	fmt.Printf("  %s\n", title)
	var docker time.Duration
	if ds := times[tasks[0].name]; len(ds) > 0 && tasks[0].err == nil {
		docker = median(ds)
	}
	for _, t := range tasks {
		ds := times[t.name]
		if t.err != nil {
			fmt.Printf("    %-26s FAILED after %d runs: %v\n", t.name, len(ds), t.err)
			continue
		}
		m, bytes := median(ds), size
		if t.pushed > 0 {
			bytes = t.pushed
		}
		fmt.Printf("    %-26s median %7.0f ms  min %7.0f ms  %6.1f MB/s", t.name, ms(m), ms(slices.Min(ds)), float64(bytes)/1e6/m.Seconds())
		if t.name != tasks[0].name && docker > 0 {
			fmt.Printf("   docker/berth = %.2f", docker.Seconds()/m.Seconds())
		}
		if t.pushed > 0 {
			fmt.Printf("   pushed %d MB", t.pushed>>20)
		}
		fmt.Print("\n      runs (ms):")
		for _, d := range ds {
			fmt.Printf(" %.0f", ms(d))
		}
		fmt.Println()
	}
	fmt.Println()
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
