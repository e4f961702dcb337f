package client

import (
	"context"
	"encoding/json"
	"net/url"

	"github.com/moby/moby/api/types/network"
)

// IPAM is a new network's address management as docker's CLI sends it:
// the addresses as typed, which the daemon judges (its error names a bad
// subnet), where the moby type would need them parsed first.
type IPAM struct {
	Driver  string
	Options map[string]string
	Config  []IPAMPool
}

// IPAMPool is one subnet of a new network, its addresses as text.
type IPAMPool struct {
	Subnet     string            `json:",omitempty"`
	IPRange    string            `json:",omitempty"`
	Gateway    string            `json:",omitempty"`
	AuxAddress map[string]string `json:"AuxiliaryAddresses,omitempty"`
}

// NetworkCreateOptions is the new network.
type NetworkCreateOptions struct {
	Driver     string
	Scope      string
	EnableIPv4 *bool
	EnableIPv6 *bool
	IPAM       *IPAM
	Internal   bool
	Attachable bool
	Ingress    bool
	ConfigOnly bool
	ConfigFrom *network.ConfigReference
	Options    map[string]string
	Labels     map[string]string
}

// NetworkCreateResult is the network made.
type NetworkCreateResult struct {
	ID      string
	Warning string
}

// networkCreateBody is the create request: moby's, with the IPAM as text
// and CheckDuplicate, without which a daemon before API 1.44 makes a
// second network of a name.
type networkCreateBody struct {
	network.CreateRequest
	IPAM           *IPAM
	CheckDuplicate bool `json:",omitempty"`
}

// NetworkCreate creates a network.
func (c *Client) NetworkCreate(ctx context.Context, name string, o NetworkCreateOptions) (NetworkCreateResult, error) {
	body := networkCreateBody{
		CreateRequest: network.CreateRequest{Name: name, Driver: o.Driver, Scope: o.Scope, EnableIPv4: o.EnableIPv4,
			EnableIPv6: o.EnableIPv6, Internal: o.Internal, Attachable: o.Attachable, Ingress: o.Ingress,
			ConfigOnly: o.ConfigOnly, ConfigFrom: o.ConfigFrom, Options: o.Options, Labels: o.Labels},
		IPAM:           o.IPAM,
		CheckDuplicate: versionLess(c.negotiatedVersion(ctx), "1.44"),
	}
	r, err := answer[network.CreateResponse](c.post(ctx, "/networks/create", nil, nil, body))
	return NetworkCreateResult{ID: r.ID, Warning: r.Warning}, err
}

// NetworkListOptions selects networks.
type NetworkListOptions struct{ Filters Filters }

// NetworkListResult is the networks listed.
type NetworkListResult struct{ Items []network.Summary }

// NetworkList lists networks.
func (c *Client) NetworkList(ctx context.Context, o NetworkListOptions) (NetworkListResult, error) {
	q := url.Values{}
	o.Filters.set(q)
	r, err := answer[[]network.Summary](c.get(ctx, "/networks", q))
	return NetworkListResult{Items: r}, err
}

// NetworkInspectOptions: verbose adds a swarm network's services; scope
// picks among networks of a name.
type NetworkInspectOptions struct {
	Verbose bool
	Scope   string
}

// NetworkInspectResult is the decoded network and its raw JSON.
type NetworkInspectResult struct {
	Network network.Inspect
	Raw     json.RawMessage
}

// NetworkInspect inspects a network.
func (c *Client) NetworkInspect(ctx context.Context, name string, o NetworkInspectOptions) (NetworkInspectResult, error) {
	name, err := trimID("network", name)
	if err != nil {
		return NetworkInspectResult{}, err
	}
	q := url.Values{}
	if o.Verbose {
		q.Set("verbose", "true")
	}
	if o.Scope != "" {
		q.Set("scope", o.Scope)
	}
	resp, err := c.get(ctx, "/networks/"+name, q)
	if err != nil {
		return NetworkInspectResult{}, err
	}
	var r NetworkInspectResult
	r.Raw, err = decodeRaw(resp, &r.Network)
	return r, err
}

