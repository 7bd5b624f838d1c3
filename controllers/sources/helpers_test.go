package sources

import (
	"testing"
	"time"

	"github.com/dso-dev/dso/internal/testutil"
)

// eventually polls cond until it holds or timeout passes. Timeouts are
// generous: the machine is shared and -race is slow.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, timeout, 2*time.Millisecond, what, cond)
}
