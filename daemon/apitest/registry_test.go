package apitest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"berth.dev/berth/internal/testutil"
)

// withDockerConfig gives the daemon's docker CLI calls one config dir, so
// that a login is remembered by the commands after it.
func (d *daemon) withDockerConfig() string {
	d.dockerConfig = d.t.TempDir()
	return d.dockerConfig
}

// skopeoDigest is the manifest digest skopeo reads for ref (docker://...).
func skopeoDigest(t *testing.T, r *testutil.Registry, ref string) string {
	t.Helper()
	args := []string{"inspect", "--raw", "--tls-verify=false"}
	if r.CACert != "" {
		args = []string{"inspect", "--raw", "--cert-dir", filepath.Dir(r.CACert)}
	}
	out, err := exec.Command("skopeo", append(args, "docker://"+r.Addr+"/"+ref)...).Output()
	if err != nil {
		t.Fatalf("skopeo inspect %s: %v", ref, err)
	}
	d, err := exec.Command("sh", "-c", "printf %s \"$0\" | sha256sum", string(out)).Output()
	if err != nil {
		t.Fatal(err)
	}
	return "sha256:" + strings.Fields(string(d))[0]
}

// TestRegistryPlain: the docker CLI's pull, run of a missing image, push
// (with a cross-repository mount), pull by digest and search, against a
// real registry over plain HTTP (127.0.0.0/8 is insecure, as in docker).
func TestRegistryPlain(t *testing.T) {
	d := newDaemon(t)
	r := testutil.StartRegistry(t, testutil.RegistryOptions{})
	archive, id := busyboxArchive(t, "busybox:latest")
	r.Push(t, "docker-archive:"+archive, "busybox:latest")
	d.start()
	ref := r.Addr + "/busybox:latest"

	out := d.mustDocker("pull", ref)
	mustContain(t, "pull", out, "latest: Pulling from "+r.Addr+"/busybox", "Pull complete", "Digest: sha256:", "Status: Downloaded newer image for "+ref)
	if got := strings.TrimSpace(d.mustDocker("image", "inspect", "-f", "{{.ID}}", ref)); got != id {
		t.Fatalf("pulled image ID %s, want %s (the config's digest)", got, id)
	}
	want := skopeoDigest(t, r, "busybox:latest")
	digests := d.mustDocker("image", "inspect", "-f", "{{json .RepoDigests}}", ref)
	mustContain(t, "RepoDigests", digests, r.Addr+"/busybox@"+want)
	mustContain(t, "pull again", d.mustDocker("pull", ref), "Status: Image is up to date for "+ref)

	// run of an image that is not here yet pulls it.
	r.Push(t, "docker-archive:"+archive, "other:v2")
	out = d.mustDocker("run", "--rm", r.Addr+"/other:v2", "echo", "ran pulled")
	mustContain(t, "run", out, "Unable to find image '"+r.Addr+"/other:v2' locally", "ran pulled")

	// push: its layer mounted from the repository it came from.
	d.mustDocker("tag", ref, r.Addr+"/copy/bb:v1")
	out = d.mustDocker("push", r.Addr+"/copy/bb:v1")
	mustContain(t, "push", out, "The push refers to repository ["+r.Addr+"/copy/bb]", "Mounted from", "v1: digest: "+want)
	if got := skopeoDigest(t, r, "copy/bb:v1"); got != want {
		t.Fatalf("pushed digest %s, want %s", got, want)
	}
	mustContain(t, "push again", d.mustDocker("push", r.Addr+"/copy/bb:v1"), "Layer already exists")

	// by digest, after the image is gone.
	d.mustDocker("rmi", ref, r.Addr+"/copy/bb:v1", r.Addr+"/other:v2")
	out = d.mustDocker("pull", r.Addr+"/busybox@"+want)
	mustContain(t, "pull by digest", out, "Status: Downloaded newer image for "+r.Addr+"/busybox@"+want)

	out = d.mustDocker("search", r.Addr+"/bb")
	mustContain(t, "search", out, "NAME", r.Addr+"/copy/bb")
	if strings.Contains(out, r.Addr+"/other") {
		t.Fatalf("search for bb lists other:\n%s", out)
	}

	// A loaded image's layers are plain tars: the push compresses them,
	// and what it pushed pulls back.
	loadedArchive, loadedID := smallArchive(t, "loaded layer\n", "loaded:v1")
	mustContain(t, "load", d.mustDocker("load", "-i", loadedArchive), "Loaded image: loaded:v1")
	d.mustDocker("tag", "loaded:v1", r.Addr+"/loaded:v1")
	mustContain(t, "push of a loaded image", d.mustDocker("push", r.Addr+"/loaded:v1"), "Pushed", "v1: digest: sha256:")
	raw, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+r.Addr+"/loaded:v1").Output()
	if err != nil {
		t.Fatal(err)
	}
	var pushed struct {
		Layers []struct{ MediaType string } `json:"layers"`
	}
	if err := json.Unmarshal(raw, &pushed); err != nil || len(pushed.Layers) != 1 || !strings.HasSuffix(pushed.Layers[0].MediaType, "gzip") {
		t.Fatalf("pushed manifest of a loaded image: %s (%v)", raw, err)
	}
	mustContain(t, "push again", d.mustDocker("push", r.Addr+"/loaded:v1"), "Layer already exists")
	d.mustDocker("rmi", "loaded:v1", r.Addr+"/loaded:v1")
	d.mustDocker("pull", r.Addr+"/loaded:v1")
	if got := strings.TrimSpace(d.mustDocker("image", "inspect", "-f", "{{.ID}}", r.Addr+"/loaded:v1")); got != loadedID {
		t.Fatalf("pulled back %s, want %s", got, loadedID)
	}

	out, err = d.docker("pull", r.Addr+"/nothere:latest")
	if err == nil {
		t.Fatalf("pull of a missing image succeeded:\n%s", out)
	}
	mustContain(t, "pull missing", out, "manifest for "+r.Addr+"/nothere:latest not found")
}

