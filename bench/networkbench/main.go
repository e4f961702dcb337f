// Command networkbench measures what networking costs containers, with a
// berth daemon beside a private dockerd of Debian's docker.io, both driven
// by the docker CLI:
//
//   - run: `docker run --rm bench-busybox true` with --network none and
//     --network bridge; what the bridge adds (the median of each round's
//     bridge minus none) is each daemon's cost of networking a container.
//   - iperf: iperf3 throughput (TCP, -t seconds) from a container to a
//     container on the default bridge network, and from the host to a
//     container through a published port (-p 15201:5201), at 127.0.0.1 (on
//     dockerd: its userland proxy) and at the bridge's gateway address
//     (dockerd: NAT in the kernel).
//
// Each daemon runs in a network namespace of its own (a new one, its
// loopback up), so dockerd's docker0, iptables chains and NAT, and berth's
// bridge and nftables tables, are made there and go with it: nothing is
// left in the host's tables, and neither daemon sees the other's rules.
// "The host" is the daemon's namespace: iperf3's client runs there with
// nsenter. The images are loaded into both daemons from docker-archives
// built here: busybox-static, and Debian minbase with the host's iperf3
// and the libraries it needs on top.
//
// The daemons and the modes take turns run by run (the order rotates each
// round). It prints medians and mins, and ratios: for times docker/berth,
// for throughput berth/docker, so >1 is berth better either way. A task
// that fails is reported with its error and left out of later rounds.
//
//	go run ./bench/networkbench [-berth bin/berth] [-rounds 20] [-iperf-rounds 3] [-iperf-time 5] [-ops run,iperf] [-dir /var/tmp]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
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
	flag.StringVar(&o.berth, "berth", "", "the berth binary; none: docker alone")
	flag.IntVar(&o.rounds, "rounds", 20, "timed runs of each daemon and network in the run bench")
	flag.IntVar(&o.iperfRounds, "iperf-rounds", 3, "iperf3 runs of each daemon and path")
	flag.IntVar(&o.iperfTime, "iperf-time", 5, "seconds of each iperf3 run")
	flag.StringVar(&o.dir, "dir", "/var/tmp", "where the work happens (daemons' roots, image archives)")
	ops := flag.String("ops", "run,iperf", "which benches: run, iperf")
	flag.Parse()
	o.ops = strings.Split(*ops, ",")
	if err := bench(o); err != nil {
		fmt.Fprintln(os.Stderr, "networkbench:", err)
		os.Exit(1)
	}
}

type options struct {
	berth, dir                     string
	rounds, iperfRounds, iperfTime int
	ops                            []string
}

// daemon is a docker API endpoint, dockerd's or berth's, and the network
// namespace it runs in.
type daemon struct {
	name, host, netns string
}

func (d daemon) docker(args ...string) (string, error) {
	return run("docker", append([]string{"-H", d.host}, args...)...)
}

// inNetns runs a command in the daemon's network namespace: on its host.
func (d daemon) inNetns(args ...string) (string, error) {
	return run("nsenter", append([]string{"--net=" + d.netns}, args...)...)
}

var run = testutil.Output

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

const (
	busyboxImage = "bench-busybox:latest"
	iperfImage   = "bench-iperf3:latest"
	iperfPort    = "5201"  // in the server container
	publishPort  = "15201" // on the daemon's host
)

func bench(o options) error {
	for _, tool := range []string{"docker", "dockerd", "iperf3", "nsenter", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install docker.io iperf3 util-linux iproute2): %w", tool, err)
		}
	}
	work, err := os.MkdirTemp(o.dir, "berth-networkbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	archives, err := makeImages(work)
	if err != nil {
		return err
	}

	d, err := testutil.StartDockerdNetns(work)
	if err != nil {
		return err
	}
	defer d.Stop()
	daemons := []daemon{{"docker", d.Host, d.Netns()}}
	if o.berth != "" && o.berth != "none" {
		b, err := testutil.StartBerthDaemon(o.berth, work, true)
		if err != nil {
			return err
		}
		defer b.Stop()
		daemons = append(daemons, daemon{"berth", b.Host, b.Netns()})
	}
	for _, dm := range daemons {
		for _, a := range archives {
			if _, err := dm.docker("load", "-q", "-i", a); err != nil {
				return fmt.Errorf("%s: %w", dm.name, err)
			}
		}
	}

	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("networkbench: %d daemons (docker CLI for all), each in a network namespace of its own; load %s", len(daemons), load)
	for _, op := range o.ops {
		switch op {
		case "run":
			runBench(daemons, o.rounds)
		case "iperf":
			if err := iperfBench(daemons, o.iperfRounds, o.iperfTime); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown bench %q (run, iperf)", op)
		}
	}
	return nil
}

