package agent

import (
	"sort"
	"sync"
	"time"

	"github.com/dso-dev/dso/reconcilers/containerswap"
)

// Recorder keeps what the agent has done — recent rotations with their
// steps and health diagnostics, recovery actions, binding conditions — in
// memory for status and describe. It is a containerswap.Observer. No value
// ever reaches it: rotations carry names, hashes (HMACs) and timings.
type Recorder struct {
	mu        sync.Mutex
	rotations []containerswap.Rotation // newest last, bounded
	recovery  []containerswap.RecoveryAction
	degraded  map[string]map[string]string // binding -> target -> reason
	inFlight  map[string]time.Time
	lockWaits []time.Duration
	total     map[string]int // result -> count
	max       int
}

// NewRecorder keeps the last max rotations and recovery actions.
func NewRecorder(max int) *Recorder {
	return &Recorder{degraded: map[string]map[string]string{}, inFlight: map[string]time.Time{}, total: map[string]int{}, max: max}
}

func (r *Recorder) RotationStarted(rot *containerswap.Rotation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight[rot.TraceID] = rot.Started
}

func (r *Recorder) RotationFinished(rot *containerswap.Rotation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.inFlight, rot.TraceID)
	r.total[rot.Result]++
	r.rotations = append(r.rotations, *rot)
	if len(r.rotations) > r.max {
		r.rotations = r.rotations[len(r.rotations)-r.max:]
	}
}

func (r *Recorder) Recovery(a containerswap.RecoveryAction) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recovery = append(r.recovery, a)
	if len(r.recovery) > r.max {
		r.recovery = r.recovery[len(r.recovery)-r.max:]
	}
}

func (r *Recorder) LockWait(_ string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lockWaits = append(r.lockWaits, d)
	if len(r.lockWaits) > 256 {
		r.lockWaits = r.lockWaits[len(r.lockWaits)-256:]
	}
}

func (r *Recorder) Degraded(bindings []string, target, reason string, set bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range bindings {
		m := r.degraded[b]
		if m == nil {
			m = map[string]string{}
			r.degraded[b] = m
		}
		if set {
			m[target] = reason
		} else {
			delete(m, target)
		}
	}
}

// Snapshot is a copy of what the recorder holds.
type Snapshot struct {
	Rotations  []containerswap.Rotation       `json:"rotations"`
	Recovery   []containerswap.RecoveryAction `json:"recovery"`
	Degraded   map[string]map[string]string   `json:"degraded"`
	InProgress int                            `json:"inProgress"`
	Totals     map[string]int                 `json:"totals"`
	MaxLock    time.Duration                  `json:"maxLockWait"`
	LockOver1s int                            `json:"lockOver1s"`
}

// Snapshot returns a copy.
func (r *Recorder) Snapshot() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Snapshot{
		Rotations: append([]containerswap.Rotation(nil), r.rotations...),
		Recovery:  append([]containerswap.RecoveryAction(nil), r.recovery...),
		Degraded:  map[string]map[string]string{}, InProgress: len(r.inFlight), Totals: map[string]int{},
	}
	for b, m := range r.degraded {
		if len(m) == 0 {
			continue
		}
		c := map[string]string{}
		for k, v := range m {
			c[k] = v
		}
		s.Degraded[b] = c
	}
	for k, v := range r.total {
		s.Totals[k] = v
	}
	for _, d := range r.lockWaits {
		s.MaxLock = max(s.MaxLock, d)
		if d > time.Second {
			s.LockOver1s++
		}
	}
	sort.Slice(s.Rotations, func(i, j int) bool { return s.Rotations[i].Started.Before(s.Rotations[j].Started) })
	return s
}

// multiObserver fans containerswap events out.
type multiObserver []containerswap.Observer

func (m multiObserver) RotationStarted(r *containerswap.Rotation) {
	for _, o := range m {
		o.RotationStarted(r)
	}
}
func (m multiObserver) RotationFinished(r *containerswap.Rotation) {
	for _, o := range m {
		o.RotationFinished(r)
	}
}
func (m multiObserver) Recovery(a containerswap.RecoveryAction) {
	for _, o := range m {
		o.Recovery(a)
	}
}
func (m multiObserver) LockWait(t string, d time.Duration) {
	for _, o := range m {
		o.LockWait(t, d)
	}
}
func (m multiObserver) Degraded(b []string, t, reason string, set bool) {
	for _, o := range m {
		o.Degraded(b, t, reason, set)
	}
}
