// Package runtime is berth's OCI runtime (its libcontainer): it turns an OCI
// bundle into an isolated, limited process and drives it through the
// lifecycle the runtime spec defines (creating, created, running, stopped).
//
// Each operation is a short-lived call; what must outlive it lives in the
// state directory <Root>/<id>/. The container's first process, the init, is
// this same binary re-executed (see Init) from a read-only bind mount of itself
// so the container can never write to it (CVE-2019-5736).
package runtime

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"berth.dev/berth/errdefs"
)

// DefaultRoot is where container state lives unless --root says otherwise.
const DefaultRoot = "/run/berth/runtime"

// Runtime holds the settings shared by all operations.
type Runtime struct {
	// Root is the state directory, one subdirectory per container.
	Root string
	// Log receives diagnostics; nil means discard.
	Log *slog.Logger
	// InitArgs, when set, replace the arguments the init is started with
	// after the executable (default: "init"). Tests use it.
	InitArgs []string
}

// New returns a Runtime rooted at root (DefaultRoot when empty).
func New(root string, log *slog.Logger) (*Runtime, error) {
	if root == "" {
		root = DefaultRoot
	}
	trace("runtime.New")
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(abs, 0o711); err != nil {
		return nil, err
	}
	return &Runtime{Root: abs, Log: log}, nil
}

// validID: letters, digits and _.+-, not starting with one of _.+-. A loop,
// not a regexp: compiling one cost every berth process at start.
func validID(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("_.+-", rune(c))) {
			return false
		}
	}
	return true
}

func checkID(id string) error {
	if id == "" {
		return errdefs.Invalid("container id cannot be empty")
	}
	if len(id) > 1024 || !validID(id) {
		return errdefs.Invalid("invalid container id %q: use letters, digits and _.+- only", id)
	}
	return nil
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.Root, id) }
