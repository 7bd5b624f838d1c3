// Package orphancleanup is the reconciler that finishes or reverts swaps an
// agent crash interrupted. It runs once at start, before any rotation, and
// after every full Docker relist. It finds dso-made candidates by their
// dso.dev/* labels only — never by name pattern — and hands each target to
// containerswap's Recover, which decides from what Docker shows.
package orphancleanup

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/dso-dev/dso/reconcilers"
)

// Swapper is the part of containerswap.Reconciler this reconciler uses.
type Swapper interface {
	Interrupted(ctx context.Context) ([]string, error)
	Recover(ctx context.Context, target string) error
}

// Run is the summary of one cleanup pass (shown by status as .recovery).
type Run struct {
	Time     time.Time     `json:"time"`
	Duration time.Duration `json:"duration"`
	// Found lists targets with an interrupted rotation.
	Found  []string `json:"found"`
	Errors []string `json:"errors,omitempty"`
}

// Key is the reconciler's single key: the whole host.
type Key struct{}

// Reconciler scans for interrupted swaps.
type Reconciler struct {
	Swap Swapper
	Log  logr.Logger

	mu   sync.Mutex
	last *Run
	runs int
}

// Reconcile runs one pass.
func (r *Reconciler) Reconcile(ctx context.Context, _ Key) (reconcilers.Result, error) {
	start := time.Now()
	targets, err := r.Swap.Interrupted(ctx)
	if err != nil {
		return reconcilers.Result{}, err
	}
	run := &Run{Time: start, Found: targets}
	var firstErr error
	for _, t := range targets {
		r.Log.Info("Automatic recovery: found interrupted rotation", "container", t)
		if err := r.Swap.Recover(ctx, t); err != nil {
			run.Errors = append(run.Errors, t+": "+err.Error())
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	run.Duration = time.Since(start)
	if len(targets) > 0 {
		r.Log.Info("Automatic recovery: pass complete", "found", len(targets), "errors", len(run.Errors), "duration", run.Duration.String())
	}
	r.mu.Lock()
	r.last = run
	r.runs++
	r.mu.Unlock()
	return reconcilers.Result{}, firstErr
}

// Last returns the most recent pass (nil before the first) and the number of passes.
func (r *Reconciler) Last() (*Run, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		return nil, r.runs
	}
	c := *r.last
	return &c, r.runs
}
