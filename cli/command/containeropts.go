package command

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"berth.dev/berth/client"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"
)

// containerOptions are the flags `create` and `run` share, as docker's;
// config turns them into the Engine API's create request.
type containerOptions struct {
	attach, env, envFile, labels, labelFile, volumes, tmpfs    listFlag
	capAdd, capDrop, securityOpt, devices, groupAdd, expose    listFlag
	publish, dns, dnsSearch, dnsOption, addHost, storageOpt    listFlag
	volumesFrom, aliases, links, linkLocalIPs                  listFlag
	networks                                                   networkFlag
	ip, ip6, macAddress                                        string
	mounts                                                     mountsFlag
	ulimits                                                    ulimitFlag
	logOpts, sysctls                                           mapFlag
	interactive, tty, rm, readOnly, init, privileged, noHealth bool
	publishAll, oomKillDisable                                 bool
	entrypoint, hostname, domainname, name, user, workdir      string
	restart, stopSignal, logDriver, platform, pull             string
	cidfile, runtime, cpusetCpus, cpusetMems, ipc, pid, uts    string
	cgroupParent, cgroupns, userns, healthCmd                  string
	quiet                                                      bool
	stopTimeout, oomScoreAdj, healthRetries                    int
	memory, memoryReservation, shmSize                         memBytes
	memorySwap                                                 memSwapBytes
	cpus                                                       nanoCPUs
	cpuShares, cpuQuota, cpuPeriod, pidsLimit                  int64
	blkioWeight                                                uint16
	memorySwappiness                                           int64
	healthInterval, healthTimeout, healthStart, healthStartInt time.Duration
}

