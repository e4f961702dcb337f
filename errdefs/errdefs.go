// Package errdefs types berth's errors by kind (not found, conflict, invalid
// argument, ...) so that callers, and the API server in one place, can map
// them to exit codes and HTTP status codes without parsing messages.
package errdefs

import (
	"errors"
	"fmt"
)

// Kind is the class of an error.
type Kind int

// The kinds of error berth distinguishes.
const (
	KindUnknown Kind = iota
	KindNotFound
	KindConflict
	KindInvalid
	KindUnauthorized
	KindUnavailable
	KindNotImplemented
	KindForbidden
)

func (k Kind) String() string {
	switch k {
	case KindNotFound:
		return "not found"
	case KindConflict:
		return "conflict"
	case KindInvalid:
		return "invalid argument"
	case KindUnauthorized:
		return "unauthorized"
	case KindUnavailable:
		return "unavailable"
	case KindNotImplemented:
		return "not implemented"
	case KindForbidden:
		return "forbidden"
	}
	return "unknown"
}

type kindError struct {
	kind Kind
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

// Mark wraps err so that KindOf reports k for it and for anything wrapping it.
func Mark(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: k, err: err}
}

// KindOf reports the outermost kind in err's chain, or KindUnknown.
func KindOf(err error) Kind {
	var ke *kindError
	if errors.As(err, &ke) {
		return ke.kind
	}
	return KindUnknown
}

// NotFound returns a formatted error of KindNotFound.
func NotFound(format string, a ...any) error {
	return Mark(KindNotFound, fmt.Errorf(format, a...))
}

// Conflict returns a formatted error of KindConflict.
func Conflict(format string, a ...any) error {
	return Mark(KindConflict, fmt.Errorf(format, a...))
}

// Invalid returns a formatted error of KindInvalid.
func Invalid(format string, a ...any) error {
	return Mark(KindInvalid, fmt.Errorf(format, a...))
}

// NotImplemented returns a formatted error of KindNotImplemented.
func NotImplemented(format string, a ...any) error {
	return Mark(KindNotImplemented, fmt.Errorf(format, a...))
}

// Unavailable returns a formatted error of KindUnavailable.
func Unavailable(format string, a ...any) error {
	return Mark(KindUnavailable, fmt.Errorf(format, a...))
}

// Forbidden returns a formatted error of KindForbidden.
func Forbidden(format string, a ...any) error {
	return Mark(KindForbidden, fmt.Errorf(format, a...))
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return KindOf(err) == k }
