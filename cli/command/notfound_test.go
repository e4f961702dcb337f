package command_test

import (
	"regexp"
	"testing"
)

// TestNotFoundSameAsDocker: what is missing (images by name, tag, ID or
// digest, containers, volumes), malformed names and a container in the
// wrong state (created, not running) are told in dockerd's words, with its
// exit codes, through the docker CLI.
func TestNotFoundSameAsDocker(t *testing.T) {
	requireTools(t)
	one, _ := images(t)
	cases := [][]string{
		{"image", "inspect", "nosuch"},
		{"image", "inspect", "localhost:5000/nosuch"},
		{"image", "inspect", "sha256:0123456789ab"},
		{"image", "inspect", "nosuch@sha256:0000000000000000000000000000000000000000000000000000000000000000"},
		{"inspect", "nosuch"},
		{"inspect", "--type", "image", "nosuch"},
		{"inspect", "--type", "container", "nosuch"},
		{"inspect", "--type", "volume", "nosuch"},
		{"rmi", "nosuch"},
		{"rmi", "nosuch:v2"},
		{"rmi", "0123456789ab"},
		{"tag", "nosuch", "x"},
		{"history", "nosuch"},
		{"history", "Nosuch"},
		{"save", "nosuch"},
		{"save", "berthtest/one:v1", "nosuch"},
		{"rm", "nosuch"},
		{"start", "nosuch"},
		{"stop", "nosuch"},
		{"kill", "nosuch"},
		{"wait", "nosuch"},
		{"logs", "nosuch"},
		{"commit", "nosuch"},
		{"export", "nosuch"},
		{"diff", "nosuch"},
		{"exec", "nosuch", "true"},
		{"top", "nosuch"},
		{"rename", "nosuch", "y"},
		{"volume", "inspect", "nosuch"},
		{"volume", "rm", "nosuch"},
		{"create", "--volumes-from", "nosuch", "berthtest/one:v1"},
		{"pause", "made"},
		{"unpause", "made"},
		{"exec", "made", "true"},
		{"kill", "made"},
		{"top", "made"},
	}
	hexID := regexp.MustCompile(`[0-9a-f]{64}`)
	got := map[string][]result{}
	for _, dd := range daemons {
		t.Run(dd.name, func(t *testing.T) {
			d := dd.start(t)
			docker := func(args ...string) result { return run(t, nil, dockerCLI, d.host, args...) }
			if r := docker("load", "-i", one); r.code != 0 {
				t.Fatalf("load: %s", r)
			}
			if r := docker("create", "--name", "made", "berthtest/one:v1"); r.code != 0 {
				t.Fatalf("create: %s", r)
			}
			t.Cleanup(func() { docker("rm", "-f", "made") })
			for _, c := range cases {
				r := docker(c...)
				if c[0] == "save" {
					r.out = "" // a tar, or nothing
				}
				r.err = hexID.ReplaceAllString(r.err, "<id>")
				got[dd.name] = append(got[dd.name], r)
			}
		})
	}
	if len(got) != 2 {
		return
	}
	for i, c := range cases {
		if got["dockerd"][i] != got["berth"][i] {
			t.Errorf("docker %v:\ndockerd: %s\nberth: %s", c, got["dockerd"][i], got["berth"][i])
		}
	}
}
