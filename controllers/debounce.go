package controllers

import (
	"context"
	"sync"
	"time"
)

// Debouncer coalesces a burst of Adds of one key into one call of fire: a
// secret store that writes five keys in a second, or a GitOps pull that
// touches ten binding files, should rotate a container once, not ten times
// (agent.watch.debounce_window). fire(k) runs once window has passed without
// another Add(k), but never later than maxWait after the first Add of the
// burst, so a key that changes without pause is still acted on.
//
// fire runs on a timer goroutine and may run for different keys at once; it
// should be quick (typically Controller.Enqueue). Adds before Start are
// honoured; when Start's context ends, pending keys are dropped (the next
// start re-lists everything, the reconcilers are level-triggered).
type Debouncer[K comparable] struct {
	window, maxWait time.Duration
	fire            func(K)

	mu      sync.Mutex
	stopped bool
	pending map[K]*burst
}

type burst struct {
	first time.Time
	gen   uint64
	timer *time.Timer
}

// NewDebouncer returns a Debouncer. maxWait <= 0 means 4*window; a maxWait
// shorter than window is raised to window. window <= 0 fires at once.
func NewDebouncer[K comparable](window, maxWait time.Duration, fire func(K)) *Debouncer[K] {
	if maxWait <= 0 {
		maxWait = 4 * window
	}
	if maxWait < window {
		maxWait = window
	}
	return &Debouncer[K]{window: window, maxWait: maxWait, fire: fire, pending: map[K]*burst{}}
}

// Add records a change of k.
func (d *Debouncer[K]) Add(k K) {
	if d.window <= 0 {
		d.mu.Lock()
		stopped := d.stopped
		d.mu.Unlock()
		if !stopped {
			d.fire(k)
		}
		return
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	b, ok := d.pending[k]
	if !ok {
		b = &burst{first: now}
		d.pending[k] = b
	} else {
		b.timer.Stop()
	}
	// The trailing edge, capped by the burst's deadline.
	wait := d.window
	if deadline := b.first.Add(d.maxWait); now.Add(wait).After(deadline) {
		wait = deadline.Sub(now)
	}
	b.gen++
	gen := b.gen
	// A new timer per Add, checked by generation: a timer that already
	// fired and is waiting for d.mu must not fire a burst that was extended.
	b.timer = time.AfterFunc(wait, func() { d.expire(k, gen) })
}

func (d *Debouncer[K]) expire(k K, gen uint64) {
	d.mu.Lock()
	b, ok := d.pending[k]
	if !ok || b.gen != gen || d.stopped {
		d.mu.Unlock()
		return
	}
	delete(d.pending, k)
	d.mu.Unlock()
	d.fire(k)
}

// Pending is the number of keys waiting to fire.
func (d *Debouncer[K]) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}

// Start blocks until ctx ends, then stops every timer. It always returns nil.
func (d *Debouncer[K]) Start(ctx context.Context) error {
	<-ctx.Done()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	for k, b := range d.pending {
		b.timer.Stop()
		delete(d.pending, k)
	}
	return nil
}
