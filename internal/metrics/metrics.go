// Package metrics owns every Prometheus metric the dso agent exports and the
// adapters that feed them.
//
// The metric names are a contract (issue 5, the Grafana dashboard, people's
// alerts): they are defined once here and nowhere else. The older DSO
// declared many metrics and set few, so each one is set by an adapter on a
// real code path — the cache's Observer, the container swap's Observer, the
// client-go workqueue provider — or by a typed helper whose caller is named
// in its comment, and each has a test that gathers it from the registry.
//
// Metrics uses its own registry, not the global default one, so that tests
// (and two agents in one test binary) do not collide and /metrics shows
// only what dso means to export (plus the Go and process collectors).
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dso-dev/dso/providers/cache"
)

// Names of the dso metrics (without the workqueue_* family, see workqueue.go).
const (
	NameCacheHits         = "dso_cache_hits_total"
	NameCacheMisses       = "dso_cache_misses_total"
	NameCacheBytes        = "dso_cache_bytes"
	NameCacheEntries      = "dso_cache_entries"
	NameProviderRequests  = "dso_provider_requests_total"
	NameProviderLatency   = "dso_provider_latency_seconds"
	NameCircuitState      = "dso_circuit_state"
	NameRotations         = "dso_rotations_total"
	NameRotationDuration  = "dso_rotation_duration_seconds"
	NameRotationStep      = "dso_rotation_step_duration_seconds"
	NameChangeToReady     = "dso_secret_change_to_ready_seconds"
	NameLockWait          = "dso_lock_wait_seconds"
	NameManagedContainers = "dso_managed_containers"
	NameRecoveryActions   = "dso_recovery_actions_total"
	NameBindingCondition  = "dso_binding_condition"
)

// Circuit state values of dso_circuit_state. They are ordered by badness
// (so max() over stores is meaningful), which is not the order of
// cache.BreakerState's constants.
const (
	CircuitClosed   = 0
	CircuitHalfOpen = 1
	CircuitOpen     = 2
)

// Health label values of dso_managed_containers that are always exported
// (as 0 when no container is in that state), so that a dashboard's
// "unhealthy" panel reads 0 rather than "no data".
var HealthStates = []string{"healthy", "unhealthy", "starting", "none"}

// Metrics is the agent's set of metrics. The zero value is not usable; call New.
type Metrics struct {
	reg *prometheus.Registry

	cacheHits    prometheus.Counter
	cacheMisses  prometheus.Counter
	cacheBytes   prometheus.Gauge
	cacheEntries prometheus.Gauge

	providerRequests *prometheus.CounterVec
	providerLatency  *prometheus.HistogramVec
	circuitState     *prometheus.GaugeVec

	rotations        *prometheus.CounterVec
	rotationDuration *prometheus.HistogramVec
	rotationStep     *prometheus.HistogramVec
	changeToReady    prometheus.Histogram
	lockWait         prometheus.Histogram

	managedContainers *prometheus.GaugeVec
	recoveryActions   *prometheus.CounterVec
	bindingCondition  *prometheus.GaugeVec
}

// New creates the metrics and a registry holding them, the workqueue_*
// family (see RegisterWorkqueueProvider) and the Go and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameCacheHits, Help: "Secret lookups served from the cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameCacheMisses, Help: "Secret lookups that needed a provider call (absent or expired).",
		}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameCacheBytes, Help: "Bytes of secret values held in the cache (counted against agent.cache.max_size).",
		}),
		cacheEntries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameCacheEntries, Help: "Secrets held in the cache.",
		}),
		providerRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameProviderRequests, Help: "Calls to secret stores, by store, provider, operation and result.",
		}, []string{"store", "provider", "op", "result"}),
		// 5 ms .. ~20 s: a healthy store answers in tens of milliseconds;
		// the guide's threshold of concern is 5 s.
		providerLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: NameProviderLatency, Help: "Latency of calls to secret stores.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 13),
		}, []string{"store"}),
		circuitState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameCircuitState, Help: "Circuit breaker state per store: 0 closed, 1 half-open, 2 open.",
		}, []string{"store"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRotations, Help: "Finished container rotations, by strategy and result (succeeded, failed, rolled-back).",
		}, []string{"strategy", "result"}),
		// 0.25 s .. ~8.5 min: the floor is one create+start (~0.4 s here);
		// the guide calls anything over 60 s slow.
		rotationDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: NameRotationDuration, Help: "Wall time of succeeded rotations, by strategy.",
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 12),
		}, []string{"strategy"}),
		rotationStep: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: NameRotationStep, Help: "Wall time of each rotation step (prepare, create, start, health, swap, verify, cleanup, ...).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 15),
		}, []string{"step"}),
		changeToReady: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: NameChangeToReady, Help: "Time from a secret change being seen to every consuming container being ready with it.",
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 14),
		}),
		// 1 ms .. ~65 s: the guide calls waits over 1 s lock contention.
		lockWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: NameLockWait, Help: "Time a rotation waited for its target's lock.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 17),
		}),
		managedContainers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameManagedContainers, Help: "Containers selected by a binding, by health (healthy, unhealthy, starting, none).",
		}, []string{"health"}),
		recoveryActions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRecoveryActions, Help: "Actions taken to finish or revert interrupted rotations, by action.",
		}, []string{"action"}),
		bindingCondition: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameBindingCondition, Help: "1 when a binding's condition (Ready, Synced, Degraded) is true, else 0.",
		}, []string{"binding", "condition"}),
	}
	m.reg.MustRegister(
		m.cacheHits, m.cacheMisses, m.cacheBytes, m.cacheEntries,
		m.providerRequests, m.providerLatency, m.circuitState,
		m.rotations, m.rotationDuration, m.rotationStep, m.changeToReady, m.lockWait,
		m.managedContainers, m.recoveryActions, m.bindingCondition,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	registerWorkqueue(m.reg)
	m.SetManagedContainers(nil)
	return m
}

