package command_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"berth.dev/berth/internal/testutil"
	"github.com/containerd/console"
)

// TestSameAsDocker loads images with berth and then runs the same commands
// with berth and with the docker CLI against the same daemon: the output,
// the error text and the exit code must be identical wherever docker's are
// deterministic.
func TestSameAsDocker(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, two := images(t)
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			for _, tar := range []string{one, two} {
				if r := run(t, nil, bin, d.host, "load", "-i", tar); r.code != 0 || !strings.Contains(r.out, "Loaded image: berthtest/") {
					t.Fatalf("berth load: %s", r)
				}
			}
			if r := run(t, nil, bin, d.host, "tag", "berthtest/one:v1", "berthtest/alias:x"); r.code != 0 || r.out != "" {
				t.Fatalf("berth tag: %s", r)
			}
			// A dangling image lists as <none>: loading another image under
			// its name leaves it without one (with a fixed creation time,
			// unlike an import's).
			tmp := t.TempDir()
			for i, cmd := range []string{"/bin/d1", "/bin/d2"} {
				tar := filepath.Join(tmp, fmt.Sprintf("d%d.tar", i))
				if _, err := testutil.DockerArchive(tar, []string{"berthtest/d:1"}, []string{cmd}, testutil.BusyboxRootfs(t)); err != nil {
					t.Fatal(err)
				}
				if r := run(t, nil, bin, d.host, "load", "-i", tar); r.code != 0 {
					t.Fatalf("berth load: %s", r)
				}
			}
			garbage := filepath.Join(tmp, "garbage.tar")
			if err := os.WriteFile(garbage, []byte("this is not a tar archive, not even close; it is just text\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			cases := [][]string{
				{"load", "-i", garbage},
				{"load", "-q", "-i", garbage},
				{"image", "inspect", "-f", "{{.Container}}|{{.DockerVersion}}|{{.Size}}", "berthtest/one:v1"},
				{"image", "inspect", "-f", "{{.NoSuchField}}", "berthtest/one:v1"},
				{"image", "inspect", "-f", "{{.Id}}", "berthtest/nosuch", "berthtest/one:v1"},
				{"inspect", "-f", "{{.Id}}", "berthtest/nosuch"},
				{"images", "--filter", "dangling=true"},
				{"images", "--filter", "dangling=false"},
				{"inspect", "berthtest/nosuch"},
				{"inspect", "--type", "image", "berthtest/nosuch"},
				{"image", "inspect", "berthtest/one:v1", "berthtest/nosuch"},
				{"images"},
				{"images", "-a"},
				{"images", "-q"},
				{"images", "-q", "--no-trunc"},
				{"images", "-q", "--format", "table"},
				{"history", "-q", "--no-trunc", "berthtest/two"},
				{"history", "--format", "json", "berthtest/two"},
				{"images", "--no-trunc"},
				{"images", "--digests"},
				{"image", "ls", "berthtest/one"},
				{"images", "--filter", "reference=berthtest/t*"},
				{"images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.CreatedSince}}"},
				{"images", "--format", `table {{.Repository}}\t{{.Tag}}`},
				{"images", "--format", `table {{.ID}}\t{{.Containers}}\t{{.SharedSize}}`},
				{"images", "--format", "{{json .}}"},
				{"images", "--format", "json"},
				{"history", "berthtest/two"},
				{"history", "--no-trunc", "berthtest/two"},
				{"history", "-H=false", "berthtest/two"},
				{"history", "-q", "berthtest/two"},
				{"history", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}", "berthtest/two"},
				{"image", "inspect", "berthtest/one:v1"},
				{"image", "inspect", "berthtest/one:v1", "berthtest/two"},
				{"inspect", "-f", "{{.Id}} {{.Config.Cmd}} {{json .RootFS.Layers}}", "berthtest/two"},
				{"image", "inspect", "--format", "{{.Os}}/{{.Architecture}} {{len .RepoTags}}", "berthtest/one:v1"},
				{"version", "--format", "{{.Server.APIVersion}}"},
				{"version", "--format", "{{.Server.Os}}/{{.Server.Arch}} {{.Server.Version}}"},
				{"info", "--format", "{{.Images}} {{.Containers}} {{.Driver}} {{.OSType}} {{.NCPU}}"},
				{"system", "df"},
				{"system", "df", "--format", "{{.Type}}: {{.TotalCount}} {{.Active}} {{.Size}} {{.Reclaimable}}"},
				// Errors: message and exit code.
				{"image", "inspect", "berthtest/nosuch"},
				{"history", "berthtest/nosuch"},
				{"rmi", "berthtest/nosuch"},
				{"tag", "berthtest/nosuch", "berthtest/x"},
				{"tag", "berthtest/one:v1", "Bad:Name"},
				{"images", "--format", "{{.Nope}}"},
				{"images", "--format", "{{.Repository"},
				{"images", "--bogus"},
				{"images", "--filter", "nokey"},
				{"images", "--filter", "bogus=1"},
				{"images", "--filter", "dangling=maybe"},
				{"system", "df", "-v"},
				{"system", "df", "--format", "json"},
				{"image", "prune", "-f", "--filter", "bogus=1"},
				{"images", "a", "b"},
				{"tag", "a"},
				{"image", "nosuch"},
				{"nosuch"},
				{"history"},
			}
			for _, args := range cases {
				b := run(t, nil, bin, d.host, args...)
				k := run(t, nil, dockerCLI, d.host, args...)
				bout, kout := b.out, k.out
				if args[0] == "images" || args[0] == "image" && args[1] == "ls" {
					// docker orders the repositories of one image as a Go map
					// does, and the daemons images created in the same second
					// as they like.
					bout, kout = sortedLines(bout), sortedLines(kout)
				}
				if len(args) == 3 && args[1] == "df" && args[2] == "-v" {
					// the same, in sections: compare the lines as sets
					bl, kl := strings.Split(bout, "\n"), strings.Split(kout, "\n")
					sort.Strings(bl)
					sort.Strings(kl)
					bout, kout = strings.Join(bl, "\n"), strings.Join(kl, "\n")
				}
				if bout != kout || b.code != k.code || normalize(b.err) != normalize(k.err) {
					t.Errorf("%s: berth and docker differ\nberth: %s\ndocker: %s", strings.Join(args, " "), b, k)
				}
			}
			// version: the server half is docker's, line for line.
			server := func(s string) string { _, after, _ := strings.Cut(s, "\nServer:"); return after }
			b, k := run(t, nil, bin, d.host, "version"), run(t, nil, dockerCLI, d.host, "version")
			if b.code != 0 || server(b.out) == "" || server(b.out) != server(k.out) {
				t.Errorf("version: berth and docker differ\nberth: %s\ndocker: %s", b, k)
			}
			// info: all of it but the client's version.
			clientVersion := regexp.MustCompile(`(?m)\A(Client:\n Version: +).*$`)
			b, k = run(t, nil, bin, d.host, "info"), run(t, nil, dockerCLI, d.host, "info")
			// (docker lists runtimes in a Go map's order)
			runtimes := regexp.MustCompile(`(?m)^ Runtimes: .*$`)
			sortWords := func(s string) string {
				return runtimes.ReplaceAllStringFunc(s, func(l string) string {
					w := strings.Fields(strings.TrimPrefix(l, " Runtimes: "))
					sort.Strings(w)
					return " Runtimes: " + strings.Join(w, " ")
				})
			}
			if bo, ko := sortWords(clientVersion.ReplaceAllString(b.out, "$1")), sortWords(clientVersion.ReplaceAllString(k.out, "$1")); b.code != 0 || bo != ko || b.err != k.err {
				t.Errorf("info: berth and docker differ\nberth: %s\ndocker: %s", b, k)
			}
			// The API version is negotiated down to the daemon's, or fixed
			// by DOCKER_API_VERSION.
			sv := run(t, nil, bin, d.host, "version", "--format", "{{.Server.APIVersion}}")
			if r := run(t, nil, bin, d.host, "version", "--format", "{{.Client.APIVersion}}"); r.code != 0 || r.out != sv.out {
				t.Errorf("negotiated API version %q, server's %q", r.out, sv.out)
			}
			t.Setenv("DOCKER_API_VERSION", "1.40")
			if r := run(t, nil, bin, d.host, "version", "--format", "{{.Client.APIVersion}}"); r.code != 0 || r.out != "1.40\n" {
				t.Errorf("DOCKER_API_VERSION=1.40: %s", r)
			}
			os.Unsetenv("DOCKER_API_VERSION")
			// A non-table row's JSON is an object of strings.
			var row map[string]string
			r := run(t, nil, bin, d.host, "images", "--format", "json", "berthtest/one")
			if err := json.Unmarshal([]byte(r.out), &row); err != nil || row["Repository"] != "berthtest/one" || row["Tag"] != "v1" {
				t.Errorf("images --format json: %v %q", err, r.out)
			}
		})
	}
}

