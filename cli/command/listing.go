package command

import (
	"sort"

	"berth.dev/berth/cli/format"
)

// listFormat is a listing's template (ps, images, history, volume ls):
// the --format given, else with -q the one column quiet shows, else the
// default table.
func listFormat(f string, quiet bool, quietTmpl, table string) string {
	switch {
	case f != "" && f != format.TableKey:
		return f
	case quiet:
		return quietTmpl
	}
	return table
}

// sortedPairs is a map's "k=v" pairs in order (labels, --log-opt).
func sortedPairs(m map[string]string) []string {
	l := make([]string, 0, len(m))
	for k, v := range m {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return l
}
