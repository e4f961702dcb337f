package apitest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type certPair struct{ cert, key string }

// testPKI makes a CA and, signed by it, a server certificate for 127.0.0.1
// and a client certificate; and a client certificate from another CA.
func testPKI(t *testing.T) (dir string, ca string, server, client, rogue certPair) {
	t.Helper()
	dir = t.TempDir()
	caCert, caKey := newCert(t, dir, "ca", nil, nil, true, nil)
	server = issue(t, dir, "server", caCert, caKey, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})
	client = issue(t, dir, "client", caCert, caKey, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	otherCA, otherKey := newCert(t, dir, "other-ca", nil, nil, true, nil)
	rogue = issue(t, dir, "rogue", otherCA, otherKey, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	return dir, filepath.Join(dir, "ca.pem"), server, client, rogue
}

var serial int64

func newCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool, usage []x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: usage,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, name+"-key.pem"), "EC PRIVATE KEY", kb)
	return cert, key
}

func issue(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage []x509.ExtKeyUsage) certPair {
	newCert(t, dir, name, ca, caKey, false, usage)
	return certPair{filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// TestTLS: with --tlsverify the docker CLI gets in with a client
// certificate from the CA, and not without one or with another CA's.
func TestTLS(t *testing.T) {
	d := newDaemon(t)
	_, ca, server, client, rogue := testPKI(t)
	addr := "127.0.0.1:" + freePort(t)
	d.start("-H", "unix://"+d.sock, "-H", "tcp://"+addr, "--tlsverify", "--tlscacert", ca, "--tlscert", server.cert, "--tlskey", server.key)

	docker := func(args ...string) (string, error) {
		cmd := exec.Command(dockerCLI, append([]string{"-H", "tcp://" + addr}, args...)...)
		cmd.Env = dockerEnv(t)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := docker("--tlsverify", "--tlscacert", ca, "--tlscert", client.cert, "--tlskey", client.key, "version", "--format", "{{.Server.APIVersion}}")
	if err != nil || strings.TrimSpace(out) != "1.56" {
		t.Fatalf("docker with client certificate: %v\n%s\n%s", err, out, d.log.String())
	}
	// TLS, but no client certificate.
	if out, err := docker("--tlsverify", "--tlscacert", ca, "version", "--format", "{{.Server.APIVersion}}"); err == nil || strings.Contains(out, "1.56") {
		t.Fatalf("docker without a client certificate got in: %s", out)
	} else {
		mustContain(t, "no client certificate", out, "tls: certificate required")
	}
	// A certificate from another CA.
	if out, err := docker("--tlsverify", "--tlscacert", ca, "--tlscert", rogue.cert, "--tlskey", rogue.key, "version", "--format", "{{.Server.APIVersion}}"); err == nil || strings.Contains(out, "1.56") {
		t.Fatalf("docker with a foreign client certificate got in: %s", out)
	} else {
		mustContain(t, "foreign client certificate", out, "tls: ")
	}
	// Plain HTTP on the TLS port.
	if out, err := docker("version", "--format", "{{.Server.APIVersion}}"); err == nil || strings.Contains(out, "1.56") {
		t.Fatalf("plain docker got in: %s", out)
	} else {
		mustContain(t, "plain HTTP", out, "HTTP request to an HTTPS server")
	}
}

// TestPlainTCP: tcp without TLS needs --insecure-tcp, and then warns.
func TestPlainTCP(t *testing.T) {
	d := newDaemon(t)
	addr := "127.0.0.1:" + freePort(t)
	out, err := exec.Command(d.bin, append(d.baseArgs(), "-H", "tcp://"+addr)...).CombinedOutput()
	if err == nil {
		t.Fatal("daemon listened on plain tcp without --insecure-tcp")
	}
	mustContain(t, "plain tcp refused", string(out), "refusing to listen on tcp://"+addr+" without TLS")

	d.start("-H", "unix://"+d.sock, "-H", "tcp://"+addr, "--insecure-tcp")
	mustContain(t, "warning", d.log.String(), "WITHOUT TLS")
	cmd := exec.Command(dockerCLI, "-H", "tcp://"+addr, "version", "--format", "{{.Server.APIVersion}}")
	cmd.Env = dockerEnv(t)
	if b, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != "1.56" {
		t.Fatalf("docker over plain tcp: %v %s", err, b)
	}
}
