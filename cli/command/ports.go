package command

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"berth.dev/berth/client"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
)

// parsePorts maps --expose and -p/--publish to exposed ports and bindings
// as docker's CLI does: -p is [ip:][hostPort:]containerPort[/proto] with
// ranges (publishSpec), or the long form
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
	set := network.PortSet{}
	bindings := network.PortMap{}
	for _, spec := range specs {
		if err := publishSpec(spec, set, bindings); err != nil {
			return nil, nil, err
		}
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

// publishSpec adds one -p value, [ip:][hostPort:]containerPort[/proto]
// with port ranges, to the exposed ports and bindings, with docker's
// errors. A single container port with a host range takes any free port
// of the range; ranges on both sides pair up one to one.
func publishSpec(raw string, set network.PortSet, bindings network.PortMap) error {
	var ip, host, ctr string
	switch parts := strings.Split(raw, ":"); len(parts) {
	case 1:
		ctr = parts[0]
	case 2:
		host, ctr = parts[0], parts[1]
	default:
		n := len(parts)
		ip, host, ctr = strings.Join(parts[:n-2], ":"), parts[n-2], parts[n-1]
	}
	ports, proto, _ := strings.Cut(ctr, "/")
	if ports == "" {
		return fmt.Errorf("no port specified: %s<empty>", raw)
	}
	if proto = strings.ToLower(proto); proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return fmt.Errorf("invalid proto: %s", proto)
	}
	if strings.HasPrefix(ip, "[") {
		h, _, err := net.SplitHostPort(ip + ":")
		if err != nil {
			return fmt.Errorf("invalid IP address %v: %w", ip, err)
		}
		ip = h
	}
	var hostIP netip.Addr
	if ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("invalid IP address: %s", ip)
		}
		hostIP = a.Unmap()
	}
	first, last, err := portRange(ports)
	if err != nil {
		return fmt.Errorf("invalid containerPort: %s", ports)
	}
	var hostFirst, hostLast uint64
	if host != "" {
		if hostFirst, hostLast, err = portRange(host); err != nil {
			return fmt.Errorf("invalid hostPort: %s", host)
		}
		if last-first != hostLast-hostFirst && last != first {
			return fmt.Errorf("invalid ranges specified for container and host Ports: %s and %s", ports, host)
		}
	}
	for i := uint64(0); i <= last-first; i++ {
		hp := ""
		if host != "" {
			hp = strconv.FormatUint(hostFirst+i, 10)
			if first == last && hostFirst != hostLast {
				hp += "-" + strconv.FormatUint(hostLast, 10)
			}
		}
		port, err := network.ParsePort(strconv.FormatUint(first+i, 10) + "/" + proto)
		if err != nil {
			return err
		}
		set[port] = struct{}{}
		bindings[port] = append(bindings[port], network.PortBinding{HostIP: hostIP, HostPort: hp})
	}
	return nil
}

// portRange is N or N-M, ports 0 to 65535.
func portRange(s string) (first, last uint64, err error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if first, err = strconv.ParseUint(lo, 10, 16); err != nil {
		return 0, 0, err
	}
	last = first
	if isRange && hi != lo {
		if last, err = strconv.ParseUint(hi, 10, 16); err != nil {
			return 0, 0, err
		}
		if last < first {
			return 0, 0, errReversed
		}
	}
	return first, last, nil
}

var errReversed = errors.New("the range ends before it starts")

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
	if first, last, err = portRange(ports); errors.Is(err, errReversed) {
		return 0, 0, "", fmt.Errorf("invalid range specified for port: %s", ports)
	}
	return first, last, proto, err
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
