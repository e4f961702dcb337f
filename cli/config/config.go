// Package config reads and writes the client's config.json as docker's CLI
// does, for registry credentials: "auths" (base64 "user:password" in
// "auth", "identitytoken"), and the credential helpers named by
// "credsStore" and "credHelpers" (docker-credential-<name> programs). A
// file written by berth is read by docker and the other way round; keys
// berth does not know are kept as they were.
package config

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/registry"
)

// FileName is the config file in the config directory.
const FileName = "config.json"

// IndexServer is the key of Docker Hub's credentials.
const IndexServer = "https://index.docker.io/v1/"

// Dir is the config directory when --config is not given: $BERTH_CONFIG,
// else $DOCKER_CONFIG, else ~/.docker (docker's, so that both CLIs share
// their logins).
func Dir() string {
	if d := os.Getenv("BERTH_CONFIG"); d != "" {
		return d
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".docker")
}

// File is a loaded config.json.
type File struct {
	Path string
	// CredsStore is the helper for every registry without its own in
	// CredHelpers ("" keeps credentials in the file).
	CredsStore  string
	CredHelpers map[string]string

	// raw is every top-level key as read; auths are the "auths" entries,
	// each with its keys as read, so that unknown keys survive a write.
	raw   map[string]json.RawMessage
	auths map[string]map[string]json.RawMessage
}

// Load reads dir's config.json; a missing file is an empty config.
func Load(dir string) (*File, error) {
	f := &File{Path: filepath.Join(dir, FileName), raw: map[string]json.RawMessage{}, auths: map[string]map[string]json.RawMessage{}}
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loading config file: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(b, &f.raw); err != nil {
		return nil, fmt.Errorf("loading config file: %s: %w", f.Path, err)
	}
	for k, dst := range map[string]any{"auths": &f.auths, "credsStore": &f.CredsStore, "credHelpers": &f.CredHelpers} {
		if v, ok := f.raw[k]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return nil, fmt.Errorf("loading config file: %s: %q: %w", f.Path, k, err)
			}
		}
	}
	if f.auths == nil { // "auths": null
		f.auths = map[string]map[string]json.RawMessage{}
	}
	return f, nil
}

// helper is the credential helper for a registry key, "" for the file.
func (f *File) helper(key string) string {
	if h, ok := f.CredHelpers[key]; ok && key != "" {
		return h
	}
	return f.CredsStore
}

// Get is the stored credentials of a registry key (IndexServer or
// host[:port]); none stored is an empty AuthConfig and no error.
func (f *File) Get(key string) (registry.AuthConfig, error) {
	ac, err := f.fileGet(key)
	if err != nil {
		return registry.AuthConfig{}, err
	}
	if h := f.helper(key); h != "" {
		// The file keeps no secrets beside a helper; the helper's answer
		// is the credentials.
		creds, err := helperGet(h, key)
		if err != nil {
			return registry.AuthConfig{ServerAddress: key}, err
		}
		if creds == nil {
			return registry.AuthConfig{}, nil
		}
		ac.Username, ac.Password, ac.IdentityToken = "", "", ""
		if creds.Username == tokenUsername {
			ac.IdentityToken = creds.Secret
		} else {
			ac.Username, ac.Password = creds.Username, creds.Secret
		}
		ac.ServerAddress = key
	}
	return ac, nil
}

// fileGet reads the "auths" entry of key, or of an older entry whose key
// is a URL of the same host (as docker's file store does).
func (f *File) fileGet(key string) (registry.AuthConfig, error) {
	e, ok := f.auths[key]
	k := key
	if !ok {
		for r, v := range f.auths {
			if ConvertToHostname(r) == key {
				e, k, ok = v, r, true
				break
			}
		}
	}
	if !ok {
		return registry.AuthConfig{}, nil
	}
	var ac registry.AuthConfig
	for name, dst := range map[string]*string{"username": &ac.Username, "password": &ac.Password, "auth": &ac.Auth,
		"identitytoken": &ac.IdentityToken, "registrytoken": &ac.RegistryToken} {
		if v, ok := e[name]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return registry.AuthConfig{}, fmt.Errorf("config file %s: auths %q: %q: %w", f.Path, k, name, err)
			}
		}
	}
	if ac.Auth != "" {
		user, pass, err := decodeAuth(ac.Auth)
		if err != nil {
			return registry.AuthConfig{}, fmt.Errorf("config file %s: auths %q: %w", f.Path, k, err)
		}
		ac.Username, ac.Password = user, pass
	}
	ac.Auth = ""
	ac.ServerAddress = k
	return ac, nil
}

