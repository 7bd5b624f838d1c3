// Package testutil holds the few helpers that tests of several packages
// need alike: waiting for a condition, and collecting log lines. It is
// imported by tests only.
package testutil

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// Eventually polls cond (every poll) until it holds, and fails the test
// when timeout passes first. It waits for goroutines to reach a state;
// timeouts are generous (the machines are shared and -race is slow), so
// only a real bug runs into them. It never asserts on timing.
func Eventually(t testing.TB, timeout, poll time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(poll)
	}
}

// LogSink collects the formatted lines of a logr logger, safely from any
// goroutine.
type LogSink struct {
	mu    sync.Mutex
	lines []string
}

// Logger logs "prefix args" lines into s up to verbosity.
func (s *LogSink) Logger(verbosity int) logr.Logger {
	return funcr.New(func(prefix, args string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.lines = append(s.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: verbosity})
}

// Matching returns the lines containing sub.
func (s *LogSink) Matching(sub string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.lines {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// Text is every line so far, joined by newlines.
func (s *LogSink) Text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}
