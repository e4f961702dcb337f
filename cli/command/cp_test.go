package command_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"berth.dev/berth/internal/testutil"
	"github.com/containerd/console"
)

// cpTree lists a local tree: names, types, link targets and contents.
func cpTree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := rel + " " + fi.Mode().Type().String()
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %q %o", b, fi.Mode().Perm())
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// tarNames lists a tar's entries with their types and sizes.
func tarNames(t *testing.T, b []byte) string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		names = append(names, fmt.Sprintf("%s %c %d %s", h.Name, h.Typeflag, h.Size, h.Linkname))
	}
	return strings.Join(names, "\n")
}

var hexID = regexp.MustCompile(`[0-9a-f]{64}`)

// crossSkip are the commands whose daemon errors are worded differently by
// dockerd 20.10: the restart policy's (berth words it as docker 25+), and a
// kernel's refusal (berth's runtime names itself where runc does).
var crossSkip = map[string]bool{
	"update --restart sometimes upc": true,
	"update --cpus 0.0001 upc":       true,
}

// TestCpUpdateSameAsDocker runs cp (both ways) and update with berth and
// with docker against dockerd and berth: output, errors, exit codes and
// the files copied must agree between the two CLIs, and docker's results
// against berth must be those against dockerd.
func TestCpUpdateSameAsDocker(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	host := t.TempDir()
	for p, content := range map[string]string{"file": "hello\n", "dir/a": "a\n", "dir/sub/b": "b\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(host, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(host, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("file", filepath.Join(host, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "owned"), []byte("owned\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(host, "owned"), 1234, 4321); err != nil {
		t.Fatal(err)
	}
	// {o}: a fresh local directory; {c}: a fresh container directory; both
	// hold a file "existing". {h}: the host tree above.
	cases := [][]string{
		{"cp", "cpc:/data/file", "{o}"},
		{"cp", "cpc:/data/file", "{o}/newname"},
		{"cp", "cpc:/data/dir", "{o}"},
		{"cp", "cpc:/data/dir", "{o}/newdir"},
		{"cp", "cpc:/data/dir/.", "{o}"},
		{"cp", "cpc:/data/dir/", "{o}/slash"},
		{"cp", "cpc:/data/link", "{o}"},
		{"cp", "-L", "cpc:/data/link", "{o}"},
		{"cp", "-L", "cpc:/data/link", "{o}/followed"},
		{"cp", "-q", "cpc:/data/file", "{o}"},
		{"cp", "cpc:/data/file", "{o}/existing"},
		{"cp", "cpc:/data/dir", "{o}/existing"},
		{"cp", "cpc:/data/file", "{o}/nodir/"},
		{"cp", "cpc:/data/file", "{o}/missing/deeper/x"},
		{"cp", "cpc:/data/nope", "{o}"},
		{"cp", "nosuch:/x", "{o}"},
		{"container", "cp", "cpc:/data/file", "{o}"},
		{"cp", "{h}/file", "cpc:{c}"},
		{"cp", "{h}/file", "cpc:{c}/renamed"},
		{"cp", "{h}/file", "cpc:{c}/existing"},
		{"cp", "{h}/dir", "cpc:{c}"},
		{"cp", "{h}/dir", "cpc:{c}/newdir"},
		{"cp", "{h}/dir/.", "cpc:{c}"},
		{"cp", "{h}/link", "cpc:{c}"},
		{"cp", "-L", "{h}/link", "cpc:{c}"},
		{"cp", "-q", "{h}/file", "cpc:{c}"},
		{"cp", "{h}/owned", "cpc:{c}"},
		{"cp", "-a", "{h}/owned", "cpc:{c}/archived"},
		{"cp", "-a", "{h}/owned", "upcu:/tmp/"},
		// Not {h}/dir to cpc:{c}/existing nor a file to cpc:{c}/nodir/:
		// docker's CLI then logs, or not, its own tar writer's failure.
		{"cp", "{h}/nope", "cpc:{c}"},
		{"cp", "{h}/file", "cpc:/nonexistent/deeper/x"},
		{"cp", "{h}/file", "rocp:/"},
		{"cp", "cpc:/a", "cpc:/b"},
		{"cp", "a", "b"},
		{"cp", "cpc:/data/file"},
		{"cp", "", "cpc:/"},
	}
	type outcome struct {
		results []string
		trees   []string
	}
	got := map[string]*outcome{}
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			berth := func(args ...string) result { return run(t, nil, bin, d.host, args...) }
			docker := func(args ...string) result { return run(t, nil, dockerCLI, d.host, args...) }
			if r := berth("load", "-i", one); r.code != 0 {
				t.Fatalf("load: %s", r)
			}
			t.Cleanup(func() { docker("rm", "-f", "cpc", "rocp", "upc", "upst", "upcu") })
			if r := docker("run", "-d", "--name", "cpc", "berthtest/one:v1", "sh", "-c",
				"mkdir -p /data/dir/sub && echo x > /data/file && echo a > /data/dir/a && echo b > /data/dir/sub/b && ln -s /data/file /data/link && exec sleep 1000"); r.code != 0 {
				t.Fatalf("docker run: %s", r)
			}
			if r := docker("run", "-d", "--name", "upcu", "--user", "nobody", "berthtest/one:v1", "sleep", "1000"); r.code != 0 {
				t.Fatalf("docker run --user: %s", r)
			}
			if r := docker("run", "-d", "--name", "rocp", "--read-only", "berthtest/one:v1", "sleep", "1000"); r.code != 0 {
				t.Fatalf("docker run --read-only: %s", r)
			}
			for i := 0; ; i++ {
				if r := docker("exec", "cpc", "test", "-L", "/data/link"); r.code == 0 {
					break
				} else if i > 100 {
					t.Fatalf("container setup: %s", r)
				}
			}
			base := t.TempDir()
			out := &outcome{}
			got[dd.name] = out
			for i, c := range cases {
				var per [2]result
				for j, cli := range []string{"berth", "docker"} {
					o := filepath.Join(base, cli, fmt.Sprint(i))
					ctrDir := filepath.Join("/", cli, fmt.Sprint(i))
					if err := os.MkdirAll(o, 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(o, "existing"), []byte("old\n"), 0o644); err != nil {
						t.Fatal(err)
					}
					if r := docker("exec", "cpc", "sh", "-c", "mkdir -p "+ctrDir+" && echo old > "+ctrDir+"/existing"); r.code != 0 {
						t.Fatalf("container dir: %s", r)
					}
					args := make([]string, len(c))
					for k, a := range c {
						a = strings.ReplaceAll(a, "{o}", o)
						a = strings.ReplaceAll(a, "{c}", ctrDir)
						args[k] = strings.ReplaceAll(a, "{h}", host)
					}
					exe := bin
					if cli == "docker" {
						exe = dockerCLI
					}
					per[j] = run(t, nil, exe, d.host, args...)
				}
				b, k := per[0], per[1]
				if b.out != k.out || b.code != k.code || normalize(b.err) != normalize(k.err) {
					t.Errorf("%s: berth and docker differ\nberth: %s\ndocker: %s", strings.Join(c, " "), b, k)
				}
				out.results = append(out.results, normalize(strings.ReplaceAll(k.String(), base, "BASE")))
			}
			// What landed: locally, and in the container.
			for _, cli := range []string{"berth", "docker"} {
				tree := cpTree(t, filepath.Join(base, cli))
				ctr := docker("exec", "cpc", "sh", "-c", "cd /"+cli+" && find . | sort && find . -type f | sort | xargs md5sum && find . | sort | xargs stat -c '%n %u:%g %a' && find . -type l | sort | xargs ls -l | sed 's/.* -> /-> /'")
				if ctr.code != 0 {
					t.Fatalf("container tree: %s", ctr)
				}
				out.trees = append(out.trees, tree, ctr.out)
			}
			// -a: the container's user owns what was copied.
			owner := docker("exec", "upcu", "stat", "-c", "%u:%g %a", "/tmp/owned")
			if owner.out != "65534:65534 600\n" {
				t.Errorf("cp -a to a container running as nobody: %s", owner)
			}
			if out.trees[0] != out.trees[2] {
				t.Errorf("local trees differ\nberth:\n%s\ndocker:\n%s", out.trees[0], out.trees[2])
			}
			if out.trees[1] != out.trees[3] {
				t.Errorf("container trees differ\nberth:\n%s\ndocker:\n%s", out.trees[1], out.trees[3])
			}
			// A tar on stdout: the same entries from both CLIs.
			b, k := berth("cp", "cpc:/data/dir", "-"), docker("cp", "cpc:/data/dir", "-")
			if b.code != 0 || tarNames(t, []byte(b.out)) != tarNames(t, []byte(k.out)) || b.err != k.err {
				t.Errorf("cp to stdout differs\nberth: %s %s\ndocker: %s", tarNames(t, []byte(b.out)), b.err, tarNames(t, []byte(k.out)))
			}
			out.results = append(out.results, tarNames(t, []byte(k.out)))

			// update
			if r := docker("run", "-d", "--name", "upc", "berthtest/one:v1", "sleep", "1000"); r.code != 0 {
				t.Fatalf("docker run upc: %s", r)
			}
			if r := docker("create", "--name", "upst", "berthtest/one:v1", "sleep", "1000"); r.code != 0 {
				t.Fatalf("docker create upst: %s", r)
			}
			for _, c := range [][]string{
				{"update", "--memory", "64m", "--memory-swap", "128m", "upc"},
				{"update", "--cpus", "0.5", "--pids-limit", "40", "upc", "upst"},
				{"update", "--cpu-shares", "512", "--cpuset-cpus", "0", "--blkio-weight", "300", "upc"},
				{"update", "--restart", "on-failure:2", "upc"},
				{"inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} {{.HostConfig.BlkioWeight}} {{.HostConfig.RestartPolicy}}", "upc", "upst"},
				{"update", "--pids-limit", "-1", "upc"},
				{"inspect", "-f", "{{.HostConfig.PidsLimit}}", "upc"},
				{"update", "--memory", "256m", "upc"},
				{"update", "--memory", "64m", "--memory-swap", "32m", "upc"},
				{"update", "--memory", "1m", "upc"},
				{"update", "--cpu-quota", "50000", "upc"},
				{"update", "--restart", "sometimes", "upc"},
				{"update", "--restart", ":3", "upc"},
				{"update", "--restart", "on-failure:x", "upc"},
				{"update", "--cpus", "0.0001", "upc"},
				{"update", "--memory", "lots", "upc"},
				{"update", "upc"},
				{"update", "--memory", "64m", "nosuch", "upc"},
				{"update"},
				{"container", "update", "--cpu-shares", "256", "upc"},
			} {
				b, k := berth(c...), docker(c...)
				if b.out != k.out || b.code != k.code || normalize(b.err) != normalize(k.err) {
					t.Errorf("%s: berth and docker differ\nberth: %s\ndocker: %s", strings.Join(c, " "), b, k)
				}
				res := hexID.ReplaceAllString(normalize(k.String()), "ID")
				if crossSkip[strings.Join(c, " ")] {
					res = ""
				}
				out.results = append(out.results, res)
			}
		})
	}
	// docker's CLI against berth saw what it sees against dockerd.
	dk, bt := got["dockerd"], got["berth"]
	if dk == nil || bt == nil || t.Failed() {
		return
	}
	for i := range dk.results {
		if dk.results[i] != bt.results[i] {
			t.Errorf("docker's CLI: dockerd and berth differ\ndockerd: %s\nberth: %s", dk.results[i], bt.results[i])
		}
	}
	for i := range dk.trees {
		if dk.trees[i] != bt.trees[i] {
			t.Errorf("copied trees: dockerd and berth differ\ndockerd:\n%s\nberth:\n%s", dk.trees[i], bt.trees[i])
		}
	}
}