// TestRegistryTLS: a registry with a certificate from a test CA is
// verified with the CA in certs.d, and refused with a wrong CA there.
func TestRegistryTLS(t *testing.T) {
	r := testutil.StartRegistry(t, testutil.RegistryOptions{TLS: true})
	other := testutil.StartRegistry(t, testutil.RegistryOptions{TLS: true})
	archive, _ := busyboxArchive(t, "busybox:latest")
	r.Push(t, "docker-archive:"+archive, "busybox:latest")
	ref := r.Addr + "/busybox:latest"

	d := newDaemon(t)
	d.start("--certs-dir", r.CertsDir(t))
	mustContain(t, "pull with the CA", d.mustDocker("pull", ref), "Pull complete")

	// certs.d names the registry, with another CA: verification fails.
	wrong := t.TempDir()
	if err := os.MkdirAll(filepath.Join(wrong, r.Addr), 0o755); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(other.CACert)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wrong, r.Addr, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	d2 := newDaemon(t)
	d2.start("--certs-dir", wrong)
	out, err := d2.docker("pull", ref)
	if err == nil {
		t.Fatalf("pull with the wrong CA succeeded:\n%s", out)
	}
	mustContain(t, "pull with the wrong CA", out, "certificate")
}

// TestRegistryBasicAuth: htpasswd over TLS; pull refused before login,
// login (right and wrong password), push and pull with the stored
// credentials, logout.
func TestRegistryBasicAuth(t *testing.T) {
	r := testutil.StartRegistry(t, testutil.RegistryOptions{TLS: true, Htpasswd: map[string]string{"alice": "s3cret"}})
	archive, _ := busyboxArchive(t, "busybox:latest")
	r.Push(t, "docker-archive:"+archive, "busybox:latest")
	d := newDaemon(t)
	cfg := d.withDockerConfig()
	d.start("--certs-dir", r.CertsDir(t))
	ref := r.Addr + "/busybox:latest"

	out, err := d.docker("pull", ref)
	if err == nil {
		t.Fatalf("pull without credentials succeeded:\n%s", out)
	}
	mustContain(t, "anonymous pull", out, "pull access denied for "+r.Addr+"/busybox")

	out, err = d.dockerIn([]byte("wrong\n"), "login", "-u", "alice", "--password-stdin", r.Addr)
	if err == nil {
		t.Fatalf("login with a wrong password succeeded:\n%s", out)
	}
	mustContain(t, "bad login", out, "401")
	out, err = d.dockerIn([]byte("s3cret\n"), "login", "-u", "alice", "--password-stdin", r.Addr)
	if err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	mustContain(t, "login", out, "Login Succeeded")
	b, err := os.ReadFile(filepath.Join(cfg, "config.json"))
	if err != nil || !strings.Contains(string(b), r.Addr) {
		t.Fatalf("config.json after login: %s %v", b, err)
	}

	mustContain(t, "pull", d.mustDocker("pull", ref), "Pull complete")
	d.mustDocker("tag", ref, r.Addr+"/alice/bb:1")
	mustContain(t, "push", d.mustDocker("push", r.Addr+"/alice/bb:1"), "1: digest: sha256:")

	mustContain(t, "logout", d.mustDocker("logout", r.Addr), "Removing login credentials for "+r.Addr)
	d.mustDocker("rmi", ref)
	if out, err := d.docker("pull", ref); err == nil {
		t.Fatalf("pull after logout succeeded:\n%s", out)
	}
}