// NetworkRemoveOptions is empty.
type NetworkRemoveOptions struct{}

// NetworkRemoveResult is empty.
type NetworkRemoveResult struct{}

// NetworkRemove removes a network.
func (c *Client) NetworkRemove(ctx context.Context, name string, _ NetworkRemoveOptions) (NetworkRemoveResult, error) {
	name, err := trimID("network", name)
	if err != nil {
		return NetworkRemoveResult{}, err
	}
	resp, err := c.delete(ctx, "/networks/"+name, nil)
	if err != nil {
		return NetworkRemoveResult{}, err
	}
	closeBody(resp)
	return NetworkRemoveResult{}, nil
}

// EndpointIPAM is the addresses an endpoint asks for, as typed: docker's
// CLI sends them unchecked and the daemon's error names a bad one.
type EndpointIPAM struct {
	IPv4Address  string   `json:",omitempty"`
	IPv6Address  string   `json:",omitempty"`
	LinkLocalIPs []string `json:",omitempty"`
}

// EndpointConfig is an endpoint's settings as a request carries them:
// moby's, the addresses asked for as text (IPAM replaces
// EndpointSettings.IPAMConfig).
type EndpointConfig struct {
	network.EndpointSettings
	IPAM *EndpointIPAM `json:"IPAMConfig"`
}

// NetworkConnectOptions is the container to connect and its endpoint.
type NetworkConnectOptions struct {
	Container      string
	EndpointConfig *EndpointConfig
}

// NetworkConnectResult is empty.
type NetworkConnectResult struct{}

type connectBody struct {
	Container      string
	EndpointConfig *EndpointConfig `json:",omitempty"`
}

// NetworkConnect connects a container to a network.
func (c *Client) NetworkConnect(ctx context.Context, name string, o NetworkConnectOptions) (NetworkConnectResult, error) {
	name, err := trimID("network", name)
	if err != nil {
		return NetworkConnectResult{}, err
	}
	if o.EndpointConfig != nil && len(o.EndpointConfig.MacAddress) > 0 {
		if err := c.requiresVersion(ctx, "1.44", "specify mac-address per network"); err != nil {
			return NetworkConnectResult{}, err
		}
	}
	resp, err := c.post(ctx, "/networks/"+name+"/connect", nil, nil, connectBody(o))
	if err != nil {
		return NetworkConnectResult{}, err
	}
	closeBody(resp)
	return NetworkConnectResult{}, nil
}

// NetworkDisconnectOptions is the container to disconnect; Force
// disconnects it even when the network cannot be found working.
type NetworkDisconnectOptions struct {
	Container string
	Force     bool
}

// NetworkDisconnectResult is empty.
type NetworkDisconnectResult struct{}

// NetworkDisconnect disconnects a container from a network.
func (c *Client) NetworkDisconnect(ctx context.Context, name string, o NetworkDisconnectOptions) (NetworkDisconnectResult, error) {
	name, err := trimID("network", name)
	if err != nil {
		return NetworkDisconnectResult{}, err
	}
	resp, err := c.post(ctx, "/networks/"+name+"/disconnect", nil, nil,
		network.DisconnectRequest{Container: o.Container, Force: o.Force})
	if err != nil {
		return NetworkDisconnectResult{}, err
	}
	closeBody(resp)
	return NetworkDisconnectResult{}, nil
}

// NetworkPruneOptions selects the networks to prune.
type NetworkPruneOptions struct{ Filters Filters }

// NetworkPruneResult is what was removed.
type NetworkPruneResult struct{ Report network.PruneReport }

// NetworksPrune removes unused networks.
func (c *Client) NetworksPrune(ctx context.Context, o NetworkPruneOptions) (NetworkPruneResult, error) {
	rep, err := prune[network.PruneReport](ctx, c, "/networks/prune", o.Filters, "error retrieving network prune report")
	return NetworkPruneResult{Report: rep}, err
}
