package command_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"berth.dev/berth/internal/testutil"
)

// TestNetworkRequestsSameAsDocker sends run/create's network and port
// flags, network create and network connect with berth and with docker
// through a proxy to dockerd: what each CLI prints, its exit code and the
// request it sent (the networking fields of a create, the whole body of a
// network create or connect) must agree.
func TestNetworkRequestsSameAsDocker(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	d := startDockerd(t)
	rec := newRecorder(t, d.host)
	berth := func(args ...string) result { return run(t, nil, bin, rec.host, args...) }
	docker := func(args ...string) result { return run(t, nil, dockerCLI, rec.host, args...) }
	if r := berth("load", "-i", one); r.code != 0 {
		t.Fatalf("load: %s", r)
	}
	t.Cleanup(func() {
		docker("container", "prune", "-f")
		docker("network", "rm", "un1", "un2")
	})
	for _, args := range [][]string{
		{"network", "create", "--subnet", "10.214.1.0/24", "un1"},
		{"network", "create", "un2"},
	} {
		if r := docker(args...); r.code != 0 {
			t.Fatalf("docker %v: %s", args, r)
		}
	}
	for _, flags := range [][]string{
		{},
		{"-p", "80"},
		{"-p", "8080:80", "-p", "8081:80/udp"},
		{"-p", "8000-8002:80-82"},
		{"-p", "8000-8010:80"},
		{"-p", "8000-8001:80-82"},
		{"-p", "127.0.0.1:8080:80/udp"},
		{"-p", "[::1]:8080:80"},
		{"-p", "::1:8080:80"},
		{"-p", "127.0.0.1::80"},
		{"-p", "0.0.0.0:80"},
		{"-p", "bogus"},
		{"-p", "80/bogus"},
		{"-p", "70000"},
		{"-p", "1.2.3.4.5:80:80"},
		{"-p", "80:80", "-p", "80:80"},
		{"-p", "80/sctp", "-p", "90/UDP"},
		{"-p", "80:80/tcp", "-p", "127.0.0.1:80:80/tcp"},
		{"-p", "target=80,published=8080,protocol=udp"},
		{"-p", "target=80"},
		{"-p", "target=80,published=8080,mode=host,host_ip=1.2.3.4"},
		{"-p", "target=80,bogus"},
		{"--expose", "90-92/udp", "--expose", "7"},
		{"--expose", "bogus"},
		{"--expose", "1:2"},
		{"--expose", "9-7"},
		{"-P", "--expose", "90", "-p", "91"},
		{"--dns", "bogus"},
		{"--dns", "1.1.1.1", "--dns", "::1", "--dns-search", "example.com", "--dns-option", "ndots:2", "--dns-opt", "rotate"},
		{"--add-host", "a:1.2.3.4", "--add-host", "b=::1", "--add-host", "c=[::2]", "--add-host", "d:host-gateway"},
		{"--add-host", "bogus"},
		{"--add-host", "a:bogus"},
		{"--ip", "bogus"},
		{"--ip", "10.214.1.9"},
		{"--network", "un1", "--ip", "10.214.1.9", "--ip6", "fd00::9", "--network-alias", "a1", "--link", "x:y", "--link-local-ip", "169.254.9.9"},
		{"--network", "un1", "--network", "un2"},
		{"--network", "name=un1,alias=x,ip=10.214.1.10", "--network", "un2"},
		{"--network", "NAME=Un1,ALIAS=Foo"},
		{"--network", "name=un1,driver-opt=a=b,gw-priority=3,link-local-ip=169.254.1.1"},
		{"--network", "name=un1,gw-priority=x"},
		{"--network", "name=un1,driver-opt=bad"},
		{"--network", "name=un1,bogus=1"},
		{"--network", "name=,alias=x"},
		{"--network", "name=un1,alias=x", "--network-alias", "y"},
		{"--network", "name=un1,ip=1.2.3.4", "--ip", "1.2.3.5"},
		{"--network", "un1", "--network-alias", "a", "--network-alias", "b", "--link", "c:d"},
		{"--net-alias", "x", "--net", "un1"},
		{"--network", "un1", "--ip6", "bogus"},
		{"--network", "un1", "--link-local-ip", "bogus"},
		{"--network", "host", "--network", "un1"},
		{"--network", "un1", "--network", "un1"},
		{"--network", "none", "--ip", "1.2.3.4"},
		{"--network", "container:abc"},
		{"--network", "host"},
		{"--network-alias", "foo"},
		{"--link", "x:y"},
		{"--link", "bad:a:b"},
		{"--mac-address", "bogus"},
		{"--mac-address", "02:42:ac:11:00:02"},
		{"--network", "name=un1,mac-address=02:42:ac:11:00:03"},
	} {
		args := append(append([]string{"create"}, flags...), "berthtest/one:v1", "true")
		b := berth(args...)
		bb := rec.take("/containers/create")
		k := docker(args...)
		kb := rec.take("/containers/create")
		if same(b.out) != same(k.out) || b.code != k.code || normalize(endpointList(b.err)) != normalize(endpointList(k.err)) {
			t.Errorf("%s: berth and docker differ\nberth: %s\ndocker: %s", strings.Join(args, " "), b, k)
		}
		if (len(bb) == 0) != (len(kb) == 0) {
			t.Errorf("%s: berth sent %d creates, docker %d", strings.Join(args, " "), len(bb), len(kb))
			continue
		}
		if len(bb) > 0 {
			if g, w := networkFields(t, bb[len(bb)-1]), networkFields(t, kb[len(kb)-1]); !reflect.DeepEqual(g, w) {
				t.Errorf("%s: berth sent\n%s\ndocker sent\n%s", strings.Join(args, " "), mustJSON(g), mustJSON(w))
			}
		}
	}

	// network create and connect: the whole request (each CLI's network
	// has its own name).
	for _, pair := range [][2][]string{
		{{"network", "create", "qa"}, {"network", "create", "qb"}},
		{{"network", "create", "--subnet", "10.214.2.0/24", "--gateway", "10.214.2.1", "--ip-range", "10.214.2.0/25",
			"--aux-address", "a=10.214.2.5", "--aux-address", "b=10.214.2.6", "--label", "x=y", "--label", "z", "-o", "k=v",
			"--ipam-opt", "q=r", "--ipam-driver", "default", "--internal", "--attachable", "--ipv4=false", "--ipv6", "--scope", "local", "qa"},
			{"network", "create", "--subnet", "10.214.2.0/24", "--gateway", "10.214.2.1", "--ip-range", "10.214.2.0/25",
				"--aux-address", "a=10.214.2.5", "--aux-address", "b=10.214.2.6", "--label", "x=y", "--label", "z", "-o", "k=v",
				"--ipam-opt", "q=r", "--ipam-driver", "default", "--internal", "--attachable", "--ipv4=false", "--ipv6", "--scope", "local", "qb"}},
		{{"network", "create", "--config-only", "--subnet", "10.214.3.0/24,10.214.4.0/24", "qa"},
			{"network", "create", "--config-only", "--subnet", "10.214.3.0/24,10.214.4.0/24", "qb"}},
		{{"network", "create", "--config-from", "nosuch", "--ingress", "-d", "overlay", "qa"},
			{"network", "create", "--config-from", "nosuch", "--ingress", "-d", "overlay", "qb"}},
		{{"network", "create", "--subnet", "bogus", "qa"}, {"network", "create", "--subnet", "bogus", "qb"}},
	} {
		b := berth(pair[0]...)
		bb := rec.take("/networks/create")
		k := docker(pair[1]...)
		kb := rec.take("/networks/create")
		docker("network", "rm", "qa", "qb")
		rec.take("")
		if same(b.out) != same(k.out) || b.code != k.code || normalize(same(b.err)) != normalize(same(k.err)) {
			t.Errorf("%v: berth and docker differ\nberth: %s\ndocker: %s", pair[0], b, k)
		}
		if (len(bb) == 0) != (len(kb) == 0) {
			t.Errorf("%v: berth sent %d network creates, docker %d", pair[0], len(bb), len(kb))
			continue
		}
		if len(bb) > 0 {
			gb, wb := last(bb), last(kb)
			if g, w := sortedPools(jsonValue(t, strings.Replace(gb, `"qa"`, `"qb"`, 1))), sortedPools(jsonValue(t, wb)); !reflect.DeepEqual(g, w) {
				t.Errorf("%v: berth sent\n%s\ndocker sent\n%s", pair[0], gb, wb)
			}
		}
	}
	for _, args := range [][]string{
		{"network", "connect", "un1", "nosuch"},
		{"network", "connect", "--ip", "10.214.1.20", "--ip6", "fd00::20", "--alias", "a,b", "--alias", "c", "--link", "x:y",
			"--link-local-ip", "169.254.2.2", "--driver-opt", "k=v", "--gw-priority", "5", "un1", "nosuch"},
		{"network", "connect", "--ip", "bogus", "un1", "nosuch"},
		{"network", "disconnect", "un1", "nosuch"},
		{"network", "disconnect", "-f", "un1", "nosuch"},
	} {
		b := berth(args...)
		bb := rec.take("connect")
		k := docker(args...)
		kb := rec.take("connect")
		if b.out != k.out || b.code != k.code || normalize(b.err) != normalize(k.err) {
			t.Errorf("%s: berth and docker differ\nberth: %s\ndocker: %s", strings.Join(args, " "), b, k)
		}
		if len(bb) == 0 || len(kb) == 0 {
			t.Errorf("%s: berth sent %d requests, docker %d", strings.Join(args, " "), len(bb), len(kb))
			continue
		}
		if g, w := jsonValue(t, last(bb)), jsonValue(t, last(kb)); !reflect.DeepEqual(g, w) {
			t.Errorf("%s: berth sent\n%s\ndocker sent\n%s", strings.Join(args, " "), last(bb), last(kb))
		}
	}
}

