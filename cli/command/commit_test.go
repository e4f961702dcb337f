package command_test

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCommitSameAsDocker: docker commit of the same container on dockerd
// and on berth makes an image of the same configuration (the container's
// Cmd, Entrypoint, Env, Labels, WorkingDir, ExposedPorts, User, with
// --change on top), author, comment and history line; a running container
// is paused around the commit unless --pause=false, with the same events;
// a missing -w directory is made, as dockerd makes it.
func TestCommitSameAsDocker(t *testing.T) {
	requireTools(t)
	one, _ := images(t)
	got := map[string][]string{}
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			docker := func(args ...string) result { return run(t, nil, dockerCLI, d.host, args...) }
			step := func(args ...string) string {
				t.Helper()
				r := docker(args...)
				if r.code != 0 {
					t.Fatalf("docker %v: %s", args, r)
				}
				return r.out
			}
			step("load", "-i", one)
			t.Cleanup(func() {
				docker("rm", "-f", "cm", "pr")
				docker("rmi", "-f", "berthtest/c1", "berthtest/c2", "berthtest/c3")
			})
			var out []string
			// The command fails (user 1000 may not write /): a commit
			// does not care.
			docker("run", "--name", "cm", "-e", "A=1", "-w", "/made/here", "--label", "l1=v1", "--expose", "80",
				"--entrypoint", "/bin/sh", "-u", "1000", "-h", "hh", "berthtest/one:v1", "-c", "echo hi > /f")
			out = append(out, "diff: "+step("diff", "cm"))
			step("commit", "-m", "msg", "-a", "auth", "-c", "ENV B=2", "-c", "LABEL l2=v2", "-c", "EXPOSE 443/udp",
				"-c", "WORKDIR /w", "-c", `CMD ["x"]`, "cm", "berthtest/c1")
			step("commit", "cm", "berthtest/c2")
			step("commit", "-c", `ENTRYPOINT ["/bin/echo"]`, "-c", "USER nobody", "cm", "berthtest/c3")
			for _, img := range []string{"berthtest/c1", "berthtest/c2", "berthtest/c3"} {
				out = append(out, img+": "+step("image", "inspect", "-f", "{{json .Config}}|{{.Author}}|{{.Comment}}|{{len .RootFS.Layers}}", img),
					step("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", img))
			}
			step("run", "-d", "--name", "pr", "berthtest/one:v1", "sleep", "100")
			// The events since pr started (later than cm's commits,
			// which a whole second could include).
			since := strings.TrimSpace(step("inspect", "-f", "{{.State.StartedAt}}", "pr"))
			step("commit", "pr", "berthtest/c1")
			step("commit", "--pause=false", "pr", "berthtest/c2")
			ev := step("events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
				"--filter", "event=pause", "--filter", "event=unpause", "--filter", "event=commit", "--filter", "event=tag",
				"--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.imageRef}}")
			out = append(out, "events:\n"+ev, "state: "+step("inspect", "-f", "{{.State.Status}}", "pr"))
			got[dd.name] = out
		})
	}
	if !sameOnBoth(t, got) {
		return
	}
	if !strings.Contains(strings.Join(got["berth"], ""), `"Env":["PATH=`) {
		t.Logf("%s", strings.Join(got["berth"], "\n"))
	}
}
