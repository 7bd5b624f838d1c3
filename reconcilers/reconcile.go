// Package reconcilers holds the vocabulary shared by dso's reconcilers
// (secretfetch, containerswap, orphancleanup), taken from controller-runtime:
// a Reconcile(ctx, key) returns a Result and an error; a terminal error is
// logged and not retried, any other error is retried with per-item backoff.
// Reconcilers are level-triggered: the key says what to look at, never what
// happened, and every step re-reads actual state.
package reconcilers

import (
	"errors"
	"time"
)

// Result tells the controller when to look at the key again.
type Result struct {
	// RequeueAfter > 0 re-adds the key after that long (without backoff).
	RequeueAfter time.Duration
}

type terminalError struct{ err error }

func (t terminalError) Error() string { return t.err.Error() }
func (t terminalError) Unwrap() error { return t.err }

// TerminalError marks err as not worth retrying (bad spec, refused input):
// the controller logs it and forgets the key until something changes.
func TerminalError(err error) error {
	if err == nil {
		return nil
	}
	return terminalError{err}
}

// IsTerminal reports whether err was marked with TerminalError.
func IsTerminal(err error) bool {
	var t terminalError
	return errors.As(err, &t)
}