// TestImageLifecycle drives load, save, import, tag, rmi and prune through
// berth and checks the daemon's state with the docker CLI.
func TestImageLifecycle(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	dir := t.TempDir()
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			berth := func(stdin []byte, args ...string) result { return run(t, stdin, bin, d.host, args...) }
			docker := func(args ...string) result { return run(t, nil, dockerCLI, d.host, args...) }

			// load from stdin, messages as docker prints them when not on a terminal
			tarball, err := os.ReadFile(one)
			if err != nil {
				t.Fatal(err)
			}
			if r := berth(tarball, "load"); r.code != 0 || r.out != "Loaded image: berthtest/one:v1\n" {
				t.Fatalf("load from stdin: %s", r)
			}
			if r := berth(nil, "load", "-q", "-i", one); r.code != 0 || r.out != "Loaded image: berthtest/one:v1\n" {
				t.Fatalf("load -q: %s", r)
			}
			if r := berth(nil, "load", "-i", filepath.Join(dir, "missing.tar")); r.code != 1 || !strings.Contains(r.err, "no such file") {
				t.Fatalf("load of a missing file: %s", r)
			}

			// save -o and to stdout; docker loads both back
			saved := filepath.Join(dir, d.name+"-saved.tar")
			if r := berth(nil, "save", "-o", saved, "berthtest/one:v1"); r.code != 0 || r.out != "" {
				t.Fatalf("save -o: %s", r)
			}
			if r := berth(nil, "save", "-o", filepath.Join(dir, "no/such/dir/x.tar"), "berthtest/one:v1"); r.code != 1 ||
				!strings.Contains(r.err, "invalid output path") {
				t.Fatalf("save into a missing dir: %s", r)
			}
			// a failed save leaves no file, and says what docker says
			bad := filepath.Join(dir, d.name+"-bad.tar")
			r := berth(nil, "save", "-o", bad, "berthtest/nosuch")
			k := docker("save", "-o", bad, "berthtest/nosuch")
			if r.code != 1 || r.code != k.code || r.err != k.err {
				t.Fatalf("save of a missing image:\nberth: %s\ndocker: %s", r, k)
			}
			if _, err := os.Stat(bad); !os.IsNotExist(err) {
				t.Fatalf("a failed save left %s: %v", bad, err)
			}
			r = berth(nil, "save", "berthtest/one:v1")
			if r.code != 0 || len(r.out) < 1024 {
				t.Fatalf("save to stdout: exit %d, %d bytes, %s", r.code, len(r.out), r.err)
			}
			docker("rmi", "berthtest/one:v1")
			if r := run(t, []byte(r.out), dockerCLI, d.host, "load"); r.code != 0 || !strings.Contains(r.out, "berthtest/one:v1") {
				t.Fatalf("docker load of berth save: %s", r)
			}
			docker("rmi", "berthtest/one:v1")
			if r := docker("load", "-i", saved); r.code != 0 || !strings.Contains(r.out, "berthtest/one:v1") {
				t.Fatalf("docker load of berth save -o: %s", r)
			}

			// tag and rmi: docker's messages
			since := time.Now()
			if r := berth(nil, "tag", "berthtest/one:v1", "berthtest/copy"); r.code != 0 {
				t.Fatalf("tag: %s", r)
			}
			if r := docker("images", "-q", "berthtest/copy:latest"); strings.TrimSpace(r.out) == "" {
				t.Fatalf("docker does not see the tag: %s", r)
			}
			if r := berth(nil, "rmi", "berthtest/copy"); r.code != 0 || r.out != "Untagged: berthtest/copy:latest\n" {
				t.Fatalf("rmi of a second tag: %s", r)
			}
			sinceS, untilS := stamp(since), stamp(time.Now().Add(time.Second))
			ev := berth(nil, "events", "--since", sinceS, "--until", untilS, "--filter", "type=image")
			kev := docker("events", "--since", sinceS, "--until", untilS, "--filter", "type=image")
			if ev.code != 0 || ev.out != kev.out || !regexp.MustCompile(`(?m) image tag sha256:[0-9a-f]{64} \(name=berthtest/copy:latest\)$`).MatchString(ev.out) {
				t.Fatalf("events:\nberth: %s\ndocker: %s", ev, kev)
			}
			if r := berth(nil, "events", "--since", sinceS, "--until", untilS, "--format", "{{.Type}} {{.Action}}", "-f", "event=untag"); r.out != "image untag\n" {
				t.Fatalf("events --format --filter: %s", r)
			}

			// import: file and stdin, -c and -m; a URL is refused
			layer := filepath.Join(dir, d.name+"-layer.tar")
			if err := testutil.LayerTar(testutil.BusyboxRootfs(t), layer); err != nil {
				t.Fatal(err)
			}
			r = berth(nil, "import", "-c", `CMD ["/bin/echo","hi"]`, "-c", "ENV A=b", "-m", "from berth", layer, "berthtest/imported:1")
			if r.code != 0 || !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(r.out) {
				t.Fatalf("import: %s", r)
			}
			if r := docker("inspect", "-f", "{{json .Config.Cmd}} {{.Config.Env}} {{.Comment}}", "berthtest/imported:1"); r.out != `["/bin/echo","hi"] [A=b] from berth`+"\n" {
				t.Fatalf("imported image: %s", r)
			}
			if r := docker("history", "--format", "{{.Comment}}", "berthtest/imported:1"); r.out != "from berth\n" {
				t.Fatalf("imported image's history: %s", r)
			}
			layerBytes, err := os.ReadFile(layer)
			if err != nil {
				t.Fatal(err)
			}
			if r := berth(layerBytes, "image", "import", "-", "berthtest/imported:2"); r.code != 0 || !strings.HasPrefix(r.out, "sha256:") {
				t.Fatalf("import -: %s", r)
			}
			if r := berth(nil, "import", "http://example.invalid/x.tar"); r.code != 1 || !strings.Contains(r.err, "not supported") {
				t.Fatalf("import of a URL: %s", r)
			}

			// prune: dangling only, then -a with a filter
			if r := berth(nil, "image", "rm", "berthtest/imported:2"); r.code != 0 || !strings.Contains(r.out, "Deleted: sha256:") {
				t.Fatalf("image rm: %s", r)
			}
			if r := berth([]byte("n\n"), "image", "prune"); r.code != 1 || !strings.Contains(r.err, "cancelled") {
				t.Fatalf("prune answered no: %s", r)
			}
			if r := berth(nil, "image", "prune", "-f"); r.code != 0 || r.out != "Total reclaimed space: 0B\n" {
				t.Fatalf("prune with nothing dangling: %s", r)
			}
			if d.name == "berth" {
				// berth daemon's prune takes only "dangling" so far: docker's
				// "label" and "until" are the daemon's to add.
				if r := berth([]byte("y\n"), "image", "prune", "-a", "--filter", "label=nosuch"); r.code != 1 || !strings.Contains(r.err, "Error response from daemon: invalid filter 'label'") {
					t.Fatalf("prune -a with a label filter: %s", r)
				}
			} else if r := berth([]byte("y\n"), "image", "prune", "-a", "--filter", "label=nosuch"); r.code != 0 || !strings.HasSuffix(r.out, "Total reclaimed space: 0B\n") {
				t.Fatalf("prune -a with a filter matching nothing: %s", r)
			}
			if r := berth(nil, "image", "prune", "-a", "-f"); r.code != 0 || !strings.Contains(r.out, "Deleted Images:\nuntagged: berthtest/") {
				t.Fatalf("prune -a: %s", r)
			}
			if r := docker("images", "-q"); r.out != "" {
				t.Fatalf("images left after prune -a: %s", r)
			}
			// rmi of several: the missing one fails, the others go
			berth(nil, "load", "-i", one)
			berth(nil, "tag", "berthtest/one:v1", "berthtest/b")
			r = berth(nil, "rmi", "berthtest/b", "berthtest/nosuch", "berthtest/one:v1")
			if r.code != 1 || !strings.Contains(r.err, "berthtest/nosuch") || !strings.Contains(r.out, "Untagged: berthtest/b:latest\n") ||
				!strings.Contains(r.out, "Deleted: sha256:") {
				t.Fatalf("rmi of three: %s", r)
			}
		})
	}
}

