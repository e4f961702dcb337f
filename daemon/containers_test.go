package daemon

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"

	"berth.dev/berth/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
)

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "term": syscall.SIGTERM, "KILL": syscall.SIGKILL, "9": syscall.SIGKILL, "SIGRTMIN+1": 0} {
		got, err := parseSignal(in)
		if want == 0 {
			continue // names the libc knows differently; not asserted
		}
		if err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"NOPE", "0", "65", "-1"} {
		if _, err := parseSignal(bad); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestDetachKeys(t *testing.T) {
	for in, want := range map[string][]byte{"": {16, 17}, "ctrl-a,x": {1, 'x'}, "ctrl-@,ctrl-[": {0, 27}} {
		got, err := detachKeys(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"ctrl-", "ab", "ctrl-1"} {
		if _, err := detachKeys(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDetachReader(t *testing.T) {
	read := func(in string) (string, bool) {
		detached := false
		r := &detachReader{r: strings.NewReader(in), keys: []byte{16, 17}, onDetach: func() { detached = true }}
		b, err := io.ReadAll(r)
		if err != nil && err != errDetached {
			t.Fatal(err)
		}
		return string(b), detached
	}
	if got, det := read("abc"); got != "abc" || det {
		t.Fatalf("plain: %q %v", got, det)
	}
	if got, det := read("ab\x10\x11cd"); got != "ab" || !det {
		t.Fatalf("detach: %q %v", got, det)
	}
	// A lone first key is passed on once it is clear it starts no sequence.
	if got, det := read("a\x10b\x10"); got != "a\x10b\x10" || det {
		t.Fatalf("partial: %q %v", got, det)
	}
}

func TestStdWriterFrames(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	out, errw := &stdWriter{w: &buf, stream: 1, mu: &mu}, &stdWriter{w: &buf, stream: 2, mu: &mu}
	out.Write([]byte("hello\n"))
	errw.Write([]byte("oops\n"))
	out.Write([]byte("bye\n"))
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, &buf); err != nil {
		t.Fatal(err)
	}
	if o.String() != "hello\nbye\n" || e.String() != "oops\n" {
		t.Fatalf("demuxed: %q %q", o.String(), e.String())
	}
}
