// Package reference parses and normalizes image references as docker does
// ("busybox" is "docker.io/library/busybox", shown as "busybox"), with the
// grammar of the distribution spec and docker's error messages.
//
// It is written as plain scanning code rather than regular expressions so
// that the binary builds nothing at start-up: every start of berth (each CLI
// call, each runtime step) would otherwise compile the grammar's regexps.
package reference

import (
	"errors"
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

const (
	defaultDomain = "docker.io"
	legacyDomain  = "index.docker.io"
	officialRepo  = "library/"
	defaultTag    = "latest"
	// NameTotalLengthMax is the longest repository path a reference may have.
	NameTotalLengthMax = 255
)

// The errors docker's CLI and daemon print for a bad reference.
var (
	ErrReferenceInvalidFormat = errors.New("invalid reference format")
	ErrNameContainsUppercase  = errors.New("repository name must be lowercase")
	ErrNameEmpty              = errors.New("repository name must have at least one component")
	ErrNameTooLong            = errors.New("repository name must not be more than 255 characters") // NameTotalLengthMax
)

// Named is a parsed reference: a repository (domain and path) with an
// optional tag and digest. A reference made of a digest alone (ParseAny
// of an image ID) has neither domain nor path.
type Named struct {
	Domain string
	Path   string
	Tag    string
	Digest digest.Digest
}

// Name is the repository: "docker.io/library/busybox".
func (r Named) Name() string {
	if r.Domain == "" {
		return r.Path
	}
	return r.Domain + "/" + r.Path
}

// String is the whole reference: name[:tag][@digest].
func (r Named) String() string { return join(r.Name(), r.Tag, r.Digest) }

// FamiliarName is the repository as docker shows it: docker.io and the
// official "library/" prefix left out.
func (r Named) FamiliarName() string {
	if r.Domain != defaultDomain {
		return r.Name()
	}
	if rest, ok := strings.CutPrefix(r.Path, officialRepo); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return r.Path
}

// FamiliarString is the reference as docker shows it: "busybox:latest".
func (r Named) FamiliarString() string { return join(r.FamiliarName(), r.Tag, r.Digest) }

// TagNameOnly gives a reference with neither tag nor digest the tag "latest".
func (r Named) TagNameOnly() Named {
	if r.Tag == "" && r.Digest == "" {
		r.Tag = defaultTag
	}
	return r
}

func join(name, tag string, dg digest.Digest) string {
	s := name
	if tag != "" {
		s += ":" + tag
	}
	if dg != "" && s != "" {
		s += "@"
	}
	return s + string(dg)
}

// ParseNormalizedNamed parses a reference as a user types it and fills in
// what docker assumes: the docker.io domain and the "library/" path of an
// official image. The result has a name; it has a tag only if s had one.
func ParseNormalizedNamed(s string) (Named, error) {
	if isIdentifier(s) {
		return Named{}, fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s)
	}
	domain, remainder := splitDomain(s)
	remote, _, _ := strings.Cut(remainder, ":")
	if strings.ToLower(remote) != remote {
		return Named{}, fmt.Errorf("invalid reference format: repository name (%s) must be lowercase", remote)
	}
	return parse(domain + "/" + remainder)
}

// ParseAny parses an image reference or ID: 64 hex digits or a digest are a
// reference to that image ID (no name), anything else ParseNormalizedNamed.
func ParseAny(s string) (Named, error) {
	if isIdentifier(s) {
		return Named{Digest: digest.Digest("sha256:" + s)}, nil
	}
	if dg, err := digest.Parse(s); err == nil {
		return Named{Digest: dg}, nil
	}
	return ParseNormalizedNamed(s)
}

// splitDomain splits off the registry: the first path element is one if it
// looks like a host (a dot or a port, "localhost", or upper case).
func splitDomain(s string) (domain, remainder string) {
	first, rest, ok := strings.Cut(s, "/")
	switch {
	case !ok:
		domain, remainder = defaultDomain, s
	case first == legacyDomain:
		domain, remainder = defaultDomain, rest
	case first == "localhost", strings.ContainsAny(first, ".:"), strings.ToLower(first) != first:
		domain, remainder = first, rest
	default:
		domain, remainder = defaultDomain, s
	}
	if domain == defaultDomain && !strings.Contains(remainder, "/") {
		remainder = officialRepo + remainder
	}
	return domain, remainder
}

