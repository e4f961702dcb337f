package format

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	units "github.com/docker/go-units"
)

// Size is a size as docker lists images: 3 significant digits, SI units.
func Size(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }

// SizeDF is a size as `docker system df` prints it (go-units' default).
func SizeDF(n int64) string { return units.HumanSize(float64(n)) }

// Since is "2 hours ago" for a Unix time, as docker prints CREATED.
func Since(unix int64) string {
	return units.HumanDuration(time.Now().UTC().Sub(time.Unix(unix, 0))) + " ago"
}

// TruncateID is an ID without its algorithm, cut to 12 characters.
func TruncateID(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// Ellipsis cuts s to n characters, the last one "…", as docker cuts
// CREATED BY.
func Ellipsis(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	if n == 1 {
		return string(r[0])
	}
	return string(r[:n-1]) + "…"
}

// Percent is "1.2kB (50%)" as docker df prints a reclaimable size.
func Percent(part, total int64) string {
	if total <= 0 {
		return SizeDF(part)
	}
	return fmt.Sprintf("%s (%v%%)", SizeDF(part), (part*100)/total)
}
