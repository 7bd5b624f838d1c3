package sources

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// JitterFraction is the spread of every poll interval: ±10 %, uniform, so
// that a hundred keys with the same refreshInterval (and a hundred agents
// started by the same deploy) do not hit a provider in lockstep.
const JitterFraction = 0.1

// PollTimers fires fire(k) for every key once per its interval, jittered.
// The set of keys is replaced as a whole with Set whenever the configuration
// is reloaded. fire runs on a timer goroutine (keys may fire concurrently) and
// should be quick, typically Controller.Enqueue.
type PollTimers[K comparable] struct {
	fire func(K)
	rnd  func() float64 // [0,1); replaced in tests

	mu      sync.Mutex
	stopped bool
	timers  map[K]*pollTimer
}

type pollTimer struct {
	interval time.Duration
	gen      uint64
	timer    *time.Timer
}

// NewPollTimers returns timers that call fire.
func NewPollTimers[K comparable](fire func(K)) *PollTimers[K] {
	return &PollTimers[K]{fire: fire, rnd: rand.Float64, timers: map[K]*pollTimer{}}
}

// jittered spreads d uniformly over [d*(1-JitterFraction), d*(1+JitterFraction)]
// for r in [0,1).
func jittered(d time.Duration, r float64) time.Duration {
	return time.Duration(float64(d) * (1 + JitterFraction*(2*r-1)))
}

// Set makes intervals the set of keys: keys not in it stop, new keys start
// (first fire after one jittered interval, not at once: the initial sync is
// the informer's and the config loader's job), keys whose interval changed
// restart, and keys whose interval is unchanged keep their phase — a reload
// must not postpone every poll by a full interval. An interval <= 0 means
// the key is not polled.
func (p *PollTimers[K]) Set(intervals map[K]time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	for k, t := range p.timers {
		if d, ok := intervals[k]; !ok || d <= 0 || d != t.interval {
			t.timer.Stop()
			t.gen++ // a callback already waiting for p.mu must not re-arm
			delete(p.timers, k)
		}
	}
	for k, d := range intervals {
		if d <= 0 {
			continue
		}
		if _, ok := p.timers[k]; ok {
			continue
		}
		t := &pollTimer{interval: d}
		p.timers[k] = t
		p.armLocked(k, t)
	}
}

func (p *PollTimers[K]) armLocked(k K, t *pollTimer) {
	gen := t.gen
	t.timer = time.AfterFunc(jittered(t.interval, p.rnd()), func() { p.tick(k, t, gen) })
}

// tick re-arms first, then fires, so a slow fire does not stretch the period.
func (p *PollTimers[K]) tick(k K, t *pollTimer, gen uint64) {
	p.mu.Lock()
	if p.stopped || t.gen != gen || p.timers[k] != t {
		p.mu.Unlock()
		return
	}
	t.gen++
	p.armLocked(k, t)
	p.mu.Unlock()
	p.fire(k)
}

// Len is the number of keys being polled.
func (p *PollTimers[K]) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.timers)
}

// Start blocks until ctx ends, then stops every timer; later Sets are
// ignored. Timers set before Start already run. It always returns nil.
func (p *PollTimers[K]) Start(ctx context.Context) error {
	<-ctx.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for k, t := range p.timers {
		t.timer.Stop()
		t.gen++
		delete(p.timers, k)
	}
	return nil
}
