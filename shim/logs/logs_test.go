package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth.dev/berth/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestAppendEntryMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"plain\n", "q\"b\\s\t\r\x00\x1f<>&\n", "\xff\xfeinvalid", "é ü 世界 \u2028\u2029", ""} {
		now := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
		got := AppendEntry(nil, "stderr", []byte(s), now)
		want, _ := json.Marshal(map[string]any{"log": s, "stream": "stderr", "time": now})
		// Same content (docker's field order is log, stream, time, which
		// a map does not keep): compare decoded and the escaping byte for byte.
		var a, b map[string]string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%q: %s: %v", s, got, err)
		}
		json.Unmarshal(want, &b)
		if a["log"] != b["log"] || a["time"] != b["time"] || a["stream"] != "stderr" {
			t.Errorf("%q: got %s want %s", s, got, want)
		}
		esc, _ := json.Marshal(s)
		if !bytes.Contains(got, esc[1:len(esc)-1]) {
			t.Errorf("%q escaped as %s, encoding/json says %s", s, got, esc)
		}
		if !bytes.HasPrefix(got, []byte(`{"log":`)) || !bytes.HasSuffix(got, []byte("\"}\n")) {
			t.Errorf("layout %s", got)
		}
	}
}

func TestSplitter(t *testing.T) {
	var sp Splitter
	type ln struct {
		s       string
		partial bool
	}
	var got []ln
	emit := func(b []byte, p bool) { got = append(got, ln{string(b), p}) }
	long := strings.Repeat("x", MaxLine+10)
	// Fed in odd pieces, as pipes deliver.
	in := "a\nb" + "c\n" + long + "\n" + "tail"
	for i := 0; i < len(in); i += 7 {
		sp.Feed([]byte(in[i:min(i+7, len(in))]), emit)
	}
	sp.Flush(emit)
	want := []ln{{"a\n", false}, {"bc\n", false}, {long[:MaxLine], true}, {long[MaxLine:] + "\n", false}, {"tail", true}}
	if len(got) != len(want) {
		t.Fatalf("got %d lines: %v", len(got), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %q %v, want %q %v", i, got[i].s, got[i].partial, want[i].s, want[i].partial)
		}
	}
}

func TestTruncateWithOneFile(t *testing.T) {
	cfg := Config{Path: filepath.Join(t.TempDir(), "c.log"), MaxSize: 200, MaxFiles: 1}
	w, err := NewWriter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 20; i++ {
		if err := w.Write("stdout", []byte("0123456789\n"), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := os.Stat(cfg.Path)
	if st.Size() > 200 || st.Size() == 0 {
		t.Errorf("size %d", st.Size())
	}
	if _, err := os.Stat(cfg.Path + ".1"); !os.IsNotExist(err) {
		t.Errorf("rotated with max-file 1: %v", err)
	}
}

// A follower that starts while a line is half written gets it whole.
func TestFollowHalfWrittenLine(t *testing.T) {
	cfg := Config{Path: filepath.Join(t.TempDir(), "c.log"), MaxFiles: 2}
	line := AppendEntry(nil, "stdout", []byte("hello\n"), time.Now())
	os.WriteFile(cfg.Path, append(AppendEntry(nil, "stdout", []byte("first\n"), time.Now()), line[:10]...), 0o644)
	stop := make(chan struct{})
	got := make(chan string, 4)
	done := make(chan error, 1)
	go func() {
		done <- Read(context.Background(), cfg, ReadOptions{Tail: -1, Follow: true, Stop: stop, Poll: time.Millisecond},
			func(m Message) error { got <- string(m.Line); return nil })
	}()
	if s := <-got; s != "first\n" {
		t.Fatalf("first line %q", s)
	}
	time.Sleep(20 * time.Millisecond)
	f, _ := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(line[10:])
	f.Close()
	if s := <-got; s != "hello\n" {
		t.Fatalf("second line %q", s)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
