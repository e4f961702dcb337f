package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
)

// Dockerd is a docker daemon of Debian's docker.io package on its own
// socket, data root and containerd namespace, for round trips with the real
// docker and for benchmarks beside it. It has no bridge and touches no
// firewall, unless it has a network namespace of its own
// (StartDockerdNetns).
type Dockerd struct {
	cmd  *exec.Cmd
	Host string // for docker -H
	root string
	log  string
	// cgroupsBefore are the docker cgroup parents that were there already.
	cgroupsBefore []string
}

// StartDockerd starts a docker daemon with its state under a new directory
// in parent ("" for the system's temp dir) and waits until it answers.
func StartDockerd(parent string) (*Dockerd, error) { return startDockerd(parent, false) }

// StartDockerdNetns starts a docker daemon as StartDockerd does, but in a
// new network namespace (its loopback up) and with docker's default
// networking: docker0 on 172.17.0.0/16, iptables, NAT, published ports. All
// of it stays in the namespace, which goes when the daemon and its children
// have exited: in the host's namespace dockerd would leave its iptables
// chains behind, in the tables every other daemon and test use. Netns says
// where the namespace is, for nsenter.
func StartDockerdNetns(parent string) (*Dockerd, error) { return startDockerd(parent, true) }

// Netns is the daemon's network namespace (/proc/PID/ns/net).
func (d *Dockerd) Netns() string { return fmt.Sprintf("/proc/%d/ns/net", d.cmd.Process.Pid) }

func startDockerd(parent string, netns bool) (*Dockerd, error) {
	for _, tool := range []string{"dockerd", "docker"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is not installed (apt-get install docker.io): %w", tool, err)
		}
	}
	dir, err := os.MkdirTemp(parent, "berth-dockerd-")
	if err != nil {
		return nil, err
	}
	d := &Dockerd{Host: "unix://" + dir + "/docker.sock", root: dir, log: dir + ".log"}
	d.cgroupsBefore, _ = filepath.Glob("/sys/fs/cgroup/*/docker")
	logf, err := os.Create(d.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	d.cmd = exec.Command("dockerd", "--host", d.Host, "--data-root", dir+"/data", "--exec-root", dir+"/exec",
		"--pidfile", dir+"/dockerd.pid", "--storage-driver", "overlay2",
		"--containerd-namespace", "berth-test", "--containerd-plugins-namespace", "berth-test-plugins")
	if netns {
		d.cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	} else {
		d.cmd.Args = append(d.cmd.Args, "--bridge", "none", "--iptables=false", "--ip6tables=false")
	}
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if netns {
		if out, err := exec.Command("nsenter", "--net="+d.Netns(), "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			d.Stop()
			return nil, fmt.Errorf("loopback up in dockerd's namespace: %v: %s", err, out)
		}
	}
	for i := 0; ; i++ {
		if exec.Command("docker", "-H", d.Host, "version").Run() == nil {
			return d, nil
		}
		if i > 300 {
			b, _ := os.ReadFile(d.log)
			d.Stop()
			return nil, fmt.Errorf("dockerd did not come up in 30s: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Docker runs the docker CLI against this daemon and returns its stdout.
func (d *Dockerd) Docker(args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("docker", append([]string{"-H", d.Host}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// Stop ends the daemon (and the containerd it started) and removes all it
// left: mounts under its root, the root, the cgroup parents it made.
func (d *Dockerd) Stop() error {
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	terminate(d.cmd.Process, done, 30*time.Second)
	mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(d.root))
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mounts[i].Mountpoint, 0)
	}
	after, _ := filepath.Glob("/sys/fs/cgroup/*/docker")
	for _, c := range after {
		if !slices.Contains(d.cgroupsBefore, c) {
			_ = os.Remove(c) // only when empty
		}
	}
	os.Remove(d.log)
	return os.RemoveAll(d.root)
}
