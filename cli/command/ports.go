package command

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"berth.dev/berth/client"
	"github.com/docker/go-connections/nat"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
)

// parsePorts maps --expose and -p/--publish to exposed ports and bindings
// as docker's CLI does: -p is [ip:][hostPort:]containerPort[/proto] with
// ranges (go-connections' nat, as docker's), or the long form
// target=80,published=8080,protocol=udp, which docker turns into the short
// one (its host_ip and mode unused).
func parsePorts(expose, publish []string) (network.PortSet, network.PortMap, error) {
	specs := make([]string, 0, len(publish))
	for _, p := range publish {
		if !strings.Contains(p, "=") {
			specs = append(specs, p)
			continue
		}
		params := map[string]string{"protocol": "tcp"}
		for _, kv := range strings.Split(p, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, nil, fmt.Errorf("invalid publish opts format (should be name=value but got '%s')", kv)
			}
			params[k] = v
		}
		specs = append(specs, params["published"]+":"+params["target"]+"/"+params["protocol"])
	}
	natPorts, natBindings, err := nat.ParsePortSpecs(specs)
	if err != nil {
		return nil, nil, err
	}
	set := network.PortSet{}
	for p := range natPorts {
		port, err := network.ParsePort(string(p))
		if err != nil {
			return nil, nil, err
		}
		set[port] = struct{}{}
	}
	bindings := network.PortMap{}
	for p, bs := range natBindings {
		port, err := network.ParsePort(string(p))
		if err != nil {
			return nil, nil, err
		}
		out := make([]network.PortBinding, 0, len(bs))
		for _, b := range bs {
			var ip netip.Addr
			if b.HostIP != "" {
				if ip, err = netip.ParseAddr(b.HostIP); err != nil {
					return nil, nil, err
				}
			}
			out = append(out, network.PortBinding{HostIP: ip, HostPort: b.HostPort})
		}
		bindings[port] = out
	}
	for _, e := range expose {
		if strings.Contains(e, ":") {
			return nil, nil, fmt.Errorf("invalid port format for --expose: %s", e)
		}
		first, last, proto, err := exposeRange(e)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid range format for --expose: %s, error: %w", e, err)
		}
		for n := first; n <= last; n++ {
			port, err := network.ParsePort(strconv.FormatUint(n, 10) + "/" + proto)
			if err != nil {
				return nil, nil, err
			}
			set[port] = struct{}{}
		}
	}
	return set, bindings, nil
}

// exposeRange is --expose's port[-port][/proto], its errors strconv's as
// docker 28's (go-connections v0.5) are.
func exposeRange(e string) (first, last uint64, proto string, err error) {
	ports, proto, _ := strings.Cut(e, "/")
	if proto == "" {
		proto = "tcp"
	}
	if ports == "" {
		return 0, 0, "", fmt.Errorf("empty string specified for ports")
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	if first, err = strconv.ParseUint(lo, 10, 16); err != nil {
		return 0, 0, "", err
	}
	last = first
	if isRange {
		if last, err = strconv.ParseUint(hi, 10, 16); err != nil {
			return 0, 0, "", err
		}
		if last < first {
			return 0, 0, "", fmt.Errorf("invalid range specified for port: %s", ports)
		}
	}
	return first, last, proto, nil
}

func newPortCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			var ports network.PortMap
			if ns := res.Container.NetworkSettings; ns != nil {
				ports = ns.Ports
			}
			var out []string
			hostPort := func(b network.PortBinding) string {
				ip := ""
				if b.HostIP.IsValid() {
					ip = b.HostIP.String()
				}
				return net.JoinHostPort(ip, b.HostPort)
			}
			if len(args) == 2 {
				num, proto, _ := strings.Cut(args[1], "/")
				if proto == "" {
					proto = "tcp"
				}
				if _, err := strconv.ParseUint(num, 10, 16); err != nil {
					return fmt.Errorf("Error: invalid port (%s): %w", num, err)
				}
				p, err := network.ParsePort(num + "/" + proto)
				var bs []network.PortBinding
				if err == nil {
					bs = ports[p]
				}
				if len(bs) == 0 {
					return fmt.Errorf("Error: No public port '%s' published for %s", args[1], args[0])
				}
				for _, b := range bs {
					out = append(out, hostPort(b))
				}
			} else {
				for p, bs := range ports {
					for _, b := range bs {
						out = append(out, p.String()+" -> "+hostPort(b))
					}
				}
			}
			sort.Slice(out, func(i, j int) bool { return naturalLess(out[i], out[j]) })
			for _, l := range out {
				fmt.Fprintln(c.Out, l)
			}
			return nil
		},
	}
}