// TestCpOnTerminal: with stdout on a terminal, cp prints docker's
// "Successfully copied <size> to <dest>", byte for byte, and -q keeps it
// quiet.
func TestCpOnTerminal(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	d := startBerthd(t)
	docker := func(args ...string) result { return run(t, nil, dockerCLI, d.host, args...) }
	if r := docker("load", "-i", one); r.code != 0 {
		t.Fatalf("load: %s", r)
	}
	t.Cleanup(func() { docker("rm", "-f", "cpt") })
	if r := docker("run", "-d", "--name", "cpt", "berthtest/one:v1", "sleep", "1000"); r.code != 0 {
		t.Fatalf("run: %s", r)
	}
	if r := docker("exec", "cpt", "sh", "-c", "echo hello > /hello"); r.code != 0 {
		t.Fatalf("exec: %s", r)
	}
	onPty := func(exe string, args ...string) string {
		t.Helper()
		pty, slave, err := console.NewPty()
		if err != nil {
			t.Skipf("no pty: %v", err)
		}
		defer pty.Close()
		f, err := os.OpenFile(slave, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out testutil.LockedBuffer
		copied := make(chan struct{})
		go func() { _, _ = bufio.NewReader(pty).WriteTo(&out); close(copied) }()
		cmd := exec.Command(exe, append([]string{"-H", d.host}, args...)...)
		cmd.Stdout, cmd.Stderr = f, f
		err = cmd.Run()
		f.Close()
		if err != nil {
			t.Fatalf("%s %v: %v: %s", exe, args, err, out.String())
		}
		pty.Close()
		<-copied
		return out.String()
	}
	line := regexp.MustCompile(`Successfully copied \S+ to \S+`)
	for i, args := range [][]string{{"cp", "cpt:/hello", "{o}"}, {"cp", "{h}", "cpt:/tmp/"}} {
		var got [2]string
		for j, exe := range []string{bin, dockerCLI} {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "h"), []byte("host\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			a := make([]string, len(args))
			for k, s := range args {
				s = strings.ReplaceAll(s, "{o}", filepath.Join("/tmp/cp-term", fmt.Sprint(i)))
				a[k] = strings.ReplaceAll(s, "{h}", filepath.Join(dir, "h"))
			}
			if err := os.MkdirAll(filepath.Join("/tmp/cp-term", fmt.Sprint(i)), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll("/tmp/cp-term") })
			got[j] = strings.ReplaceAll(onPty(exe, a...), dir, "DIR")
		}
		if !line.MatchString(got[0]) || got[0] != got[1] {
			t.Errorf("%v on a terminal: berth %q, docker %q", args, got[0], got[1])
		}
	}
	if out := onPty(bin, "cp", "-q", "cpt:/hello", t.TempDir()); out != "" {
		t.Errorf("cp -q on a terminal printed %q", out)
	}
}
