// Package lazyregexp is a regexp compiled on its first use. A package-level
// regexp.MustCompile runs at every start of the binary (each CLI call, each
// runtime step), whether or not that invocation ever matches it.
package lazyregexp

import (
	"regexp"
	"sync"
)

// Regexp is a *regexp.Regexp compiled when first used; an invalid pattern
// panics then, as MustCompile would at start-up.
type Regexp struct{ re func() *regexp.Regexp }

// New returns expr, to be compiled on first use.
func New(expr string) *Regexp {
	return &Regexp{re: sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })}
}

// Regexp is the compiled expression.
func (r *Regexp) Regexp() *regexp.Regexp { return r.re() }

func (r *Regexp) MatchString(s string) bool { return r.re().MatchString(s) }

func (r *Regexp) FindStringSubmatch(s string) []string { return r.re().FindStringSubmatch(s) }

func (r *Regexp) FindAllStringSubmatchIndex(s string, n int) [][]int {
	return r.re().FindAllStringSubmatchIndex(s, n)
}
