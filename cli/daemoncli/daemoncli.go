// Package daemoncli is `berth daemon`: flags and /etc/berth/daemon.json
// (dockerd's names; a key set by both is an error), listeners, signals and
// the pid file. SIGHUP reloads log-level, debug, labels, default-runtime and
// live-restore; other changed keys are logged as needing a restart.
// SIGTERM/SIGINT stop accepting, end event streams, let in-flight requests
// finish for a few seconds and close the stores. At start the daemon's
// containers are restored (live shims reattached) before the API serves.
// See docs/api.md.
package daemoncli

import (
	"context"
	"errors"
	"fmt"

	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"berth.dev/berth/daemon"
	"berth.dev/berth/daemon/server"
	archiverouter "berth.dev/berth/daemon/server/router/archive"
	containerrouter "berth.dev/berth/daemon/server/router/container"
	imagerouter "berth.dev/berth/daemon/server/router/image"
	networkrouter "berth.dev/berth/daemon/server/router/network"
	systemrouter "berth.dev/berth/daemon/server/router/system"
	volumerouter "berth.dev/berth/daemon/server/router/volume"
	"berth.dev/berth/errdefs"
	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// shutdownGrace is how long in-flight requests may finish at shutdown.
const shutdownGrace = 5 * time.Second

type options struct {
	configFile  string
	cfg         daemon.Config
	tls         bool
	tlsVerify   bool
	liveRestore bool
	// the transfer limits, set in cfg only when given
	maxDownloads, maxUploads int
	icc, ipMasq, iptables    bool
}

// flagKey maps flags to daemon.json keys where the names differ.
func flagKey(flag string) (string, bool) {
	switch flag {
	case "host":
		return "hosts", true
	case "label":
		return "labels", true
	case "registry-mirror":
		return "registry-mirrors", true
	case "insecure-registry":
		return "insecure-registries", true
	}
	return "", false
}

// Command returns the `daemon` command.
func Command() *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:           "daemon [OPTIONS]",
		Short:         "Run the berth daemon (Docker Engine API)",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), cmd.Flags(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.configFile, "config-file", daemon.DefaultConfigFile, "daemon configuration file")
	f.StringArrayVarP(&o.cfg.Hosts, "host", "H", nil, "address to listen on: unix:///path, tcp://host:port, fd:// or fd://NAME (repeatable; default "+daemon.DefaultHost+")")
	f.BoolVar(&o.tls, "tls", false, "use TLS on tcp listeners (implied by --tlsverify)")
	f.BoolVar(&o.tlsVerify, "tlsverify", false, "use TLS and require client certificates signed by --tlscacert")
	f.StringVar(&o.cfg.TLSCACert, "tlscacert", "", "CA that signs client certificates")
	f.StringVar(&o.cfg.TLSCert, "tlscert", "", "server TLS certificate")
	f.StringVar(&o.cfg.TLSKey, "tlskey", "", "server TLS key")
	f.BoolVar(&o.cfg.InsecureTCP, "insecure-tcp", false, "allow tcp:// without TLS (anyone who reaches it is root)")
	f.StringVar(&o.cfg.DataRoot, "data-root", daemon.DefaultDataRoot, "root of persistent state")
	f.StringVar(&o.cfg.ExecRoot, "exec-root", daemon.DefaultExecRoot, "root of runtime state")
	f.StringVarP(&o.cfg.StorageDriver, "storage-driver", "s", "", "graph driver (overlay2, btrfs, vfs; default: what the data root has, else the best that works)")
	f.StringVarP(&o.cfg.LogLevel, "log-level", "l", "info", "log level: debug, info, warn, error, fatal")
	f.BoolVarP(&o.cfg.Debug, "debug", "D", false, "debug logging")
	f.StringVar(&o.cfg.DefaultRuntime, "default-runtime", daemon.DefaultRuntime, "default OCI runtime of containers")
	f.BoolVar(&o.liveRestore, "live-restore", true, "keep containers running while the daemon is down")
	f.StringVarP(&o.cfg.Group, "group", "G", daemon.DefaultGroup, "group owning the unix sockets (mode 0660)")
	f.StringVarP(&o.cfg.Pidfile, "pidfile", "p", "", "write the daemon's pid here")
	f.StringArrayVar(&o.cfg.Labels, "label", nil, "daemon label key=value (repeatable)")
	f.StringArrayVar(&o.cfg.RegistryMirrors, "registry-mirror", nil, "Docker Hub mirror URL (repeatable)")
	f.StringArrayVar(&o.cfg.InsecureRegistries, "insecure-registry", nil, "registry (CIDR or host[:port]) reached without TLS verification (repeatable; 127.0.0.0/8 always is)")
	f.IntVar(&o.maxDownloads, "max-concurrent-downloads", daemon.DefaultMaxConcurrentDownloads, "layers a pull fetches at once")
	f.IntVar(&o.maxUploads, "max-concurrent-uploads", daemon.DefaultMaxConcurrentUploads, "layers a push sends at once")
	f.StringVar(&o.cfg.CertsDir, "certs-dir", "", "per-registry TLS files, as docker's certs.d (default /etc/berth/certs.d)")
	f.StringVarP(&o.cfg.Bridge, "bridge", "b", "", "the default bridge network's bridge (default berth0; \"none\": no default bridge network)")
	f.StringVar(&o.cfg.BIP, "bip", "", "the default bridge's address and prefix, e.g. 172.20.0.1/16 (default: a subnet the host does not route)")
	f.IntVar(&o.cfg.MTU, "mtu", 0, "MTU of the default bridge network (default 1500)")
	f.BoolVar(&o.icc, "icc", true, "let containers on the default bridge talk to each other")
	f.BoolVar(&o.ipMasq, "ip-masq", true, "NAT containers' outbound traffic on the default bridge")
	f.BoolVar(&o.iptables, "iptables", true, "manage packet rules (nftables): NAT, isolation, published ports")
	return cmd
}

