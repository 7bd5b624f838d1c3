package cache

import "time"

// BreakerState is the state of one store's circuit breaker.
type BreakerState int

const (
	// BreakerClosed lets every call through.
	BreakerClosed BreakerState = iota
	// BreakerOpen refuses calls until the cool-down has passed.
	BreakerOpen
	// BreakerHalfOpen lets exactly one probe call through.
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	default:
		return "closed"
	}
}

// MarshalText makes the state read as a word in `status --json`.
func (s BreakerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// BreakerOptions tunes one store's circuit breaker. Zero fields take the
// defaults.
type BreakerOptions struct {
	// Threshold is the number of consecutive unavailable/unknown errors
	// that opens the breaker. Default 5.
	Threshold int
	// CoolDown is how long the breaker stays open before the first probe.
	// Every failed probe doubles it, up to MaxCoolDown. Default 30s.
	CoolDown time.Duration
	// MaxCoolDown caps the doubling. Default 5m.
	MaxCoolDown time.Duration
}

// Defaults for BreakerOptions.
const (
	DefaultBreakerThreshold   = 5
	DefaultBreakerCoolDown    = 30 * time.Second
	DefaultBreakerMaxCoolDown = 5 * time.Minute
)

func (o BreakerOptions) withDefaults() BreakerOptions {
	if o.Threshold <= 0 {
		o.Threshold = DefaultBreakerThreshold
	}
	if o.CoolDown <= 0 {
		o.CoolDown = DefaultBreakerCoolDown
	}
	if o.MaxCoolDown <= 0 {
		o.MaxCoolDown = DefaultBreakerMaxCoolDown
	}
	if o.MaxCoolDown < o.CoolDown {
		o.MaxCoolDown = o.CoolDown
	}
	return o
}

// breaker is guarded by the cache's mutex. Only errors that say the store
// is down (unavailable, unknown) count as failures: a not-found or a
// permission error proves the store answered, so it resets the count.
type breaker struct {
	opts     BreakerOptions
	state    BreakerState
	failures int
	coolDown time.Duration
	openedAt time.Time
	probing  bool
	lastErr  error
}

func newBreaker(o BreakerOptions) breaker {
	o = o.withDefaults()
	return breaker{opts: o, coolDown: o.CoolDown}
}

// allow reports whether a call may go out now. In the open state it moves
// to half-open once the cool-down has passed and admits that one caller as
// the probe; further callers are refused until the probe reports back.
func (b *breaker) allow(now time.Time) (ok, changed bool) {
	switch b.state {
	case BreakerOpen:
		if now.Before(b.retryAt()) {
			return false, false
		}
		b.state, b.probing = BreakerHalfOpen, true
		return true, true
	case BreakerHalfOpen:
		if b.probing {
			return false, false
		}
		b.probing = true
		return true, false
	default:
		return true, false
	}
}

func (b *breaker) retryAt() time.Time { return b.openedAt.Add(b.coolDown) }

// success records that the store answered. Any answer closes the breaker,
// including a late one from a call admitted before it opened: the store is
// evidently reachable.
func (b *breaker) success() (changed bool) {
	b.failures, b.probing, b.lastErr = 0, false, nil
	if b.state == BreakerClosed {
		return false
	}
	b.state, b.coolDown = BreakerClosed, b.opts.CoolDown
	return true
}

// failure records an unavailable/unknown error.
func (b *breaker) failure(now time.Time, err error) (changed bool) {
	b.failures++
	b.probing = false
	b.lastErr = err
	switch b.state {
	case BreakerHalfOpen:
		b.coolDown = min(2*b.coolDown, b.opts.MaxCoolDown)
		b.state, b.openedAt = BreakerOpen, now
		return true
	case BreakerClosed:
		if b.failures >= b.opts.Threshold {
			b.state, b.openedAt = BreakerOpen, now
			return true
		}
	}
	return false
}

// release gives back a probe slot whose call proved nothing (cancelled,
// invalid reference).
func (b *breaker) release() { b.probing = false }
