package apitest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	volumetypes "github.com/moby/moby/api/types/volume"
)

// TestVolumes drives volumes with the docker CLI: create, ls, inspect, a
// named volume written by one container and read by the next, an image's
// VOLUME filled from the image, --mount, rm -v, --rm, the in-use
// conflict, prune, and survival of a daemon killed with -9.
func TestVolumes(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()

	if out := d.mustDocker("volume", "create", "--label", "team=a", "data1"); out != "data1\n" {
		t.Fatalf("create: %q", out)
	}
	var vols []volumetypes.Volume
	if err := json.Unmarshal([]byte(d.mustDocker("volume", "inspect", "data1")), &vols); err != nil || len(vols) != 1 {
		t.Fatal(err, vols)
	}
	v := vols[0]
	if v.Name != "data1" || v.Driver != "local" || v.Scope != "local" || v.Labels["team"] != "a" ||
		v.Mountpoint != filepath.Join(d.dataRoot, "volumes", "data1", "_data") || v.CreatedAt == "" {
		t.Fatalf("inspect: %+v", v)
	}

	// One container writes, the next reads.
	d.mustDocker("run", "--name", "wr", "-v", "data1:/data", "busybox", "sh", "-c", "echo hello > /data/f")
	if out := d.mustDocker("run", "--rm", "-v", "data1:/x:ro", "busybox", "cat", "/x/f"); out != "hello\n" {
		t.Fatalf("read back: %q", out)
	}
	if out, code := d.exitCode("run", "--rm", "-v", "data1:/x:ro", "busybox", "touch", "/x/g"); code == 0 || !strings.Contains(out, "Read-only file system") {
		t.Fatalf("ro volume written: %d %s", code, out)
	}
	var insp []container.InspectResponse
	if err := json.Unmarshal([]byte(d.mustDocker("inspect", "wr")), &insp); err != nil {
		t.Fatal(err)
	}
	if m := insp[0].Mounts; len(m) != 1 || m[0].Type != "volume" || m[0].Name != "data1" || m[0].Destination != "/data" ||
		m[0].Driver != "local" || !m[0].RW || m[0].Source != v.Mountpoint {
		t.Fatalf("Mounts: %+v", m)
	}

	// In use: 409 with the container named.
	out, code := d.exitCode("volume", "rm", "data1")
	mustContain(t, "rm in use", out, "volume is in use - ["+insp[0].ID+"]")
	if code == 0 {
		t.Fatal("removed a volume in use")
	}
	resp := d.curl("-i", "-X", "DELETE", "http://x/volumes/data1")
	mustContain(t, "DELETE in use", resp, "409 Conflict")

	// Bad names and bodies: 400, and the daemon goes on.
	out, _ = d.exitCode("volume", "create", "bad/name")
	mustContain(t, "bad name", out, `includes invalid characters for a local volume name`)
	mustContain(t, "bad name status", d.curl("-i", "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Name":"../x"}`, "http://x/volumes/create"), "400 Bad Request")
	mustContain(t, "bad json", d.curl("-i", "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Name":5}`, "http://x/volumes/create"), "400 Bad Request")
	mustContain(t, "bad option", d.curl("-i", "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"Name":"o1","DriverOpts":{"bogus":"1"}}`, "http://x/volumes/create"), "400 Bad Request", `invalid option: \"bogus\"`)
	mustContain(t, "bad filter", d.curl("-i", "http://x/volumes?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D"), "400 Bad Request")
	out, _ = d.exitCode("run", "--rm", "-v", "bad!:/data", "busybox", "true")
	mustContain(t, "run with a bad volume name", out, `includes invalid characters for a local volume name`)
	out, code = d.exitCode("volume", "inspect", "nosuch")
	mustContain(t, "inspect missing", out, "no such volume")
	if code != 1 {
		t.Fatalf("inspect missing: exit %d", code)
	}

	// An image with a VOLUME and content there: the anonymous volume is
	// filled from the image (not with nocopy).
	d.mustDocker("run", "--name", "src", "busybox", "sh", "-c", "mkdir /seed && echo from-image > /seed/f && chown 7:9 /seed/f")
	d.mustDocker("commit", "--change", `VOLUME ["/seed"]`, "src", "withvol:1")
	d.mustDocker("rm", "src")
	if out := d.mustDocker("run", "--name", "anon", "withvol:1", "sh", "-c", "cat /seed/f; stat -c %u:%g /seed/f; echo more > /seed/g"); out != "from-image\n7:9\n" {
		t.Fatalf("copy-up: %q", out)
	}
	insp = nil
	if err := json.Unmarshal([]byte(d.mustDocker("inspect", "anon")), &insp); err != nil {
		t.Fatal(err)
	}
	am := insp[0].Mounts
	if len(am) != 1 || am[0].Type != "volume" || len(am[0].Name) != 64 || am[0].Destination != "/seed" {
		t.Fatalf("anonymous mount: %+v", am)
	}
	anon := am[0].Name
	if got := d.mustDocker("volume", "inspect", "-f", `{{index .Labels "com.docker.volume.anonymous"}}|{{.Name}}`, anon); got != "|"+anon+"\n" {
		t.Fatalf("anonymous label: %q", got)
	}
	if b, err := os.ReadFile(filepath.Join(am[0].Source, "g")); err != nil || string(b) != "more\n" {
		t.Fatalf("volume data: %q %v", b, err)
	}
	if out := d.mustDocker("run", "--rm", "--mount", "type=volume,dst=/seed,volume-nocopy", "withvol:1", "ls", "-A", "/seed"); out != "" {
		t.Fatalf("nocopy copied: %q", out)
	}
	// The same destination from -v: no anonymous volume of the image.
	d.mustDocker("run", "--rm", "-v", "data1:/seed", "withvol:1", "true")

	// --mount of a named volume with driver options (tmpfs): mounted while
	// used, gone after.
	d.mustDocker("run", "--rm", "--mount", "type=volume,src=tmpv,dst=/t,volume-driver=local,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=2m",
		"busybox", "sh", "-c", "grep ' /t ' /proc/mounts | grep -q tmpfs && echo x > /t/y")
	tv := filepath.Join(d.dataRoot, "volumes", "tmpv", "_data")
	if ents, err := os.ReadDir(tv); err != nil || len(ents) != 0 {
		t.Fatalf("tmpfs volume still mounted (or lost): %v %v", ents, err)
	}
	if out := d.mustDocker("volume", "inspect", "-f", "{{.Options}}", "tmpv"); out != "map[device:tmpfs o:size=2m type:tmpfs]\n" {
		t.Fatalf("options: %q", out)
	}

	// ls, filters.
	ls := d.mustDocker("volume", "ls", "-q")
	for _, n := range []string{"data1", anon, "tmpv"} {
		mustContain(t, "ls", ls, n+"\n")
	}
	if out := d.mustDocker("volume", "ls", "-q", "--filter", "label=team=a"); out != "data1\n" {
		t.Fatalf("label filter: %q", out)
	}
	if out := d.mustDocker("volume", "ls", "-q", "--filter", "name=^tmp"); out != "tmpv\n" {
		t.Fatalf("name filter: %q", out)
	}
	dangling := d.mustDocker("volume", "ls", "-q", "--filter", "dangling=true")
	if strings.Contains(dangling, "data1") || strings.Contains(dangling, anon) || !strings.Contains(dangling, "tmpv") {
		t.Fatalf("dangling: %q", dangling)
	}

	// --rm drops its anonymous volumes; rm keeps them, rm -v removes them
	// and never a named one.
	before := strings.Fields(d.mustDocker("volume", "ls", "-q"))
	d.mustDocker("run", "--rm", "withvol:1", "true")
	if after := strings.Fields(d.mustDocker("volume", "ls", "-q")); !slices.Equal(before, after) {
		t.Fatalf("--rm left volumes: %v -> %v", before, after)
	}
	d.mustDocker("run", "--name", "keep", "-v", "data1:/d", "-v", "/anon2", "busybox", "true")
	insp = nil
	if err := json.Unmarshal([]byte(d.mustDocker("inspect", "keep")), &insp); err != nil {
		t.Fatal(err)
	}
	var anon2 string
	for _, m := range insp[0].Mounts {
		if m.Destination == "/anon2" {
			anon2 = m.Name
		}
	}
	if anon2 == "" {
		t.Fatalf("no anonymous volume for -v /anon2: %+v", insp[0].Mounts)
	}
	d.mustDocker("rm", "-v", "keep")
	ls = d.mustDocker("volume", "ls", "-q")
	if strings.Contains(ls, anon2) || !strings.Contains(ls, "data1") {
		t.Fatalf("rm -v: %q", ls)
	}

	// Volumes survive a daemon killed with -9, with their references.
	d.kill9()
	d.start()
	out, _ = d.exitCode("volume", "rm", "data1")
	mustContain(t, "in use after restart", out, "volume is in use")
	if out := d.mustDocker("run", "--rm", "-v", "data1:/x", "busybox", "cat", "/x/f"); out != "hello\n" {
		t.Fatalf("after restart: %q", out)
	}
	df := d.mustDocker("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}")
	mustContain(t, "df", df, "Local Volumes 3 2\n")

	// prune: anonymous only by default (anon is still held by its
	// container until that goes), all unused with --all.
	d.mustDocker("rm", "wr", "anon")
	out = d.mustDocker("volume", "prune", "-f")
	mustContain(t, "prune", out, "Deleted Volumes:\n"+anon+"\n", "Total reclaimed space:")
	if strings.Contains(out, "data1") {
		t.Fatalf("prune took a named volume: %s", out)
	}
	out = d.mustDocker("volume", "prune", "-f", "--all", "--filter", "label=team=a")
	if !strings.Contains(out, "data1") || strings.Contains(out, "tmpv") {
		t.Fatalf("prune --all with a label: %s", out)
	}
	d.mustDocker("volume", "rm", "tmpv")
	if out := d.mustDocker("volume", "ls", "-q"); out != "" {
		t.Fatalf("left: %q", out)
	}
	if _, err := os.Stat(filepath.Join(d.dataRoot, "volumes", "data1")); !os.IsNotExist(err) {
		t.Fatalf("data1's directory left: %v", err)
	}
	d.mustDocker("rmi", "withvol:1")
}

// TestVolumesLiveRestore: a running container keeps its volume (mounted
// by driver options) across a daemon killed with -9; its stop after the
// restart unmounts it. Also --volumes-from, volume events and both shapes
// of /system/df.
func TestVolumesLiveRestore(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()

	d.mustDocker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=4m", "tv")
	data := filepath.Join(d.dataRoot, "volumes", "tv", "_data")
	d.mustDocker("run", "-d", "--name", "live", "-v", "tv:/t", "-v", "/anon", "busybox", "sh", "-c", "echo kept > /t/f; echo a > /anon/a; sleep 1000")
	d.mustDocker("exec", "live", "test", "-f", "/t/f")
	if !isMount(t, data) {
		t.Fatal("tmpfs volume not mounted on the host while used")
	}

	d.kill9()
	d.start()
	if !isMount(t, data) {
		t.Fatal("tmpfs volume unmounted by the restart while its container runs")
	}
	if out := d.mustDocker("exec", "live", "cat", "/t/f"); out != "kept\n" {
		t.Fatalf("after restart: %q", out)
	}
	// A second user (--volumes-from, read-only) sees the same data.
	if out := d.mustDocker("run", "--rm", "--volumes-from", "live:ro", "busybox", "sh", "-c", "cat /t/f /anon/a; touch /t/x 2>/dev/null || echo ro"); out != "kept\na\nro\n" {
		t.Fatalf("--volumes-from: %q", out)
	}
	if !isMount(t, data) {
		t.Fatal("the second user's exit unmounted the volume of the first")
	}
	// 400, as dockerd 20.10: docker's CLI takes a 404 from create for a
	// missing image and would try a pull.
	mustContain(t, "--volumes-from missing", d.curl("-i", "-X", "POST", "-H", "Content-Type: application/json",
		"-d", `{"Image":"busybox","HostConfig":{"VolumesFrom":["nosuch"]}}`, "http://x/containers/create"), "400 Bad Request", "No such container: nosuch")
	if out, code := d.exitCode("run", "--rm", "--volumes-from", "nosuch", "busybox", "true"); code != 125 ||
		!strings.Contains(out, "Error response from daemon: No such container: nosuch") || strings.Contains(out, "Unable to find image") {
		t.Errorf("docker run --volumes-from nosuch: exit %d: %s", code, out)
	}
	mustContain(t, "--volumes-from bad mode", d.curl("-i", "-X", "POST", "-H", "Content-Type: application/json",
		"-d", `{"Image":"busybox","HostConfig":{"VolumesFrom":["live:rx"]}}`, "http://x/containers/create"), "400 Bad Request", "invalid mode: rx")

	since := time.Now()
	d.mustDocker("stop", "-t", "0", "live")
	if isMount(t, data) {
		t.Fatal("tmpfs volume still mounted after its last user stopped")
	}
	ev := d.mustDocker("events", "--since", strconv.FormatInt(since.Unix()-1, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "type=volume", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}}")
	mustContain(t, "events", ev, "volume unmount tv\n")

	// /system/df: the lists before 1.52, the summaries from 1.53.
	var old struct{ Volumes []volumetypes.Volume }
	if err := json.Unmarshal([]byte(d.curl("http://x/v1.51/system/df")), &old); err != nil {
		t.Fatal(err)
	}
	if len(old.Volumes) != 2 || old.Volumes[0].UsageData == nil || old.Volumes[0].UsageData.RefCount != 1 {
		t.Fatalf("df 1.51: %+v", old.Volumes)
	}
	var cur struct{ VolumeUsage *volumetypes.DiskUsage }
	if err := json.Unmarshal([]byte(d.curl("http://x/v1.53/system/df")), &cur); err != nil {
		t.Fatal(err)
	}
	if u := cur.VolumeUsage; u == nil || u.TotalCount != 2 || u.ActiveCount != 2 || u.TotalSize < 2 {
		t.Fatalf("df 1.53: %+v", u)
	}
	d.mustDocker("rm", "-v", "live")
	if out := d.mustDocker("volume", "ls", "-q"); out != "tv\n" {
		t.Fatalf("after rm -v: %q", out)
	}
	d.mustDocker("volume", "rm", "tv")

	// A volume that binds a host directory (o=bind).
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "hostfile"), []byte("on the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.mustDocker("volume", "create", "--opt", "type=none", "--opt", "device="+host, "--opt", "o=bind", "hb")
	if out := d.mustDocker("run", "--rm", "-v", "hb:/h", "busybox", "sh", "-c", "cat /h/hostfile; echo back > /h/new"); out != "on the host\n" {
		t.Fatalf("bind volume: %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(host, "new")); err != nil || string(b) != "back\n" {
		t.Fatalf("bind volume write: %q %v", b, err)
	}
	if isMount(t, filepath.Join(d.dataRoot, "volumes", "hb", "_data")) {
		t.Fatal("bind volume still mounted after its user")
	}
	// docker cp into a stopped container's volume lands in the volume,
	// and out of it reads the volume.
	d.mustDocker("create", "--name", "cpv", "-v", "cpvol:/data", "busybox", "true")
	cpf := filepath.Join(t.TempDir(), "cpfile")
	if err := os.WriteFile(cpf, []byte("copied\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.mustDocker("cp", cpf, "cpv:/data/")
	if out := d.mustDocker("run", "--rm", "-v", "cpvol:/v", "busybox", "cat", "/v/cpfile"); out != "copied\n" {
		t.Fatalf("cp into a volume: %q", out)
	}
	d.mustDocker("run", "--rm", "-v", "cpvol:/v", "busybox", "sh", "-c", "echo from-volume > /v/back")
	back := filepath.Join(t.TempDir(), "back")
	d.mustDocker("cp", "cpv:/data/back", back)
	if b, err := os.ReadFile(back); err != nil || string(b) != "from-volume\n" {
		t.Fatalf("cp out of a volume: %q %v", b, err)
	}
	d.mustDocker("rm", "cpv")
	d.mustDocker("volume", "rm", "cpvol")

	// API 1.41's prune takes named volumes too; the host's files stay.
	mustContain(t, "prune 1.41", d.curl("-X", "POST", "http://x/v1.41/volumes/prune"), `"VolumesDeleted":["hb"]`)
	if _, err := os.Stat(filepath.Join(host, "hostfile")); err != nil {
		t.Fatal("prune removed the host's files:", err)
	}
}

func isMount(t *testing.T, p string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == p {
			return true
		}
	}
	return false
}

// TestVolumesKill9 kills the daemon while volumes are being made and
// removed: after the restart every volume listed is whole (metadata and
// data directory), every whole one is listed, and nothing half-made is
// left.
func TestVolumesKill9(t *testing.T) {
	d := newDaemon(t)
	d.start()
	root := filepath.Join(d.dataRoot, "volumes")
	script := `for i in $(seq 1 400); do
		curl -s --unix-socket "$1" -X POST -H 'Content-Type: application/json' -d "{\"Name\":\"k$i\"}" http://x/volumes/create >/dev/null || exit 0
		[ $((i % 3)) = 0 ] && { curl -s --unix-socket "$1" -X DELETE http://x/volumes/k$((i-1)) >/dev/null || exit 0; }
	done`
	load := exec.Command("sh", "-c", script, "sh", d.sock)
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	loadDone := make(chan struct{})
	go func() { _ = load.Wait(); close(loadDone) }()
	// Kill once a good number exist, whatever is in flight then.
	for n := 0; n < 40; time.Sleep(5 * time.Millisecond) {
		select {
		case <-loadDone:
			t.Fatal("load ended before the kill")
		default:
		}
		ents, _ := os.ReadDir(root)
		n = len(ents)
	}
	d.kill9()
	<-loadDone
	d.start()

	listed := strings.Fields(d.mustDocker("volume", "ls", "-q"))
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left after restart: %s", e.Name())
			continue
		}
		for _, f := range []string{"volume.json", "_data"} {
			if _, err := os.Stat(filepath.Join(root, e.Name(), f)); err != nil {
				t.Errorf("volume %s: %v", e.Name(), err)
			}
		}
		onDisk = append(onDisk, e.Name())
	}
	slices.Sort(listed)
	if !slices.Equal(listed, onDisk) || len(listed) < 20 {
		t.Fatalf("listed %v, on disk %v", listed, onDisk)
	}
	out := d.mustDocker("volume", "prune", "-f", "--all")
	mustContain(t, "prune after kill", out, "Deleted Volumes:\n")
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Fatalf("left after prune: %v", ents)
	}
}