// sortedLines is s with its lines sorted, a table's header (no lower
// case) staying first.
func sortedLines(s string) string {
	l := strings.Split(s, "\n")
	// A header is upper case and has letters: an image ID of digits alone
	// ("471739050406") is not one.
	if len(l) > 0 && l[0] == strings.ToUpper(l[0]) && strings.ContainsAny(l[0], "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		sort.Strings(l[1:])
	} else {
		sort.Strings(l)
	}
	return strings.Join(l, "\n")
}

// normalize makes error texts comparable: messages name their program,
// templates name their Go types, and docker 28 prints "SRun" for "Run"
// after an argument count error.
func normalize(s string) string {
	s = strings.ReplaceAll(s, "docker", "berth")
	s = strings.ReplaceAll(s, "\nSRun '", "\nRun '")
	return regexp.MustCompile(`in type \S+`).ReplaceAllString(s, "in type T")
}

// stamp is t as --since and --until take it: seconds.nanoseconds.
func stamp(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

// TestEventsStream follows events as they happen.
func TestEventsStream(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			cmd := exec.Command(bin, "-H", d.host, "events", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			killed := false
			defer func() {
				if !killed {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
			}()
			lines := make(chan string, 16)
			go func() {
				s := bufio.NewScanner(out)
				for s.Scan() {
					lines <- s.Text()
				}
				close(lines)
			}()
			// The stream is open once the daemon counts a listener; loading
			// until an event arrives avoids guessing when that is.
			deadline := time.After(60 * time.Second)
			for {
				run(t, nil, bin, d.host, "load", "-q", "-i", one)
				select {
				case l := <-lines:
					// dockerd 20.10 names the image by ID, berth by reference
					if !strings.HasPrefix(l, "image load ") {
						t.Fatalf("event %q", l)
					}
					// ^C ends the stream with 130, as docker's.
					killed = true
					_ = cmd.Process.Signal(os.Interrupt)
					err := cmd.Wait()
					if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
						t.Fatalf("events after SIGINT: %v", err)
					}
					return
				case <-time.After(time.Second):
				case <-deadline:
					t.Fatal("no event in 60s")
				}
			}
		})
	}
}

