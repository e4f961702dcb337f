package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"berth.dev/berth/cli/format"
	"berth.dev/berth/client"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
)

func newNetworkCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	cmd.AddCommand(newNetworkCreateCommand(c), newNetworkLsCommand(c), newNetworkInspectCommand(c),
		newNetworkRmCommand(c), newNetworkConnectCommand(c), newNetworkDisconnectCommand(c), newNetworkPruneCommand(c))
	return cmd
}

// networkCreateOptions are network create's flags.
type networkCreateOptions struct {
	driver, ipamDriver        string
	subnets, ranges, gateways []string
	auxAddresses, ipamOpts    mapFlag
	ipv4, ipv6                bool
	internal, attachable      bool
	ingress, configOnly       bool
	scope, configFrom         string
	labels                    listFlag
	opts                      mapFlag
}

func newNetworkCreateCommand(c *CLI) *cobra.Command {
	o := &networkCreateOptions{}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pools, err := ipamPools(o.subnets, o.ranges, o.gateways, o.auxAddresses)
			if err != nil {
				return err
			}
			req := client.NetworkCreateOptions{
				Driver: o.driver, Scope: o.scope, Internal: o.internal, Attachable: o.attachable, Ingress: o.ingress,
				ConfigOnly: o.configOnly, Options: nonNil(o.opts), Labels: kvMapOf(o.labels),
				IPAM: &client.IPAM{Driver: o.ipamDriver, Options: nonNil(o.ipamOpts), Config: pools},
			}
			if cmd.Flags().Changed("ipv4") {
				req.EnableIPv4 = &o.ipv4
			}
			if cmd.Flags().Changed("ipv6") {
				req.EnableIPv6 = &o.ipv6
			}
			if o.configFrom != "" {
				req.ConfigFrom = &network.ConfigReference{Network: o.configFrom}
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.NetworkCreate(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.Out, res.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.driver, "driver", "d", "bridge", "Driver to manage the Network")
	f.VarP(&o.opts, "opt", "o", "Set driver specific options")
	f.Var(&labelFlag{&o.labels}, "label", "Set metadata on a network")
	f.BoolVar(&o.internal, "internal", false, "Restrict external access to the network")
	f.BoolVar(&o.ipv4, "ipv4", true, "Enable or disable IPv4 address assignment")
	f.BoolVar(&o.ipv6, "ipv6", false, "Enable or disable IPv6 address assignment")
	f.BoolVar(&o.attachable, "attachable", false, "Enable manual container attachment")
	f.BoolVar(&o.ingress, "ingress", false, "Create swarm routing-mesh network")
	f.StringVar(&o.scope, "scope", "", "Control the network's scope")
	f.BoolVar(&o.configOnly, "config-only", false, "Create a configuration only network")
	f.StringVar(&o.configFrom, "config-from", "", "The network from which to copy the configuration")
	f.StringVar(&o.ipamDriver, "ipam-driver", "default", "IP Address Management Driver")
	f.StringSliceVar(&o.subnets, "subnet", []string{}, "Subnet in CIDR format that represents a network segment")
	f.StringSliceVar(&o.ranges, "ip-range", []string{}, "Allocate container ip from a sub-range")
	f.StringSliceVar(&o.gateways, "gateway", []string{}, "IPv4 or IPv6 Gateway for the master subnet")
	f.Var(&o.auxAddresses, "aux-address", "Auxiliary IPv4 or IPv6 addresses used by Network driver")
	f.Var(&o.ipamOpts, "ipam-opt", "Set IPAM driver specific options")
	return cmd
}

func nonNil(m mapFlag) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// kvMapOf is labels ("k=v", or "k" for an empty value) as a map, never nil.
func kvMapOf(l []string) map[string]string {
	m := map[string]string{}
	for _, s := range l {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}

// ipamPools groups --subnet, --ip-range, --gateway and --aux-address by
// subnet, checked as docker's CLI checks them (with its words); what it
// leaves unchecked (a lone bad subnet) is the daemon's to refuse.
func ipamPools(subnets, ranges, gateways []string, aux map[string]string) ([]client.IPAMPool, error) {
	if len(subnets) < len(ranges) || len(subnets) < len(gateways) {
		return nil, errors.New("every ip-range or gateway must have a corresponding subnet")
	}
	pools := make([]client.IPAMPool, 0, len(subnets))
	for i, s := range subnets {
		for _, k := range subnets[:i] {
			in1, err := inSubnet(s, k)
			if err != nil {
				return nil, err
			}
			in2, err := inSubnet(k, s)
			if err != nil {
				return nil, err
			}
			if in1 || in2 {
				return nil, errors.New("multiple overlapping subnet configuration is not supported")
			}
		}
		pools = append(pools, client.IPAMPool{Subnet: s, AuxAddress: map[string]string{}})
	}
	for _, r := range ranges {
		match := false
		for i := range pools {
			if _, _, err := net.ParseCIDR(r); err != nil {
				return nil, err
			}
			ok, err := inSubnet(pools[i].Subnet, r)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if pools[i].IPRange != "" {
				return nil, fmt.Errorf("cannot configure multiple ranges (%s, %s) on the same subnet (%s)", r, pools[i].IPRange, pools[i].Subnet)
			}
			pools[i].IPRange, match = r, true
		}
		if !match {
			return nil, fmt.Errorf("no matching subnet for range %s", r)
		}
	}
	for _, g := range gateways {
		match := false
		for i := range pools {
			ok, err := inSubnet(pools[i].Subnet, g)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if pools[i].Gateway != "" {
				return nil, fmt.Errorf("cannot configure multiple gateways (%s, %s) for the same subnet (%s)", g, pools[i].Gateway, pools[i].Subnet)
			}
			pools[i].Gateway, match = g, true
		}
		if !match {
			return nil, fmt.Errorf("no matching subnet for gateway %s", g)
		}
	}
	keys := make([]string, 0, len(aux))
	for k := range aux {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a, match := aux[k], false
		for i := range pools {
			ok, err := inSubnet(pools[i].Subnet, a)
			if err != nil {
				return nil, err
			}
			if ok {
				pools[i].AuxAddress[k], match = a, true
			}
		}
		if !match {
			return nil, fmt.Errorf("no matching subnet for aux-address %s", a)
		}
	}
	return pools, nil
}

// inSubnet says whether the address (or a CIDR's address) is in subnet.
func inSubnet(subnet, addr string) (bool, error) {
	_, n, err := net.ParseCIDR(subnet)
	if err != nil {
		return false, fmt.Errorf("invalid subnet: %w", err)
	}
	var ip net.IP
	if strings.Contains(addr, "/") {
		if ip, _, err = net.ParseCIDR(addr); err != nil {
			return false, err
		}
	} else {
		ip = net.ParseIP(addr)
	}
	return n.Contains(ip), nil
}

func newNetworkLsCommand(c *CLI) *cobra.Command {
	var quiet, noTrunc bool
	var f string
	var filter filterFlag
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.NetworkList(cmd.Context(), client.NetworkListOptions{Filters: filter.f})
			if err != nil {
				return err
			}
			nets := res.Items
			sort.Slice(nets, func(i, j int) bool { return naturalLess(nets[i].Name, nets[j].Name) })
			f = listFormat(f, quiet, "{{.ID}}", "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}")
			w, err := format.NewWriter(c.Out, f, networkRow{}.Headers())
			if err != nil {
				return err
			}
			for _, n := range nets {
				if err := w.Write(networkRow{n: n, trunc: !noTrunc}); err != nil {
					return err
				}
			}
			return w.Flush()
		},
	}
	fl := cmd.Flags()
	fl.VarP(&filter, "filter", "f", `Provide filter values (e.g. "driver=bridge")`)
	fl.StringVar(&f, "format", "", formatHelp)
	fl.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	return cmd
}

