// Package shim is berth's per-container monitor: one small process per
// container (`berth shim`) that runs the OCI runtime's create, holds the
// container's stdio or pty, writes its json-file log, reaps its init as a
// child subreaper, records its exit in the state directory and outlives the
// daemon. The daemon talks to it over a unix socket with Client (Start to
// spawn one, Connect after a restart). The package also holds `berth
// init-reaper`, the PID 1 that --init puts in a container.
//
// Lifetime: the shim records the exit in exit.json (written atomically
// before any waiter is told), then stays until the daemon sends shutdown
// (runtime delete, then it exits), however long that takes: with live
// restore the daemon comes back, and an idle shim costs about 1.5 MB. A
// daemon that wants otherwise sets Options.ExitTimeout; the shim then ends
// itself that long after the exit when no client is connected, and
// exit.json still tells the daemon how the container ended (ReadExit).
//
// Memory: every shim pays for what its binary initialises. As `berth shim`
// it carries the whole engine's package initialisation (about 2.6 MB of
// anonymous memory); the berth-shim binary (shim/cmd/berth-shim) is the
// same code alone (about 1.5 MB; bench/shim.sh).
//
// Protocol: one request per connection, a JSON line; the answer is a JSON
// line. After a successful attach the connection carries output frames from
// the shim (a stream byte, 1 stdout or 2 stderr, a big-endian uint32 length,
// the bytes) and raw stdin from the client; the shim closes it when the
// process has exited and its output is drained.
package shim

import (
	"encoding/json"
	"time"
)

// Files in the state directory.
const (
	SocketName = "shim.sock" // the control socket (0600)
	ExitName   = "exit.json" // Exit of the container's init, written before anyone is told
	PidName    = "shim.pid"  // the shim's pid
	LogName    = "shim.log"  // the shim's own messages
	initPid    = "init.pid"  // written by the runtime's create
	rtLog      = "runtime.log"
	rtErr      = "runtime.err"
)

// Process statuses.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusStopped = "stopped"
)

// Output stream numbers in attach frames.
const (
	StreamStdout = 1
	StreamStderr = 2
)

// request is one control message. Exec names an exec process; empty means
// the container's init.
type request struct {
	Op     string `json:"op"`
	Exec   string `json:"exec,omitempty"`
	Signal int    `json:"signal,omitempty"`
	All    bool   `json:"all,omitempty"`
	Height uint16 `json:"height,omitempty"`
	Width  uint16 `json:"width,omitempty"`
	Stdin  bool   `json:"stdin,omitempty"`
	Stdout bool   `json:"stdout,omitempty"`
	Stderr bool   `json:"stderr,omitempty"`
	// CloseStdin closes the process's stdin when this attach's stdin ends.
	CloseStdin bool `json:"closeStdin,omitempty"`
	// Process is the OCI process (specs.Process) of an exec, passed through.
	Process json.RawMessage `json:"process,omitempty"`
}

type response struct {
	Error string `json:"error,omitempty"`
	Kind  int    `json:"kind,omitempty"` // errdefs.Kind
	State *State `json:"state,omitempty"`
	Exit  *Exit  `json:"exit,omitempty"`
}

// State is what the shim knows of a process.
type State struct {
	ID         string    `json:"id"`
	Exec       string    `json:"exec,omitempty"`
	Pid        int       `json:"pid"`
	Status     string    `json:"status"`
	Tty        bool      `json:"tty"`
	ExitCode   int       `json:"exitCode"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	ShimPid    int       `json:"shimPid"`
}

// Exit is how a process ended. ExitCode is docker's: the status, or 128+n
// for a death by signal n.
type Exit struct {
	Pid        int       `json:"pid"`
	ExitCode   int       `json:"exitCode"`
	Signal     int       `json:"signal,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}