// TestSaveRefusesTerminal: a tar is not written to a terminal, nor read
// from one.
func TestSaveRefusesTerminal(t *testing.T) {
	requireTools(t)
	pty, slave, err := console.NewPty()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer pty.Close()
	f, err := os.OpenFile(slave, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	go func() { _, _ = bufio.NewReader(pty).WriteTo(discard{}) }()
	cmd := exec.Command(testutil.BerthBinary(t), "-H", "unix:///nonexistent.sock", "save", "busybox")
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = f, &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 ||
		stderr.String() != "cowardly refusing to save to a terminal. Use the -o flag or redirect\n" {
		t.Fatalf("save to a terminal: %v %q", err, stderr.String())
	}
	// Nor is a tar read from one.
	cmd = exec.Command(testutil.BerthBinary(t), "-H", "unix:///nonexistent.sock", "load")
	stderr.Reset()
	cmd.Stdin, cmd.Stderr = f, &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || stderr.String() != "requested load from stdin, but stdin is empty\n" {
		t.Fatalf("load from a terminal: %v %q", err, stderr.String())
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestNoDaemon: without a daemon, errors and exit codes are docker's.
func TestNoDaemon(t *testing.T) {
	bin := testutil.BerthBinary(t)
	r := run(t, nil, bin, "unix:///nonexistent.sock", "images")
	if r.code != 1 || r.err != "Cannot connect to the berth daemon at unix:///nonexistent.sock. Is the berth daemon running?\n" {
		t.Fatalf("no daemon: %s", r)
	}
	t.Setenv("BERTH_HOST", "unix:///nonexistent-env.sock")
	cmd := exec.Command(bin, "info", "--format", "{{.ID}}")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "unix:///nonexistent-env.sock") {
		t.Fatalf("BERTH_HOST not used: %s", out)
	}
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"nosuch"}, 1, "berth: unknown command: berth nosuch\n\nRun 'berth --help' for more information\n"},
		{[]string{"images", "--bogus"}, 125, "unknown flag: --bogus\n\nUsage:  berth images [OPTIONS] [REPOSITORY[:TAG]]\n\nRun 'berth images --help' for more information\n"},
		{[]string{"--context", "remote", "images"}, 125, "--context is not supported by berth (use -H or BERTH_HOST)\n"},
		{[]string{"--log-level", "loud", "images"}, 125, "unable to parse logging level: loud\n"},
	} {
		r := run(t, nil, bin, "unix:///nonexistent.sock", c.args...)
		if r.code != c.code || r.err != c.err {
			t.Errorf("%v: %s", c.args, r)
		}
	}
	if r := run(t, nil, bin, "unix:///nonexistent.sock", "--version"); r.code != 0 || !strings.HasPrefix(r.out, "Berth version ") {
		t.Errorf("--version: %s", r)
	}
}

