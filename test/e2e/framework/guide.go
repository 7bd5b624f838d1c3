package framework

// Helpers of the operations-guide walk (test/e2e/guide_test.go). That test
// drives the agent the way an operator does — `dso system enable` and the
// CLI — instead of StartAgent, so it needs the few pieces of StartAgent's
// cleanup and config writing that are not exported.

import (
	"net"
	"strconv"
	"testing"
)

// FreeLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment
// ago (for agent.metrics.listen, or as a closed port nobody listens on).
func FreeLoopbackPort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("finding a free loopback port: %v", err)
	}
	return p
}

// UnmountAll unmounts every mount at dir, e.g. the tmpfs an agent mounted
// at its delivery dir, so t.TempDir can be removed.
func UnmountAll(t testing.TB, dir string) { unmountAll(t, dir) }

// Loopback joins 127.0.0.1 and port.
func Loopback(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
