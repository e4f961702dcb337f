// Command testsum reads `go test -json` on stdin and prints what plain
// `go test` would: the per-package "ok" / "FAIL" / "?" lines, the output of
// failing tests, and TestMain output; it also prints each skipped test with
// its reason, and ends with one summary line:
//
//	SUMMARY: packages 7 ok, 1 failed, 2 without tests; tests 120 passed, 1 failed, 9 skipped
//
// It exits 1 when any package or test failed.
//
//	go test -json ./... | testsum [-json FILE]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string
	Elapsed    float64
}

type test struct {
	out  []string
	done bool
}

func main() {
	raw := flag.String("json", "", "also copy the raw JSON stream to this file")
	flag.Parse()
	var in io.Reader = os.Stdin
	if *raw != "" {
		f, err := os.Create(*raw)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsum:", err)
			os.Exit(2)
		}
		defer f.Close()
		in = io.TeeReader(os.Stdin, f)
	}
	os.Exit(run(in, os.Stdout))
}

func run(in io.Reader, w io.Writer) int {
	var (
		pkgOK, pkgFail, pkgNoTest int
		passed, failed, skipped   int
		failedTests               []string
		failedPkgs                []string
		tests                     = map[string]map[string]*test{}
	)
	flushUnfinished := func(pkg string) {
		names := make([]string, 0, len(tests[pkg]))
		for n, t := range tests[pkg] {
			if !t.done {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprint(w, strings.Join(tests[pkg][n].out, ""))
			fmt.Fprintf(w, "--- UNFINISHED: %s (the test binary ended while it ran)\n", n)
			failed++
			failedTests = append(failedTests, pkg+"."+n)
		}
		delete(tests, pkg)
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1024*1024), 64*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// go test prints some errors (e.g. bad flags, setup failures) as text.
			fmt.Fprintln(w, string(line))
			continue
		}
		switch {
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Action == "build-fail":
			// reported again as the package's FAIL line
		case e.Test == "":
			switch e.Action {
			case "output":
				if strings.HasPrefix(e.Output, "FAIL\t") {
					flushUnfinished(e.Package) // a timeout's or crash's output belongs above the FAIL line
				}
				if o := strings.TrimSpace(e.Output); o != "PASS" && o != "FAIL" && !strings.HasPrefix(o, "testing: warning: no tests to run") {
					fmt.Fprint(w, e.Output)
				}
			case "pass":
				pkgOK++
				delete(tests, e.Package)
			case "skip":
				pkgNoTest++
			case "fail":
				pkgFail++
				failedPkgs = append(failedPkgs, e.Package)
				flushUnfinished(e.Package)
			}
		default:
			if tests[e.Package] == nil {
				tests[e.Package] = map[string]*test{}
			}
			t := tests[e.Package][e.Test]
			if t == nil {
				t = &test{}
				tests[e.Package][e.Test] = t
			}
			switch e.Action {
			case "output":
				t.out = append(t.out, e.Output)
			case "pass":
				passed++
				t.done, t.out = true, nil
			case "skip":
				skipped++
				t.done = true
				for _, o := range t.out {
					if !strings.HasPrefix(strings.TrimSpace(o), "=== ") {
						fmt.Fprint(w, o)
					}
				}
				t.out = nil
			case "fail":
				failed++
				failedTests = append(failedTests, e.Package+"."+e.Test)
				t.done = true
				fmt.Fprint(w, strings.Join(t.out, ""))
				t.out = nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(w, "testsum: reading go test -json:", err)
		pkgFail++
	}
	for pkg := range tests {
		flushUnfinished(pkg)
	}
	if len(failedPkgs) > 0 || len(failedTests) > 0 {
		fmt.Fprintln(w, "\nFAILED:")
		for _, t := range failedTests {
			fmt.Fprintln(w, "  test", t)
		}
		for _, p := range failedPkgs {
			fmt.Fprintln(w, "  package", p)
		}
	}
	fmt.Fprintf(w, "SUMMARY: packages %d ok, %d failed, %d without tests; tests %d passed, %d failed, %d skipped\n",
		pkgOK, pkgFail, pkgNoTest, passed, failed, skipped)
	if pkgFail > 0 || failed > 0 || pkgOK+pkgNoTest == 0 {
		return 1
	}
	return 0
}
