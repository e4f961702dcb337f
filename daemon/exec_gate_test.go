package daemon

import (
	"bytes"
	"testing"
)

func TestStartGate(t *testing.T) {
	var out, errw bytes.Buffer
	g := &startGate{}
	o, e := g.writer(&out), g.writer(&errw)
	o.Write([]byte("early "))
	e.Write([]byte("warn "))
	if out.Len() != 0 || errw.Len() != 0 {
		t.Fatalf("passed before the start: %q %q", out.String(), errw.String())
	}
	g.release(true)
	o.Write([]byte("late"))
	if out.String() != "early late" || errw.String() != "warn " {
		t.Fatalf("started: %q %q", out.String(), errw.String())
	}

	out.Reset()
	g = &startGate{}
	o = g.writer(&out)
	o.Write([]byte("berth: exec: is a directory\n"))
	g.release(false)
	o.Write([]byte("more"))
	if out.Len() != 0 {
		t.Fatalf("not started, yet passed: %q", out.String())
	}
}
