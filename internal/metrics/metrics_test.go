package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	dto "github.com/prometheus/client_model/go"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
	"github.com/dso-dev/dso/providers/cache"
	"github.com/dso-dev/dso/reconcilers/containerswap"
)

// sample returns the value of the series of family name whose labels are
// exactly labels (counter, gauge, or a histogram's sample count), and
// whether it exists.
func sample(t *testing.T, m *Metrics, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if !labelsEqual(s.GetLabel(), labels) {
				continue
			}
			switch {
			case s.Counter != nil:
				return s.GetCounter().GetValue(), true
			case s.Gauge != nil:
				return s.GetGauge().GetValue(), true
			case s.Histogram != nil:
				return float64(s.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func histSum(t *testing.T, m *Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	fams, _ := m.Gatherer().Gather()
	for _, f := range fams {
		if f.GetName() == name {
			for _, s := range f.GetMetric() {
				if labelsEqual(s.GetLabel(), labels) && s.Histogram != nil {
					return s.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	t.Fatalf("no histogram %s%v", name, labels)
	return 0
}

func labelsEqual(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, l := range got {
		if want[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}

func want(t *testing.T, m *Metrics, name string, labels map[string]string, v float64) {
	t.Helper()
	got, ok := sample(t, m, name, labels)
	if !ok {
		t.Errorf("%s%v: no such series", name, labels)
		return
	}
	if got != v {
		t.Errorf("%s%v = %v, want %v", name, labels, got, v)
	}
}

// fakeClient serves one secret and fails while failing is set.
type fakeClient struct {
	mu      sync.Mutex
	failing bool
	value   string
}

func (f *fakeClient) Get(_ context.Context, ref providers.Ref) (providers.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return providers.Secret{}, providers.Errorf(providers.KindUnavailable, "vault-prod", ref.Key, "connection refused")
	}
	if ref.Key == "missing" {
		return providers.Secret{}, providers.Errorf(providers.KindNotFound, "vault-prod", ref.Key, "no such secret")
	}
	return providers.Secret{Value: []byte(f.value)}, nil
}
func (f *fakeClient) Validate(context.Context) error { return nil }
func (f *fakeClient) Close() error                   { return nil }

// logSink collects formatted log lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) logger(verbosity int) logr.Logger {
	return funcr.NewJSON(func(obj string) {
		s.mu.Lock()
		s.lines = append(s.lines, obj)
		s.mu.Unlock()
	}, funcr.Options{Verbosity: verbosity})
}

func (s *logSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// TestCacheObserverThroughCache drives the real cache, so the metrics are
// set by the hooks the cache really calls, not by calling them by hand.
func TestCacheObserverThroughCache(t *testing.T) {
	const secretValue = "s3cr3t-Value-never-logged"
	m := New()
	var logs logSink
	c := cache.New(cache.Options{TTL: time.Hour, Metrics: m.CacheObserver(logs.logger(1))})
	fc := &fakeClient{value: secretValue}
	c.AddStore("vault-prod", "vault", fc, v1alpha1.RateLimit{}, cache.BreakerOptions{Threshold: 2, CoolDown: time.Hour})
	ctx := context.Background()

	if _, err := c.Get(ctx, "vault-prod", providers.Ref{Key: "shop/db"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "vault-prod", providers.Ref{Key: "shop/db"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "vault-prod", providers.Ref{Key: "missing"}); providers.KindOf(err) != providers.KindNotFound {
		t.Fatalf("missing key: %v", err)
	}
	want(t, m, NameCacheHits, nil, 1)
	want(t, m, NameCacheMisses, nil, 2)
	want(t, m, NameCacheEntries, nil, 1)
	if b, _ := sample(t, m, NameCacheBytes, nil); b < float64(len(secretValue)) {
		t.Errorf("%s = %v, want at least the value's %d bytes", NameCacheBytes, b, len(secretValue))
	}
	want(t, m, NameProviderRequests, map[string]string{"store": "vault-prod", "provider": "vault", "op": "get", "result": "ok"}, 1)
	want(t, m, NameProviderRequests, map[string]string{"store": "vault-prod", "provider": "vault", "op": "get", "result": "not_found"}, 1)
	want(t, m, NameProviderLatency, map[string]string{"store": "vault-prod"}, 2)

	// Two unavailable answers open the breaker (threshold 2).
	fc.mu.Lock()
	fc.failing = true
	fc.mu.Unlock()
	for _, k := range []string{"a", "b"} {
		if _, err := c.Get(ctx, "vault-prod", providers.Ref{Key: k}); providers.KindOf(err) != providers.KindUnavailable {
			t.Fatalf("get %s while failing: %v", k, err)
		}
	}
	want(t, m, NameProviderRequests, map[string]string{"store": "vault-prod", "provider": "vault", "op": "get", "result": "unavailable"}, 2)
	want(t, m, NameCircuitState, map[string]string{"store": "vault-prod"}, CircuitOpen)

	out := logs.text()
	if n := strings.Count(out, `"msg":"cache_miss"`); n != 4 {
		t.Errorf("%d cache_miss lines, want 4:\n%s", n, out)
	}
	if n := strings.Count(out, `"msg":"cache_hit"`); n != 1 {
		t.Errorf("%d cache_hit lines, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, `"store":"vault-prod"`) {
		t.Errorf("log lines do not name the store:\n%s", out)
	}
	if strings.Contains(out, secretValue) {
		t.Errorf("a log line contains the secret value:\n%s", out)
	}

	// At the default verbosity the hit is not logged; the miss is (info).
	var quiet logSink
	c2 := cache.New(cache.Options{Metrics: New().CacheObserver(quiet.logger(0))})
	c2.AddStore("s", "vault", &fakeClient{value: "v"}, v1alpha1.RateLimit{}, cache.BreakerOptions{})
	_, _ = c2.Get(ctx, "s", providers.Ref{Key: "k"})
	_, _ = c2.Get(ctx, "s", providers.Ref{Key: "k"})
	if q := quiet.text(); !strings.Contains(q, "cache_miss") || strings.Contains(q, "cache_hit") {
		t.Errorf("at info: %s", q)
	}
}

func TestCircuitStateValues(t *testing.T) {
	tests := []struct {
		s    cache.BreakerState
		want float64
	}{
		{cache.BreakerClosed, 0},
		{cache.BreakerHalfOpen, 1},
		{cache.BreakerOpen, 2},
	}
	m := New()
	o := m.CacheObserver(logr.Discard())
	for _, tt := range tests {
		o.OnBreakerState("aws", tt.s)
		want(t, m, NameCircuitState, map[string]string{"store": "aws"}, tt.want)
	}
}

func rotation(strategy, result string, d time.Duration, steps ...containerswap.StepTiming) *containerswap.Rotation {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	return &containerswap.Rotation{TraceID: "t", Target: "api", Strategy: strategy, Result: result, Started: start, Finished: start.Add(d), Steps: steps}
}

func TestSwapObserver(t *testing.T) {
	m := New()
	o := m.SwapObserver()
	o.RotationStarted(rotation("rolling", "", 0))
	o.RotationFinished(rotation("rolling", "succeeded", 2*time.Second,
		containerswap.StepTiming{Step: containerswap.StepCreate, Duration: 60 * time.Millisecond},
		containerswap.StepTiming{Step: containerswap.StepHealth, Duration: 1500 * time.Millisecond},
		containerswap.StepTiming{Step: containerswap.StepSwap, Duration: 20 * time.Millisecond}))
	o.RotationFinished(rotation("rolling", "succeeded", 3*time.Second,
		containerswap.StepTiming{Step: containerswap.StepHealth, Duration: 2 * time.Second}))
	o.RotationFinished(rotation("recreate", "rolled-back", 30*time.Second,
		containerswap.StepTiming{Step: containerswap.StepHealth, Duration: 30 * time.Second},
		containerswap.StepTiming{Step: containerswap.StepRevert, Duration: 400 * time.Millisecond}))
	o.RotationFinished(&containerswap.Rotation{Strategy: "restart", Result: "failed"}) // never finished: counted, not timed

	want(t, m, NameRotations, map[string]string{"strategy": "rolling", "result": "succeeded"}, 2)
	want(t, m, NameRotations, map[string]string{"strategy": "recreate", "result": "rolled-back"}, 1)
	want(t, m, NameRotations, map[string]string{"strategy": "restart", "result": "failed"}, 1)
	want(t, m, NameRotationDuration, map[string]string{"strategy": "rolling"}, 2)
	if s := histSum(t, m, NameRotationDuration, map[string]string{"strategy": "rolling"}); s != 5 {
		t.Errorf("rolling duration sum = %v, want 5", s)
	}
	if _, ok := sample(t, m, NameRotationDuration, map[string]string{"strategy": "recreate"}); ok {
		t.Errorf("a rolled-back rotation entered the duration histogram")
	}
	want(t, m, NameRotationStep, map[string]string{"step": "health"}, 3)
	want(t, m, NameRotationStep, map[string]string{"step": "create"}, 1)
	want(t, m, NameRotationStep, map[string]string{"step": "revert"}, 1)
	if s := histSum(t, m, NameRotationStep, map[string]string{"step": "health"}); s != 33.5 {
		t.Errorf("health step sum = %v, want 33.5", s)
	}

	o.LockWait("api", 1500*time.Millisecond)
	o.LockWait("api", 0)
	want(t, m, NameLockWait, nil, 2)
	if s := histSum(t, m, NameLockWait, nil); s != 1.5 {
		t.Errorf("lock wait sum = %v", s)
	}

	o.Recovery(containerswap.RecoveryAction{Action: "finished-cutover", Target: "api"})
	o.Recovery(containerswap.RecoveryAction{Action: "finished-cutover", Target: "web"})
	o.Recovery(containerswap.RecoveryAction{Action: "removed-candidate", Target: "db"})
	want(t, m, NameRecoveryActions, map[string]string{"action": "finished-cutover"}, 2)
	want(t, m, NameRecoveryActions, map[string]string{"action": "removed-candidate"}, 1)
}

// TestDegradedPerTarget: a binding over two containers stays Degraded until
// both have rotated; the reconciler clears per target.
func TestDegradedPerTarget(t *testing.T) {
	m := New()
	o := m.SwapObserver()
	deg := func(b string) map[string]string { return map[string]string{"binding": b, "condition": "Degraded"} }
	steps := []struct {
		bindings []string
		target   string
		set      bool
		want     map[string]float64
	}{
		{[]string{"api-db", "api-cache"}, "api-1", true, map[string]float64{"api-db": 1, "api-cache": 1}},
		{[]string{"api-db"}, "api-2", true, map[string]float64{"api-db": 1, "api-cache": 1}},
		{[]string{"api-db", "api-cache"}, "api-1", false, map[string]float64{"api-db": 1, "api-cache": 0}},
		{[]string{"api-db"}, "api-2", false, map[string]float64{"api-db": 0, "api-cache": 0}},
		{[]string{"api-db"}, "api-2", false, map[string]float64{"api-db": 0, "api-cache": 0}},
	}
	for i, s := range steps {
		o.Degraded(s.bindings, s.target, "health gate failed", s.set)
		for b, v := range s.want {
			got, _ := sample(t, m, NameBindingCondition, deg(b))
			if got != v {
				t.Errorf("step %d: %s Degraded = %v, want %v", i, b, got, v)
			}
		}
	}
	m.DeleteBinding("api-db")
	if _, ok := sample(t, m, NameBindingCondition, deg("api-db")); ok {
		t.Error("DeleteBinding left the series")
	}
}

func TestHelpers(t *testing.T) {
	m := New()
	want(t, m, NameManagedContainers, map[string]string{"health": "unhealthy"}, 0)
	m.SetManagedContainers(map[string]int{"healthy": 3, "unhealthy": 1})
	want(t, m, NameManagedContainers, map[string]string{"health": "healthy"}, 3)
	want(t, m, NameManagedContainers, map[string]string{"health": "unhealthy"}, 1)
	m.SetManagedContainers(map[string]int{"healthy": 4})
	want(t, m, NameManagedContainers, map[string]string{"health": "unhealthy"}, 0)
	want(t, m, NameManagedContainers, map[string]string{"health": "healthy"}, 4)

	m.ObserveSecretChangeToReady(4 * time.Second)
	want(t, m, NameChangeToReady, nil, 1)
	m.SetBindingCondition("api-db", "Ready", true)
	want(t, m, NameBindingCondition, map[string]string{"binding": "api-db", "condition": "Ready"}, 1)
	m.SetBindingCondition("api-db", "Ready", false)
	want(t, m, NameBindingCondition, map[string]string{"binding": "api-db", "condition": "Ready"}, 0)
}

// TestExposition: after every path has run once, /metrics shows exactly the
// dso_* names of issue 5 — none missing, none extra — plus Go/process and
// workqueue families.
func TestExposition(t *testing.T) {
	m := New()
	RegisterWorkqueueProvider()
	co := m.CacheObserver(logr.Discard())
	co.OnHit("s")
	co.OnMiss("s")
	co.OnSize(1, 10)
	co.OnProviderCall("s", "vault", "get", "ok", time.Millisecond)
	co.OnBreakerState("s", cache.BreakerClosed)
	so := m.SwapObserver()
	so.RotationFinished(rotation("rolling", "succeeded", time.Second, containerswap.StepTiming{Step: "health", Duration: time.Second}))
	so.LockWait("t", time.Millisecond)
	so.Recovery(containerswap.RecoveryAction{Action: "restored-old"})
	so.Degraded([]string{"b"}, "t", "", true)
	m.ObserveSecretChangeToReady(time.Second)
	q := newQueue("exposition")
	q.Add("x")
	defer q.ShutDown()

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var dso []string
	seen := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name = strings.Fields(name)[0]
			seen[name] = true
			if strings.HasPrefix(name, "dso_") {
				dso = append(dso, name)
			}
		}
	}
	wantDSO := []string{NameCacheBytes, NameCacheEntries, NameCacheHits, NameCacheMisses, NameCircuitState,
		NameLockWait, NameManagedContainers, NameProviderLatency, NameProviderRequests, NameRecoveryActions,
		NameRotationDuration, NameRotationStep, NameRotations, NameChangeToReady, NameBindingCondition}
	slices.Sort(wantDSO)
	slices.Sort(dso)
	if !slices.Equal(dso, wantDSO) {
		t.Errorf("dso families\n got %v\nwant %v", dso, wantDSO)
	}
	// Label names are reviewed names and enums only: a label that could
	// take an error text (and so, one day, a value) must not appear.
	allowed := map[string]bool{"store": true, "provider": true, "op": true, "result": true, "strategy": true, "step": true,
		"health": true, "action": true, "binding": true, "condition": true, "name": true}
	fams, _ := m.Gatherer().Gather()
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "dso_") && !strings.HasPrefix(f.GetName(), "workqueue_") {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if !allowed[l.GetName()] {
					t.Errorf("%s has label %q outside the reviewed set", f.GetName(), l.GetName())
				}
			}
		}
	}
	for _, n := range []string{"go_goroutines", "process_cpu_seconds_total", "workqueue_depth", "workqueue_adds_total"} {
		if !seen[n] {
			t.Errorf("%s missing from /metrics", n)
		}
	}
}
