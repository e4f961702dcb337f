package container

import (
	"io"
	"time"

	"berth.dev/berth/daemon/filters"
	containertypes "github.com/moby/moby/api/types/container"
)

// ListOptions is GET /containers/json.
type ListOptions struct {
	All     bool
	Limit   int
	Size    bool
	Filters filters.Args
}

// LogsOptions is GET /containers/{id}/logs.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Since, Until   time.Time
	Tail           int // < 0: all
}

// AttachOptions is POST /containers/{id}/attach. GetStreams is called once
// the container is found (the router hijacks the connection there) with
// whether the container has a terminal; it returns the client's side.
type AttachOptions struct {
	Stream, Logs          bool
	Stdin, Stdout, Stderr bool
	DetachKeys            string
	GetStreams            func(tty bool) (stdin io.Reader, stdout, stderr io.Writer, err error)
}

// StopOptions is POST /containers/{id}/stop and restart.
type StopOptions struct {
	Signal  string
	Timeout *int // seconds; nil: the container's StopTimeout or 10; -1 waits forever
}

// CommitOptions is POST /commit.
type CommitOptions struct {
	Container, Repo, Tag, Comment, Author string
	Changes                               []string
	// Config, when set, is laid over the container's run configuration.
	Config *containertypes.Config
	// Pause freezes a running container while its layer is taken.
	Pause bool
}