// TestRegistryTokenAuth: bearer tokens from the test's token server,
// following the spec: anonymous pulls where granted, a token per
// repository and actions, a push refused to a user with pull only.
func TestRegistryTokenAuth(t *testing.T) {
	access := func(user, repo string) []string {
		switch {
		case user == "alice":
			return []string{"pull", "push"}
		case user == "bob" && strings.HasPrefix(repo, "shared/"):
			return []string{"pull"}
		case strings.HasPrefix(repo, "public/"):
			return []string{"pull"}
		}
		return nil
	}
	r := testutil.StartRegistry(t, testutil.RegistryOptions{Token: map[string]string{"alice": "a-pass", "bob": "b-pass"}, TokenAccess: access})
	archive, _ := busyboxArchive(t, "busybox:latest")
	r.Push(t, "docker-archive:"+archive, "public/busybox:latest")
	r.Push(t, "docker-archive:"+archive, "shared/busybox:latest")
	d := newDaemon(t)
	d.withDockerConfig()
	d.start("--certs-dir", r.CertsDir(t))

	mustContain(t, "anonymous pull of public", d.mustDocker("pull", r.Addr+"/public/busybox"), "Pull complete")
	if out, err := d.docker("pull", r.Addr+"/shared/busybox"); err == nil {
		t.Fatalf("anonymous pull of shared succeeded:\n%s", out)
	}

	if out, err := d.dockerIn([]byte("b-pass\n"), "login", "-u", "bob", "--password-stdin", r.Addr); err != nil {
		t.Fatalf("login bob: %v\n%s", err, out)
	}
	mustContain(t, "bob pulls shared", d.mustDocker("pull", r.Addr+"/shared/busybox"), "Status:")
	d.mustDocker("tag", r.Addr+"/shared/busybox", r.Addr+"/shared/bobs:1")
	out, err := d.docker("push", r.Addr+"/shared/bobs:1")
	if err == nil {
		t.Fatalf("bob, with pull only, pushed:\n%s", out)
	}

	if out, err := d.dockerIn([]byte("a-pass\n"), "login", "-u", "alice", "--password-stdin", r.Addr); err != nil {
		t.Fatalf("login alice: %v\n%s", err, out)
	}
	// A wrong password right after the right one is refused (no token
	// the right one got is reused for it).
	if out, err := d.dockerIn([]byte("wrong\n"), "login", "-u", "alice", "--password-stdin", r.Addr); err == nil {
		t.Fatalf("login alice with a wrong password succeeded:\n%s", out)
	}
	d.mustDocker("tag", r.Addr+"/shared/busybox", r.Addr+"/alice/bb:1")
	mustContain(t, "alice pushes", d.mustDocker("push", r.Addr+"/alice/bb:1"), "1: digest: sha256:")

	// The push asked for its repository with pull and push, and for the
	// repository it mounts from with pull.
	var scopes []string
	for _, tr := range r.TokenRequests() {
		if tr.User == "alice" {
			scopes = append(scopes, tr.Scopes...)
		}
	}
	for _, want := range []string{"repository:alice/bb:pull,push", "repository:shared/busybox:pull"} {
		if !slices.Contains(scopes, want) {
			t.Fatalf("alice's token requests asked for %q, not %q", scopes, want)
		}
	}
}

