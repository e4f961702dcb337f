package client

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// marshal is json.Marshal(v), byte for byte, made by walking v's values.
// encoding/json builds, at a type's first use in a process, encoders for
// every type the type reaches: a create request reaches some forty
// structs (mounts, endpoints, IPAM, ...), 0.3 ms of a CLI call's ~6 of
// CPU, on the way to its first request. This walk looks only at the
// structs v holds. What it does not do (floats, []byte, `,string`,
// json.Marshaler, a struct type embedded twice at one depth) is left to
// encoding/json, which then encodes the whole value.
func marshal(v any) ([]byte, error) {
	var e encoder
	if e.value(reflect.ValueOf(v)) {
		return e.b, nil
	}
	return json.Marshal(v)
}

type encoder struct {
	b     []byte
	depth int
}

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	isZeroerType      = reflect.TypeFor[interface{ IsZero() bool }]()
)

// value appends v as encoding/json would, or says it cannot.
func (e *encoder) value(v reflect.Value) bool {
	if !v.IsValid() {
		e.b = append(e.b, "null"...)
		return true
	}
	// A value nested a thousand deep is taken for a cycle, whose error
	// is encoding/json's to give.
	if e.depth++; e.depth > 1000 {
		return false
	}
	defer func() { e.depth-- }()
	t := v.Type()
	info := typeInfoOf(t)
	// The order of encoding/json's checks: a pointer's methods count
	// where the value is addressable.
	switch {
	case v.CanAddr() && info.addrMarshaler, info.marshaler:
		return false
	case v.CanAddr() && info.addrText:
		return e.text(v.Addr())
	case info.text:
		return e.text(v)
	}
	switch v.Kind() {
	case reflect.Bool:
		e.b = strconv.AppendBool(e.b, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.b = strconv.AppendInt(e.b, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.b = strconv.AppendUint(e.b, v.Uint(), 10)
	case reflect.String:
		e.b = appendString(e.b, v.String())
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			e.b = append(e.b, "null"...)
			return true
		}
		return e.value(v.Elem())
	case reflect.Struct:
		return e.structValue(v, info)
	case reflect.Map:
		return e.mapValue(v)
	case reflect.Slice:
		if v.IsNil() {
			e.b = append(e.b, "null"...)
			return true
		}
		if info.bytes {
			return false // base64
		}
		return e.array(v)
	case reflect.Array:
		return e.array(v)
	default:
		return false // floats, complex, channels, functions
	}
	return true
}

// text appends a TextMarshaler's text as a string (null for a nil pointer).
func (e *encoder) text(v reflect.Value) bool {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		e.b = append(e.b, "null"...)
		return true
	}
	b, err := v.Interface().(encoding.TextMarshaler).MarshalText()
	if err != nil {
		return false
	}
	e.b = appendString(e.b, string(b))
	return true
}

func (e *encoder) array(v reflect.Value) bool {
	e.b = append(e.b, '[')
	for i := range v.Len() {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		if !e.value(v.Index(i)) {
			return false
		}
	}
	e.b = append(e.b, ']')
	return true
}

func (e *encoder) mapValue(v reflect.Value) bool {
	if v.IsNil() {
		e.b = append(e.b, "null"...)
		return true
	}
	type entry struct {
		key string
		v   reflect.Value
	}
	entries := make([]entry, 0, v.Len())
	for it := v.MapRange(); it.Next(); {
		k, ok := keyName(it.Key())
		if !ok {
			return false
		}
		entries = append(entries, entry{k, it.Value()})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	e.b = append(e.b, '{')
	for i, en := range entries {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.b = append(appendString(e.b, en.key), ':')
		if !e.value(en.v) {
			return false
		}
	}
	e.b = append(e.b, '}')
	return true
}

// keyName is a map key as encoding/json spells it: a string, a
// TextMarshaler's text, or a number.
func keyName(k reflect.Value) (string, bool) {
	if k.Kind() == reflect.String {
		return k.String(), true
	}
	if tm, ok := k.Interface().(encoding.TextMarshaler); ok {
		if k.Kind() == reflect.Pointer && k.IsNil() {
			return "", true
		}
		b, err := tm.MarshalText()
		return string(b), err == nil
	}
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(k.Uint(), 10), true
	}
	return "", false
}

func (e *encoder) structValue(v reflect.Value, info *typeInfo) bool {
	fields, ok := info.structFields()
	if !ok {
		return false
	}
	e.b = append(e.b, '{')
	first := true
fields:
	for i := range fields {
		f := &fields[i]
		fv := v
		for _, x := range f.index {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue fields // promoted through a nil embedded pointer
				}
				fv = fv.Elem()
			}
			fv = fv.Field(x)
		}
		if f.omitEmpty && isEmpty(fv) || f.omitZero && f.isZero(fv) {
			continue
		}
		if !first {
			e.b = append(e.b, ',')
		}
		first = false
		e.b = append(e.b, f.name...)
		if !e.value(fv) {
			return false
		}
	}
	e.b = append(e.b, '}')
	return true
}

// isEmpty is omitempty's test.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return false
}

// typeInfo is what the walk needs of a type, found once per process.
type typeInfo struct {
	t                        reflect.Type
	marshaler, addrMarshaler bool
	text, addrText           bool
	bytes                    bool // a []byte encoding/json sends as base64

	once   sync.Once
	fields []field
	ok     bool
}

var typeInfos sync.Map // reflect.Type → *typeInfo

