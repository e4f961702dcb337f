package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"berth.dev/berth/errdefs"
	"berth.dev/berth/internal/lazyregexp"
)

// validName is docker's rule for container names.
var validName = lazyregexp.New(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Store holds every container's record, by ID and by name.
type Store struct {
	root  string // <data-root>/containers
	mu    sync.RWMutex
	byID  map[string]*Container
	names map[string]string // "/name" -> ID
}

// Open loads the records under root (made if missing). A record that does
// not decode is skipped and returned in bad, so that one broken directory
// does not keep the daemon from starting.
func Open(root string) (s *Store, bad []error, err error) {
	if err := os.MkdirAll(root, 0o710); err != nil {
		return nil, nil, fmt.Errorf("container store: %w", err)
	}
	s = &Store{root: root, byID: map[string]*Container{}, names: map[string]string{}}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, fmt.Errorf("container store: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, ConfigName))
		if err != nil {
			bad = append(bad, fmt.Errorf("container %s: %w", e.Name(), err))
			continue
		}
		c := &Container{}
		if err := json.Unmarshal(b, c); err != nil || c.ID != e.Name() {
			bad = append(bad, fmt.Errorf("container %s: bad record: %v", e.Name(), err))
			continue
		}
		c.dir = dir
		s.byID[c.ID] = c
		// Two records share a name when a daemon died while an --rm
		// container's files were being removed and a new container had
		// taken the name: the newer keeps it.
		if other, ok := s.byID[s.names[c.Name]]; !ok || c.Created.After(other.Created) {
			s.names[c.Name] = c.ID
		}
	}
	return s, bad, nil
}

// New makes the directory and record of a new container named name (a
// random name when empty) and reserves the name. The caller fills the
// record and saves it.
func (s *Store) New(id, name string) (*Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		for i := 0; ; i++ {
			name = "/" + randomName(i > 10)
			if _, taken := s.names[name]; !taken {
				break
			}
		}
	} else {
		if !validName.MatchString(name) {
			return nil, errdefs.Invalid("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
		}
		if !strings.HasPrefix(name, "/") {
			name = "/" + name
		}
		if other, taken := s.names[name]; taken {
			return nil, errdefs.Conflict("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", name, other)
		}
	}
	dir := filepath.Join(s.root, id)
	if err := os.Mkdir(dir, 0o710); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	c := &Container{ID: id, Name: name, dir: dir}
	s.byID[id] = c
	s.names[name] = id
	return c, nil
}

// Get finds a container by full ID, name (with or without "/") or unique
// ID prefix, as docker does.
func (s *Store) Get(ref string) (*Container, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ref == "" {
		return nil, errdefs.Invalid("container name or ID is empty")
	}
	if c, ok := s.byID[ref]; ok {
		return c, nil
	}
	name := ref
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	if id, ok := s.names[name]; ok {
		return s.byID[id], nil
	}
	var found *Container
	for id, c := range s.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.Invalid("multiple IDs found with provided prefix: %s", ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, errdefs.NotFound("No such container: %s", ref)
	}
	return found, nil
}

// List returns every container, newest first.
func (s *Store) List() []*Container {
	s.mu.RLock()
	out := make([]*Container, 0, len(s.byID))
	for _, c := range s.byID {
		out = append(out, c)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

// Forget drops a container from the store's view (its ID and name are
// free) and leaves its directory, whose removal follows.
func (s *Store) Forget(c *Container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, c.ID)
	if s.names[c.Name] == c.ID {
		delete(s.names, c.Name)
	}
}

// Delete forgets a container and removes its directory (which must hold
// no mounts).
func (s *Store) Delete(c *Container) error {
	s.mu.Lock()
	delete(s.byID, c.ID)
	if s.names[c.Name] == c.ID {
		delete(s.names, c.Name)
	}
	s.mu.Unlock()
	if err := os.RemoveAll(c.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("container %s: remove directory: %w", c.ID, err)
	}
	return nil
}

var (
	adjectives = []string{"admiring", "brave", "calm", "clever", "dazzling", "eager", "elegant", "festive",
		"gallant", "happy", "jolly", "keen", "loving", "modest", "nifty", "optimistic", "peaceful",
		"quirky", "relaxed", "serene", "tender", "upbeat", "vibrant", "wizardly", "youthful", "zealous"}
	surnames = []string{"archimedes", "babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper",
		"hypatia", "johnson", "kepler", "lovelace", "meitner", "newton", "noether", "pascal", "ritchie",
		"shannon", "thompson", "turing", "volta", "wozniak", "yalow", "zhukovsky"}
)

// randomName is docker's adjective_surname; with retry a digit is added.
func randomName(retry bool) string {
	n := adjectives[rand.IntN(len(adjectives))] + "_" + surnames[rand.IntN(len(surnames))]
	if retry {
		n += fmt.Sprint(rand.IntN(10))
	}
	return n
}

// Rename gives c a new name (docker's rules), freeing the old one.
func (s *Store) Rename(c *Container, name string) (old string, err error) {
	if !validName.MatchString(name) {
		return "", errdefs.Invalid("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Lock()
	defer c.Unlock()
	old = c.Name
	if name == old {
		return "", errdefs.Invalid("Renaming a container with the same name as its current name")
	}
	if other, taken := s.names[name]; taken {
		return "", errdefs.Conflict("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", name, other)
	}
	c.Name = name
	if err := c.save(); err != nil {
		c.Name = old
		return "", err
	}
	delete(s.names, old)
	s.names[name] = c.ID
	return old, nil
}