// networkRow is one line of `network ls`, with docker's columns.
type networkRow struct {
	n     network.Summary
	trunc bool
}

func (networkRow) Headers() map[string]string {
	return map[string]string{"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
		"IPv4": "IPV4", "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}
}

func (r networkRow) ID() string {
	if r.trunc {
		return format.TruncateID(r.n.ID)
	}
	return r.n.ID
}

func (r networkRow) Name() string      { return r.n.Name }
func (r networkRow) Driver() string    { return r.n.Driver }
func (r networkRow) Scope() string     { return r.n.Scope }
func (r networkRow) IPv4() string      { return strconv.FormatBool(r.n.EnableIPv4) }
func (r networkRow) IPv6() string      { return strconv.FormatBool(r.n.EnableIPv6) }
func (r networkRow) Internal() string  { return strconv.FormatBool(r.n.Internal) }
func (r networkRow) CreatedAt() string { return r.n.Created.String() }

// Labels are in key order (docker's are in its map's order).
func (r networkRow) Labels() string { return strings.Join(sortedPairs(r.n.Labels), ",") }

// Label is one label's value, as in {{.Label "k"}}.
func (r networkRow) Label(name string) string { return r.n.Labels[name] }

func (r networkRow) MarshalJSON() ([]byte, error) { return format.MarshalRow(r) }

func newNetworkInspectCommand(c *CLI) *cobra.Command {
	var f string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return inspectAll(c, f, args, func(ref string) ([]byte, any, error) {
				return inspectNetwork(cmd.Context(), cl, ref, verbose)
			})
		},
	}
	cmd.Flags().StringVarP(&f, "format", "f", "", formatHelpNoTable)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Verbose output for diagnostics")
	return cmd
}

func inspectNetwork(ctx context.Context, cl *client.Client, name string, verbose bool) ([]byte, any, error) {
	res, err := cl.NetworkInspect(ctx, name, client.NetworkInspectOptions{Verbose: verbose})
	if err != nil {
		return nil, nil, err
	}
	var v networkText
	if err := json.Unmarshal(res.Raw, &v); err != nil {
		return nil, nil, err
	}
	return bytes.TrimSpace(res.Raw), v, nil
}

