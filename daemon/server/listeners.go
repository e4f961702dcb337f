package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"berth.dev/berth/errdefs"
	"github.com/coreos/go-systemd/v22/activation"
)

// ListenOptions are what listening needs beyond the address.
type ListenOptions struct {
	// Group owns unix sockets (mode 0660). When it does not exist and
	// GroupRequired is false, root's group is used with a warning.
	Group         string
	GroupRequired bool
	// TLS, when set, wraps tcp listeners.
	TLS *tls.Config
	// InsecureTCP allows tcp without TLS.
	InsecureTCP bool
	Log         *slog.Logger
}

// Listen opens the listeners of one -H address: unix://path, tcp://host:port
// or fd:// (every systemd socket), fd://NAME (by LISTEN_FDNAMES or number).
func Listen(addr string, o ListenOptions) ([]net.Listener, error) {
	proto, rest, ok := strings.Cut(addr, "://")
	if !ok {
		if strings.HasPrefix(addr, "/") {
			proto, rest = "unix", addr
		} else {
			return nil, errdefs.Invalid("invalid host %q: want unix:///path, tcp://host:port or fd://", addr)
		}
	}
	switch proto {
	case "unix":
		l, err := listenUnix(rest, o)
		if err != nil {
			return nil, err
		}
		return []net.Listener{l}, nil
	case "tcp":
		l, err := listenTCP(rest, o)
		if err != nil {
			return nil, err
		}
		return []net.Listener{l}, nil
	case "fd":
		return listenFD(rest)
	}
	return nil, errdefs.Invalid("invalid host %q: unknown protocol %q", addr, proto)
}

func listenUnix(path string, o ListenOptions) (net.Listener, error) {
	if path == "" {
		return nil, errdefs.Invalid("unix socket path is empty")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, errdefs.Conflict("%s exists and is not a socket; refusing to remove it", path)
		}
		// A socket file: live if something answers on it, stale otherwise.
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, errdefs.Conflict("another daemon is listening on %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	gid, err := socketGroup(o)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chown(path, 0, gid); err != nil {
		l.Close()
		return nil, fmt.Errorf("chown %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return l, nil
}

func socketGroup(o ListenOptions) (int, error) {
	if o.Group == "" {
		return 0, nil
	}
	if gid, err := strconv.Atoi(o.Group); err == nil {
		return gid, nil
	}
	g, err := user.LookupGroup(o.Group)
	if err != nil {
		if o.GroupRequired {
			return 0, errdefs.Invalid("socket group %q: %v", o.Group, err)
		}
		if o.Log != nil {
			o.Log.Warn("socket group not found; the socket is root's only", "group", o.Group)
		}
		return 0, nil
	}
	return strconv.Atoi(g.Gid)
}

func listenTCP(hostport string, o ListenOptions) (net.Listener, error) {
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		port := "2375"
		if o.TLS != nil {
			port = "2376"
		}
		hostport = net.JoinHostPort(strings.Trim(hostport, "[]"), port)
	}
	if o.TLS == nil && !o.InsecureTCP {
		return nil, errdefs.Invalid("refusing to listen on tcp://%s without TLS: anyone who reaches it is root on this host; "+
			"use --tlsverify with --tlscacert/--tlscert/--tlskey, or --insecure-tcp if you really mean it", hostport)
	}
	l, err := net.Listen("tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("listen on tcp://%s: %w", hostport, err)
	}
	if o.TLS == nil {
		if o.Log != nil {
			o.Log.Warn("!!! API listening on tcp://" + l.Addr().String() + " WITHOUT TLS: anyone who can reach this address controls the host as root !!!")
		}
		return l, nil
	}
	return tls.NewListener(l, o.TLS), nil
}

// TLSConfig is the server side of --tls/--tlsverify: with verify, clients
// must present a certificate signed by caFile.
func TLSConfig(caFile, certFile, keyFile string, verify bool) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errdefs.Invalid("TLS needs --tlscert and --tlskey")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, errdefs.Invalid("load TLS certificate %s / key %s: %v", certFile, keyFile, err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if verify {
		if caFile == "" {
			return nil, errdefs.Invalid("--tlsverify needs --tlscacert")
		}
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, errdefs.Invalid("read CA %s: %v", caFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errdefs.Invalid("no certificate in CA file %s", caFile)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// The systemd fds are taken once (the environment is cleared then), and
// each is handed out at most once.
var sdFiles = sync.OnceValue(func() []*os.File { return activation.Files(true) })

var sdTaken = map[int]bool{}

func listenFD(name string) ([]net.Listener, error) {
	files := sdFiles()
	if len(files) == 0 {
		return nil, errdefs.Invalid("fd://%s: no sockets passed by systemd (LISTEN_PID/LISTEN_FDS unset or for another process)", name)
	}
	var out []net.Listener
	for i, f := range files {
		fd := int(f.Fd())
		match := name == "" || name == f.Name() || name == strconv.Itoa(fd)
		if !match || sdTaken[i] {
			continue
		}
		l, err := net.FileListener(f)
		if err != nil {
			return nil, fmt.Errorf("fd %d (%s) is not a listening socket: %w", fd, f.Name(), err)
		}
		sdTaken[i] = true
		f.Close()
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, errdefs.NotFound("fd://%s: no such socket among the %d systemd passed", name, len(files))
	}
	return out, nil
}