// parse reads name[:tag][@digest], where name is [domain/]path.
func parse(s string) (Named, error) {
	name, tag, dg, ok := split(s)
	if !ok {
		switch {
		case s == "":
			return Named{}, ErrNameEmpty
		case func() bool { _, _, _, ok := split(strings.ToLower(s)); return ok }():
			return Named{}, ErrNameContainsUppercase
		}
		return Named{}, ErrReferenceInvalidFormat
	}
	r := Named{Path: name, Tag: tag}
	if first, rest, ok := strings.Cut(name, "/"); ok && isDomain(first) && isPath(rest) {
		r.Domain, r.Path = first, rest
	}
	if len(r.Path) > NameTotalLengthMax {
		return Named{}, ErrNameTooLong
	}
	if dg != "" {
		d, err := digest.Parse(dg)
		if err != nil {
			return Named{}, err
		}
		r.Digest = d
	}
	if r.Name() == "" && r.Digest == "" {
		return Named{}, ErrNameEmpty
	}
	return r, nil
}

// split checks s against the grammar and cuts it into its parts. The name
// is either domain/path or a path alone (a first element that is no valid
// host may still be a path element: "a_b.com/x").
func split(s string) (name, tag, dg string, ok bool) {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s, dg = s[:i], s[i+1:]
		if !isDigest(dg) {
			return "", "", "", false
		}
	}
	// The tag follows the last ':' if that is after the last '/' (a ':'
	// before it is a port).
	if i := strings.LastIndexByte(s, ':'); i > strings.LastIndexByte(s, '/') {
		s, tag = s[:i], s[i+1:]
		if !isTag(tag) {
			return "", "", "", false
		}
	}
	if isPath(s) {
		return s, tag, dg, true
	}
	if first, rest, cut := strings.Cut(s, "/"); cut && isDomain(first) && isPath(rest) {
		return s, tag, dg, true
	}
	return "", "", "", false
}

// isPath: components [a-z0-9]+ joined by '.', '_', "__" or runs of '-',
// separated by '/'.
func isPath(s string) bool {
	for c := range strings.SplitSeq(s, "/") {
		if !isPathComponent(c) {
			return false
		}
	}
	return true
}

func isPathComponent(c string) bool {
	if c == "" || !isLowerAlnum(c[0]) || !isLowerAlnum(c[len(c)-1]) {
		return false
	}
	for i := 0; i < len(c); {
		if isLowerAlnum(c[i]) {
			i++
			continue
		}
		j := i
		for j < len(c) && !isLowerAlnum(c[j]) {
			j++
		}
		switch sep := c[i:j]; {
		case sep == "." || sep == "_" || sep == "__":
		case strings.Trim(sep, "-") == "":
		default:
			return false
		}
		i = j
	}
	return true
}

// isDomain: a host name of dot-separated labels ([a-zA-Z0-9], '-' inside)
// or a bracketed IPv6 address, with an optional :port.
func isDomain(s string) bool {
	host := s
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.HasSuffix(s, "]") {
		host = s[:i]
		if !isDigits(s[i+1:]) {
			return false
		}
	}
	if strings.HasPrefix(host, "[") {
		addr, ok := strings.CutSuffix(host[1:], "]")
		return ok && addr != "" && strings.Trim(addr, "0123456789abcdefABCDEF:") == ""
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || !isAlnum(label[0]) || !isAlnum(label[len(label)-1]) {
			return false
		}
		for i := range len(label) {
			if !isAlnum(label[i]) && label[i] != '-' {
				return false
			}
		}
	}
	return true
}

// isTag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
func isTag(s string) bool {
	if s == "" || len(s) > 128 || !isWord(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isWord(s[i]) && s[i] != '.' && s[i] != '-' {
			return false
		}
	}
	return true
}

// isDigest: an algorithm of letter-led alphanumeric parts joined by one of
// "-_+.", a ':' and 32 or more hex digits (digest.Parse checks the rest).
func isDigest(s string) bool {
	alg, hex, ok := strings.Cut(s, ":")
	if !ok || len(hex) < 32 || strings.Trim(hex, "0123456789abcdefABCDEF") != "" {
		return false
	}
	start := true
	for i := 0; i < len(alg); i++ {
		c := alg[i]
		switch {
		case start:
			if !isLetter(c) {
				return false
			}
			start = false
		case strings.IndexByte("-_+.", c) >= 0:
			start = true
		case !isAlnum(c):
			return false
		}
	}
	return !start
}

// isIdentifier: an image ID's 64 lower-case hex digits.
func isIdentifier(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
func isLetter(c byte) bool     { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool      { return isLetter(c) || '0' <= c && c <= '9' }
func isWord(c byte) bool       { return isAlnum(c) || c == '_' }
