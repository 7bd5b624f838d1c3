package notify

import (
	"encoding/json"
	"time"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/reconcilers/containerswap"
)

// Event is one notification. Its fields are identifiers, results and
// timings; there is deliberately no field that could carry a value.
type Event struct {
	// Type is one of v1alpha1.NotificationEvents.
	Type     string
	Time     time.Time
	Bindings []string
	Target   string
	TraceID  string
	Strategy string
	Duration time.Duration
	// Reason says why a rotation failed or what a recovery action did.
	Reason string
	// Action is the recovery action (recovery events only).
	Action string
}

// body is the JSON wire form of an Event. It is a separate type so that the
// contract (names, RFC 3339 time, milliseconds, binding always a list) is
// written down in one place and cannot drift with Event.
type body struct {
	Type       string   `json:"type"`
	Time       string   `json:"time"`
	Binding    []string `json:"binding"`
	Target     string   `json:"target"`
	TraceID    string   `json:"traceId,omitempty"`
	Strategy   string   `json:"strategy,omitempty"`
	DurationMs int64    `json:"durationMs"`
	Reason     string   `json:"reason,omitempty"`
	Action     string   `json:"action,omitempty"`
}

// MarshalJSON renders the notification body.
func (e Event) MarshalJSON() ([]byte, error) {
	b := body{
		Type:       e.Type,
		Time:       e.Time.UTC().Format(time.RFC3339),
		Binding:    e.Bindings,
		Target:     e.Target,
		TraceID:    e.TraceID,
		Strategy:   e.Strategy,
		DurationMs: e.Duration.Milliseconds(),
		Reason:     e.Reason,
		Action:     e.Action,
	}
	if b.Binding == nil {
		b.Binding = []string{} // receivers can iterate without a null check
	}
	return json.Marshal(b)
}

// Observer returns the containerswap.Observer that turns finished rotations
// and recovery actions into notifications. Compose it with the other
// observers (history, metrics) at the call site; like them it never blocks.
func (n *Notifier) Observer() containerswap.Observer { return observer{n} }

type observer struct{ n *Notifier }

func (o observer) RotationStarted(*containerswap.Rotation)    {}
func (o observer) LockWait(string, time.Duration)             {}
func (o observer) Degraded([]string, string, string, bool)    {}
func (o observer) RotationFinished(r *containerswap.Rotation) { o.n.Notify(RotationEvent(r)) }
func (o observer) Recovery(a containerswap.RecoveryAction)    { o.n.Notify(RecoveryEvent(a)) }

// RotationEvent maps a finished rotation: "succeeded" is rotation_succeeded;
// "failed" and "rolled-back" (the old container kept, the new value not
// delivered) are rotation_failed, as is any result this code does not know.
func RotationEvent(r *containerswap.Rotation) Event {
	t := v1alpha1.EventRotationFailed
	if r.Result == "succeeded" {
		t = v1alpha1.EventRotationSucceeded
	}
	ev := Event{
		Type: t, Time: r.Finished, Bindings: append([]string(nil), r.Bindings...), Target: r.Target,
		TraceID: r.TraceID, Strategy: r.Strategy, Reason: r.Reason,
	}
	if !r.Started.IsZero() && !r.Finished.IsZero() {
		ev.Duration = r.Duration()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	return ev
}

// RecoveryEvent maps a recovery action: recovery_failed when it carries an
// error (which becomes the reason), else recovery_succeeded with the
// action's detail as the reason.
func RecoveryEvent(a containerswap.RecoveryAction) Event {
	ev := Event{
		Type: v1alpha1.EventRecoverySucceeded, Time: a.Time, Target: a.Target, TraceID: a.TraceID,
		Action: a.Action, Reason: a.Detail,
	}
	if a.Error != "" {
		ev.Type = v1alpha1.EventRecoveryFailed
		ev.Reason = a.Error
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	return ev
}
