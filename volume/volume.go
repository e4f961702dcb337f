// Package volume is berth's local volume driver: named and anonymous
// volumes under <root>/<name>/_data (root is <data-root>/volumes, as
// docker lays it out), their metadata in <root>/<name>/volume.json, the
// containers that reference each one, and the mounts that docker's local
// driver options (type, device, o) ask for, made at first use and undone
// when the last user goes. It knows nothing about HTTP or containers
// beyond their IDs.
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/lazyregexp"
)

// DriverName is the one driver berth has.
const DriverName = "local"

// AnonymousLabel marks volumes made for a container's unnamed mount.
const AnonymousLabel = "com.docker.volume.anonymous"

const metaName = "volume.json"

var validName = lazyregexp.New(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Volume is one volume's metadata.
type Volume struct {
	Name      string
	Driver    string
	Labels    map[string]string
	Options   map[string]string
	CreatedAt time.Time
}

// Anonymous says whether the volume was made for an unnamed mount.
func (v *Volume) Anonymous() bool {
	_, ok := v.Labels[AnonymousLabel]
	return ok
}

type entry struct {
	Volume
	refs    map[string]bool // containers that reference it
	mounts  map[string]bool // running containers that mount it
	mounted bool            // its driver options' mount is in place
}

// Store holds the volumes of one data root. It is safe for concurrent use.
type Store struct {
	root string
	mu   sync.Mutex
	vols map[string]*entry
}

// Open loads the volumes under root, making it if needed. Half-made and
// half-removed volumes (a daemon killed in the middle) are cleared away.
func Open(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o701); err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	s := &Store{root: root, vols: map[string]*entry{}}
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") {
			// .new-* and .rm-*: a create or remove that did not finish.
			p := filepath.Join(root, n)
			_ = unmountIfMounted(filepath.Join(p, "_data"))
			_ = os.RemoveAll(p)
			continue
		}
		if !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, n, metaName))
		if err != nil {
			continue // not ours
		}
		var v Volume
		if err := json.Unmarshal(b, &v); err != nil || v.Name != n {
			continue
		}
		s.vols[n] = &entry{Volume: v, refs: map[string]bool{}, mounts: map[string]bool{},
			mounted: isMountpoint(filepath.Join(root, n, "_data"))}
	}
	return s, nil
}

// Path is where the volume's data is (the Mountpoint docker shows).
func (s *Store) Path(name string) string { return filepath.Join(s.root, name, "_data") }

// ValidateName checks a volume name as docker's local driver does.
func ValidateName(name string) error {
	if !validName.MatchString(name) {
		return errdefs.Invalid("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name)
	}
	return nil
}

// NewName is a random 64-hex name for an anonymous volume.
func NewName() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// Create makes a volume; an empty name makes an anonymous one. Creating a
// name that exists returns the existing volume, as docker does (created
// is then false).
func (s *Store) Create(name, driver string, opts, labels map[string]string) (v Volume, created bool, err error) {
	return s.CreateFor("", name, driver, opts, labels)
}

// CreateFor is Create that also records container ref's use of the
// volume (unless ref is empty), at once: a remove cannot come between.
func (s *Store) CreateFor(ref, name, driver string, opts, labels map[string]string) (v Volume, created bool, err error) {
	if driver == "" {
		driver = DriverName
	}
	if driver != DriverName {
		return Volume{}, false, errdefs.NotFound("error looking up volume plugin %s: plugin %q not found", driver, driver)
	}
	anonymous := name == ""
	if anonymous {
		name = NewName()
	}
	if err := ValidateName(name); err != nil {
		return Volume{}, false, fmt.Errorf("create %s: %w", name, err)
	}
	if err := validateOpts(opts); err != nil {
		return Volume{}, false, fmt.Errorf("create %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.vols[name]; ok {
		if ref != "" {
			e.refs[ref] = true
		}
		return e.Volume, false, nil
	}
	labels = maps.Clone(labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if anonymous {
		labels[AnonymousLabel] = ""
	}
	if opts == nil {
		opts = map[string]string{}
	}
	v = Volume{Name: name, Driver: DriverName, Labels: labels, Options: maps.Clone(opts), CreatedAt: time.Now().UTC().Truncate(time.Second)}
	// Made aside and renamed into place: a crash leaves either nothing or
	// a whole volume.
	tmp, err := os.MkdirTemp(s.root, ".new-")
	if err != nil {
		return Volume{}, false, fmt.Errorf("create %s: %w", name, err)
	}
	err = os.Mkdir(filepath.Join(tmp, "_data"), 0o755)
	if err == nil {
		err = writeMeta(tmp, v)
	}
	if err == nil {
		err = os.Chmod(tmp, 0o701)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.root, name))
	}
	if err == nil {
		err = syncDir(s.root)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return Volume{}, false, fmt.Errorf("create %s: %w", name, err)
	}
	e := &entry{Volume: v, refs: map[string]bool{}, mounts: map[string]bool{}}
	if ref != "" {
		e.refs[ref] = true
	}
	s.vols[name] = e
	return v, true, nil
}

func writeMeta(dir string, v Volume) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, metaName))
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func notFound(name string) error {
	return errdefs.NotFound("get %s: no such volume", name)
}