// Handler serves the registry in the Prometheus exposition format (for
// agent.metrics.listen's /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Gatherer exposes the registry for status and tests.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// CacheHit counts one lookup served from the cache.
func (m *Metrics) CacheHit() { m.cacheHits.Inc() }

// CacheMiss counts one lookup that needed a provider call.
func (m *Metrics) CacheMiss() { m.cacheMisses.Inc() }

// SetCacheSize records the cache's current contents.
func (m *Metrics) SetCacheSize(entries int, bytes int64) {
	m.cacheEntries.Set(float64(entries))
	m.cacheBytes.Set(float64(bytes))
}

// ProviderRequest records one call to a store.
func (m *Metrics) ProviderRequest(store, provider, op, result string, d time.Duration) {
	m.providerRequests.WithLabelValues(store, provider, op, result).Inc()
	m.providerLatency.WithLabelValues(store).Observe(d.Seconds())
}

// SetCircuitState records a store's breaker state.
func (m *Metrics) SetCircuitState(store string, s cache.BreakerState) {
	v := CircuitClosed
	switch s {
	case cache.BreakerHalfOpen:
		v = CircuitHalfOpen
	case cache.BreakerOpen:
		v = CircuitOpen
	}
	m.circuitState.WithLabelValues(store).Set(float64(v))
}

// ObserveRotation records one finished rotation. Only succeeded rotations
// enter the duration histogram: a failed one usually lasts exactly the
// health timeout, and mixing those in would hide how long real rotations
// take. (Failed ones are still counted, and their steps still timed.)
func (m *Metrics) ObserveRotation(strategy, result string, d time.Duration) {
	m.rotations.WithLabelValues(strategy, result).Inc()
	if result == "succeeded" && d >= 0 {
		m.rotationDuration.WithLabelValues(strategy).Observe(d.Seconds())
	}
}

// ObserveStep records one rotation step's duration.
func (m *Metrics) ObserveStep(step string, d time.Duration) {
	m.rotationStep.WithLabelValues(step).Observe(d.Seconds())
}

// ObserveSecretChangeToReady records the time from a changed value being
// seen (secretfetch) to the last consuming target being ready with it.
// The caller is the controller that knows both ends; no observer interface
// carries both times.
func (m *Metrics) ObserveSecretChangeToReady(d time.Duration) {
	m.changeToReady.Observe(d.Seconds())
}

// ObserveLockWait records how long a rotation waited for its target's lock.
func (m *Metrics) ObserveLockWait(d time.Duration) { m.lockWait.Observe(d.Seconds()) }

// SetManagedContainers replaces the per-health container counts (from the
// Docker informer's relist). States missing from counts read 0; the
// HealthStates are always present.
func (m *Metrics) SetManagedContainers(counts map[string]int) {
	m.managedContainers.Reset()
	for _, h := range HealthStates {
		m.managedContainers.WithLabelValues(h).Set(0)
	}
	for h, n := range counts {
		m.managedContainers.WithLabelValues(h).Set(float64(n))
	}
}

// RecoveryAction counts one recovery action.
func (m *Metrics) RecoveryAction(action string) { m.recoveryActions.WithLabelValues(action).Inc() }

// SetBindingCondition records one condition of a binding (Ready, Synced,
// Degraded) as 1 (true) or 0.
func (m *Metrics) SetBindingCondition(binding, condition string, status bool) {
	v := 0.0
	if status {
		v = 1
	}
	m.bindingCondition.WithLabelValues(binding, condition).Set(v)
}

// DeleteBinding drops every series of a deleted binding, so a removed
// binding does not stay "Degraded" on a dashboard forever.
func (m *Metrics) DeleteBinding(binding string) {
	m.bindingCondition.DeletePartialMatch(prometheus.Labels{"binding": binding})
}
