package firewall

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// Test fixtures: named network namespaces made with ip(8), and Go sockets
// opened inside them from a locked OS thread.

func ipCmd(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// namespace is a named network namespace that exists for one test.
type namespace struct {
	name string
	h    netns.NsHandle
}

// newNamespace makes a namespace named prefix-<random>, with lo up, and
// deletes it when t ends.
func newNamespace(t testing.TB, prefix string) *namespace {
	t.Helper()
	name := prefix + "-" + randHex(4)
	ipCmd(t, "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ns := &namespace{name: name, h: h}
	ns.ip(t, "link", "set", "lo", "up")
	return ns
}

// ip runs ip(8) in ns.
func (ns *namespace) ip(t testing.TB, args ...string) {
	t.Helper()
	ipCmd(t, append([]string{"-n", ns.name}, args...)...)
}

func (ns *namespace) sysctl(t testing.TB, kv ...string) {
	t.Helper()
	args := append([]string{"netns", "exec", ns.name, "sysctl", "-qw"}, kv...)
	ipCmd(t, args...)
}

// do runs fn on an OS thread in ns; sockets fn opens stay in ns.
func (ns *namespace) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return // the thread stays locked and dies with the goroutine
		}
		defer orig.Close()
		if err := netns.Set(ns.h); err != nil {
			errc <- err
			return
		}
		err = fn()
		if serr := netns.Set(orig); serr != nil {
			errc <- errors.Join(err, serr)
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// serve answers every TCP connection and UDP datagram to addr in ns with
// the source address it came from and the address it was for, until t
// ends. (A UDP server on a wildcard address answers that address.)
func (ns *namespace) serve(t testing.TB, network, addr string) {
	t.Helper()
	var wg sync.WaitGroup
	err := ns.do(func() error {
		switch network {
		case "tcp", "tcp4", "tcp6":
			ln, err := net.Listen(network, addr)
			if err != nil {
				return err
			}
			t.Cleanup(func() { ln.Close(); wg.Wait() })
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					fmt.Fprintln(c, c.RemoteAddr(), c.LocalAddr())
					c.Close()
				}
			}()
		default:
			pc, err := net.ListenPacket(network, addr)
			if err != nil {
				return err
			}
			t.Cleanup(func() { pc.Close(); wg.Wait() })
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 512)
				for {
					_, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					_, _ = pc.WriteTo([]byte(from.String()+" "+pc.LocalAddr().String()+"\n"), from)
				}
			}()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("serve %s %s in %s: %v", network, addr, ns.name, err)
	}
}

// ask connects from ns to addr and returns the source address the server
// saw and the address it answered at (IPs only).
func (ns *namespace) ask(network, addr string, timeout time.Duration) (src, dst string, err error) {
	err = ns.do(func() error {
		c, err := net.DialTimeout(network, addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		if strings.HasPrefix(network, "udp") {
			if _, err := c.Write([]byte("hi")); err != nil {
				return err
			}
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return fmt.Errorf("bad answer %q", line)
		}
		if src, _, err = net.SplitHostPort(f[0]); err != nil {
			return err
		}
		dst, _, err = net.SplitHostPort(f[1])
		return err
	})
	return src, dst, err
}

const (
	reachTimeout   = 3 * time.Second
	blockedTimeout = 700 * time.Millisecond
)

// reaches fails t unless a connection from ns to addr is answered, and
// the server saw the source wantSrc (when not empty).
func (ns *namespace) reaches(t testing.TB, network, addr, wantSrc string) {
	t.Helper()
	src, _, err := ns.ask(network, addr, reachTimeout)
	if err != nil {
		t.Errorf("%s -> %s %s: %v, want an answer", ns.name, network, addr, err)
		return
	}
	if wantSrc != "" && src != wantSrc {
		t.Errorf("%s -> %s %s: server saw source %s, want %s", ns.name, network, addr, src, wantSrc)
	}
}

// blocked fails t if a connection from ns to addr is answered.
func (ns *namespace) blocked(t testing.TB, network, addr string) {
	t.Helper()
	if src, _, err := ns.ask(network, addr, blockedTimeout); err == nil {
		t.Errorf("%s -> %s %s: answered (server saw %s), want no answer", ns.name, network, addr, src)
	}
}

// lands fails t unless a TCP connection from ns to addr is answered by
// the server at wantDst (where a published port leads).
func (ns *namespace) lands(t testing.TB, addr, wantDst string) {
	t.Helper()
	_, dst, err := ns.ask("tcp", addr, reachTimeout)
	if err != nil {
		t.Errorf("%s -> %s: %v, want an answer", ns.name, addr, err)
	} else if dst != wantDst {
		t.Errorf("%s -> %s: answered at %s, want %s", ns.name, addr, dst, wantDst)
	}
}
