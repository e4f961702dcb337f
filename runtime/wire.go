package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
)

// The init's config and the sync messages travel in a binary form of their
// Go values: both ends are this binary, so the types match, and a fresh
// init decodes it without encoding/json, whose codecs (built on first use
// for every type the config reaches) cost it ~0.3 ms. Exported struct
// fields in declaration order, varints, length-prefixed strings, slices
// and maps, a presence byte before what a pointer points to.

// marshalWire encodes v, or what v points to, for unmarshalWire into a
// pointer to the same type.
func marshalWire(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, errors.New("wire: encode of a nil pointer")
		}
		rv = rv.Elem()
	}
	return appendWire(nil, rv)
}

func unmarshalWire(b []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("wire: decode needs a non-nil pointer")
	}
	d := wireDecoder{b: b}
	if err := d.value(rv.Elem()); err != nil {
		return err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("wire: %d bytes left over", len(d.b))
	}
	return nil
}

func appendWire(b []byte, v reflect.Value) ([]byte, error) {
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return binary.AppendVarint(b, v.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return binary.AppendUvarint(b, v.Uint()), nil
	case reflect.String:
		b = binary.AppendUvarint(b, uint64(v.Len()))
		return append(b, v.String()...), nil
	case reflect.Pointer:
		if v.IsNil() {
			return append(b, 0), nil
		}
		return appendWire(append(b, 1), v.Elem())
	case reflect.Slice:
		if v.IsNil() {
			return append(b, 0), nil
		}
		b = binary.AppendUvarint(b, uint64(v.Len())+1)
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return append(b, v.Bytes()...), nil
		}
		var err error
		for i := 0; i < v.Len() && err == nil; i++ {
			b, err = appendWire(b, v.Index(i))
		}
		return b, err
	case reflect.Map:
		if v.IsNil() {
			return append(b, 0), nil
		}
		b = binary.AppendUvarint(b, uint64(v.Len())+1)
		var err error
		for it := v.MapRange(); it.Next() && err == nil; {
			if b, err = appendWire(b, it.Key()); err == nil {
				b, err = appendWire(b, it.Value())
			}
		}
		return b, err
	case reflect.Struct:
		t := v.Type()
		var err error
		for i := 0; i < t.NumField() && err == nil; i++ {
			if t.Field(i).IsExported() {
				b, err = appendWire(b, v.Field(i))
			}
		}
		return b, err
	}
	return nil, fmt.Errorf("wire: cannot encode a %s", v.Type())
}

type wireDecoder struct{ b []byte }

var errWireShort = errors.New("wire: message cut short")

func (d *wireDecoder) uvarint() (uint64, error) {
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		return 0, errWireShort
	}
	d.b = d.b[n:]
	return x, nil
}

func (d *wireDecoder) byte() (byte, error) {
	if len(d.b) == 0 {
		return 0, errWireShort
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c, nil
}

// length reads a slice or map length: 0 for nil, n+1 for n elements.
func (d *wireDecoder) length() (n int, isNil bool, err error) {
	x, err := d.uvarint()
	if err != nil {
		return 0, false, err
	}
	if x == 0 {
		return 0, true, nil
	}
	if x-1 > uint64(len(d.b)) { // every element takes a byte at least
		return 0, false, errWireShort
	}
	return int(x - 1), false, nil
}

func (d *wireDecoder) value(v reflect.Value) error {
	switch v.Kind() {
	case reflect.Bool:
		c, err := d.byte()
		v.SetBool(c != 0)
		return err
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x, n := binary.Varint(d.b)
		if n <= 0 {
			return errWireShort
		}
		d.b = d.b[n:]
		v.SetInt(x)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		x, err := d.uvarint()
		v.SetUint(x)
		return err
	case reflect.String:
		n, err := d.uvarint()
		if err != nil || n > uint64(len(d.b)) {
			return errWireShort
		}
		v.SetString(string(d.b[:n]))
		d.b = d.b[n:]
		return nil
	case reflect.Pointer:
		c, err := d.byte()
		if err != nil || c == 0 {
			return err
		}
		p := reflect.New(v.Type().Elem())
		if err := d.value(p.Elem()); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Slice:
		n, isNil, err := d.length()
		if err != nil || isNil {
			return err
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes(append([]byte{}, d.b[:n]...))
			d.b = d.b[n:]
			return nil
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := 0; i < n; i++ {
			if err := d.value(s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Map:
		n, isNil, err := d.length()
		if err != nil || isNil {
			return err
		}
		t := v.Type()
		m := reflect.MakeMapWithSize(t, n)
		for i := 0; i < n; i++ {
			k, e := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
			if err := d.value(k); err != nil {
				return err
			}
			if err := d.value(e); err != nil {
				return err
			}
			m.SetMapIndex(k, e)
		}
		v.Set(m)
		return nil
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).IsExported() {
				if err := d.value(v.Field(i)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return fmt.Errorf("wire: cannot decode a %s", v.Type())
}
