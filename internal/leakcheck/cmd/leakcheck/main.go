// Command leakcheck snapshots the host before a test suite and reports what
// the suite left behind: mounts, cgroup directories, network namespaces,
// network links and processes. It never removes or kills anything.
//
//	leakcheck snapshot [-berth PATH] FILE   # before the suite
//	leakcheck check [-ignore RE] [-grace D] FILE   # after; exit 1 on leaks
//	leakcheck show                          # print the current state
//
// Exit codes: 0 clean, 1 leaks found, 2 usage or I/O error.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"time"

	"berth.dev/berth/internal/leakcheck"
)

func usage() {
	fmt.Fprintln(os.Stderr, `usage:
  leakcheck snapshot [-berth PATH] FILE
  leakcheck check [-ignore REGEXP] [-grace DURATION] FILE
  leakcheck show`)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "snapshot":
		fl := flag.NewFlagSet("snapshot", flag.ExitOnError)
		berth := fl.String("berth", os.Getenv("BERTH_BINARY"), "the berth binary whose processes count as leaks")
		_ = fl.Parse(os.Args[2:])
		if fl.NArg() != 1 {
			usage()
		}
		s, err := leakcheck.Take(leakcheck.Options{Mode: leakcheck.Host, BerthBinary: *berth})
		if err != nil {
			fail(err)
		}
		if err := s.Save(fl.Arg(0)); err != nil {
			fail(err)
		}
		fmt.Printf("leakcheck: snapshot %s: %s\n", fl.Arg(0), s.Summary())
	case "check":
		fl := flag.NewFlagSet("check", flag.ExitOnError)
		ignore := fl.String("ignore", os.Getenv("LEAKCHECK_IGNORE"), "drop leaks whose description matches this regexp")
		grace := fl.Duration("grace", leakcheck.DefaultGrace, "how long a leak must persist")
		_ = fl.Parse(os.Args[2:])
		if fl.NArg() != 1 {
			usage()
		}
		s, err := leakcheck.Load(fl.Arg(0))
		if err != nil {
			fail(err)
		}
		if *ignore != "" {
			re, err := regexp.Compile(*ignore)
			if err != nil {
				fail(err)
			}
			s.Ignore = re
		}
		s.Grace = *grace
		if *grace <= 0 {
			s.Grace = -time.Nanosecond
		}
		if gone, err := s.Vanished(); err == nil {
			for _, g := range gone {
				fmt.Printf("leakcheck: warning: gone since the snapshot: %s\n", g)
			}
		}
		if err := s.Check(); err != nil {
			fmt.Println(err)
			fmt.Println("leakcheck: FAIL")
			os.Exit(1)
		}
		fmt.Printf("leakcheck: ok, nothing new since %s (%s)\n", s.TakenAt.Format(time.RFC3339), s.Summary())
	case "show":
		s, err := leakcheck.Take(leakcheck.Options{Mode: leakcheck.Host})
		if err != nil {
			fail(err)
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", " ")
		_ = enc.Encode(s)
	default:
		usage()
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "leakcheck:", err)
	os.Exit(2)
}
