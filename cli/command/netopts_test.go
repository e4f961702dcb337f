package command

import (
	"encoding/json"
	"strings"
	"testing"

	"berth.dev/berth/client"
)

// TestNetworkEndpoints: run/create's network flags make the endpoints
// docker 28's CLI sends (seen through a proxy to dockerd; the comparison
// with docker itself is TestNetworkRequestsSameAsDocker).
func TestNetworkEndpoints(t *testing.T) {
	for _, c := range []struct {
		args       string
		mode, want string // want: the endpoints' JSON, or the error
	}{
		{"", "default", `{"default":{}}`},
		{"--ip 10.1.1.1", "default", `{"default":{"IPAMConfig":{"IPv4Address":"10.1.1.1"}}}`},
		{"--ip bogus", "default", `{"default":{"IPAMConfig":{"IPv4Address":"bogus"}}}`},
		{"--network n1", "n1", `{}`},
		{"--network n1 --network n2", "n1", `{"n1":{},"n2":{}}`},
		{"--network NAME=N1,ALIAS=Foo", "n1", `{"n1":{"Aliases":["foo"]}}`},
		{"--network n1 --network-alias a --link c:d --ip6 fd00::1 --link-local-ip 169.254.1.1", "n1",
			`{"n1":{"Aliases":["a"],"IPAMConfig":{"IPv6Address":"fd00::1","LinkLocalIPs":["169.254.1.1"]},"Links":["c:d"]}}`},
		{"--network name=n1,driver-opt=a=b,gw-priority=3 --network n2", "n1", `{"n1":{"DriverOpts":{"a":"b"},"GwPriority":3},"n2":{}}`},
		{"--mac-address 02:42:AC:11:00:02", "default", `{"default":{"MacAddress":"02:42:ac:11:00:02"}}`},
		{"--link x:y", "default", `{"default":{}}`},
		{"--network container:abc", "container:abc", `{}`},
		{"--network-alias foo", "", "network-scoped aliases are only supported for user-defined networks"},
		{"--network host --network n1", "", "conflicting options: cannot attach both user-defined and non-user-defined network-modes"},
		{"--network n1 --network n1", "", `network "n1" is specified multiple times`},
		{"--network name=n1,alias=x --network-alias y", "", "conflicting options: cannot specify both --network-alias and per-network alias"},
		{"--network name=n1,ip=1.2.3.4 --ip 1.2.3.5", "", "conflicting options: cannot specify both --ip and per-network IPv4 address"},
		{"--mac-address bogus", "", "bogus is not a valid mac address"},
		{"--network name=n1,gw-priority=x", "", `invalid argument "name=n1,gw-priority=x" for "--network" flag: invalid gw-priority (x): invalid syntax`},
		{"--network name=n1,bogus=1", "", `invalid argument "name=n1,bogus=1" for "--network" flag: invalid field key bogus`},
		{"--network name=,alias=x", "", `invalid argument "name=,alias=x" for "--network" flag: network name/id is not specified`},
		{"--link a:b:c", "", `invalid argument "a:b:c" for "--link" flag: bad format for links: a:b:c`},
	} {
		req, err := parseRun(t, append(strings.Fields(c.args), "img")...)
		if err != nil {
			if err.Error() != c.want {
				t.Errorf("%s: error %q, want %q", c.args, err, c.want)
			}
			continue
		}
		if c.mode == "" {
			t.Errorf("%s: no error, want %q", c.args, c.want)
			continue
		}
		got := compactEndpoints(t, req.endpoints)
		if got != c.want || string(req.host.NetworkMode) != c.mode {
			t.Errorf("%s: mode %s, endpoints %s; want %s, %s", c.args, req.host.NetworkMode, got, c.mode, c.want)
		}
	}
}

// compactEndpoints is the endpoints' JSON with empty fields left out.
func compactEndpoints(t *testing.T, eps map[string]*client.EndpointConfig) string {
	t.Helper()
	out := map[string]map[string]any{}
	for name, ep := range eps {
		b, err := json.Marshal(ep)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range m {
			switch x := v.(type) {
			case nil:
				delete(m, k)
			case string:
				if x == "" {
					delete(m, k)
				}
			case float64:
				if x == 0 {
					delete(m, k)
				}
			}
		}
		out[name] = m
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// TestIPAMPools: network create's address flags grouped and checked with
// docker's words.
func TestIPAMPools(t *testing.T) {
	for _, c := range []struct {
		subnets, ranges, gateways []string
		aux                       map[string]string
		want                      string
	}{
		{nil, nil, nil, nil, `[]`},
		{[]string{"bogus"}, nil, nil, nil, `[{"Subnet":"bogus"}]`},
		{[]string{"10.1.0.0/24", "10.2.0.0/24"}, []string{"10.2.0.128/25"}, []string{"10.1.0.1"}, map[string]string{"a": "10.2.0.5"},
			`[{"Subnet":"10.1.0.0/24","Gateway":"10.1.0.1"},{"Subnet":"10.2.0.0/24","IPRange":"10.2.0.128/25","AuxiliaryAddresses":{"a":"10.2.0.5"}}]`},
		{nil, nil, []string{"10.1.1.1"}, nil, "every ip-range or gateway must have a corresponding subnet"},
		{[]string{"10.1.0.0/24"}, nil, []string{"10.2.0.1"}, nil, "no matching subnet for gateway 10.2.0.1"},
		{[]string{"10.1.0.0/24"}, nil, []string{"bogus"}, nil, "no matching subnet for gateway bogus"},
		{[]string{"10.1.0.0/24"}, []string{"bogus"}, nil, nil, "invalid CIDR address: bogus"},
		{[]string{"10.1.0.0/24"}, []string{"10.2.0.0/25"}, nil, nil, "no matching subnet for range 10.2.0.0/25"},
		{[]string{"bogus"}, nil, []string{"10.0.0.1"}, nil, "invalid subnet: invalid CIDR address: bogus"},
		{[]string{"10.1.0.0/24", "bogus"}, nil, nil, nil, "invalid subnet: invalid CIDR address: bogus"},
		{[]string{"10.1.0.0/24", "10.1.0.0/16"}, nil, nil, nil, "multiple overlapping subnet configuration is not supported"},
		{[]string{"10.1.0.0/24", "10.2.0.0/24"}, nil, []string{"10.1.0.1", "10.1.0.2"}, nil,
			"cannot configure multiple gateways (10.1.0.2, 10.1.0.1) for the same subnet (10.1.0.0/24)"},
		{[]string{"10.1.0.0/24"}, nil, nil, map[string]string{"bogus": ""}, "no matching subnet for aux-address "},
	} {
		pools, err := ipamPools(c.subnets, c.ranges, c.gateways, c.aux)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			b, _ := json.Marshal(pools)
			got = string(b)
		}
		if got != c.want {
			t.Errorf("%v %v %v %v: %s, want %s", c.subnets, c.ranges, c.gateways, c.aux, got, c.want)
		}
	}
}
