// Package specjson decodes an OCI runtime spec (config.json) without
// reflection. encoding/json's first decode of a specs.Spec in a process
// builds codecs for every type the spec reaches, ~0.45 ms, paid by every
// `berth runtime create` and every shim: most of the decode. This one
// knows the types by heart.
//
// It takes the plain form only: every key spelt as the spec spells it,
// each once per object, no null, integers as integer literals, valid
// UTF-8, and only the fields a Linux container uses. Decode reports false
// on anything else, and the caller decodes with encoding/json, whose
// result (or error) is then the answer. Where Decode reports true, its
// result equals encoding/json's (the fuzz test holds it to that).
package specjson

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// dec walks the input; the first thing it cannot take sets bad, after
// which every method returns zero values at once.
type dec struct {
	b   []byte
	i   int
	bad bool
}

func (d *dec) fail() { d.bad = true }

func (d *dec) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte (0 at the end).
func (d *dec) next() byte {
	d.ws()
	if d.bad || d.i >= len(d.b) {
		return 0
	}
	return d.b[d.i]
}

func (d *dec) expect(c byte) {
	if d.next() != c {
		d.fail()
		return
	}
	d.i++
}

// object calls field for each key of an object, which must decode the
// key's value; a key seen twice or refused by field fails the decode.
func (d *dec) object(field func(key string) bool) {
	d.expect('{')
	if d.next() == '}' {
		d.i++
		return
	}
	var seen []string
	for !d.bad {
		key := d.str()
		for _, k := range seen {
			if k == key {
				d.fail()
				return
			}
		}
		seen = append(seen, key)
		d.expect(':')
		if d.bad || !field(key) {
			d.fail()
			return
		}
		switch d.next() {
		case ',':
			d.i++
		case '}':
			d.i++
			return
		default:
			d.fail()
		}
	}
}

// array calls elem for each element of an array; elem decodes it.
func (d *dec) array(elem func()) {
	d.expect('[')
	if d.next() == ']' {
		d.i++
		return
	}
	for !d.bad {
		elem()
		switch d.next() {
		case ',':
			d.i++
		case ']':
			d.i++
			return
		default:
			d.fail()
		}
	}
}

func (d *dec) str() string {
	if d.next() != '"' {
		d.fail()
		return ""
	}
	d.i++
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := string(d.b[start:d.i])
			d.i++
			return s
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			d.fail()
			return ""
		}
		d.i++
	}
	d.fail()
	return ""
}

// escaped finishes a string that has escapes, from its start.
func (d *dec) escaped(start int) string {
	out := append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(out)
		case c < 0x20:
			d.fail()
			return ""
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.b) {
			break
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := d.hex4()
			if utf16.IsSurrogate(r) {
				// A pair, or U+FFFD for a lone half, as encoding/json does.
				r2 := rune(-1)
				if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					save := d.i
					d.i += 2
					r2 = d.hex4()
					if utf16.DecodeRune(r, r2) == utf8.RuneError {
						d.i, r2 = save, -1
					}
				}
				if r2 < 0 {
					r = utf8.RuneError
				} else {
					r = utf16.DecodeRune(r, r2)
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			d.fail()
			return ""
		}
		if d.bad {
			return ""
		}
	}
	d.fail()
	return ""
}

func (d *dec) hex4() rune {
	if d.i+4 > len(d.b) {
		d.fail()
		return 0
	}
	v, err := strconv.ParseUint(string(d.b[d.i:d.i+4]), 16, 32)
	if err != nil {
		d.fail()
		return 0
	}
	d.i += 4
	return rune(v)
}

// number returns an integer literal's text: -?(0|[1-9][0-9]*) and no more
// (a fraction or an exponent is encoding/json's to judge).
func (d *dec) number() string {
	d.ws()
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	n := d.i - digits
	if n == 0 || (n > 1 && d.b[digits] == '0') {
		d.fail()
		return ""
	}
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case '.', 'e', 'E':
			d.fail()
			return ""
		}
	}
	return string(d.b[start:d.i])
}

func (d *dec) int(bits int) int64 {
	v, err := strconv.ParseInt(d.number(), 10, bits)
	if err != nil {
		d.fail()
	}
	return v
}

func (d *dec) uint(bits int) uint64 {
	v, err := strconv.ParseUint(d.number(), 10, bits)
	if err != nil {
		d.fail()
	}
	return v
}

func (d *dec) bool() bool {
	d.ws()
	switch {
	case d.lit("true"):
		return true
	case d.lit("false"):
		return false
	}
	d.fail()
	return false
}

func (d *dec) lit(s string) bool {
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

// strs decodes an array of strings; [] is an empty slice, not nil, as
// with encoding/json.
func (d *dec) strs() []string {
	out := []string{}
	d.array(func() { out = append(out, d.str()) })
	return out
}

// strMap decodes an object of strings into a new map.
func (d *dec) strMap() map[string]string {
	m := map[string]string{}
	d.object(func(k string) bool {
		m[k] = d.str()
		return true
	})
	return m
}

func ptr[T any](v T) *T { return &v }
