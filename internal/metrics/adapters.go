package metrics

import (
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/dso-dev/dso/providers/cache"
	"github.com/dso-dev/dso/reconcilers/containerswap"
)

// Log messages the operations guide greps for (`system logs | grep cache_miss`).
const (
	MsgCacheMiss = "cache_miss"
	MsgCacheHit  = "cache_hit"
)

// CacheObserver returns the providers/cache Observer that feeds the cache
// and provider metrics and logs every miss (info) and hit (V(1), debug).
// The cache's hooks carry only the store's name, never a key's value; the
// log lines therefore name the store.
func (m *Metrics) CacheObserver(log logr.Logger) cache.Observer {
	return &cacheObserver{m: m, log: log}
}

type cacheObserver struct {
	m   *Metrics
	log logr.Logger
}

func (o *cacheObserver) OnHit(store string) {
	o.m.CacheHit()
	o.log.V(1).Info(MsgCacheHit, "store", store)
}

func (o *cacheObserver) OnMiss(store string) {
	o.m.CacheMiss()
	o.log.Info(MsgCacheMiss, "store", store)
}

func (o *cacheObserver) OnProviderCall(store, provider, op, result string, d time.Duration) {
	o.m.ProviderRequest(store, provider, op, result, d)
}

func (o *cacheObserver) OnBreakerState(store string, s cache.BreakerState) {
	o.m.SetCircuitState(store, s)
}

func (o *cacheObserver) OnSize(entries int, bytes int64) { o.m.SetCacheSize(entries, bytes) }

// ConditionDegraded is the binding condition the swap observer maintains.
const ConditionDegraded = "Degraded"

// SwapObserver returns the reconcilers/containerswap Observer that feeds
// the rotation, step, lock-wait, recovery and Degraded metrics. Compose it
// with other observers (history, notifications) at the call site.
func (m *Metrics) SwapObserver() containerswap.Observer {
	return &swapObserver{m: m, degraded: map[string]map[string]bool{}}
}

type swapObserver struct {
	m *Metrics

	mu sync.Mutex
	// degraded remembers, per binding, which targets failed their gate: a
	// binding selecting several containers stays Degraded until every one of
	// them has rotated successfully, not just the first.
	degraded map[string]map[string]bool
}

func (o *swapObserver) RotationStarted(*containerswap.Rotation) {}

func (o *swapObserver) RotationFinished(r *containerswap.Rotation) {
	d := time.Duration(-1)
	if !r.Finished.IsZero() {
		d = r.Duration()
	}
	o.m.ObserveRotation(r.Strategy, r.Result, d)
	for _, s := range r.Steps {
		o.m.ObserveStep(s.Step, s.Duration)
	}
}

func (o *swapObserver) Recovery(a containerswap.RecoveryAction) { o.m.RecoveryAction(a.Action) }

func (o *swapObserver) LockWait(_ string, d time.Duration) { o.m.ObserveLockWait(d) }

func (o *swapObserver) Degraded(bindings []string, target, _ string, set bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, b := range bindings {
		ts := o.degraded[b]
		if set {
			if ts == nil {
				ts = map[string]bool{}
				o.degraded[b] = ts
			}
			ts[target] = true
		} else {
			delete(ts, target)
			if len(ts) == 0 {
				delete(o.degraded, b)
			}
		}
		o.m.SetBindingCondition(b, ConditionDegraded, len(o.degraded[b]) > 0)
	}
}
