package command_test

import (
	"regexp"
	"strings"
	"testing"

	"berth.dev/berth/internal/testutil"
)

// TestVolumesSameAsDocker runs the volume commands with berth and with
// docker against the same daemon (dockerd, then berth's): output, errors
// and exit codes must agree. The docker CLI's output on berth's daemon
// must also be dockerd's, where nothing host-specific (paths, times,
// container IDs) is in it.
func TestVolumesSameAsDocker(t *testing.T) {
	requireTools(t)
	bin := testutil.BerthBinary(t)
	one, _ := images(t)
	daemonOut := map[string][]result{}
	var crossCases [][]string
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			berth := func(args ...string) result { return run(t, nil, bin, d.host, args...) }
			docker := func(args ...string) result { return run(t, nil, dockerCLI, d.host, args...) }
			if r := berth("load", "-i", one); r.code != 0 {
				t.Fatalf("load: %s", r)
			}
			t.Cleanup(func() {
				docker("rm", "-f", "user")
				docker("volume", "rm", "-f", "v1", "v2", "v10", "inuse", "pa", "pb", "ra", "rb", "v3")
			})
			for _, args := range [][]string{
				{"volume", "create", "v1"},
				{"volume", "create", "--label", "team=a", "v2"},
				{"volume", "create", "v10"},
				{"volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "--label", "team=b", "inuse"},
				{"run", "--name", "user", "-v", "inuse:/data", "berthtest/one:v1", "true"},
			} {
				if r := docker(args...); r.code != 0 {
					t.Fatalf("docker %v: %s", args, r)
				}
			}
			cases := [][]string{
				{"volume", "ls"},
				{"volume", "list"},
				{"volume", "ls", "-q"},
				{"volume", "ls", "--format", `{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}} [{{.Label "team"}}]`},
				{"volume", "ls", "--format", `table {{.Name}}\t{{.Driver}}\t{{.Labels}}`},
				{"volume", "ls", "--format", "json"},
				{"volume", "ls", "--format", `{{json .}}`},
				{"volume", "ls", "--format", `{{.Name}} {{.Links}} {{.Size}}`},
				{"volume", "ls", "-f", "dangling=true", "-q"},
				{"volume", "ls", "-f", "dangling=false"},
				{"volume", "ls", "-f", "label=team", "-q"},
				{"volume", "ls", "-f", "label=team=a"},
				{"volume", "ls", "-f", "name=v1", "-q"},
				{"volume", "ls", "-f", "driver=local", "-q"},
				{"volume", "ls", "-f", "bogus=1"},
				{"volume", "ls", "-f", "dangling=maybe"},
				{"volume", "ls", "--format", "{{.Nope}}"},
				{"volume", "inspect", "v2"},
				{"volume", "inspect", "v1", "inuse"},
				{"volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels}} {{.Options}} {{.Scope}}", "v2", "inuse"},
				{"volume", "inspect", "-f", "{{.Mountpoint}}", "v1"},
				{"volume", "inspect", "-f", "{{json .Labels}}", "v2"},
				{"volume", "inspect", "nosuch"},
				{"volume", "inspect", "-f", "{{.Name}}", "v1", "nosuch"},
				{"volume", "inspect"},
				{"volume", "rm", "nosuch"},
				{"volume", "rm", "-f", "nosuch"},
				{"volume", "rm", "inuse"},
				{"volume", "rm"},
				{"volume", "create", "bad/name"},
				{"volume", "create", "-o", "bogus=1", "v9"},
				{"volume", "create", "-d", "nosuchdriver", "v9"},
				{"volume", "create", "v1"},
				{"volume", "create", "--name", "v1", "v2"},
				{"volume", "prune", "--bogus"},
				{"inspect", "-f", "{{.Name}} {{.Driver}}", "v1"},
				{"inspect", "--type", "volume", "-f", "{{.Name}} {{.Labels}}", "v2"},
				{"inspect", "--type", "volume", "nosuch"},
				{"inspect", "nosuch"},
				{"inspect", "-f", `{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.Driver}} {{.Mode}} {{.RW}} {{.Propagation}}{{end}}`, "user"},
				{"ps", "-a", "--format", "{{.Mounts}} {{.LocalVolumes}}"},
				{"ps", "-a", "--filter", "volume=inuse", "--format", "{{.Names}}"},
				{"ps", "-a", "--filter", "volume=/data", "--format", "{{.Names}}"},
				{"ps", "-a", "--filter", "volume=v1", "--format", "{{.Names}}"},
				{"system", "df"},
				{"system", "df", "-v"},
				{"system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}} {{.Reclaimable}}"},
			}
			for _, args := range cases {
				b, k := berth(args...), docker(args...)
				if args[0] == "system" && dd.name == "dockerd" {
					// dockerd lists volumes in its map's order.
					b.out, k.out = sortedLines(b.out), sortedLines(k.out)
				}
				if aligned(b.out) != aligned(k.out) || b.code != k.code || normalize(b.err) != normalize(k.err) {
					t.Errorf("%s: berth and docker differ\nberth: %s\ndocker: %s", strings.Join(args, " "), b, k)
				}
			}
			// Commands that change things: each CLI on its own volume.
			for _, pair := range [][2][]string{
				{{"volume", "create", "--label", "x=y", "ra"}, {"volume", "create", "--label", "x=y", "rb"}},
				{{"volume", "rm", "ra", "nosuch"}, {"volume", "rm", "rb", "nosuch"}},
				{{"volume", "create", "--label", "which=a", "pa"}, {"volume", "create", "--label", "which=b", "pb"}},
				// dockerd 20.10 (API 1.41) prunes named volumes too.
				{{"volume", "prune", "-f", "--filter", "label=which=a"}, {"volume", "prune", "-f", "--filter", "label=which=b"}},
				{{"volume", "prune", "-f", "--filter", "label=which=a"}, {"volume", "prune", "-f", "--filter", "label=which=b"}},
			} {
				b, k := berth(pair[0]...), docker(pair[1]...)
				swap := strings.NewReplacer("ra", "rX", "rb", "rX", "pa", "pX", "pb", "pX")
				if swap.Replace(b.out) != swap.Replace(k.out) || b.code != k.code || normalize(swap.Replace(b.err)) != normalize(swap.Replace(k.err)) {
					t.Errorf("%v / %v: berth and docker differ\nberth: %s\ndocker: %s", pair[0], pair[1], b, k)
				}
			}
			docker("volume", "rm", "-f", "pa", "pb") // left by berth's prune (API 1.42+: anonymous only)
			if r := run(t, []byte("n\n"), bin, d.host, "volume", "prune"); r.code != 1 ||
				r.out != "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] " {
				t.Errorf("prune declined: %s", r)
			}

			// The daemon's side: the docker CLI's output from berth's
			// daemon must be dockerd's.
			crossCases = [][]string{
				{"volume", "ls"},
				{"volume", "ls", "-q"},
				{"volume", "ls", "--format", `{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}}`},
				{"volume", "ls", "-f", "dangling=true", "-q"},
				{"volume", "ls", "-f", "label=team=a", "-q"},
				{"volume", "ls", "-f", "name=v1", "-q"},
				// dockerd 20.10 says "Invalid filter 'bogus'", later ones and
				// berth "invalid filter 'bogus'": not compared.
				{"volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels}} {{.Options}} {{.Scope}} {{.Status}}", "v1", "v2", "inuse"},
				{"volume", "inspect", "nosuch"},
				{"volume", "inspect", "v1", "v2", "inuse"},
				{"volume", "ls", "--format", "json"},
				{"volume", "rm", "nosuch"},
				{"volume", "rm", "-f", "nosuch"},
				{"volume", "create", "bad/name"},
				{"volume", "create", "-o", "bogus=1", "v9"},
				{"volume", "create", "-o", "type=tmpfs", "v9"},
				{"volume", "create", "v1"},
				{"inspect", "-f", `{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.Driver}} {{.Mode}} {{.RW}} {{.Propagation}}{{end}}`, "user"},
				{"ps", "-a", "--format", "{{.Mounts}} {{.LocalVolumes}}"},
				{"ps", "-a", "--filter", "volume=inuse", "--format", "{{.Names}}"},
				{"ps", "-a", "--filter", "volume=/data", "--format", "{{.Names}}"},
				{"ps", "-a", "--filter", "volume=v1", "--format", "{{.Names}}"},
			}
			for _, args := range crossCases {
				daemonOut[dd.name] = append(daemonOut[dd.name], docker(args...))
			}
		})
	}
	dk, bt := daemonOut["dockerd"], daemonOut["berth"]
	if len(dk) != len(bt) {
		return // dockerd skipped
	}
	ids := regexp.MustCompile(`\[[0-9a-f]{64}\]`)
	// Where the data root is and when a volume was made differ.
	host := regexp.MustCompile(`("CreatedAt": ?"|"Mountpoint": ?")[^"]*"`)
	for i, args := range crossCases {
		k, b := dk[i], bt[i]
		k.out, b.out = host.ReplaceAllString(k.out, `${1}X"`), host.ReplaceAllString(b.out, `${1}X"`)
		if b.out != k.out || b.code != k.code || ids.ReplaceAllString(b.err, "[ID]") != ids.ReplaceAllString(k.err, "[ID]") {
			t.Errorf("docker %s: berth's daemon and dockerd differ\nberth: %s\ndockerd: %s", strings.Join(args, " "), b, k)
		}
	}
}
