package command

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// TestTopLevelTable: the table names each command as the command names
// itself, and the whole tree has no top-level command the table lacks
// (a command missing there would be unreachable when named alone).
func TestTopLevelTable(t *testing.T) {
	c := &CLI{}
	var names []string
	for _, e := range topLevel {
		if got := e.make(c).Name(); got != e.name {
			t.Errorf("topLevel entry %q makes %q", e.name, got)
		}
		names = append(names, e.name)
	}
	for _, cmd := range NewRoot(c).Commands() {
		if !slices.Contains(names, cmd.Name()) {
			t.Errorf("command %q is not in topLevel", cmd.Name())
		}
	}
}

func TestCommandWord(t *testing.T) {
	for args, want := range map[string]string{
		"run --rm busybox true":                 "run",
		"-H unix:///x.sock ps -a":               "ps",
		"--host=unix:///x.sock --debug images":  "images",
		"-l debug --tlsverify --config /d rm x": "rm",
		"--context default exec a sh":           "exec",
		"help run":                              "",
		"runn":                                  "",
		"--version":                             "",
		"-Dl debug ps":                          "",
		"--nosuch=1 ps":                         "",
		"":                                      "",
		"-H":                                    "",
	} {
		if got := commandWord(splitArgs(args)); got != want {
			t.Errorf("commandWord(%q) = %q, want %q", args, got, want)
		}
	}
}

// TestOneCommandTree: a command's help and a flag error read the same
// from the tree with that command alone as from the whole tree.
func TestOneCommandTree(t *testing.T) {
	for _, args := range [][]string{{"run", "--help"}, {"ps", "--nosuch"}, {"container", "--help"}, {"volume", "ls", "--help"}} {
		var whole, alone bytes.Buffer
		for _, v := range []struct {
			buf  *bytes.Buffer
			only string
		}{{&whole, ""}, {&alone, args[0]}} {
			c := &CLI{Out: v.buf, Err: v.buf}
			root := newRoot(c, v.only)
			root.SetArgs(args)
			root.SetOut(v.buf)
			root.SetErr(v.buf)
			if err := root.Execute(); err != nil {
				v.buf.WriteString("error: " + err.Error())
			}
		}
		if whole.String() != alone.String() || whole.Len() == 0 {
			t.Errorf("%v: the whole tree said\n%s\nthe one command\n%s", args, whole.String(), alone.String())
		}
	}
}

func splitArgs(s string) []string { return strings.Fields(s) }
