package format

import (
	"net/netip"
	"reflect"
	"sync"
)

// TextView is v with its IP addresses and prefixes (net/netip) as strings,
// for templates: moby's API types hold netip values, which print a missing
// address as "invalid IP" (and are true in {{if}}), where docker's CLI,
// whose types hold strings, prints nothing. Values whose type holds no
// netip value, or cannot be rebuilt (unexported fields, embedded types
// with methods), are returned as they are.
func TextView(v any) any {
	if v == nil {
		return nil
	}
	rv := reflect.ValueOf(v)
	t, changed := textType(rv.Type(), map[reflect.Type]bool{})
	if !changed {
		return v
	}
	return toText(rv, t).Interface()
}

var (
	addrType   = reflect.TypeFor[netip.Addr]()
	prefixType = reflect.TypeFor[netip.Prefix]()
	stringType = reflect.TypeFor[string]()
	// textTypes caches textType's answers: type → its text type, or nil.
	textTypes sync.Map
)

// textType is t with netip.Addr and netip.Prefix made strings, and whether
// that changed anything. seen guards against recursive types.
func textType(t reflect.Type, seen map[reflect.Type]bool) (reflect.Type, bool) {
	if t == addrType || t == prefixType {
		return stringType, true
	}
	if c, ok := textTypes.Load(t); ok {
		if c == nil {
			return t, false
		}
		return c.(reflect.Type), true
	}
	if seen[t] {
		return t, false
	}
	seen[t] = true
	out, changed := t, false
	switch t.Kind() {
	case reflect.Pointer:
		if e, ch := textType(t.Elem(), seen); ch {
			out, changed = reflect.PointerTo(e), true
		}
	case reflect.Slice:
		if e, ch := textType(t.Elem(), seen); ch {
			out, changed = reflect.SliceOf(e), true
		}
	case reflect.Array:
		if e, ch := textType(t.Elem(), seen); ch {
			out, changed = reflect.ArrayOf(t.Len(), e), true
		}
	case reflect.Map:
		if e, ch := textType(t.Elem(), seen); ch {
			out, changed = reflect.MapOf(t.Key(), e), true
		}
	case reflect.Struct:
		out, changed = textStruct(t, seen)
	}
	if changed {
		textTypes.Store(t, out)
	} else {
		textTypes.Store(t, nil)
	}
	return out, changed
}

func textStruct(t reflect.Type, seen map[reflect.Type]bool) (reflect.Type, bool) {
	fields := make([]reflect.StructField, t.NumField())
	changed := false
	for i := range fields {
		f := t.Field(i)
		if !f.IsExported() {
			return t, false
		}
		if nt, ch := textType(f.Type, seen); ch {
			f.Type, changed = nt, true
		}
		// reflect.StructOf cannot embed a type with methods.
		if f.Anonymous && (f.Type.NumMethod() > 0 || reflect.PointerTo(f.Type).NumMethod() > 0) {
			return t, false
		}
		f.Index, f.Offset = nil, 0
		fields[i] = f
	}
	if !changed {
		return t, false
	}
	return reflect.StructOf(fields), true
}

// toText copies v into a value of t, its text type.
func toText(v reflect.Value, t reflect.Type) reflect.Value {
	if v.Type() == t {
		return v
	}
	if t == stringType {
		out := ""
		switch a := v.Interface().(type) {
		case netip.Addr:
			if a.IsValid() {
				out = a.String()
			}
		case netip.Prefix:
			if a.IsValid() {
				out = a.String()
			}
		}
		return reflect.ValueOf(out)
	}
	out := reflect.New(t).Elem()
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			p := reflect.New(t.Elem())
			p.Elem().Set(toText(v.Elem(), t.Elem()))
			out.Set(p)
		}
	case reflect.Slice:
		if !v.IsNil() {
			s := reflect.MakeSlice(t, v.Len(), v.Len())
			for i := range v.Len() {
				s.Index(i).Set(toText(v.Index(i), t.Elem()))
			}
			out.Set(s)
		}
	case reflect.Array:
		for i := range v.Len() {
			out.Index(i).Set(toText(v.Index(i), t.Elem()))
		}
	case reflect.Map:
		if !v.IsNil() {
			m := reflect.MakeMapWithSize(t, v.Len())
			for it := v.MapRange(); it.Next(); {
				m.SetMapIndex(it.Key(), toText(it.Value(), t.Elem()))
			}
			out.Set(m)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			out.Field(i).Set(toText(v.Field(i), t.Field(i).Type))
		}
	}
	return out
}
