package providers

import (
	"errors"
	"fmt"
)

// Kind classifies a provider error.
type Kind int

const (
	// KindUnknown is any error not mapped to another kind; treated as unavailable.
	KindUnknown Kind = iota
	// KindNotFound: the key (or version, or property) does not exist.
	KindNotFound
	// KindPermissionDenied: the credentials are valid but not allowed, or invalid.
	KindPermissionDenied
	// KindUnavailable: network failure, throttling, 5xx. Retryable.
	KindUnavailable
	// KindInvalidRef: the reference is malformed (traversal, NUL, oversized value...).
	KindInvalidRef
	// KindInvalidConfig: the store's settings or credentials source are wrong.
	KindInvalidConfig
)

func (k Kind) String() string {
	switch k {
	case KindNotFound:
		return "not found"
	case KindPermissionDenied:
		return "permission denied"
	case KindUnavailable:
		return "unavailable"
	case KindInvalidRef:
		return "invalid reference"
	case KindInvalidConfig:
		return "invalid configuration"
	default:
		return "error"
	}
}

// Sentinels usable with errors.Is.
var (
	ErrNotFound         = &Error{Kind: KindNotFound}
	ErrPermissionDenied = &Error{Kind: KindPermissionDenied}
	ErrUnavailable      = &Error{Kind: KindUnavailable}
	ErrInvalidRef       = &Error{Kind: KindInvalidRef}
	ErrInvalidConfig    = &Error{Kind: KindInvalidConfig}
)

// Error is the one error type providers return. Its message names the store
// and the key, never a value. Err may wrap an SDK error; providers must make
// sure the wrapped error's text cannot contain a secret value.
type Error struct {
	Kind  Kind
	Store string
	Key   string
	// Msg is a short human explanation, e.g. `field "password" not in secret`.
	Msg string
	// RetryAfter is a provider's hint (429 Retry-After), zero if none.
	RetryAfter int64 // nanoseconds; a time.Duration kept as int64 for errors.Is equality
	Err        error
}

func (e *Error) Error() string {
	s := "store " + quote(e.Store)
	if e.Key != "" {
		s += " key " + quote(e.Key)
	}
	s += ": " + e.Kind.String()
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// Unwrap returns the wrapped error.
func (e *Error) Unwrap() error { return e.Err }

// Is matches sentinels by Kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Store == "" && t.Key == "" && t.Msg == "" && t.Err == nil && t.Kind == e.Kind
}

// Errorf builds an *Error.
func Errorf(kind Kind, store, key string, format string, args ...any) *Error {
	return &Error{Kind: kind, Store: store, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Wrap builds an *Error around err.
func Wrap(kind Kind, store, key string, err error, msg string) *Error {
	return &Error{Kind: kind, Store: store, Key: key, Msg: msg, Err: err}
}

// KindOf returns the Kind of err (KindUnknown if it is not an *Error).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnknown
}

// Retryable reports whether err is worth retrying with backoff.
func Retryable(err error) bool {
	k := KindOf(err)
	return k == KindUnavailable || k == KindUnknown
}