// makeImages writes the busybox and iperf3 images' docker-archives.
func makeImages(work string) ([]string, error) {
	busybox, err := testutil.BusyboxTemplate()
	if err != nil {
		return nil, err
	}
	debian, err := testutil.DebianTemplate()
	if err != nil {
		return nil, err
	}
	layer := filepath.Join(work, "iperf3-layer")
	if err := iperfLayer(debian, layer); err != nil {
		return nil, fmt.Errorf("iperf3 layer: %w", err)
	}
	bb := filepath.Join(work, "busybox.tar")
	if _, err := testutil.DockerArchive(bb, []string{busyboxImage}, []string{"sh"}, busybox); err != nil {
		return nil, err
	}
	ip := filepath.Join(work, "iperf3.tar")
	if _, err := testutil.DockerArchive(ip, []string{iperfImage}, []string{"iperf3", "-s"}, debian, layer); err != nil {
		return nil, err
	}
	return []string{bb, ip}, nil
}

// iperfLayer puts the host's iperf3 in dir, with the libraries it links
// that the Debian image lacks (the host is the same Debian).
func iperfLayer(debian, dir string) error {
	bin, err := exec.LookPath("iperf3")
	if err != nil {
		return err
	}
	if err := copyFile(bin, filepath.Join(dir, "usr/bin/iperf3")); err != nil {
		return err
	}
	out, err := run("ldd", bin)
	if err != nil {
		return err
	}
	for line := range strings.Lines(out) {
		// "libiperf.so.0 => /lib/x86_64-linux-gnu/libiperf.so.0 (0x...)"
		f := strings.Fields(line)
		if len(f) < 3 || f[1] != "=>" || !filepath.IsAbs(f[2]) {
			continue
		}
		lib := filepath.Join("usr/lib", filepath.Base(filepath.Dir(f[2])), f[0])
		if _, err := os.Stat(filepath.Join(debian, lib)); err == nil {
			continue
		}
		if err := copyFile(f[2], filepath.Join(dir, lib)); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies the file src is (following links) to dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// task is one measured thing of one daemon; a run returns its measure.
type task struct {
	daemon, mode string
	run          func() (float64, error)
	values       []float64
	err          error // the first failure; the task is out from then on
}

// rounds runs every task once per round, rotating their order.
func rounds(tasks []*task, n int) {
	for r := range n {
		for i := range tasks {
			t := tasks[(i+r)%len(tasks)]
			if t.err != nil {
				continue
			}
			v, err := t.run()
			if err != nil {
				t.err = err
				continue
			}
			t.values = append(t.values, v)
		}
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func find(tasks []*task, daemon, mode string) *task {
	for _, t := range tasks {
		if t.daemon == daemon && t.mode == mode && t.err == nil && len(t.values) > 0 {
			return t
		}
	}
	return nil
}

// runBench times run --rm true with no network and on the bridge.
func runBench(daemons []daemon, n int) {
	var tasks []*task
	for _, d := range daemons {
		for _, network := range []string{"none", "bridge"} {
			args := []string{"run", "--rm", "--network", network, busyboxImage, "true"}
			t := &task{daemon: d.name, mode: network}
			t.run = func() (float64, error) {
				start := time.Now()
				_, err := d.docker(args...)
				return float64(time.Since(start)) / 1e6, err
			}
			// Untimed first (the first start of anything is slow): the
			// container has the network it was asked for.
			t.err = checkNetwork(d, network)
			tasks = append(tasks, t)
		}
	}
	rounds(tasks, n)
	fmt.Printf("\nrun --rm %s true, %d rounds (ms)\n", busyboxImage, n)
	report(tasks, "ms", "%8.1f")
	fmt.Println()
	// The cost is the median of each round's bridge - none: the two runs
	// of a round are close in time, so the load of the machine (shared,
	// and changing) weighs less than in the difference of the medians.
	cost := map[string]float64{}
	for _, d := range daemons {
		none, bridge := find(tasks, d.name, "none"), find(tasks, d.name, "bridge")
		if none == nil || bridge == nil || len(none.values) != len(bridge.values) {
			continue
		}
		diffs := make([]float64, len(none.values))
		for i := range diffs {
			diffs[i] = bridge.values[i] - none.values[i]
		}
		cost[d.name] = median(diffs)
		fmt.Printf("  %-7s networking adds %6.1f ms a run (median of the rounds' bridge - none; %+.0f%% of none's median)\n", d.name, cost[d.name], 100*cost[d.name]/median(none.values))
	}
	for _, mode := range []string{"none", "bridge"} {
		if dt, bt := find(tasks, "docker", mode), find(tasks, "berth", mode); dt != nil && bt != nil {
			fmt.Printf("  --network %-6s docker/berth = %.2f\n", mode, median(dt.values)/median(bt.values))
		}
	}
	if dc, ok := cost["docker"]; ok {
		if bc, ok := cost["berth"]; ok && bc > 0 {
			fmt.Printf("  networking's cost docker/berth = %.2f\n", dc/bc)
		} else if ok {
			fmt.Println("  networking's cost docker/berth: berth's is lost in the noise (not above 0)")
		}
	}
}

// checkNetwork says whether a container run on network has the
// interfaces it should: none only lo, bridge another one too.
func checkNetwork(d daemon, network string) error {
	out, err := d.docker("run", "--rm", "--network", network, busyboxImage, "cat", "/proc/net/dev")
	if err != nil {
		return err
	}
	var ifaces []string
	for line := range strings.Lines(out) {
		if name, _, ok := strings.Cut(line, ":"); ok {
			ifaces = append(ifaces, strings.TrimSpace(name))
		}
	}
	if !slices.Contains(ifaces, "lo") || (network == "none") != (len(ifaces) == 1) {
		return fmt.Errorf("a container on --network %s has the interfaces %q", network, ifaces)
	}
	return nil
}

// server is one daemon's iperf3 server container.
type server struct {
	d        daemon
	id       string
	ip, gw   string // the container's address and its network's gateway
	finished func()
}

func startServer(d daemon) (*server, error) {
	out, err := d.docker("run", "-d", "-p", publishPort+":"+iperfPort, iperfImage, "iperf3", "-s", "-p", iperfPort)
	if err != nil {
		return nil, err
	}
	s := &server{d: d, id: strings.TrimSpace(out)}
	s.finished = func() { _, _ = d.docker("rm", "-f", s.id) }
	out, err = d.docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.Gateway}}{{end}}", s.id)
	if f := strings.Fields(out); err != nil || len(f) != 2 {
		s.finished()
		return nil, fmt.Errorf("the server container has no address and gateway on a network (%q %v)", strings.TrimSpace(out), err)
	}
	s.ip, s.gw = strings.Fields(out)[0], strings.Fields(out)[1]
	return s, nil
}

// iperfBench measures iperf3 throughput on each daemon's paths.
func iperfBench(daemons []daemon, n, seconds int) error {
	var tasks []*task
	t := fmt.Sprint(seconds)
	for _, d := range daemons {
		s, err := startServer(d)
		if err != nil {
			fmt.Printf("\n%s: no iperf3 server: %v\n", d.name, err)
			continue
		}
		defer s.finished()
		client := func(mode string, cmd func(args ...string) (string, error), args ...string) {
			tasks = append(tasks, &task{daemon: d.name, mode: mode, run: func() (float64, error) {
				return iperf(cmd, args...)
			}})
		}
		client("container to container", d.docker, "run", "--rm", iperfImage, "iperf3", "-J", "-t", t, "-c", s.ip, "-p", iperfPort)
		client("host to -p, 127.0.0.1", d.inNetns, "iperf3", "-J", "-t", t, "-c", "127.0.0.1", "-p", publishPort)
		client("host to -p, gateway", d.inNetns, "iperf3", "-J", "-t", t, "-c", s.gw, "-p", publishPort)
	}
	rounds(tasks, n)
	fmt.Printf("\niperf3 TCP, %d s a run, %d rounds (Gbit/s)\n", seconds, n)
	report(tasks, "Gbit/s", "%8.2f")
	fmt.Println()
	for _, tk := range tasks {
		if tk.daemon != "docker" {
			continue
		}
		if dt, bt := find(tasks, "docker", tk.mode), find(tasks, "berth", tk.mode); dt != nil && bt != nil {
			fmt.Printf("  %-24s berth/docker = %.2f\n", tk.mode, median(bt.values)/median(dt.values))
		}
	}
	return nil
}

// iperf runs an iperf3 client (-J) and returns the received Gbit/s. A
// server just started may not listen yet: refused connections are tried
// again for a few seconds.
func iperf(cmd func(args ...string) (string, error), args ...string) (float64, error) {
	for try := 0; ; try++ {
		out, err := cmd(args...)
		var res struct {
			Error string
			End   struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			}
		}
		if jerr := json.Unmarshal([]byte(out), &res); jerr != nil && err == nil {
			err = fmt.Errorf("iperf3 output: %w: %s", jerr, lastLines(out, 5))
		}
		if res.Error != "" {
			err = errors.Join(err, errors.New(res.Error))
		}
		if err == nil && res.End.SumReceived.BitsPerSecond > 0 {
			return res.End.SumReceived.BitsPerSecond / 1e9, nil
		}
		if err == nil {
			err = fmt.Errorf("iperf3 received nothing: %s", lastLines(out, 5))
		}
		if try == 10 || !strings.Contains(err.Error(), "refused") {
			return 0, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// report prints each task's median, min, max and runs.
func report(tasks []*task, unit, format string) {
	for _, t := range tasks {
		name := t.daemon + ", " + t.mode
		if t.err != nil {
			fmt.Printf("  %-34s FAILED after %d runs: %v\n", name, len(t.values), t.err)
			continue
		}
		if len(t.values) == 0 {
			continue
		}
		fmt.Printf("  %-34s median "+format+" %s  min "+format+"  max "+format+"\n", name, median(t.values), unit, slices.Min(t.values), slices.Max(t.values))
	}
}
