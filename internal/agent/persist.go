package agent

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-logr/logr"

	"github.com/dso-dev/dso/internal/api"
	"github.com/dso-dev/dso/internal/state"
	"github.com/dso-dev/dso/reconcilers/containerswap"
)

// persister writes rotation history, recovery actions and events to the
// state store. It is a containerswap.Observer. Records hold names, HMAC
// hashes, timings and health output — never a value.
type persister struct {
	st  *state.Store
	log logr.Logger
}

func (p persister) RotationStarted(*containerswap.Rotation) {}
func (p persister) LockWait(string, time.Duration)          {}

func (p persister) RotationFinished(r *containerswap.Rotation) {
	b, err := json.Marshal(r)
	if err == nil {
		err = p.st.AppendRotation(r.Started, r.TraceID, r.Bindings, b)
	}
	if err != nil {
		p.log.Error(err, "could not record rotation in the state store", "trace_id", r.TraceID)
	}
	typ, reason := "Normal", "RotationSucceeded"
	msg := fmt.Sprintf("rotated %s (%s, %s)", r.Target, r.Strategy, r.Duration().Round(time.Millisecond))
	if r.Result != "succeeded" {
		typ, reason = "Warning", "RotationFailed"
		msg = fmt.Sprintf("rotation of %s failed (%s): %s", r.Target, r.Result, r.Reason)
	}
	for _, bnd := range r.Bindings {
		p.event(api.Event{Time: r.Finished, Binding: bnd, Target: r.Target, Type: typ, Reason: reason, Message: msg + " trace=" + r.TraceID})
	}
}

func (p persister) Recovery(a containerswap.RecoveryAction) {
	b, err := json.Marshal(a)
	if err == nil {
		err = p.st.AppendRecovery(a.Time, b)
	}
	if err != nil {
		p.log.Error(err, "could not record recovery action in the state store")
	}
}

func (p persister) Degraded([]string, string, string, bool) {}

func (p persister) event(ev api.Event) {
	b, err := json.Marshal(ev)
	if err == nil {
		err = p.st.AppendEvent(ev.Time, ev.Binding, b)
	}
	if err != nil {
		p.log.Error(err, "could not record event in the state store")
	}
}
