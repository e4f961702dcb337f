package format

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"berth.dev/berth/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

type row struct{ name, size string }

func (row) Headers() map[string]string     { return map[string]string{"Name": "NAME", "Size": "SIZE"} }
func (r row) Name() string                 { return r.name }
func (r row) Size() string                 { return r.size }
func (r row) MarshalJSON() ([]byte, error) { return MarshalRow(r) }
func (r row) Args(int) string              { return "not a field" }

func render(t *testing.T, f string, rows ...row) string {
	t.Helper()
	var b bytes.Buffer
	w, err := NewWriter(&b, f, row{}.Headers())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestTable(t *testing.T) {
	rows := []row{{"alpine", "7.8MB"}, {"a-much-longer-name", "1GB"}}
	got := render(t, `table {{.Name}}\t{{.Size}}`, rows...)
	want := "NAME                 SIZE\nalpine               7.8MB\na-much-longer-name   1GB\n"
	if got != want {
		t.Fatalf("table:\n%q\nwant\n%q", got, want)
	}
	// Header functions pass the header through; an empty table still has one.
	if got := render(t, `table {{upper .Name}}\t{{lower .Size}}`); got != "NAME      SIZE\n" {
		t.Fatalf("empty table = %q", got)
	}
	if got := render(t, `table {{truncate .Name 3}}`, rows...); got != "NAME\nalp\na-m\n" {
		t.Fatalf("truncate in table = %q", got)
	}
}

func TestRowTemplates(t *testing.T) {
	r := row{"busy<box>", "1MB"}
	for f, want := range map[string]string{
		"{{.Name}}:{{.Size}}": "busy<box>:1MB\n",
		// Rows marshal with encoding/json's HTML escaping, as docker's do.
		"json":                            `{"Name":"busy\u003cbox\u003e","Size":"1MB"}` + "\n",
		"{{json .}}":                      `{"Name":"busy\u003cbox\u003e","Size":"1MB"}` + "\n",
		"{{json .Name}}":                  `"busy<box>"` + "\n",
		`{{join (split .Name "<") "-"}}`:  "busy-box>\n",
		"{{upper .Name}} {{title .Size}}": "BUSY<BOX> 1MB\n",
		`{{pad .Size 1 2}}|`:              " 1MB  |\n",
		`{{println .Size}}`:               "1MB\n\n",
		`{{.Name}}\t{{.Size}}`:            "busy<box>\t1MB\n",
	} {
		if got := render(t, f, r); got != want {
			t.Errorf("%s: %q, want %q", f, got, want)
		}
	}
	if _, err := NewWriter(&bytes.Buffer{}, "{{.Name", nil); err == nil || !strings.HasPrefix(err.Error(), "template parsing error:") {
		t.Fatalf("bad template error = %v", err)
	}
	var b bytes.Buffer
	w, _ := NewWriter(&b, "{{.Nope}}", nil)
	if err := w.Write(r); err == nil {
		t.Fatal("a missing field executed")
	}
}

func TestUnits(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 999: "999B", 4_270_000: "4.27MB", 1_234_567_890: "1.23GB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %s, want %s", n, got, want)
		}
	}
	if got := SizeDF(4_269_876); got != "4.27MB" {
		t.Errorf("SizeDF = %s", got)
	}
	if got := Percent(50, 200); got != "50B (25%)" {
		t.Errorf("Percent = %s", got)
	}
	if got := Percent(0, 0); got != "0B" {
		t.Errorf("Percent of nothing = %s", got)
	}
	if got := Since(time.Now().Add(-2*time.Hour - time.Minute).Unix()); got != "2 hours ago" {
		t.Errorf("Since = %s", got)
	}
	if got := TruncateID("sha256:0123456789abcdef0123"); got != "0123456789ab" {
		t.Errorf("TruncateID = %s", got)
	}
	if got := TruncateID("<missing>"); got != "<missing>" {
		t.Errorf("TruncateID(<missing>) = %s", got)
	}
	if got := Ellipsis("/bin/sh -c #(nop) ADD file:abc in /", 10); got != "/bin/sh -…" {
		t.Errorf("Ellipsis = %s", got)
	}
	if got := Ellipsis("short", 10); got != "short" {
		t.Errorf("Ellipsis short = %s", got)
	}
}
