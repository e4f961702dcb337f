package apitest

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

// rootMount is the mount of a container's root file system on the host.
func (d *daemon) rootMount(t *testing.T, id string) *mountinfo.Info {
	t.Helper()
	root := filepath.Join(d.dataRoot, "containers", id, "rootfs")
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(root))
	if err != nil || len(ms) != 1 {
		t.Fatalf("mount of %s: %v %v", root, ms, err)
	}
	return ms[0]
}

// volatile says whether an overlay's super options have it volatile
// ("volatile"; "fsync=volatile" since Linux 6.x).
func volatile(opts string) bool {
	for _, x := range strings.Split(opts, ",") {
		if x == "volatile" || x == "fsync=volatile" {
			return true
		}
	}
	return false
}

// TestRunRmVolatileAndTrash: an --rm container's root is a volatile
// overlay (nothing to sync at its removal), another's is not; removed
// containers' directories go through the trash, which is empty once the
// daemon has stopped, and what a killed daemon left there goes at the
// next start.
func TestRunRmVolatileAndTrash(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	if d.mustDocker("info", "-f", "{{.Driver}}") != "overlay2\n" {
		t.Skip("not on overlay2")
	}
	rm := strings.TrimSpace(d.mustDocker("run", "-d", "--rm", "busybox", "sleep", "1000"))
	kept := strings.TrimSpace(d.mustDocker("run", "-d", "busybox", "sleep", "1000"))
	if m := d.rootMount(t, rm); m.FSType != "overlay" || !volatile(m.VFSOptions) {
		t.Errorf("--rm root: %s %q, want a volatile overlay", m.FSType, m.VFSOptions)
	}
	if m := d.rootMount(t, kept); volatile(m.VFSOptions) {
		t.Errorf("root of a kept container is volatile: %q", m.VFSOptions)
	}
	d.mustDocker("rm", "-f", rm, kept)
	if out := d.mustDocker("run", "--rm", "busybox", "echo", "hi"); out != "hi\n" {
		t.Fatalf("run --rm: %q", out)
	}
	for _, dir := range []string{filepath.Join(d.execRoot, "containers", rm), filepath.Join(d.dataRoot, "containers", rm)} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s after rm: %v", dir, err)
		}
	}
	d.stop() // waits for the background deletions
	for _, root := range []string{d.dataRoot, d.execRoot} {
		ents, err := os.ReadDir(filepath.Join(root, "trash"))
		if root == d.execRoot && os.IsNotExist(err) {
			continue // its tmpfs went with the shutdown (execroot_test.go)
		}
		if err != nil || len(ents) != 0 {
			t.Errorf("trash of %s after the daemon stopped: %v %v", root, ents, err)
		}
	}

	// What a daemon killed -9 left in its trash goes at the next start.
	left := filepath.Join(d.dataRoot, "trash", "left-behind")
	if err := os.MkdirAll(filepath.Join(left, "a", "b"), 0o700); err != nil {
		t.Fatal(err)
	}
	d.start()
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("trash left at start: %v", err)
	}
}