// networkText is a network as templates see it in docker 28: its fields,
// in its order, the addresses as text (moby's netip types print a missing
// address as "invalid IP" where docker prints nothing).
type networkText struct {
	Name       string
	ID         string `json:"Id"`
	Created    time.Time
	Scope      string
	Driver     string
	EnableIPv4 bool
	EnableIPv6 bool
	IPAM       struct {
		Driver  string
		Options map[string]string
		Config  []client.IPAMPool
	}
	Internal   bool
	Attachable bool
	Ingress    bool
	ConfigFrom network.ConfigReference
	ConfigOnly bool
	Containers map[string]struct {
		Name, EndpointID, MacAddress, IPv4Address, IPv6Address string
	}
	Options  map[string]string
	Labels   map[string]string
	Peers    []network.PeerInfo             `json:",omitempty"`
	Services map[string]network.ServiceInfo `json:",omitempty"`
}

// ingressWarning is docker's question before removing a swarm's
// routing-mesh network.
const ingressWarning = "WARNING! Before removing the routing-mesh network, make sure all the nodes in your swarm run the same docker engine version. Otherwise, removal may not be effective and functionality of newly create ingress networks will be impaired.\nAre you sure you want to continue? [y/N] "

func newNetworkRmCommand(c *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			// As docker: each error as it comes, then "exit status 1".
			failed := false
			for _, name := range args {
				res, err := cl.NetworkInspect(cmd.Context(), name, client.NetworkInspectOptions{})
				if err == nil && res.Network.Ingress && !c.confirm(ingressWarning) {
					continue
				}
				if _, err := cl.NetworkRemove(cmd.Context(), name, client.NetworkRemoveOptions{}); err != nil {
					if force && cerrdefs.IsNotFound(err) {
						continue
					}
					fmt.Fprintln(c.Err, err)
					failed = true
					continue
				}
				fmt.Fprintln(c.Out, name)
			}
			if failed {
				return statusError{code: ExitError, err: errors.New("exit status 1")}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}

// linkFlag is --link name[:alias], checked as docker checks it.
type linkFlag struct{ l *listFlag }

func (f *linkFlag) String() string { return f.l.String() }
func (f *linkFlag) Type() string   { return "list" }
func (f *linkFlag) Set(v string) error {
	if v == "" {
		return errors.New("empty string specified for links")
	}
	if strings.Count(v, ":") > 1 {
		return errors.New("bad format for links: " + v)
	}
	return f.l.Set(v)
}

func newNetworkConnectCommand(c *CLI) *cobra.Command {
	var ip, ip6 string
	var links listFlag
	var aliases, linkLocal, driverOpts []string
	var gwPriority int
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := driverOptions(driverOpts)
			if err != nil {
				return err
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			ep := &client.EndpointConfig{
				EndpointSettings: network.EndpointSettings{Links: links, Aliases: aliases, DriverOpts: opts, GwPriority: gwPriority},
				IPAM:             &client.EndpointIPAM{IPv4Address: ip, IPv6Address: ip6, LinkLocalIPs: linkLocal},
			}
			_, err = cl.NetworkConnect(cmd.Context(), args[0], client.NetworkConnectOptions{Container: args[1], EndpointConfig: ep})
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&ip, "ip", "", `IPv4 address (e.g., "172.30.100.104")`)
	f.StringVar(&ip6, "ip6", "", `IPv6 address (e.g., "2001:db8::33")`)
	f.Var(&linkFlag{&links}, "link", "Add link to another container")
	f.StringSliceVar(&aliases, "alias", []string{}, "Add network-scoped alias for the container")
	f.StringSliceVar(&linkLocal, "link-local-ip", []string{}, "Add a link-local address for the container")
	f.StringSliceVar(&driverOpts, "driver-opt", []string{}, "driver options for the network")
	f.IntVar(&gwPriority, "gw-priority", 0, "Highest gw-priority provides the default gateway. Accepts positive and negative values.")
	return cmd
}

// driverOptions is connect's --driver-opt k=v list as a map (never nil).
func driverOptions(l []string) (map[string]string, error) {
	m := map[string]string{}
	for _, s := range l {
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, errors.New("invalid key/value pair format in driver options")
		}
		m[k] = strings.TrimSpace(v)
	}
	return m, nil
}

func newNetworkDisconnectCommand(c *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			_, err = cl.NetworkDisconnect(cmd.Context(), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}

func newNetworkPruneCommand(c *CLI) *cobra.Command {
	var force bool
	var filter filterFlag
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Declined, docker 28 ends quietly with 0.
			if !force && !c.confirm("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ") {
				return nil
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			res, err := cl.NetworksPrune(cmd.Context(), client.NetworkPruneOptions{Filters: filter.f})
			if err != nil {
				return err
			}
			if d := res.Report.NetworksDeleted; len(d) > 0 {
				fmt.Fprintf(c.Out, "Deleted Networks:\n%s\n\n", strings.Join(d, "\n"))
			}
			return nil
		},
	}
	cmd.Flags().Var(&filter, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}
