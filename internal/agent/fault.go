//go:build !faultinject

package agent

import "github.com/go-logr/logr"

// FaultHook returns the crash-point hook. In normal builds there is none;
// the faultinject build (used by the e2e crash matrix) kills the agent at
// the point named by $DSO_FAULT.
func FaultHook(logr.Logger) func(string) { return nil }
