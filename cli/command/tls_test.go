package command_test

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
	"strings"
	"testing"
	"time"

	"berth.dev/berth/internal/testutil"
)

// writeCert makes a key and a certificate signed by parent (self-signed
// when parent is nil) and writes them as PEM into dir/name{-key,}.pem.
func writeCert(t *testing.T, dir, name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestTLS: berth reaches a daemon on tcp with mutual TLS through the flags
// and through DOCKER_CERT_PATH/DOCKER_TLS_VERIFY, and fails without a
// client certificate or against the wrong CA.
func TestTLS(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	now := time.Now()
	ca, caKey := writeCert(t, dir, "ca", &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	writeCert(t, dir, "server", &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, caKey)
	writeCert(t, dir, "client", &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "client"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, caKey)
	other := t.TempDir()
	writeCert(t, other, "ca", &x509.Certificate{SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, nil)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + l.Addr().String()
	l.Close()
	p := func(n string) string { return filepath.Join(dir, n) }
	startBerthdArgs(t, "-H", addr, "--tlsverify", "--tlscacert", p("ca.pem"), "--tlscert", p("server.pem"), "--tlskey", p("server-key.pem"))

	bin := testutil.BerthBinary(t)
	berth := func(env []string, args ...string) result {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		r := result{out: string(out)}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code, r.err = ee.ExitCode(), string(ee.Stderr)
		} else if err != nil {
			t.Fatal(err)
		}
		return r
	}
	vf := []string{"version", "--format", "{{.Server.Platform.Name}}"}
	if r := berth(nil, append([]string{"-H", addr, "--tlsverify", "--tlscacert", p("ca.pem"), "--tlscert", p("client.pem"), "--tlskey", p("client-key.pem")}, vf...)...); r.code != 0 || r.out != "berth\n" {
		t.Fatalf("--tlsverify with a client certificate: %s", r)
	}
	// DOCKER_CERT_PATH holds ca.pem, cert.pem and key.pem.
	certs := t.TempDir()
	for from, to := range map[string]string{"ca.pem": "ca.pem", "client.pem": "cert.pem", "client-key.pem": "key.pem"} {
		b, err := os.ReadFile(p(from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(certs, to), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if r := berth([]string{"DOCKER_HOST=" + addr, "DOCKER_CERT_PATH=" + certs, "DOCKER_TLS_VERIFY=1"}, vf...); r.code != 0 || r.out != "berth\n" {
		t.Fatalf("DOCKER_CERT_PATH and DOCKER_TLS_VERIFY: %s", r)
	}
	// --tls alone does not check the server but still sends the certificate.
	if r := berth(nil, append([]string{"-H", addr, "--tls", "--tlscert", p("client.pem"), "--tlskey", p("client-key.pem")}, vf...)...); r.code != 0 || r.out != "berth\n" {
		t.Fatalf("--tls: %s", r)
	}
	// No client certificate: the daemon refuses.
	if r := berth(nil, append([]string{"-H", addr, "--tlsverify", "--tlscacert", p("ca.pem"), "--tlscert", p("none.pem"), "--tlskey", p("none.pem")}, vf...)...); r.code != 1 {
		t.Fatalf("no client certificate: %s", r)
	}
	// The server's certificate is not signed by this CA.
	if r := berth(nil, append([]string{"-H", addr, "--tlsverify", "--tlscacert", filepath.Join(other, "ca.pem"), "--tlscert", p("client.pem"), "--tlskey", p("client-key.pem")}, vf...)...); r.code != 1 ||
		!strings.Contains(r.err, "certificate") {
		t.Fatalf("wrong CA: %s", r)
	}
	// Plain HTTP to a TLS port fails clearly.
	if r := berth(nil, append([]string{"-H", addr}, vf...)...); r.code != 1 || r.err == "" {
		t.Fatalf("no TLS: %s", r)
	}
}
