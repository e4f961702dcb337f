package command

import (
	"fmt"
	"io"
	"sort"
	"strings"

	units "github.com/docker/go-units"
)

// printInfo prints info as docker does, section for section; warnings go
// to errw.
func printInfo(w, errw io.Writer, d infoData) {
	fmt.Fprintf(w, "Client:\n Version:    %s\n Context:    %s\n Debug Mode: %v\n\nServer:\n", d.ClientInfo.Version, d.ClientInfo.Context, d.ClientInfo.Debug)
	if d.Info == nil {
		for _, e := range d.ServerErrors {
			fmt.Fprintf(w, "ERROR: %s\n", e)
		}
		return
	}
	i := d.Info
	p := func(k string, v any) { fmt.Fprintf(w, " %s: %v\n", k, v) }
	nonEmpty := func(k, v string) {
		if v != "" {
			p(k, v)
		}
	}
	p("Containers", i.Containers)
	fmt.Fprintf(w, "  Running: %d\n  Paused: %d\n  Stopped: %d\n", i.ContainersRunning, i.ContainersPaused, i.ContainersStopped)
	p("Images", i.Images)
	p("Server Version", i.ServerVersion)
	p("Storage Driver", i.Driver)
	for _, kv := range i.DriverStatus {
		fmt.Fprintf(w, "  %s: %s\n", kv[0], kv[1])
	}
	p("Logging Driver", i.LoggingDriver)
	p("Cgroup Driver", i.CgroupDriver)
	nonEmpty("Cgroup Version", i.CgroupVersion)
	fmt.Fprintln(w, " Plugins:")
	fmt.Fprintln(w, "  Volume:", strings.Join(i.Plugins.Volume, " "))
	fmt.Fprintln(w, "  Network:", strings.Join(i.Plugins.Network, " "))
	if len(i.Plugins.Authorization) > 0 {
		fmt.Fprintln(w, "  Authorization:", strings.Join(i.Plugins.Authorization, " "))
	}
	fmt.Fprintln(w, "  Log:", strings.Join(i.Plugins.Log, " "))
	if len(i.CDISpecDirs) > 0 {
		fmt.Fprintln(w, " CDI spec directories:")
		for _, dir := range i.CDISpecDirs {
			fmt.Fprintf(w, "  %s\n", dir)
		}
	}
	p("Swarm", i.Swarm.LocalNodeState)
	if len(i.Runtimes) > 0 {
		names := make([]string, 0, len(i.Runtimes))
		for n := range i.Runtimes {
			names = append(names, n)
		}
		sort.Strings(names)
		p("Runtimes", strings.Join(names, " "))
	}
	p("Default Runtime", i.DefaultRuntime)
	p("Init Binary", i.InitBinary)
	commit := func(k, id, expected string) {
		fmt.Fprintf(w, " %s: %s", k, id)
		if expected != "" && expected != id {
			fmt.Fprintf(w, " (expected: %s)", expected)
		}
		fmt.Fprintln(w)
	}
	commit("containerd version", i.ContainerdCommit.ID, "")
	commit("runc version", i.RuncCommit.ID, "")
	commit("init version", i.InitCommit.ID, "")
	if len(i.SecurityOptions) > 0 {
		fmt.Fprintln(w, " Security Options:")
		for _, opt := range i.SecurityOptions {
			printSecurityOption(w, opt)
		}
	}
	p("Kernel Version", i.KernelVersion)
	p("Operating System", i.OperatingSystem)
	p("OSType", i.OSType)
	p("Architecture", i.Architecture)
	p("CPUs", i.NCPU)
	p("Total Memory", units.BytesSize(float64(i.MemTotal)))
	p("Name", i.Name)
	p("ID", i.ID)
	p("Docker Root Dir", i.DockerRootDir)
	p("Debug Mode", i.Debug)
	if i.Debug {
		p("File Descriptors", i.NFd)
		p("Goroutines", i.NGoroutines)
		p("System Time", i.SystemTime)
		p("EventsListeners", i.NEventsListener)
	}
	nonEmpty("HTTP Proxy", i.HTTPProxy)
	nonEmpty("HTTPS Proxy", i.HTTPSProxy)
	nonEmpty("No Proxy", i.NoProxy)
	if len(i.Labels) > 0 {
		fmt.Fprintln(w, " Labels:")
		for _, l := range i.Labels {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	p("Experimental", i.ExperimentalBuild)
	if rc := i.RegistryConfig; rc != nil {
		var insecure []string
		for _, c := range rc.InsecureRegistryCIDRs {
			insecure = append(insecure, c.String())
		}
		for _, idx := range rc.IndexConfigs {
			if !idx.Secure {
				insecure = append(insecure, idx.Name)
			}
		}
		if len(insecure) > 0 {
			fmt.Fprintln(w, " Insecure Registries:")
			for _, r := range insecure {
				fmt.Fprintf(w, "  %s\n", r)
			}
		}
		if len(rc.Mirrors) > 0 {
			fmt.Fprintln(w, " Registry Mirrors:")
			for _, m := range rc.Mirrors {
				fmt.Fprintf(w, "  %s\n", m)
			}
		}
	}
	p("Live Restore Enabled", i.LiveRestoreEnabled)
	nonEmpty("Product License", i.ProductLicense)
	fmt.Fprintln(w)
	for _, warn := range i.Warnings {
		fmt.Fprintln(errw, warn)
	}
}

// printSecurityOption prints "name=seccomp,profile=builtin" as docker:
// the name, then its settings indented, keys capitalised.
func printSecurityOption(w io.Writer, opt string) {
	name := opt
	var kvs [][2]string
	if strings.HasPrefix(opt, "name=") {
		name = ""
		for _, field := range strings.Split(opt, ",") {
			k, v, _ := strings.Cut(field, "=")
			if k == "name" {
				name = v
				continue
			}
			kvs = append(kvs, [2]string{k, v})
		}
	}
	fmt.Fprintf(w, "  %s\n", name)
	for _, kv := range kvs {
		k := kv[0]
		if k != "" {
			k = strings.ToUpper(k[:1]) + k[1:]
		}
		fmt.Fprintf(w, "   %s: %s\n", k, kv[1])
	}
}