// apiDo sends one request to the daemon and returns the status and body.
func (d *daemon) apiDo(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://berth"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// runRm creates and starts an --rm container named name running cmd and
// waits (condition=removed) for its removal, all over the API so that
// whatever follows comes microseconds after the answer. It returns the
// container's ID.
func (d *daemon) runRm(t *testing.T, name, cmd string) string {
	t.Helper()
	code, out := d.apiDo(t, "POST", "/containers/create?name="+name,
		`{"Image":"busybox","Cmd":["sh","-c","`+cmd+`"],"HostConfig":{"AutoRemove":true,"NetworkMode":"none"}}`)
	var created struct{ ID string }
	if err := json.Unmarshal([]byte(out), &created); code != http.StatusCreated || err != nil {
		t.Fatalf("create: %d %s", code, out)
	}
	// The wait is in place before the start (its header comes once it
	// is), as the docker CLI has it.
	req, _ := http.NewRequest("POST", "http://berth/containers/"+created.ID+"/wait?condition=removed", nil)
	resp, err := d.client().Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("wait: %v %v", err, resp)
	}
	defer resp.Body.Close()
	if code, out := d.apiDo(t, "POST", "/containers/"+created.ID+"/start", ""); code != http.StatusNoContent {
		t.Fatalf("start: %d %s", code, out)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || !strings.Contains(string(b), `"StatusCode":0`) {
		t.Fatalf("wait: %v %s", err, b)
	}
	return created.ID
}

// TestRunRmAnsweredFirst: an --rm container is gone for the API when its
// removal is answered, and the rest of its removal (shim, mount,
// snapshot, directories) follows in the background without a trace
// left: an rmi right after the answer finds the image unused, the name
// is free at once, and a daemon killed -9 right after the answer (while
// the files are still going) removes the container at its next start
// (TestStoreSharedNameNewerWins: a name taken meanwhile stays with the
// newer container).
func TestRunRmAnsweredFirst(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	archive, _ := busyboxArchive(t, "busybox:latest")
	for i := 0; i < 3; i++ {
		id := d.runRm(t, "", "true")
		if code, out := d.apiDo(t, "GET", "/containers/"+id+"/json", ""); code != http.StatusNotFound {
			t.Fatalf("inspect after the removal's answer: %d %s", code, out)
		}
		if code, out := d.apiDo(t, "DELETE", "/images/busybox", ""); code != http.StatusOK || !strings.Contains(out, "Deleted") {
			t.Fatalf("rmi right after run --rm: %d %s", code, out)
		}
		d.mustDocker("load", "-i", archive)
	}

	// Killed -9 between the answer and the end of the files: until one
	// run is caught in that window (the record's directory still there).
	// The name is free at once.
	caught := false
	for i := 0; i < 10 && !caught; i++ {
		d.runRm(t, "taken", "true")
		code, out := d.apiDo(t, "POST", "/containers/create?name=taken", `{"Image":"busybox","Cmd":["sleep","1000"],"HostConfig":{"NetworkMode":"none"}}`)
		if code != http.StatusCreated {
			t.Fatalf("create with the name just freed: %d %s", code, out)
		}
		d.mustDocker("rm", "taken")
		first := d.runRm(t, "", "true")
		d.kill9()
		_, err := os.Stat(filepath.Join(d.dataRoot, "containers", first))
		caught = err == nil
		d.start()
		// The restored removal is under way or done: its wait answers.
		if code, out := d.apiDo(t, "POST", "/containers/"+first+"/wait?condition=removed", ""); code != http.StatusOK && code != http.StatusNotFound {
			t.Fatalf("wait for the restored removal: %d %s", code, out)
		}
		if out := d.mustDocker("ps", "-aq"); strings.TrimSpace(out) != "" {
			t.Fatalf("containers after the restart: %q", out)
		}
		d.stop() // waits for the removals still going
		for _, dir := range []string{filepath.Join(d.dataRoot, "containers", first), filepath.Join(d.execRoot, "containers", first)} {
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("%s left: %v", dir, err)
			}
		}
		if left := d.leftOf(first); len(left) > 0 {
			t.Fatalf("left of the removed container:\n%s", strings.Join(left, "\n"))
		}
		for _, root := range []string{d.dataRoot, d.execRoot} {
			if ents, _ := os.ReadDir(filepath.Join(root, "trash")); len(ents) != 0 {
				t.Fatalf("trash of %s: %v", root, ents)
			}
		}
		d.start()
		if code, out := d.apiDo(t, "DELETE", "/images/busybox", ""); code != http.StatusOK {
			t.Fatalf("rmi after the restart: %d %s", code, out)
		}
		d.mustDocker("load", "-i", archive)
	}
	if !caught {
		t.Fatal("no daemon was killed before the files of an --rm container were removed")
	}
}