// TestCompletion: the generated scripts load in their shells, and the
// hidden __complete answers.
func TestCompletion(t *testing.T) {
	bin := testutil.BerthBinary(t)
	out, err := exec.Command("bash", "-c", "source <("+bin+" completion bash) && complete -p berth").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "berth") || !strings.HasPrefix(string(out), "complete ") {
		t.Fatalf("bash completion: %v: %s", err, out)
	}
	zsh, err := exec.Command(bin, "completion", "zsh").Output()
	if err != nil || !strings.Contains(string(zsh), "#compdef berth") {
		t.Fatalf("zsh completion: %v", err)
	}
	if p, err := exec.LookPath("zsh"); err == nil {
		if out, err := exec.Command(p, "-n", "-c", string(zsh)).CombinedOutput(); err != nil {
			t.Fatalf("zsh script does not parse: %v %s", err, out)
		}
	}
	out, err = exec.Command(bin, "__complete", "ima").Output()
	if err != nil || !strings.Contains(string(out), "\nimages\t") || !strings.HasPrefix(string(out), "image\t") {
		t.Fatalf("__complete ima: %v %s", err, out)
	}
	out, err = exec.Command(bin, "__complete", "images", "--dig").Output()
	if err != nil || !strings.Contains(string(out), "--digests") {
		t.Fatalf("__complete images --dig: %v %s", err, out)
	}
}

