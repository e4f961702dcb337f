package client

import (
	"bytes"
	"encoding"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
)

// texts are values for types that take text (ports, addresses, ...).
var texts = []string{"80/tcp", "53/udp", "8080-8081/tcp", "10.0.0.1", "::1", "fe80::1%eth0", "10.0.0.0/8", "fd00::/64", "02:42:ac:11:00:02", "1"}

// strs hold what encoding/json escapes: quotes, controls, HTML, invalid
// UTF-8, U+2028.
var strs = []string{"", "a", "busybox", "/bin/sh", `q"uo\te`, "<b>&amp;</b>", "tab\tnl\ncr\r\x00\x1f\x7f", "\xff\xfe", "é✓😀", "line\u2028sep\u2029", "ok=1"}

// fill sets about half of v's fields (all kinds, nil and empty slices
// and maps, pointers) to random values.
func fill(r *rand.Rand, v reflect.Value, depth int) {
	t := v.Type()
	if pt := reflect.PointerTo(t); pt.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) && t.Kind() != reflect.Pointer {
		for range 3 {
			if v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(texts[r.IntN(len(texts))])) == nil {
				return
			}
		}
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x := r.Int64N(1<<40) - 1<<39
		if v.OverflowInt(x) {
			x = int64(r.IntN(200) - 100)
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		x := r.Uint64N(1 << 40)
		if v.OverflowUint(x) {
			x = uint64(r.IntN(200))
		}
		v.SetUint(x)
	case reflect.String:
		v.SetString(strs[r.IntN(len(strs))])
	case reflect.Pointer:
		if depth < 8 && r.IntN(3) > 0 {
			v.Set(reflect.New(t.Elem()))
			fill(r, v.Elem(), depth+1)
		}
	case reflect.Slice:
		switch n := r.IntN(5) - 1; {
		case n >= 0 && depth < 8:
			v.Set(reflect.MakeSlice(t, n, n))
			for i := range n {
				fill(r, v.Index(i), depth+1)
			}
		}
	case reflect.Array:
		for i := range v.Len() {
			fill(r, v.Index(i), depth+1)
		}
	case reflect.Map:
		if n := r.IntN(5) - 1; n >= 0 && depth < 8 {
			v.Set(reflect.MakeMap(t))
			for range n {
				k, e := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
				fill(r, k, depth+1)
				fill(r, e, depth+1)
				v.SetMapIndex(k, e)
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if t.Field(i).IsExported() && r.IntN(2) == 0 {
				fill(r, v.Field(i), depth+1)
			}
		}
	case reflect.Interface:
		if r.IntN(2) == 0 {
			v.Set(reflect.ValueOf(strs[r.IntN(len(strs))]))
		}
	}
}

// sameAsJSON checks that marshal gives json.Marshal's bytes; fast says
// whether the walk must have made them itself.
func sameAsJSON(t *testing.T, v any, fast bool) {
	t.Helper()
	want, werr := json.Marshal(v)
	got, err := marshal(v)
	if !bytes.Equal(got, want) || (err == nil) != (werr == nil) {
		t.Fatalf("%#v:\nmarshal %s %v\njson    %s %v", v, got, err, want, werr)
	}
	var e encoder
	if ok := e.value(reflect.ValueOf(v)); ok != fast {
		t.Fatalf("%T: walked %v, want %v", v, ok, fast)
	}
}

// TestMarshalSameAsJSON: the request bodies the client sends, every field
// of them set or not at random, encode as encoding/json encodes them, by
// the walk itself.
func TestMarshalSameAsJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		for _, p := range []any{&container.CreateRequest{}, &container.ExecCreateRequest{}, &container.ExecStartRequest{},
			&container.UpdateConfig{}, &volume.CreateRequest{}, &network.NetworkingConfig{}} {
			fill(r, reflect.ValueOf(p).Elem(), 0)
			sameAsJSON(t, reflect.ValueOf(p).Elem().Interface(), true)
			sameAsJSON(t, p, true)
		}
	}
	sameAsJSON(t, nil, true)
	sameAsJSON(t, (*container.Config)(nil), true)
	sameAsJSON(t, container.CreateRequest{Config: &container.Config{}}, true)
	sameAsJSON(t, map[int]string{3: "c", -1: "a", 20: "b"}, true)
}

type inner struct {
	A, B string
	C    string `json:"X"`
}

type other struct{ A string }

type outer struct {
	inner
	*other
	B     string
	Float float64 `json:",omitempty"`
	Skip  string  `json:"-"`
	//lint:ignore SA5008 a field named "-" is one of encoding/json's rules
	Dash string `json:"-,"`
	Zero inner  `json:",omitzero"`
}

// TestMarshalRules: embedded structs' promotion and conflicts, tags,
// omitempty and omitzero; what the walk leaves to encoding/json (floats,
// []byte, `,string`, Marshalers) still comes out the same.
func TestMarshalRules(t *testing.T) {
	sameAsJSON(t, outer{inner: inner{A: "a", B: "hidden", C: "x"}, B: "b", Skip: "s", Dash: "d"}, true)
	sameAsJSON(t, outer{other: &other{A: "conflict"}, Zero: inner{A: "z"}}, true)
	sameAsJSON(t, outer{Float: 1.5}, false)
	sameAsJSON(t, struct{ B []byte }{[]byte("x")}, false)
	sameAsJSON(t, struct {
		N int `json:",string"`
	}{3}, false)
	sameAsJSON(t, struct{ R json.RawMessage }{json.RawMessage(`{"a": 1}`)}, false)
	sameAsJSON(t, struct{ F func() }{}, false)
}

// FuzzMarshal: any create request encoding/json can decode encodes the
// same both ways.
func FuzzMarshal(f *testing.F) {
	for _, s := range []string{
		`{"Image":"busybox","Cmd":["true"],"HostConfig":{"AutoRemove":true,"NetworkMode":"none"}}`,
		`{"Image":"x","Env":["A=<b>"],"ExposedPorts":{"80/tcp":{}},"Labels":{"k":"v"},"Healthcheck":{"Test":["CMD","true"],"Interval":1000000000}}`,
		`{"HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]},"Mounts":[{"Type":"bind","Source":"/a","Target":"/b","ReadOnly":true}],"Ulimits":[{"Name":"nofile","Soft":1,"Hard":2}],"Memory":1024,"PidsLimit":-1,"Dns":["10.0.0.1"]}}`,
		`{"NetworkingConfig":{"EndpointsConfig":{"n":{"IPAMConfig":{"IPv4Address":"10.0.0.2"},"Aliases":["a"],"MacAddress":"02:42:ac:11:00:02"}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req container.CreateRequest
		if json.Unmarshal(b, &req) != nil {
			return
		}
		want, werr := json.Marshal(req)
		got, err := marshal(req)
		if !bytes.Equal(got, want) || (err == nil) != (werr == nil) {
			t.Fatalf("%s:\nmarshal %s %v\njson    %s %v", b, got, err, want, werr)
		}
	})
}