// TestRunRmRecordLost: an --rm container's record is not synced at create,
// so an OS crash may lose it while the metadata database keeps its file
// system; the next start removes that file system (and leaves alone a
// container whose record is there).
func TestRunRmRecordLost(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	lost := strings.TrimSpace(d.mustDocker("create", "--rm", "--network", "none", "busybox", "true"))
	empty := strings.TrimSpace(d.mustDocker("create", "--rm", "--network", "none", "busybox", "true"))
	kept := strings.TrimSpace(d.mustDocker("create", "--name", "kept", "--network", "none", "busybox", "true"))
	d.kill9()
	// What an OS crash can leave of an unsynced record: no directory, or
	// an empty file.
	if err := os.RemoveAll(filepath.Join(d.dataRoot, "containers", lost)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.dataRoot, "containers", empty, "config.v2.json"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d.start()
	if out := strings.TrimSpace(d.mustDocker("ps", "-aq", "--no-trunc")); out != kept {
		t.Fatalf("containers after the start: %q, want %s", out, kept)
	}
	if _, err := os.Stat(filepath.Join(d.dataRoot, "containers", empty)); !os.IsNotExist(err) {
		t.Errorf("directory with an empty record left: %v", err)
	}
	// Only kept holds the image now.
	d.mustDocker("rm", "kept")
	if code, out := d.apiDo(t, "DELETE", "/images/busybox", ""); code != http.StatusOK {
		t.Fatalf("rmi with only lost containers' file systems: %d %s", code, out)
	}
	if code, out := d.apiDo(t, "GET", "/system/df", ""); code != http.StatusOK || strings.Contains(out, lost) || strings.Contains(out, empty) {
		t.Fatalf("df: %d %s", code, out)
	}
}

// TestRunRmCpExport: cp into a created --rm container mounts its root
// volatile, which leaves the kernel's mark; export (a plain mount) and the
// start still mount it, and see the file.
func TestRunRmCpExport(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	host := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(host, []byte("from cp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(d.mustDocker("create", "--rm", "--network", "none", "busybox", "cat", "/hello"))
	d.mustDocker("cp", host, id+":/hello")
	if out := d.mustDocker("export", id); !strings.Contains(out, "from cp") {
		t.Fatalf("export before the start has not the copied file (%d bytes)", len(out))
	}
	if out := d.mustDocker("start", "-a", id); out != "from cp\n" {
		t.Fatalf("start -a after cp: %q", out)
	}
}

// createRm creates an --rm container running true over the API and
// returns its ID.
func (d *daemon) createRm(t *testing.T) string {
	t.Helper()
	code, out := d.apiDo(t, "POST", "/containers/create", `{"Image":"busybox","Cmd":["true"],"HostConfig":{"AutoRemove":true,"NetworkMode":"none"}}`)
	var created struct{ ID string }
	if err := json.Unmarshal([]byte(out), &created); code != http.StatusCreated || err != nil {
		t.Fatalf("create: %d %s", code, out)
	}
	return created.ID
}

// TestRunRmCreateAnsweredFirst: an --rm container's create is answered
// before its record and file system are made, and what needs them waits
// for them: an rmi (the image is in use), a diff and an export right after
// the answer (runRm's start right after it, in the other tests). A daemon
// killed -9 right after the answer, until one kill lands before the
// record is written, leaves nothing at its next start: no container, no
// directory, no file system holding the image.
func TestRunRmCreateAnsweredFirst(t *testing.T) {
	d := containerDaemon(t)
	defer d.rmAll()
	id := d.createRm(t)
	if code, out := d.apiDo(t, "DELETE", "/images/busybox", ""); code != http.StatusConflict {
		t.Fatalf("rmi right after the create of an --rm container: %d %s", code, out)
	}
	id2 := d.createRm(t)
	if code, out := d.apiDo(t, "GET", "/containers/"+id2+"/changes", ""); code != http.StatusOK {
		t.Fatalf("diff right after the create: %d %s", code, out)
	}
	id3 := d.createRm(t)
	if code, out := d.apiDo(t, "GET", "/containers/"+id3+"/export", ""); code != http.StatusOK || !strings.Contains(out, "bin/busybox") {
		t.Fatalf("export right after the create: %d (%d bytes)", code, len(out))
	}
	d.mustDocker("rm", id, id2, id3)

	archive, _ := busyboxArchive(t, "busybox:latest")
	caught := false
	for i := 0; i < 10 && !caught; i++ {
		id := d.createRm(t)
		d.kill9()
		_, err := os.Stat(filepath.Join(d.dataRoot, "containers", id, "config.v2.json"))
		caught = os.IsNotExist(err)
		d.start()
		if out := d.mustDocker("ps", "-aq"); strings.TrimSpace(out) != "" {
			t.Fatalf("containers after the restart (record written: %v): %q", !caught, out)
		}
		if _, err := os.Stat(filepath.Join(d.dataRoot, "containers", id)); !os.IsNotExist(err) {
			t.Fatalf("directory left (record written: %v): %v", !caught, err)
		}
		if left := d.leftOf(id); len(left) > 0 {
			t.Fatalf("left of the container:\n%s", strings.Join(left, "\n"))
		}
		// Its file system went too: nothing holds the image.
		if code, out := d.apiDo(t, "DELETE", "/images/busybox", ""); code != http.StatusOK {
			t.Fatalf("rmi after the restart (record written: %v): %d %s", !caught, code, out)
		}
		d.mustDocker("load", "-i", archive)
	}
	if !caught {
		t.Fatal("no daemon was killed before the record of an --rm container was written")
	}
}
