package cache

import "time"

// Observer receives the cache's events so metrics and logs can be wired in
// without the cache importing either. Calls are made outside the cache's
// lock, synchronously: implementations must be cheap and must not call back
// into the cache. No argument ever carries a secret value.
type Observer interface {
	// OnHit is called for every Get served from the cache.
	OnHit(store string)
	// OnMiss is called for every Get that needed a fetch (expired, absent).
	OnMiss(store string)
	// OnProviderCall is called after every call to a provider. op is "get";
	// result is one of "ok", "not_found", "permission_denied",
	// "unavailable", "invalid_ref", "invalid_config", "canceled", "error".
	OnProviderCall(store, provider, op, result string, d time.Duration)
	// OnBreakerState is called on every breaker transition.
	OnBreakerState(store string, state BreakerState)
	// OnSize is called after the cache's contents changed.
	OnSize(entries int, bytes int64)
}

// NopObserver ignores everything. Embed it to implement only some hooks.
type NopObserver struct{}

func (NopObserver) OnHit(string)                                                 {}
func (NopObserver) OnMiss(string)                                                {}
func (NopObserver) OnProviderCall(string, string, string, string, time.Duration) {}
func (NopObserver) OnBreakerState(string, BreakerState)                          {}
func (NopObserver) OnSize(int, int64)                                            {}