// addFlags declares docker's create/run flags on f.
func (o *containerOptions) addFlags(f *pflag.FlagSet) {
	f.SetInterspersed(false)             // the image ends the options; the rest is the command
	f.Bool("help", false, "Print usage") // -h is --hostname, as docker's
	f.VarP(&attachFlag{&o.attach}, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	f.StringVar(&o.cidfile, "cidfile", "", "Write the container ID to the file")
	f.VarP(&envFlag{&o.env}, "env", "e", "Set environment variables")
	f.Var(&o.envFile, "env-file", "Read in a file of environment variables")
	f.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	f.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	f.StringVar(&o.domainname, "domainname", "", "Container NIS domain name")
	f.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	f.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.VarP(&labelFlag{&o.labels}, "label", "l", "Set meta data on a container")
	f.Var(&o.labelFile, "label-file", "Read in a line delimited file of labels")
	f.StringVar(&o.name, "name", "", "Assign a name to the container")
	f.BoolVar(&o.rm, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	f.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	f.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	f.VarP(&o.volumes, "volume", "v", "Bind mount a volume")
	f.Var(&o.mounts, "mount", "Attach a filesystem mount to the container")
	f.Var(&o.tmpfs, "tmpfs", "Mount a tmpfs directory")
	f.Var(&o.volumesFrom, "volumes-from", "Mount volumes from the specified container(s)")
	f.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	f.StringVar(&o.restart, "restart", "no", "Restart policy to apply when a container exits")
	f.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	f.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	f.Var(&o.capAdd, "cap-add", "Add Linux capabilities")
	f.Var(&o.capDrop, "cap-drop", "Drop Linux capabilities")
	f.Var(&o.securityOpt, "security-opt", "Security Options")
	f.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	f.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	f.Var(&o.ulimits, "ulimit", "Ulimit options")
	f.VarP(&o.memory, "memory", "m", "Memory limit")
	f.Var(&o.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	f.Var(&o.memoryReservation, "memory-reservation", "Memory soft limit")
	f.Int64Var(&o.memorySwappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	f.BoolVar(&o.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	f.Var(&o.cpus, "cpus", "Number of CPUs")
	f.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	f.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	f.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	f.Uint16Var(&o.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	f.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	f.Var(&o.devices, "device", "Add a host device to the container")
	f.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container")
	f.Var(&o.logOpts, "log-opt", "Log driver options")
	f.Var(&o.networks, "network", "Connect a container to a network")
	f.Var(&o.networks, "net", "Connect a container to a network")
	_ = f.MarkHidden("net")
	f.Var(&o.aliases, "network-alias", "Add network-scoped alias for the container")
	f.Var(&o.aliases, "net-alias", "Add network-scoped alias for the container")
	_ = f.MarkHidden("net-alias")
	f.StringVar(&o.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	f.StringVar(&o.ip6, "ip6", "", "IPv6 address (e.g., 2001:db8::33)")
	f.Var(&linkFlag{&o.links}, "link", "Add link to another container")
	f.Var(&o.linkLocalIPs, "link-local-ip", "Container IPv4/IPv6 link-local addresses")
	f.StringVar(&o.macAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	f.Var(&dnsFlag{&o.dns}, "dns", "Set custom DNS servers")
	f.Var(&o.dnsSearch, "dns-search", "Set custom DNS search domains")
	f.Var(&o.dnsOption, "dns-option", "Set DNS options")
	f.Var(&o.dnsOption, "dns-opt", "Set DNS options")
	_ = f.MarkHidden("dns-opt")
	f.Var(&addHostFlag{&o.addHost}, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	f.VarP(&o.publish, "publish", "p", "Publish a container's port(s) to the host")
	f.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	f.Var(&o.expose, "expose", "Expose a port or a range of ports")
	f.StringVar(&o.healthCmd, "health-cmd", "", "Command to run to check health")
	f.DurationVar(&o.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	f.DurationVar(&o.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	f.DurationVar(&o.healthStart, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	f.DurationVar(&o.healthStartInt, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	f.IntVar(&o.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	f.BoolVar(&o.noHealth, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")
	f.StringVar(&o.platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	f.StringVar(&o.pull, "pull", "missing", `Pull image before running ("always", "missing", "never")`)
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the pull output")
	f.StringVar(&o.runtime, "runtime", "", "Runtime to use for this container")
	f.Var(&o.shmSize, "shm-size", "Size of /dev/shm")
	f.Var(&o.sysctls, "sysctl", "Sysctl options")
	f.Var(&o.groupAdd, "group-add", "Add additional groups to join")
	f.IntVar(&o.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	f.StringVar(&o.ipc, "ipc", "", "IPC mode to use")
	f.StringVar(&o.pid, "pid", "", "PID namespace to use")
	f.StringVar(&o.uts, "uts", "", "UTS namespace to use")
	f.StringVar(&o.userns, "userns", "", "User namespace to use")
	f.StringVar(&o.cgroupns, "cgroupns", "", `Cgroup namespace to use (host|private)`)
	f.StringVar(&o.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")
	f.Var(&o.storageOpt, "storage-opt", "Storage driver options for the container")
	f.Lookup("memory-swappiness").DefValue = "-1"
}

// createRequest is what config makes: the three bodies of a create.
type createRequest struct {
	config    *container.Config
	host      *container.HostConfig
	endpoints map[string]*client.EndpointConfig // NetworkingConfig's, addresses as text
}

// config maps the options (image and command in args) to a create request,
// as docker's CLI does.
func (o *containerOptions) config(f *pflag.FlagSet, args []string) (*createRequest, error) {
	has := func(s string) bool {
		for _, a := range o.attach {
			if a == s {
				return true
			}
		}
		return false
	}
	attachStdin, attachStdout, attachStderr := has("stdin") || o.interactive, has("stdout"), has("stderr")
	if len(o.attach) == 0 {
		attachStdout, attachStderr = true, true
	}
	env, err := readKVFiles(o.envFile, o.env, true)
	if err != nil {
		return nil, err
	}
	labelList, err := readKVFiles(o.labelFile, o.labels, false)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{}
	for _, l := range labelList {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	restart, err := parseRestartPolicy(o.restart)
	if err != nil {
		return nil, err
	}
	if o.rm && restart.Name != "" && restart.Name != container.RestartPolicyDisabled {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	health, err := o.healthConfig()
	if err != nil {
		return nil, err
	}
	secOpts, err := parseSecurityOpts(o.securityOpt)
	if err != nil {
		return nil, err
	}
	exposed, bindings, err := parsePorts(o.expose, o.publish)
	if err != nil {
		return nil, err
	}
	dns, err := parseAddrs(o.dns)
	if err != nil {
		return nil, err
	}
	if o.macAddress != "" {
		if _, err := net.ParseMAC(strings.TrimSpace(o.macAddress)); err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", o.macAddress)
		}
	}
	endpoints, err := o.endpoints()
	if err != nil {
		return nil, err
	}
	var binds []string
	volumes := map[string]struct{}{}
	for _, v := range o.volumes {
		src, dst, ok := strings.Cut(v, ":")
		if !ok || src == "" {
			volumes[v] = struct{}{} // anonymous: only a path in the container
			continue
		}
		if strings.HasPrefix(src, ".") {
			if abs, err := filepath.Abs(src); err == nil {
				src = abs
			}
		}
		binds = append(binds, src+":"+dst)
	}
	tmpfs := map[string]string{}
	for _, t := range o.tmpfs {
		k, v, _ := strings.Cut(t, ":")
		tmpfs[k] = v
	}
	var devices []container.DeviceMapping
	for _, d := range o.devices {
		m, err := parseDevice(d)
		if err != nil {
			return nil, err
		}
		devices = append(devices, m)
	}
	cfg := &container.Config{
		Hostname:     o.hostname,
		Domainname:   o.domainname,
		User:         o.user,
		AttachStdin:  attachStdin,
		AttachStdout: attachStdout,
		AttachStderr: attachStderr,
		ExposedPorts: exposed,
		Tty:          o.tty,
		OpenStdin:    o.interactive,
		StdinOnce:    o.interactive && attachStdin, // stdin closes when the client goes
		Env:          env,
		Image:        args[0],
		WorkingDir:   o.workdir,
		Labels:       labels,
		StopSignal:   o.stopSignal,
		Healthcheck:  health,
	}
	if len(args) > 1 {
		cfg.Cmd = args[1:]
	}
	if o.entrypoint != "" {
		cfg.Entrypoint = []string{o.entrypoint}
	} else if f.Changed("entrypoint") {
		cfg.Entrypoint = []string{""} // --entrypoint= resets the image's
	}
	if len(volumes) > 0 {
		cfg.Volumes = volumes
	}
	if f.Changed("stop-timeout") {
		cfg.StopTimeout = &o.stopTimeout
	}
	host := &container.HostConfig{
		Binds:           binds,
		ContainerIDFile: o.cidfile,
		LogConfig:       container.LogConfig{Type: o.logDriver, Config: o.logOpts},
		NetworkMode:     container.NetworkMode(o.networks.mode()),
		Links:           o.links,
		PortBindings:    bindings,
		RestartPolicy:   restart,
		AutoRemove:      o.rm,
		CapAdd:          o.capAdd,
		CapDrop:         o.capDrop,
		DNS:             dns,
		DNSSearch:       o.dnsSearch,
		DNSOptions:      o.dnsOption,
		ExtraHosts:      o.addHost,
		GroupAdd:        o.groupAdd,
		IpcMode:         container.IpcMode(o.ipc),
		CgroupnsMode:    container.CgroupnsMode(o.cgroupns),
		OomScoreAdj:     o.oomScoreAdj,
		PidMode:         container.PidMode(o.pid),
		Privileged:      o.privileged,
		PublishAllPorts: o.publishAll,
		ReadonlyRootfs:  o.readOnly,
		SecurityOpt:     secOpts,
		StorageOpt:      kvMap(o.storageOpt),
		Tmpfs:           tmpfs,
		VolumesFrom:     o.volumesFrom,
		UTSMode:         container.UTSMode(o.uts),
		UsernsMode:      container.UsernsMode(o.userns),
		ShmSize:         int64(o.shmSize),
		Sysctls:         o.sysctls,
		Runtime:         o.runtime,
		Mounts:          o.mounts,
		Resources: container.Resources{
			CgroupParent:      o.cgroupParent,
			CPUShares:         o.cpuShares,
			NanoCPUs:          int64(o.cpus),
			CPUPeriod:         o.cpuPeriod,
			CPUQuota:          o.cpuQuota,
			CpusetCpus:        o.cpusetCpus,
			CpusetMems:        o.cpusetMems,
			BlkioWeight:       o.blkioWeight,
			Memory:            int64(o.memory),
			MemoryReservation: int64(o.memoryReservation),
			MemorySwap:        int64(o.memorySwap),
			Devices:           devices,
			Ulimits:           o.ulimits.list(),
		},
	}
	if f.Changed("memory-swappiness") {
		host.MemorySwappiness = &o.memorySwappiness
	}
	if f.Changed("oom-kill-disable") {
		host.OomKillDisable = &o.oomKillDisable
	}
	if f.Changed("pids-limit") {
		host.PidsLimit = &o.pidsLimit
	}
	if f.Changed("init") {
		host.Init = &o.init
	}
	return &createRequest{config: cfg, host: host, endpoints: endpoints}, nil
}

func (o *containerOptions) healthConfig() (*container.HealthConfig, error) {
	have := o.healthCmd != "" || o.healthInterval != 0 || o.healthTimeout != 0 || o.healthStart != 0 ||
		o.healthRetries != 0 || o.healthStartInt != 0
	if o.noHealth {
		if have {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !have {
		return nil, nil
	}
	for _, c := range []struct {
		neg  bool
		name string
	}{{o.healthInterval < 0, "interval"}, {o.healthTimeout < 0, "timeout"}, {o.healthRetries < 0, "retries"},
		{o.healthStart < 0, "start-period"}, {o.healthStartInt < 0, "start-interval"}} {
		if c.neg {
			return nil, fmt.Errorf("--health-%s cannot be negative", c.name)
		}
	}
	h := &container.HealthConfig{Interval: o.healthInterval, Timeout: o.healthTimeout, StartPeriod: o.healthStart,
		StartInterval: o.healthStartInt, Retries: o.healthRetries}
	if o.healthCmd != "" {
		h.Test = []string{"CMD-SHELL", o.healthCmd}
	}
	return h, nil
}

// readKVFiles reads env or label files (KEY=VALUE lines, # comments) and
// puts the flags' own values after them, as docker does. In env files a
// name alone takes its value from the CLI's environment, or is left out.
func readKVFiles(files, values []string, env bool) ([]string, error) {
	var out []string
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimLeft(sc.Text(), " \t")
			if n == 1 {
				line = strings.TrimPrefix(line, "\uFEFF")
			}
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, _, ok := strings.Cut(line, "=")
			if k == "" {
				return nil, fmt.Errorf("no variable name on line '%s'", line)
			}
			if !ok && env {
				v, set := os.LookupEnv(k)
				if !set {
					continue // unlike -e NAME, which is sent bare
				}
				line = k + "=" + v
			}
			out = append(out, line)
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return append(out, values...), nil
}

func kvMap(l []string) map[string]string {
	if len(l) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, s := range l {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}

func parseAddrs(l []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range l {
		a, err := parseIP(s)
		if err != nil {
			return nil, fmt.Errorf("%s is not an ip address", s)
		}
		out = append(out, a)
	}
	return out, nil
}

func parseIP(s string) (netip.Addr, error) { return netip.ParseAddr(strings.Trim(s, "[]")) }

// parseRestartPolicy is docker's: no, always, unless-stopped, on-failure[:N].
func parseRestartPolicy(s string) (container.RestartPolicy, error) {
	if s == "" {
		return container.RestartPolicy{}, nil
	}
	k, v, ok := strings.Cut(s, ":")
	if ok && k == "" {
		return container.RestartPolicy{}, errors.New("invalid restart policy format: no policy provided before colon")
	}
	p := container.RestartPolicy{Name: container.RestartPolicyMode(k)}
	if v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return container.RestartPolicy{}, errors.New("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	return p, nil
}

// parseSecurityOpts checks key=value (or key:value) options; a seccomp
// profile named by a file is sent as its compacted JSON, as docker does.
func parseSecurityOpts(opts []string) ([]string, error) {
	out := make([]string, len(opts))
	for i, opt := range opts {
		out[i] = opt
		k, v, ok := strings.Cut(opt, "=")
		if !ok && k != "no-new-privileges" {
			k, v, ok = strings.Cut(opt, ":")
		}
		if (!ok || v == "") && k != "no-new-privileges" {
			//lint:ignore ST1005 docker's words, shown verbatim
			return nil, fmt.Errorf("Invalid --security-opt: %q", opt)
		}
		if k == "seccomp" && v != "unconfined" && v != "builtin" {
			b, err := os.ReadFile(v)
			if err != nil {
				return nil, fmt.Errorf("opening seccomp profile (%s) failed: %v", v, err)
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, b); err != nil {
				return nil, fmt.Errorf("compacting json for seccomp profile (%s) failed: %v", v, err)
			}
			out[i] = "seccomp=" + buf.String()
		}
	}
	return out, nil
}

// parseDevice is docker's host[:container][:permissions].
func parseDevice(s string) (container.DeviceMapping, error) {
	perms := "rwm"
	var src, dst string
	arr := strings.SplitN(s, ":", 4)
	switch len(arr) {
	case 3:
		perms = arr[2]
		fallthrough
	case 2:
		if validDeviceMode(arr[1]) {
			perms = arr[1]
		} else {
			dst = arr[1]
		}
		fallthrough
	case 1:
		src = arr[0]
	default:
		return container.DeviceMapping{}, fmt.Errorf("invalid device specification: %s", s)
	}
	if dst == "" {
		dst = src
	}
	return container.DeviceMapping{PathOnHost: src, PathInContainer: dst, CgroupPermissions: perms}, nil
}

func validDeviceMode(m string) bool {
	if m == "" || len(m) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range m {
		if (c != 'r' && c != 'w' && c != 'm') || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}
