package daemon

import (
	"bytes"
	"encoding/json"
	"os"
	"sort"
	"strings"

	"berth.dev/berth/errdefs"
)

// Config is the daemon's configuration: flags over /etc/berth/daemon.json,
// with dockerd's key names where dockerd has the setting.
type Config struct {
	Hosts          []string `json:"hosts,omitempty"`
	TLS            *bool    `json:"tls,omitempty"`
	TLSVerify      *bool    `json:"tlsverify,omitempty"`
	TLSCACert      string   `json:"tlscacert,omitempty"`
	TLSCert        string   `json:"tlscert,omitempty"`
	TLSKey         string   `json:"tlskey,omitempty"`
	InsecureTCP    bool     `json:"insecure-tcp,omitempty"`
	DataRoot       string   `json:"data-root,omitempty"`
	ExecRoot       string   `json:"exec-root,omitempty"`
	StorageDriver  string   `json:"storage-driver,omitempty"`
	LogLevel       string   `json:"log-level,omitempty"`
	Debug          bool     `json:"debug,omitempty"`
	DefaultRuntime string   `json:"default-runtime,omitempty"`
	LiveRestore    *bool    `json:"live-restore,omitempty"`
	Group          string   `json:"group,omitempty"`
	Pidfile        string   `json:"pidfile,omitempty"`
	Labels         []string `json:"labels,omitempty"`
	// Registries (dockerd's keys).
	RegistryMirrors        []string `json:"registry-mirrors,omitempty"`
	InsecureRegistries     []string `json:"insecure-registries,omitempty"`
	MaxConcurrentDownloads *int     `json:"max-concurrent-downloads,omitempty"`
	MaxConcurrentUploads   *int     `json:"max-concurrent-uploads,omitempty"`
	// CertsDir is where per-registry CAs and client certificates are
	// (docker's /etc/docker/certs.d layout); "" is /etc/berth/certs.d.
	CertsDir string `json:"certs-dir,omitempty"`
	// Networks (dockerd's keys): the default bridge's name ("none": no
	// default bridge network) and address, its MTU, ICC and NAT, and
	// whether berth manages packet rules at all.
	Bridge   string `json:"bridge,omitempty"`
	BIP      string `json:"bip,omitempty"`
	MTU      int    `json:"mtu,omitempty"`
	ICC      *bool  `json:"icc,omitempty"`
	IPMasq   *bool  `json:"ip-masq,omitempty"`
	IPTables *bool  `json:"iptables,omitempty"`
}

// Defaults of the settings that have one.
const (
	DefaultConfigFile = "/etc/berth/daemon.json"
	DefaultHost       = "unix:///run/berth/berth.sock"
	DefaultDataRoot   = "/var/lib/berth"
	DefaultExecRoot   = "/run/berth"
	DefaultGroup      = "berth"
	DefaultRuntime    = "berth"
)

func jsonFields() []string {
	b, _ := json.Marshal(fullConfig())
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// fullConfig has every field set so that marshalling it names all keys.
func fullConfig() Config {
	t := true
	return Config{Hosts: []string{"x"}, TLS: &t, TLSVerify: &t, TLSCACert: "x", TLSCert: "x", TLSKey: "x",
		InsecureTCP: true, DataRoot: "x", ExecRoot: "x", StorageDriver: "x", LogLevel: "x", Debug: true,
		DefaultRuntime: "x", LiveRestore: &t, Group: "x", Pidfile: "x", Labels: []string{"x"},
		RegistryMirrors: []string{"x"}, InsecureRegistries: []string{"x"}, MaxConcurrentDownloads: new(int), MaxConcurrentUploads: new(int), CertsDir: "x",
		Bridge: "x", BIP: "x", MTU: 1, ICC: &t, IPMasq: &t, IPTables: &t}
}

// LoadConfigFile reads a daemon.json. It returns the config and the keys
// the file sets (for the flag conflict check). Unknown keys are refused, as
// dockerd does, so that a typo does not go unnoticed.
func LoadConfigFile(path string) (*Config, map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return &Config{}, map[string]any{}, nil
	}
	var keys map[string]any
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, nil, errdefs.Invalid("unable to configure the berth daemon with file %s: %v", path, err)
	}
	known := map[string]bool{}
	for _, k := range jsonFields() {
		known[k] = true
	}
	var unknown []string
	for k := range keys {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, nil, errdefs.Invalid("unable to configure the berth daemon with file %s: the following directives don't match any configuration option: %s",
			path, strings.Join(unknown, ", "))
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&c); err != nil {
		return nil, nil, errdefs.Invalid("unable to configure the berth daemon with file %s: %v", path, err)
	}
	return &c, keys, nil
}

// EffectiveLogLevel is the log level in force: debug overrides log-level.
func (c *Config) EffectiveLogLevel() string {
	if c.Debug {
		return "debug"
	}
	if c.LogLevel == "" {
		return "info"
	}
	return c.LogLevel
}

// Validate checks values that do not depend on the host.
func (c *Config) Validate() error {
	switch c.EffectiveLogLevel() {
	case "debug", "info", "warn", "error", "fatal":
	default:
		return errdefs.Invalid("unable to parse logging level: %s", c.LogLevel)
	}
	if len(c.Hosts) == 0 {
		return errdefs.Invalid("no host to listen on")
	}
	for key, v := range map[string]*int{"max-concurrent-downloads": c.MaxConcurrentDownloads, "max-concurrent-uploads": c.MaxConcurrentUploads} {
		if v != nil && *v < 1 {
			return errdefs.Invalid("%s must be at least 1, not %d", key, *v)
		}
	}
	return nil
}

// TLSEnabled reports whether tcp listeners use TLS (--tlsverify implies --tls).
func (c *Config) TLSEnabled() bool {
	return (c.TLS != nil && *c.TLS) || c.Verify()
}

// Verify reports whether clients must present certificates signed by the CA.
func (c *Config) Verify() bool { return c.TLSVerify != nil && *c.TLSVerify }

// LiveRestoreEnabled is live-restore, on unless set off.
func (c *Config) LiveRestoreEnabled() bool { return c.LiveRestore == nil || *c.LiveRestore }

// Docker's defaults for transfers.
const (
	DefaultMaxConcurrentDownloads = 3
	DefaultMaxConcurrentUploads   = 5
)

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}