func typeInfoOf(t reflect.Type) *typeInfo {
	if i, ok := typeInfos.Load(t); ok {
		return i.(*typeInfo)
	}
	info := &typeInfo{t: t, marshaler: t.Implements(marshalerType), text: t.Implements(textMarshalerType)}
	if t.Kind() != reflect.Pointer {
		pt := reflect.PointerTo(t)
		info.addrMarshaler, info.addrText = pt.Implements(marshalerType), pt.Implements(textMarshalerType)
	}
	if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
		pe := reflect.PointerTo(t.Elem())
		info.bytes = !pe.Implements(marshalerType) && !pe.Implements(textMarshalerType)
	}
	i, _ := typeInfos.LoadOrStore(t, info)
	return i.(*typeInfo)
}

// field is a struct field as encoding/json writes it.
type field struct {
	name      []byte // `"Name":`
	index     []int  // through embedded structs
	depth     int
	tagged    bool
	omitEmpty bool
	omitZero  bool
	typ       reflect.Type // as declared
}

func (info *typeInfo) structFields() ([]field, bool) {
	info.once.Do(func() { info.fields, info.ok = typeFields(info.t) })
	return info.fields, info.ok
}

// typeFields lists a struct's fields in encoding/json's order with its
// rules for embedded structs: their fields are promoted; of fields of one
// name the shallowest wins, then a tagged one; a tie drops them all.
func typeFields(t reflect.Type) ([]field, bool) {
	type embedded struct {
		t     reflect.Type
		index []int
	}
	var all []field
	var names []byte // all the names, one allocation or a few
	visited := map[reflect.Type]bool{}
	next := []embedded{{t, nil}}
	for len(next) > 0 {
		current := next
		next = nil
		seen := map[reflect.Type]bool{}
		for _, s := range current {
			if visited[s.t] {
				continue
			}
			visited[s.t] = true
			n := s.t.NumField()
			indexes := make([]int, 0, n*(len(s.index)+1)) // the fields' index paths, one allocation
			for i := range n {
				sf := s.t.Field(i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if !sf.IsExported() && (!sf.Anonymous || ft.Kind() != reflect.Struct) {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !plainName(name) {
					return nil, false // encoding/json's rules for odd names
				}
				start := len(indexes)
				indexes = append(append(indexes, s.index...), i)
				index := indexes[start:len(indexes):len(indexes)]
				if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct {
					if seen[ft] {
						return nil, false // one type embedded twice at one depth
					}
					seen[ft] = true
					next = append(next, embedded{ft, index})
					continue
				}
				f := field{index: index, depth: len(index), tagged: name != "", typ: sf.Type}
				if name == "" {
					name = sf.Name
				}
				for o := range strings.SplitSeq(opts, ",") {
					switch o {
					case "omitempty":
						f.omitEmpty = true
					case "omitzero":
						f.omitZero = true
					case "string":
						switch ft.Kind() {
						case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
							reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
							reflect.Float32, reflect.Float64, reflect.String:
							return nil, false // quoted values
						}
					}
				}
				start = len(names)
				names = append(appendString(names, name), ':')
				f.name = names[start:len(names):len(names)]
				all = append(all, f)
			}
		}
	}
	// Dominance, by name: fields are sorted through a permutation (moving
	// the fields themselves cost more than the rest of this).
	byName := make([]int, len(all))
	for i := range byName {
		byName[i] = i
	}
	slices.SortFunc(byName, func(i, j int) int {
		a, b := &all[i], &all[j]
		if c := bytes.Compare(a.name, b.name); c != 0 {
			return c
		}
		if a.depth != b.depth {
			return a.depth - b.depth
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return 1
		}
		return slices.Compare(a.index, b.index)
	})
	keep := make([]int, 0, len(all))
	for i := 0; i < len(byName); {
		j := i + 1
		for j < len(byName) && bytes.Equal(all[byName[j]].name, all[byName[i]].name) {
			j++
		}
		a := &all[byName[i]]
		if j-i == 1 || a.depth != all[byName[i+1]].depth || a.tagged != all[byName[i+1]].tagged {
			keep = append(keep, byName[i])
		}
		i = j
	}
	slices.SortFunc(keep, func(i, j int) int { return slices.Compare(all[i].index, all[j].index) })
	out := make([]field, len(keep))
	for k, i := range keep {
		out[k] = all[i]
	}
	return out, true
}

// plainName is a tag name of letters, digits and '_', '-', '.' (or none).
func plainName(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' && r != '-' && r != '.' {
			return false
		}
	}
	return true
}

// isZero is omitzero's test: the type's IsZero method if it has one.
func (f *field) isZero(v reflect.Value) bool {
	t := f.typ
	switch {
	case t.Kind() == reflect.Interface && t.Implements(isZeroerType):
		return v.IsNil() || v.Elem().Kind() == reflect.Pointer && v.Elem().IsNil() ||
			v.Interface().(interface{ IsZero() bool }).IsZero()
	case t.Kind() == reflect.Pointer && t.Implements(isZeroerType):
		return v.IsNil() || v.Interface().(interface{ IsZero() bool }).IsZero()
	case t.Implements(isZeroerType):
		return v.Interface().(interface{ IsZero() bool }).IsZero()
	case reflect.PointerTo(t).Implements(isZeroerType):
		if !v.CanAddr() {
			c := reflect.New(t).Elem()
			c.Set(v)
			v = c
		}
		return v.Addr().Interface().(interface{ IsZero() bool }).IsZero()
	}
	return v.IsZero()
}

const hexDigits = "0123456789abcdef"

// appendString appends s quoted as encoding/json quotes it: HTML's <, >
// and & escaped, invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
