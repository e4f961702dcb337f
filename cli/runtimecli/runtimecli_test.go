package runtimecli

import (
	"bytes"
	"regexp"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth.dev/berth/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestVersion checks --version and -v print runc's form: the version line
// and the runtime spec version this build implements.
func TestVersion(t *testing.T) {
	want := regexp.MustCompile(`^berth-runtime version \S+\nspec: ` + regexp.QuoteMeta(specs.Version) + `\n$`)
	for _, arg := range []string{"--version", "-v"} {
		cmd := Command("berth runtime")
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{arg})
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if !want.Match(out.Bytes()) {
			t.Errorf("%s printed %q, want %s", arg, out.String(), want)
		}
	}
	Version = "1.2.3-test"
	defer func() { Version = "" }()
	cmd := Command("berth runtime")
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--version"})
	if err := cmd.Execute(); err != nil || out.String() != "berth-runtime version 1.2.3-test\nspec: "+specs.Version+"\n" {
		t.Errorf("with Version set: %q, %v", out.String(), err)
	}
}
