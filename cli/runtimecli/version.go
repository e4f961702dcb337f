package runtimecli

import (
	"runtime/debug"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Version is berth's version; release builds set it with
// -ldflags "-X berth.dev/berth/cli/runtimecli.Version=...". Without it the
// module version or the VCS revision the binary was built from is used.
var Version string

func version() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "dev-" + rev
}

// versionTemplate is what --version prints, in runc's form (tools parse
// the first line and the spec line).
var versionTemplate = "berth-runtime version {{.Version}}\nspec: " + specs.Version + "\n"
