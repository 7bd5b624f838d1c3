//go:build faultinject

package agent

import (
	"os"
	"syscall"

	"github.com/go-logr/logr"
)

// FaultHook kills the agent with SIGKILL when a swap reaches the crash point
// named by $DSO_FAULT (e.g. after-rename-old): no deferred cleanup runs, as
// in a real crash. Compiled only with -tags faultinject.
func FaultHook(log logr.Logger) func(string) {
	want := os.Getenv("DSO_FAULT")
	if want == "" {
		return nil
	}
	return func(point string) {
		if point == want {
			log.Info("fault injection: killing the agent", "point", point)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
}
