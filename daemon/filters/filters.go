// Package filters parses and matches the filters of the Docker Engine API
// (`?filters={"dangling":{"true":true}}`), in both of the wire forms docker
// clients have sent: a map of value sets and, before API 1.22 style, a map of
// value lists.
package filters

import (
	"encoding/json"
	"path"
	"sort"
	"strings"

	"berth.dev/berth/errdefs"
)

// Args is a set of filters: key → set of values.
type Args map[string]map[string]bool

// Parse reads the filters query parameter ("" is no filter).
func Parse(s string) (Args, error) {
	a := Args{}
	if s == "" {
		return a, nil
	}
	var sets map[string]map[string]bool
	if err := json.Unmarshal([]byte(s), &sets); err == nil {
		for k, vs := range sets {
			for v := range vs {
				a.Add(k, v)
			}
		}
		return a, nil
	}
	var lists map[string][]string
	if err := json.Unmarshal([]byte(s), &lists); err != nil {
		return nil, errdefs.Invalid("invalid filter: %v", err)
	}
	for k, vs := range lists {
		for _, v := range vs {
			a.Add(k, v)
		}
	}
	return a, nil
}

// Add adds value v to key k.
func (a Args) Add(k, v string) {
	if a[k] == nil {
		a[k] = map[string]bool{}
	}
	a[k][v] = true
}

// Has reports whether key k is set.
func (a Args) Has(k string) bool { return len(a[k]) > 0 }

// Get returns the values of k, sorted.
func (a Args) Get(k string) []string {
	var out []string
	for v := range a[k] {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// Validate refuses keys outside accepted, with docker's wording.
func (a Args) Validate(accepted ...string) error {
	for k := range a {
		ok := false
		for _, x := range accepted {
			ok = ok || k == x
		}
		if !ok {
			return errdefs.Invalid("invalid filter '%s'", k)
		}
	}
	return nil
}

// Bool reads a boolean filter (true/1, false/0); set is false when k is
// absent.
func (a Args) Bool(k string) (val, set bool, err error) {
	vs := a.Get(k)
	if len(vs) == 0 {
		return false, false, nil
	}
	if len(vs) > 1 {
		return false, false, errdefs.Invalid("filter '%s' takes one value, got %d", k, len(vs))
	}
	switch strings.ToLower(vs[0]) {
	case "true", "1":
		return true, true, nil
	case "false", "0":
		return false, true, nil
	}
	return false, false, errdefs.Invalid("invalid filter '%s=%s'", k, vs[0])
}

// Match reports whether k is unset or one of its values equals v.
func (a Args) Match(k, v string) bool {
	if !a.Has(k) {
		return true
	}
	return a[k][v]
}

// MatchLabels reports whether labels satisfy every "label" filter value
// ("key" needs the key, "key=value" the value too).
func (a Args) MatchLabels(k string, labels map[string]string) bool {
	for f := range a[k] {
		key, want, hasVal := strings.Cut(f, "=")
		got, ok := labels[key]
		if !ok || (hasVal && got != want) {
			return false
		}
	}
	return true
}

// MatchPattern reports whether any value of k matches s as a shell pattern
// (docker's reference filter).
func (a Args) MatchPattern(k, s string) bool {
	for p := range a[k] {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}
