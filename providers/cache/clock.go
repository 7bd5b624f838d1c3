package cache

import "time"

// Clock is the cache's view of time: TTLs, breaker cool-downs and the rate
// limiter all read it, so tests can drive them with a fake clock instead of
// sleeping. Provider latency is measured with the real monotonic clock,
// because it describes the provider, not the cache's logic.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the cache uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