// TestRegistryAuthAPI: POST /auth answers as dockerd: 200 with its status,
// 401 for bad credentials.
func TestRegistryAuthAPI(t *testing.T) {
	r := testutil.StartRegistry(t, testutil.RegistryOptions{TLS: true, Htpasswd: map[string]string{"u": "p"}})
	d := newDaemon(t)
	d.start("--certs-dir", r.CertsDir(t))
	body := func(pass string) string {
		b, _ := json.Marshal(map[string]string{"username": "u", "password": pass, "serveraddress": r.Addr})
		return string(b)
	}
	out := d.curl("-i", "-X", "POST", "-H", "Content-Type: application/json", "-d", body("p"), "http://berth/auth")
	mustContain(t, "auth", out, "200 OK", `"Status":"Login Succeeded"`)
	out = d.curl("-i", "-X", "POST", "-H", "Content-Type: application/json", "-d", body("x"), "http://berth/auth")
	mustContain(t, "bad auth", out, "401 Unauthorized")
}

// TestRegistryMirror: a docker.io image comes from the mirror, which is
// tried before Docker Hub (never reached: the mirror has the image).
func TestRegistryMirror(t *testing.T) {
	r := testutil.StartRegistry(t, testutil.RegistryOptions{})
	archive, id := busyboxArchive(t, "busybox:latest")
	r.Push(t, "docker-archive:"+archive, "library/busybox:latest")
	d := newDaemon(t)
	conf := func(cidr string) {
		b, _ := json.Marshal(map[string]any{"registry-mirrors": []string{"http://" + r.Addr}, "insecure-registries": []string{cidr}})
		if err := os.WriteFile(d.config, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf("10.9.0.0/16")
	d.start()
	mustContain(t, "info", d.mustDocker("info"), "Insecure Registries:\n  127.0.0.0/8\n  10.9.0.0/16", "Registry Mirrors:\n  http://"+r.Addr+"/")
	// SIGHUP applies new registry settings.
	conf("10.8.0.0/16")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reload", func() bool { return strings.Contains(d.log.String(), "reloaded configuration") })
	mustContain(t, "info after reload", d.mustDocker("info"), "Insecure Registries:\n  127.0.0.0/8\n  10.8.0.0/16")
	out := d.mustDocker("pull", "busybox")
	mustContain(t, "pull through the mirror", out, "latest: Pulling from library/busybox", "Status: Downloaded newer image for busybox:latest")
	if got := strings.TrimSpace(d.mustDocker("image", "inspect", "-f", "{{.ID}}", "busybox")); got != id {
		t.Fatalf("image %s, want %s", got, id)
	}
	// A push would skip the mirror for Docker Hub: not tried, since tests
	// reach loopback only (TestEndpoints covers the order).
}

// TestRegistryClientCert: a registry that wants a client certificate gets
// the one in certs.d (<name>.cert with <name>.key, as docker's).
func TestRegistryClientCert(t *testing.T) {
	r := testutil.StartRegistry(t, testutil.RegistryOptions{TLS: true, ClientCerts: true})
	archive, _ := busyboxArchive(t, "busybox:latest")
	r.Push(t, "docker-archive:"+archive, "busybox:latest")
	ref := r.Addr + "/busybox:latest"

	d := newDaemon(t)
	d.start("--certs-dir", r.CertsDir(t))
	mustContain(t, "pull with a client certificate", d.mustDocker("pull", ref), "Pull complete")

	// The CA alone: the registry refuses the handshake.
	caOnly := t.TempDir()
	if err := os.MkdirAll(filepath.Join(caOnly, r.Addr), 0o755); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(r.CACert)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(caOnly, r.Addr, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	d2 := newDaemon(t)
	d2.start("--certs-dir", caOnly)
	out, err := d2.docker("pull", ref)
	if err == nil {
		t.Fatalf("pull without a client certificate succeeded:\n%s", out)
	}
	mustContain(t, "pull without a client certificate", out, "certificate")
}