// Get returns a volume by name.
func (s *Store) Get(name string) (Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return Volume{}, notFound(name)
	}
	return e.Volume, nil
}

// Info is a volume with the containers that reference it.
type Info struct {
	Volume
	Refs []string
}

// List returns every volume, by name.
func (s *Store) List() []Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Info, 0, len(s.vols))
	for _, e := range s.vols {
		out = append(out, Info{Volume: e.Volume, Refs: sortedKeys(e.refs)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := slices.Collect(maps.Keys(m))
	slices.Sort(out)
	return out
}

// Acquire records that container ref uses the volume.
func (s *Store) Acquire(name, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return notFound(name)
	}
	e.refs[ref] = true
	return nil
}

// Release drops ref's use (and mount) of the volume.
func (s *Store) Release(name, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.vols[name]; ok {
		delete(e.refs, ref)
	}
}

// Remove deletes a volume no container references (as in docker, not
// even force removes one in use).
func (s *Store) Remove(name string) error {
	tmp, err := s.detach(name)
	if err != nil {
		return err
	}
	// The data goes outside the lock: a big volume does not hold up the
	// others.
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

// detach takes an unused volume out of the store and renames its
// directory away (a crash during the removal of its data never leaves a
// volume half there; Open clears what is left). Whatever is mounted on
// its data, its options' mount or one left by a dead daemon, comes off
// first, so the removal never reaches into a mounted tree.
func (s *Store) detach(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return "", notFound(name)
	}
	if len(e.refs) > 0 {
		return "", errdefs.Conflict("remove %s: volume is in use - [%s]", name, strings.Join(sortedKeys(e.refs), ", "))
	}
	p := filepath.Join(s.root, name)
	if err := unmountIfMounted(filepath.Join(p, "_data")); err != nil {
		return "", fmt.Errorf("remove %s: %w", name, err)
	}
	e.mounted = false
	tmp := filepath.Join(s.root, ".rm-"+NewName()[:16])
	if err := os.Rename(p, tmp); err != nil {
		return "", fmt.Errorf("remove %s: %w", name, err)
	}
	delete(s.vols, name)
	return tmp, nil
}

// Mount makes the volume ready for container ref to use, doing its
// options' mount for the first user, and returns the path to bind.
func (s *Store) Mount(name, ref string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return "", notFound(name)
	}
	p := s.Path(name)
	if !e.mounted && e.Options["type"] != "" {
		if err := mountOpts(e.Options, p); err != nil {
			return "", fmt.Errorf("error while mounting volume '%s': %w", p, err)
		}
		e.mounted = true
	}
	e.mounts[ref] = true
	return p, nil
}

// Unmount ends ref's mount (reporting whether it had one); the options'
// mount goes with the last one.
func (s *Store) Unmount(name, ref string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return false, nil
	}
	had := e.mounts[ref]
	delete(e.mounts, ref)
	if len(e.mounts) == 0 && e.mounted {
		if err := unmountIfMounted(s.Path(name)); err != nil {
			return had, fmt.Errorf("unmount volume %s: %w", name, err)
		}
		e.mounted = false
	}
	return had, nil
}

// UnmountUnused undoes the options' mounts no container uses: those a
// daemon that died left behind for containers that are gone.
func (s *Store) UnmountUnused() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name, e := range s.vols {
		if e.mounted && len(e.mounts) == 0 {
			if err := unmountIfMounted(s.Path(name)); err != nil {
				errs = append(errs, fmt.Errorf("unmount volume %s: %w", name, err))
				continue
			}
			e.mounted = false
		}
	}
	return errors.Join(errs...)
}

// Mounted counts the containers mounting the volume now.
func (s *Store) Mounted(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.vols[name]; ok {
		return len(e.mounts)
	}
	return 0
}