// last is the request that counted: a client may send one first at a
// version the daemon refuses.
func last(l []string) string { return l[len(l)-1] }

// endpointList sorts the networks dockerd names (in its map's order) when
// it refuses a container several.
func endpointList(s string) string {
	return endpointsRE.ReplaceAllStringFunc(s, func(m string) string {
		l := strings.Split(strings.TrimPrefix(m, "network endpoints: "), ", ")
		sort.Strings(l)
		return "network endpoints: " + strings.Join(l, ", ")
	})
}

var endpointsRE = regexp.MustCompile(`network endpoints: [^\n]*`)

// sortedPools orders a network create's IPAM pools by subnet: docker's CLI
// sends them in its map's order.
func sortedPools(v any) any {
	m, _ := v.(map[string]any)
	ipam, _ := m["IPAM"].(map[string]any)
	if pools, ok := ipam["Config"].([]any); ok {
		sort.Slice(pools, func(i, j int) bool { return fmt.Sprint(pools[i]) < fmt.Sprint(pools[j]) })
	}
	return v
}

// same makes object IDs alike.
func same(s string) string { return hexIDs.ReplaceAllString(s, "ID") }

func jsonValue(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("request body %q: %v", s, err)
	}
	return v
}

func mustJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// networkFields are a create request's networking fields, empty values
// (null, "", 0, false, [], {}) left out of objects but kept as a map's
// entries (an exposed port is an empty object).
func networkFields(t *testing.T, body string) map[string]any {
	t.Helper()
	m, _ := jsonValue(t, body).(map[string]any)
	hc, _ := m["HostConfig"].(map[string]any)
	out := map[string]any{"ExposedPorts": m["ExposedPorts"], "NetworkingConfig": m["NetworkingConfig"], "MacAddress": m["MacAddress"]}
	for _, k := range []string{"PortBindings", "PublishAllPorts", "NetworkMode", "Links", "Dns", "DnsSearch", "DnsOptions", "ExtraHosts"} {
		out[k] = hc[k]
	}
	return pruneEmpty(out, false).(map[string]any)
}

// mapKeys are the objects whose entries are a map's, kept when empty.
var mapKeys = map[string]bool{"ExposedPorts": true, "PortBindings": true, "EndpointsConfig": true, "DriverOpts": true}

func pruneEmpty(v any, isMap bool) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			e = pruneEmpty(e, mapKeys[k])
			if isMap || !empty(e) {
				out[k] = e
			}
		}
		return out
	case []any:
		for i := range x {
			x[i] = pruneEmpty(x[i], false)
		}
	}
	return v
}

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case float64:
		return x == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}