// Main runs `berth daemon args...` and returns the exit code.
func Main(args []string) int {
	cmd := Command()
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "berth daemon:", err)
		return 1
	}
	return 0
}

// loadConfig merges the file under the flags; a key set by both is an
// error naming both values, as dockerd's.
func loadConfig(flags *pflag.FlagSet, o *options) (*daemon.Config, error) {
	if o.tls {
		o.cfg.TLS = &o.tls
	}
	if o.tlsVerify {
		o.cfg.TLSVerify = &o.tlsVerify
	}
	o.cfg.LiveRestore = &o.liveRestore
	if flags.Changed("max-concurrent-downloads") {
		o.cfg.MaxConcurrentDownloads = &o.maxDownloads
	}
	for _, b := range []struct {
		name string
		v    *bool
		dst  **bool
	}{{"icc", &o.icc, &o.cfg.ICC}, {"ip-masq", &o.ipMasq, &o.cfg.IPMasq}, {"iptables", &o.iptables, &o.cfg.IPTables}} {
		if flags.Changed(b.name) {
			*b.dst = b.v
		}
	}
	if flags.Changed("max-concurrent-uploads") {
		o.cfg.MaxConcurrentUploads = &o.maxUploads
	}
	file, keys, err := daemon.LoadConfigFile(o.configFile)
	if errors.Is(err, os.ErrNotExist) && !flags.Changed("config-file") {
		file, keys, err = &daemon.Config{}, map[string]any{}, nil
	}
	if err != nil {
		return nil, err
	}
	var conflicts []string
	flags.Visit(func(fl *pflag.Flag) {
		key := fl.Name
		if k, ok := flagKey(key); ok {
			key = k
		}
		if v, ok := keys[key]; ok {
			conflicts = append(conflicts, fmt.Sprintf("%s: (from flag: %s, from file: %v)", key, fl.Value.String(), v))
		}
	})
	if len(conflicts) > 0 {
		sort.Strings(conflicts)
		return nil, errdefs.Invalid("unable to configure the berth daemon with file %s: the following directives are specified both as a flag and in the configuration file: %s",
			o.configFile, strings.Join(conflicts, ", "))
	}
	c := o.cfg
	set := func(key string, apply func()) {
		if _, ok := keys[key]; ok {
			apply()
		}
	}
	set("hosts", func() { c.Hosts = file.Hosts })
	set("tls", func() { c.TLS = file.TLS })
	set("tlsverify", func() { c.TLSVerify = file.TLSVerify })
	set("tlscacert", func() { c.TLSCACert = file.TLSCACert })
	set("tlscert", func() { c.TLSCert = file.TLSCert })
	set("tlskey", func() { c.TLSKey = file.TLSKey })
	set("insecure-tcp", func() { c.InsecureTCP = file.InsecureTCP })
	set("data-root", func() { c.DataRoot = file.DataRoot })
	set("exec-root", func() { c.ExecRoot = file.ExecRoot })
	set("storage-driver", func() { c.StorageDriver = file.StorageDriver })
	set("log-level", func() { c.LogLevel = file.LogLevel })
	set("debug", func() { c.Debug = file.Debug })
	set("default-runtime", func() { c.DefaultRuntime = file.DefaultRuntime })
	set("live-restore", func() { c.LiveRestore = file.LiveRestore })
	set("group", func() { c.Group = file.Group })
	set("pidfile", func() { c.Pidfile = file.Pidfile })
	set("labels", func() { c.Labels = file.Labels })
	set("registry-mirrors", func() { c.RegistryMirrors = file.RegistryMirrors })
	set("insecure-registries", func() { c.InsecureRegistries = file.InsecureRegistries })
	set("max-concurrent-downloads", func() { c.MaxConcurrentDownloads = file.MaxConcurrentDownloads })
	set("max-concurrent-uploads", func() { c.MaxConcurrentUploads = file.MaxConcurrentUploads })
	set("certs-dir", func() { c.CertsDir = file.CertsDir })
	set("bridge", func() { c.Bridge = file.Bridge })
	set("bip", func() { c.BIP = file.BIP })
	set("mtu", func() { c.MTU = file.MTU })
	set("icc", func() { c.ICC = file.ICC })
	set("ip-masq", func() { c.IPMasq = file.IPMasq })
	set("iptables", func() { c.IPTables = file.IPTables })
	if len(c.Hosts) == 0 {
		c.Hosts = []string{daemon.DefaultHost}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func slogLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error", "fatal":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func run(ctx context.Context, flags *pflag.FlagSet, o *options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg, err := loadConfig(flags, o)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(slogLevel(cfg.EffectiveLogLevel()))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if cfg.Pidfile != "" {
		if err := writePidfile(cfg.Pidfile); err != nil {
			return err
		}
		defer os.Remove(cfg.Pidfile)
	}
	d, err := daemon.New(cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := d.Close(); err != nil {
			log.Error("close stores", "error", err)
		}
	}()
	d.RestoreContainers(ctx)

	lo := server.ListenOptions{Group: cfg.Group, GroupRequired: cfg.Group != daemon.DefaultGroup, InsecureTCP: cfg.InsecureTCP, Log: log}
	if cfg.TLSEnabled() {
		if lo.TLS, err = server.TLSConfig(cfg.TLSCACert, cfg.TLSCert, cfg.TLSKey, cfg.Verify()); err != nil {
			return err
		}
	} else if cfg.TLSCert != "" || cfg.TLSCACert != "" {
		log.Warn("TLS certificates given without --tls or --tlsverify; tcp listeners will not use them")
	}
	var ls []net.Listener
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	for _, h := range cfg.Hosts {
		got, err := server.Listen(h, lo)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen on %s: %w", h, err)
		}
		ls = append(ls, got...)
	}

	srv := server.New(server.Config{Version: daemon.Version, MinAPIVersion: daemon.MinAPIVersion, CurrentAPIVersion: daemon.CurrentAPIVersion},
		log, systemrouter.New(d), imagerouter.New(d), containerrouter.New(d), volumerouter.New(d), archiverouter.New(d), networkrouter.New(d))
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ls) }()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyReady)
	log.Info("berth daemon started", "version", daemon.Version, "data-root", cfg.DataRoot, "driver", d.DriverName(), "pid", os.Getpid())

	for {
		select {
		case err := <-serveErr:
			return fmt.Errorf("serve API: %w", err)
		case <-ctx.Done():
			return shutdown(d, srv, log)
		case s := <-sigs:
			if s == syscall.SIGHUP {
				reload(flags, o, d, level, log)
				continue
			}
			log.Info("shutting down", "signal", s.String())
			return shutdown(d, srv, log)
		}
	}
}

func shutdown(d *daemon.Daemon, srv *server.Server, log *slog.Logger) error {
	_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
	// Streams (events) end first so that Shutdown does not wait on them.
	d.Events().Close()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("requests still running at shutdown were cut", "error", err)
	}
	return nil
}

// reload re-reads the configuration on SIGHUP and applies the log level,
// debug, labels, default runtime and live-restore; other changes are logged
// as needing a restart.
func reload(flags *pflag.FlagSet, o *options, d *daemon.Daemon, level *slog.LevelVar, log *slog.Logger) {
	cfg, err := loadConfig(flags, o)
	if err != nil {
		log.Error("reload: configuration not applied", "error", err)
		return
	}
	level.Set(slogLevel(cfg.EffectiveLogLevel()))
	if keys := d.Reload(cfg); len(keys) > 0 {
		log.Warn("reload: these settings changed but need a restart", "keys", strings.Join(keys, ", "))
	}
	log.Info("reloaded configuration", "log-level", cfg.EffectiveLogLevel())
}

// writePidfile refuses to overwrite the pid file of a live process.
func writePidfile(path string) error {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid != os.Getpid() {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				return errdefs.Conflict("pid file %s names running process %d; is a berth daemon running already?", path, pid)
			}
		}
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}