// TestLoadOnTerminal: on a terminal load asks for progress and shows it
// with docker's renderer, ending with the loaded name.
func TestLoadOnTerminal(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			pty, slave, err := console.NewPty()
			if err != nil {
				t.Skipf("no pty: %v", err)
			}
			defer pty.Close()
			f, err := os.OpenFile(slave, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var out testutil.LockedBuffer
			copied := make(chan struct{})
			go func() { _, _ = bufio.NewReader(pty).WriteTo(&out); close(copied) }()
			cmd := exec.Command(bin, "-H", d.host, "load", "-i", one)
			cmd.Stdout, cmd.Stderr = f, f
			if err := cmd.Run(); err != nil {
				t.Fatalf("load on a terminal: %v: %s", err, out.String())
			}
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(out.String(), "Loaded image: berthtest/one:v1") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.Contains(out.String(), "Loaded image: berthtest/one:v1") {
				t.Fatalf("load on a terminal printed %q", out.String())
			}
			// dockerd sends progress when asked; berth daemon's load does not
			// yet, and prints only the result.
			if d.name == "dockerd" && !strings.Contains(out.String(), ": Loading layer [") {
				t.Fatalf("no progress bar on a terminal: %q", out.String())
			}
		})
	}
}

// TestWithContainer: with a container made by the docker CLI, disk usage,
// counts and removing an image in use print as docker prints them.
func TestWithContainer(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			if r := run(t, nil, bin, d.host, "load", "-q", "-i", one); r.code != 0 {
				t.Fatalf("load: %s", r)
			}
			if r := run(t, nil, dockerCLI, d.host, "create", "--name", "c1", "--network", "none", "berthtest/one:v1", "true"); r.code != 0 {
				t.Fatalf("docker create: %s", r)
			}
			defer run(t, nil, dockerCLI, d.host, "rm", "-f", "c1")
			for _, args := range [][]string{
				{"system", "df"},
				{"system", "df", "-v"},
				{"info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}} {{.Images}}"},
				{"rmi", "berthtest/one:v1"},
				{"image", "prune", "-a", "-f"},
			} {
				b := run(t, nil, bin, d.host, args...)
				k := run(t, nil, dockerCLI, d.host, args...)
				// df -v shows the container's age, which may tick between the two.
				if aligned(b.out) != aligned(k.out) || b.code != k.code || normalize(b.err) != normalize(k.err) {
					t.Errorf("%s: berth and docker differ\nberth: %s\ndocker: %s", strings.Join(args, " "), b, k)
				}
			}
			// -f removes an image a stopped container uses (both daemons).
			r := run(t, nil, bin, d.host, "rmi", "-f", "berthtest/one:v1")
			if r.code != 0 || !regexp.MustCompile(`^Untagged: berthtest/one:v1\nDeleted: sha256:[0-9a-f]{64}\n`).MatchString(r.out) {
				t.Fatalf("rmi -f of an image in use: %s", r)
			}
			if r := run(t, nil, dockerCLI, d.host, "images", "-q"); r.out != "" {
				t.Fatalf("images after rmi -f: %s", r)
			}
		})
	}
}
