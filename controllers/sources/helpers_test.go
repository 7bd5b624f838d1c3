package sources

import (
	"testing"
	"time"
)

// eventually polls cond until it holds or timeout passes. Timeouts are
// generous: the machine is shared and -race is slow.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