func decodeAuth(s string) (user, pass string, err error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", fmt.Errorf("invalid auth: %w", err)
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok || user == "" {
		return "", "", errors.New("invalid auth configuration file") // docker's words
	}
	return user, strings.Trim(pass, "\x00"), nil
}

// Store saves ac under ac.ServerAddress: with the registry's helper, else
// in the file (an identity token in place of the password when there is
// one). plain says the secrets went into the file and changed it (docker
// then warns that they are stored unencrypted); the same credentials
// again leave the file as it is.
func (f *File) Store(ac registry.AuthConfig) (plain bool, err error) {
	key := ac.ServerAddress
	if key == "" {
		return false, errors.New("storing credentials: no server address")
	}
	old := f.auths[key]
	e := map[string]json.RawMessage{}
	for k, v := range old {
		switch k {
		case "username", "password", "auth", "identitytoken", "registrytoken", "serveraddress":
		default:
			e[k] = v // email and any other key kept
		}
	}
	h := f.helper(key)
	if h != "" {
		creds := helperCreds{ServerURL: key, Username: ac.Username, Secret: ac.Password}
		if ac.IdentityToken != "" {
			creds.Username, creds.Secret = tokenUsername, ac.IdentityToken
		}
		if err := helperStore(h, creds); err != nil {
			return false, err
		}
		// docker keeps an empty entry beside a helper (once for the
		// user's email): kept so that both CLIs list the same logins.
	} else {
		if ac.Username != "" || ac.Password != "" {
			e["auth"] = mustJSON(base64.StdEncoding.EncodeToString([]byte(ac.Username + ":" + ac.Password)))
		}
		if ac.IdentityToken != "" {
			e["identitytoken"] = mustJSON(ac.IdentityToken)
		}
		if ac.RegistryToken != "" {
			e["registrytoken"] = mustJSON(ac.RegistryToken)
		}
	}
	if _, ok := f.auths[key]; ok && bytes.Equal(mustJSON(old), mustJSON(e)) {
		return false, nil
	}
	f.auths[key] = e
	return h == "", f.Save()
}

// Erase removes the credentials of key from its helper and the file; no
// credentials is not an error for the file, as for docker.
func (f *File) Erase(key string) error {
	if h := f.helper(key); h != "" {
		if err := helperErase(h, key); err != nil {
			return err
		}
	}
	if _, ok := f.auths[key]; !ok {
		return nil
	}
	delete(f.auths, key)
	return f.Save()
}

// Save writes the file atomically (a temporary file renamed over it), mode
// 0600, with every key it was read with. A symbolic link is written
// through, as docker does.
func (f *File) Save() error {
	f.raw["auths"] = mustJSON(f.auths)
	b, err := json.MarshalIndent(f.raw, "", "\t")
	if err != nil {
		return fmt.Errorf("saving config file: %w", err)
	}
	path := f.Path
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	} else if l, lerr := os.Readlink(path); lerr == nil { // dangling
		if !filepath.IsAbs(l) {
			l = filepath.Join(filepath.Dir(path), l)
		}
		path = l
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("saving config file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("saving config file: %w", err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("saving config file %s: %w", path, err)
	}
	return nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings and maps of raw JSON always marshal
	}
	return b
}

// ConvertToHostname is a registry address as a key: the host[:port] of a
// URL, the first path element of anything else.
func ConvertToHostname(addr string) string {
	if strings.Contains(addr, "://") {
		if u, err := url.Parse(addr); err == nil && u.Hostname() != "" {
			if u.Port() == "" {
				return u.Hostname()
			}
			return net.JoinHostPort(u.Hostname(), u.Port())
		}
	}
	host, _, _ := strings.Cut(addr, "/")
	return host
}

// AuthKey is the credentials' key of an image reference's domain: Docker
// Hub's for docker.io, the domain for any other.
func AuthKey(domain string) string {
	if domain == "docker.io" || domain == "index.docker.io" {
		return IndexServer
	}
	return domain
}

// ServerKey is the key of a registry as `login` and `logout` name it: the
// index server for none (or "docker.io"), else its host[:port].
func ServerKey(server string) string {
	if server == "" || server == "docker.io" || server == IndexServer {
		return IndexServer
	}
	return ConvertToHostname(server)
}
