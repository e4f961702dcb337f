// Package format is the CLI's output engine: Go templates with docker's
// helper functions, the `table` directive (aligned columns with headers),
// the bare `json` format, and docker's human sizes, times and IDs, so that a
// --format string written for docker prints the same with berth.
package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"
	"unicode"
)

// Format names docker gives meaning to.
const (
	TableKey = "table"
	JSONKey  = "json"
	RawKey   = "raw"
)

// Funcs are the functions docker offers in --format templates.
var Funcs = template.FuncMap{
	"json": func(v any) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return ""
		}
		return strings.TrimSpace(buf.String())
	},
	"split":    strings.Split,
	"join":     strings.Join,
	"title":    title,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      func(s string, pre, post int) string { return strings.Repeat(" ", pre) + s + strings.Repeat(" ", post) },
	"truncate": truncate,
}

// headerFuncs stand in for Funcs while a table's header row is rendered:
// the header values are strings, and `{{upper .Repository}}` must still
// print REPOSITORY rather than fail.
var headerFuncs = template.FuncMap{
	"json":     func(v string) string { return v },
	"split":    func(v, _ string) string { return v },
	"join":     func(v string, _ string) string { return v },
	"title":    func(v string) string { return v },
	"lower":    func(v string) string { return v },
	"upper":    func(v string) string { return v },
	"pad":      func(v string, _, _ int) string { return v },
	"truncate": func(v string, _ int) string { return v },
}

func title(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		defer func() { prev = r }()
		if unicode.IsSpace(prev) || unicode.IsPunct(prev) {
			return unicode.ToTitle(r)
		}
		return r
	}, s)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if n < 0 || len(r) <= n {
		return s
	}
	return string(r[:n])
}

// Parse parses a template with docker's functions. Errors read as docker's.
func Parse(text string) (*template.Template, error) {
	t, err := template.New("").Funcs(Funcs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return t, nil
}

// Execute runs a one-shot template on v and writes the result and a newline.
func Execute(w io.Writer, text string, v any) error {
	if text == JSONKey {
		text = "{{json .}}"
	}
	t, err := Parse(text)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	buf.WriteByte('\n')
	_, err = buf.WriteTo(w)
	return err
}

// IsTable reports whether a --format asks for a table.
func IsTable(f string) bool { return strings.HasPrefix(f, TableKey) }

// Row is one object a list prints: its fields are its exported methods
// without arguments that return a string, as in docker's contexts.
type Row interface {
	// Headers maps field (method) names to their column headers.
	Headers() map[string]string
}

// Writer renders rows with a --format: "table ..." as aligned columns
// under headers, "json" as one JSON object per row, anything else as one
// template per row.
type Writer struct {
	out    io.Writer
	tmpl   *template.Template
	table  bool
	header map[string]string
	buf    bytes.Buffer
	rows   int
}

// NewWriter prepares a Writer for format f (docker's "\t" and "\n" escapes
// are honoured). headers is the header row of an empty table.
func NewWriter(out io.Writer, f string, headers map[string]string) (*Writer, error) {
	w := &Writer{out: out, header: headers}
	switch {
	case f == JSONKey:
		f = "{{json .}}"
	case IsTable(f):
		w.table = true
		f = strings.TrimPrefix(f, TableKey)
		f = strings.TrimLeftFunc(f, unicode.IsSpace)
		if f == "" {
			return nil, fmt.Errorf("table format needs columns")
		}
	}
	f = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(f)
	t, err := Parse(f)
	if err != nil {
		return nil, err
	}
	w.tmpl = t
	return w, nil
}

// Write renders one row.
func (w *Writer) Write(r Row) error {
	w.rows++
	if w.header == nil {
		w.header = r.Headers()
	}
	var b bytes.Buffer
	if err := w.tmpl.Execute(&b, r); err != nil {
		return fmt.Errorf("template parsing error: %w", err) // docker's words
	}
	b.WriteByte('\n')
	if !w.table {
		_, err := b.WriteTo(w.out)
		return err
	}
	w.buf.Write(b.Bytes())
	return nil
}

// Flush writes a table (header first) aligned as docker aligns it.
func (w *Writer) Flush() error {
	if !w.table {
		return nil
	}
	tw := tabwriter.NewWriter(w.out, 10, 1, 3, ' ', 0)
	var h bytes.Buffer
	ht, err := w.tmpl.Clone()
	if err != nil {
		return err
	}
	if err := ht.Funcs(headerFuncs).Execute(&h, w.header); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	h.WriteByte('\n')
	if _, err := tw.Write(h.Bytes()); err != nil {
		return err
	}
	if _, err := tw.Write(w.buf.Bytes()); err != nil {
		return err
	}
	return tw.Flush()
}

// MarshalRow is the JSON of a row as docker prints `{{json .}}`: an object
// of every string method, keys sorted.
func MarshalRow(r any) ([]byte, error) {
	v := reflect.ValueOf(r)
	m := map[string]string{}
	for i := 0; i < v.NumMethod(); i++ {
		meth := v.Type().Method(i)
		ft := meth.Type
		if ft.NumIn() != 1 || ft.NumOut() != 1 || ft.Out(0).Kind() != reflect.String || meth.Name == "Headers" {
			continue
		}
		m[meth.Name] = v.Method(i).Call(nil)[0].String()
	}
	return json.Marshal(m) // keys sorted

}
