package containerswap

import (
	"time"
)

// Step names, as they appear in logs (step field and message), history and
// the dso_rotation_step_duration_seconds metric.
const (
	StepPrepare = "prepare" // write files, derive the candidate
	StepCreate  = "create"
	StepStop    = "stop-old" // recreate: free the host ports
	StepStart   = "start"
	StepHealth  = "health"
	StepSwap    = "swap" // aliases + renames
	StepVerify  = "verify"
	StepCleanup = "cleanup"
	StepRevert  = "revert"
	StepReload  = "reload" // in-place: restart or signal
)

// StepTiming is one finished step.
type StepTiming struct {
	Step     string        `json:"step"`
	Duration time.Duration `json:"duration"`
	Error    string        `json:"error,omitempty"`
}

// HealthProbe is one health observation (Docker's or our own exec).
type HealthProbe struct {
	Time     time.Time `json:"time"`
	ExitCode int       `json:"exitCode"`
	Output   string    `json:"output"`
	Source   string    `json:"source"` // docker, exec, state
}

// Rotation is the record of one rotation, for logs, history and status.
type Rotation struct {
	TraceID   string        `json:"traceId"`
	Target    string        `json:"target"`
	Bindings  []string      `json:"bindings"`
	Strategy  string        `json:"strategy"`
	OldID     string        `json:"oldId,omitempty"`
	NewID     string        `json:"newId,omitempty"`
	Started   time.Time     `json:"started"`
	Finished  time.Time     `json:"finished,omitempty"`
	Steps     []StepTiming  `json:"steps"`
	Result    string        `json:"result"` // succeeded, failed, rolled-back
	Reason    string        `json:"reason,omitempty"`
	Health    []HealthProbe `json:"health,omitempty"`
	LockWait  time.Duration `json:"lockWait"`
	FromHash  string        `json:"fromHash,omitempty"`
	ToHash    string        `json:"toHash"`
	Recovered bool          `json:"recovered,omitempty"`
}

// Duration is the rotation's wall time.
func (r *Rotation) Duration() time.Duration { return r.Finished.Sub(r.Started) }

// RecoveryAction is one thing Recover did to an interrupted swap.
type RecoveryAction struct {
	Time    time.Time `json:"time"`
	Target  string    `json:"target"`
	TraceID string    `json:"traceId,omitempty"`
	Action  string    `json:"action"` // finished-cutover, removed-candidate, restored-old, removed-retired, restored-restart-policy
	Detail  string    `json:"detail"`
	Error   string    `json:"error,omitempty"`
}

// Observer receives rotation records (history, metrics, notifications).
// Implementations must not block.
type Observer interface {
	RotationStarted(r *Rotation)
	RotationFinished(r *Rotation)
	Recovery(a RecoveryAction)
	LockWait(target string, d time.Duration)
	// Degraded is called with the target's bindings when a gate fails (set)
	// and when a later rotation succeeds (cleared).
	Degraded(bindings []string, target string, reason string, set bool)
}

// NopObserver ignores everything.
type NopObserver struct{}

func (NopObserver) RotationStarted(*Rotation)               {}
func (NopObserver) RotationFinished(*Rotation)              {}
func (NopObserver) Recovery(RecoveryAction)                 {}
func (NopObserver) LockWait(string, time.Duration)          {}
func (NopObserver) Degraded([]string, string, string, bool) {}
