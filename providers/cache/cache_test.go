package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

const secret = "hunter2-value-that-must-not-leak"

func newCache(t *testing.T, opts Options, f *fakeClient, lim v1alpha1.RateLimit, br BreakerOptions) (*Cache, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	opts.Clock = clk
	c := New(opts)
	c.AddStore("s", "fake", f, lim, br)
	t.Cleanup(c.inflight.Wait)
	return c, clk
}

var ctx = context.Background()

func TestTTL(t *testing.T) {
	f := newFake("a", secret)
	c, clk := newCache(t, Options{TTL: time.Minute}, f, v1alpha1.RateLimit{}, BreakerOptions{})
	steps := []struct {
		advance   time.Duration
		wantHit   bool
		wantCalls int
		wantAge   time.Duration
	}{
		{0, false, 1, 0},
		{0, true, 1, 0},
		{time.Minute - time.Nanosecond, true, 1, time.Minute - time.Nanosecond},
		{time.Nanosecond, false, 2, 0}, // exactly TTL old: expired
		{30 * time.Second, true, 2, 30 * time.Second},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		e, err := c.Get(ctx, "s", providers.Ref{Key: "a"})
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if e.Hit != s.wantHit || f.count() != s.wantCalls || e.Age != s.wantAge || e.Stale {
			t.Errorf("step %d: hit=%v calls=%d age=%v stale=%v, want hit=%v calls=%d age=%v", i, e.Hit, f.count(), e.Age, e.Stale, s.wantHit, s.wantCalls, s.wantAge)
		}
		if string(e.Secret.Value) != secret {
			t.Errorf("step %d: wrong value", i)
		}
	}
	st := c.Stats()
	if st.Hits != 3 || st.Misses != 2 || st.Stores["s"].Hits != 3 || st.Stores["s"].Misses != 2 {
		t.Errorf("stats hits/misses = %d/%d (store %d/%d), want 3/2", st.Hits, st.Misses, st.Stores["s"].Hits, st.Stores["s"].Misses)
	}
}

func TestProviderExpiryShortensTTL(t *testing.T) {
	f := newFake("a", secret)
	c, clk := newCache(t, Options{TTL: time.Hour}, f, v1alpha1.RateLimit{}, BreakerOptions{})
	f.expires = clk.Now().Add(time.Minute)
	c.Get(ctx, "s", providers.Ref{Key: "a"})
	clk.Advance(time.Minute)
	// Past the provider's expiry the value is neither fresh nor a fallback.
	f.script(unavailable("a"))
	e, err := c.Get(ctx, "s", providers.Ref{Key: "a"})
	if err == nil || e.Stale || f.count() != 2 {
		t.Fatalf("after provider expiry: entry stale=%v err=%v calls=%d; want an error, no stale value, 2 calls", e.Stale, err, f.count())
	}
}

func TestRefreshBypassesTTL(t *testing.T) {
	f := newFake("a", "v1")
	c, _ := newCache(t, Options{}, f, v1alpha1.RateLimit{}, BreakerOptions{})
	c.Get(ctx, "s", providers.Ref{Key: "a"})
	f.set("a", "v2")
	if e, _ := c.Get(ctx, "s", providers.Ref{Key: "a"}); string(e.Secret.Value) != "v1" || !e.Hit {
		t.Fatalf("Get within TTL = %q hit=%v, want cached v1", e.Secret.Value, e.Hit)
	}
	e, err := c.Refresh(ctx, "s", providers.Ref{Key: "a"})
	if err != nil || string(e.Secret.Value) != "v2" || e.Hit || f.count() != 2 {
		t.Fatalf("Refresh = %q hit=%v err=%v calls=%d, want v2 from the provider", e.Secret.Value, e.Hit, err, f.count())
	}
	if e, _ := c.Get(ctx, "s", providers.Ref{Key: "a"}); string(e.Secret.Value) != "v2" {
		t.Errorf("Get after Refresh = %q, want v2", e.Secret.Value)
	}
}

func TestKeyIncludesVersionAndProperty(t *testing.T) {
	f := newFake("j", `{"u":"admin","p":"`+secret+`"}`)
	c, _ := newCache(t, Options{}, f, v1alpha1.RateLimit{}, BreakerOptions{})
	refs := []providers.Ref{{Key: "j"}, {Key: "j", Property: "u"}, {Key: "j", Property: "p"}, {Key: "j", Version: "7"}}
	for _, r := range refs {
		c.Get(ctx, "s", r)
	}
	for _, r := range refs {
		c.Get(ctx, "s", r)
	}
	if f.count() != len(refs) {
		t.Errorf("calls = %d, want %d (one per distinct key/version/property)", f.count(), len(refs))
	}
	e, _ := c.Get(ctx, "s", providers.Ref{Key: "j", Property: "u"})
	if string(e.Secret.Value) != "admin" {
		t.Errorf("property u = %q", e.Secret.Value)
	}
	e, _ = c.Get(ctx, "s", providers.Ref{Key: "j"})
	if string(e.Secret.Fields["p"]) != secret {
		t.Errorf("fields not copied: %q", e.Secret.Fields)
	}
}

func TestLRUBySize(t *testing.T) {
	val := strings.Repeat("x", 100)
	f := newFake("a", val, "b", val, "c", val, "d", val, "big", strings.Repeat("y", 400))
	one := entrySize(cacheKey{store: "s", key: "a"}, providers.Secret{Value: []byte(val), Version: "v1"})
	c, _ := newCache(t, Options{MaxBytes: 3 * one}, f, v1alpha1.RateLimit{}, BreakerOptions{})
	get := func(k string) Entry {
		e, err := c.Get(ctx, "s", providers.Ref{Key: k})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	get("a")
	get("b")
	get("c")
	get("a") // a is now most recent; b is the least recent
	get("d") // evicts b only
	if st := c.Stats(); st.Entries != 3 || st.Bytes != 3*one {
		t.Fatalf("entries=%d bytes=%d, want 3 and %d", st.Entries, st.Bytes, 3*one)
	}
	tests := []struct {
		key     string
		wantHit bool
	}{{"a", true}, {"c", true}, {"d", true}, {"b", false}}
	for _, tt := range tests {
		if e := get(tt.key); e.Hit != tt.wantHit {
			t.Errorf("%s: hit=%v, want %v", tt.key, e.Hit, tt.wantHit)
		}
	}
	// "big" costs more than 3 small entries: it evicts down to fit itself.
	get("big")
	st := c.Stats()
	if st.Bytes > st.MaxBytes {
		t.Errorf("bytes %d over budget %d", st.Bytes, st.MaxBytes)
	}
}

func TestOversizedValueServedNotCached(t *testing.T) {
	f := newFake("huge", strings.Repeat("z", 2000), "small", "ok")
	c, _ := newCache(t, Options{MaxBytes: 1000}, f, v1alpha1.RateLimit{}, BreakerOptions{})
	c.Get(ctx, "s", providers.Ref{Key: "small"})
	for i := 1; i <= 3; i++ {
		e, err := c.Get(ctx, "s", providers.Ref{Key: "huge"})
		if err != nil || len(e.Secret.Value) != 2000 || e.Hit {
			t.Fatalf("oversized Get %d: len=%d hit=%v err=%v", i, len(e.Secret.Value), e.Hit, err)
		}
	}
	if f.count() != 4 {
		t.Errorf("calls = %d, want 4 (every oversized Get asks the provider)", f.count())
	}
	if st := c.Stats(); st.Entries != 1 {
		t.Errorf("entries = %d, want 1 (the oversized value must not evict the small one)", st.Entries)
	}
}

func TestSingleflight(t *testing.T) {
	f := newFake("a", secret)
	f.block = make(chan struct{})
	c, _ := newCache(t, Options{}, f, v1alpha1.RateLimit{}, BreakerOptions{})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			e, err := c.Get(ctx, "s", providers.Ref{Key: "a"})
			if err == nil && string(e.Secret.Value) != secret {
				err = errors.New("wrong value")
			}
			errs <- err
		})
	}
	eventually(t, "all callers waiting", func() bool { return c.waiters() == n })
	close(f.block)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.count() != 1 {
		t.Errorf("provider calls = %d, want 1", f.count())
	}
}

// TestConcurrentDistinctKeys is the acceptance number: 1,000 concurrent
// requests over 50 keys cost exactly 50 provider calls, whether the calls
// are slow (everyone shares an in-flight call) or fast (late callers hit).
func TestConcurrentDistinctKeys(t *testing.T) {
	for _, blocking := range []bool{true, false} {
		t.Run(fmt.Sprintf("blocking=%v", blocking), func(t *testing.T) {
			f := newFake()
			for i := range 50 {
				f.values[fmt.Sprintf("k%d", i)] = []byte("v")
			}
			if blocking {
				f.block = make(chan struct{})
			}
			c, _ := newCache(t, Options{}, f, v1alpha1.RateLimit{}, BreakerOptions{})
			calls := runDistinct(t, c, f, func() {
				if blocking {
					eventually(t, "1000 waiters", func() bool { return c.waiters() == 1000 })
					close(f.block)
				}
			})
			if calls != 50 {
				t.Errorf("provider calls = %d, want exactly 50", calls)
			}
		})
	}
}

func runDistinct(tb testing.TB, c *Cache, f *fakeClient, between func()) int {
	before := f.count()
	var wg sync.WaitGroup
	start := make(chan struct{})
	var failed sync.Once
	for i := range 1000 {
		wg.Go(func() {
			<-start
			if _, err := c.Get(ctx, "s", providers.Ref{Key: fmt.Sprintf("k%d", i%50)}); err != nil {
				failed.Do(func() { tb.Error(err) })
			}
		})
	}
	close(start)
	between()
	wg.Wait()
	return f.count() - before
}

func TestRateLimitCountsCalls(t *testing.T) {
	f := newFake("k0", "v", "k1", "v", "k2", "v", "k3", "v", "k4", "v")
	c, clk := newCache(t, Options{}, f, v1alpha1.RateLimit{QPS: 1, Burst: 2}, BreakerOptions{})
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() { c.Get(ctx, "s", providers.Ref{Key: fmt.Sprintf("k%d", i)}) })
	}
	// The burst of 2 goes through; 3 fetches wait on the bucket (at 1s, 2s, 3s).
	eventually(t, "2 calls and 3 waiting", func() bool { return f.count() == 2 && clk.pending() == 3 })
	clk.Advance(time.Second)
	eventually(t, "3rd call", func() bool { return f.count() == 3 && clk.pending() == 2 })
	clk.Advance(2 * time.Second)
	wg.Wait()
	if f.count() != 5 {
		t.Errorf("calls = %d, want 5", f.count())
	}
	// Hits never take tokens: 100 hits now with an empty bucket and no clock movement.
	for range 100 {
		if e, err := c.Get(ctx, "s", providers.Ref{Key: "k0"}); err != nil || !e.Hit {
			t.Fatalf("hit blocked or failed: %v", err)
		}
	}
}

func TestCancelWhileWaitingForLimiter(t *testing.T) {
	f := newFake("a", "v", "b", "v", "c", "v")
	c, clk := newCache(t, Options{}, f, v1alpha1.RateLimit{QPS: 1, Burst: 1}, BreakerOptions{})
	c.Get(ctx, "s", providers.Ref{Key: "a"}) // takes the only token
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := c.Get(cctx, "s", providers.Ref{Key: "b"}); done <- err }()
	eventually(t, "b waiting for a token", func() bool { return clk.pending() == 1 })
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || providers.KindOf(err) != providers.KindUnavailable {
		t.Fatalf("cancelled Get: %v, want unavailable wrapping context.Canceled", err)
	}
	c.inflight.Wait()
	if f.count() != 1 {
		t.Fatalf("calls = %d after a cancelled wait, want 1", f.count())
	}
	// The cancelled reservation gave its token back: c needs to wait 1s, not 2s.
	go func() { _, err := c.Get(ctx, "s", providers.Ref{Key: "c"}); done <- err }()
	eventually(t, "c waiting for a token", func() bool { return clk.pending() == 1 })
	clk.Advance(time.Second)
	if err := <-done; err != nil || f.count() != 2 {
		t.Fatalf("c after 1s: err=%v calls=%d, want success and 2 calls", err, f.count())
	}
}

func TestCancelWhileWaitingForSingleflight(t *testing.T) {
	f := newFake("a", secret)
	f.block = make(chan struct{})
	c, _ := newCache(t, Options{}, f, v1alpha1.RateLimit{}, BreakerOptions{})

	// Two waiters; the first gives up, the call carries on for the second.
	c1, cancel1 := context.WithCancel(ctx)
	r1, r2 := make(chan error, 1), make(chan Entry, 1)
	go func() { _, err := c.Get(c1, "s", providers.Ref{Key: "a"}); r1 <- err }()
	go func() { e, _ := c.Get(ctx, "s", providers.Ref{Key: "a"}); r2 <- e }()
	eventually(t, "2 waiters", func() bool { return c.waiters() == 2 })
	cancel1()
	if err := <-r1; !errors.Is(err, context.Canceled) {
		t.Fatalf("first waiter: %v, want context.Canceled", err)
	}
	close(f.block)
	if e := <-r2; string(e.Secret.Value) != secret {
		t.Fatalf("second waiter got %q", e.Secret.Value)
	}

	// A sole waiter that gives up cancels the provider call itself, and the
	// breaker does not count that as the store failing.
	f.block = make(chan struct{})
	c3, cancel3 := context.WithCancel(ctx)
	go func() { _, err := c.Refresh(c3, "s", providers.Ref{Key: "a"}); r1 <- err }()
	eventually(t, "1 waiter", func() bool { return c.waiters() == 1 && f.count() == 2 })
	cancel3()
	<-r1
	c.inflight.Wait()
	if len(f.ctxErrs) != 1 || !errors.Is(f.ctxErrs[0], context.Canceled) {
		t.Errorf("provider saw ctx errors %v, want one context.Canceled", f.ctxErrs)
	}
	if st := c.Stats().Stores["s"]; st.ConsecutiveFailures != 0 || st.Breaker != BreakerClosed {
		t.Errorf("abandoned call counted against the breaker: %+v", st)
	}
	// The cached value survived the abandoned refresh.
	if e, err := c.Get(ctx, "s", providers.Ref{Key: "a"}); err != nil || !e.Hit {
		t.Errorf("after abandoned refresh: hit=%v err=%v", e.Hit, err)
	}
}

func TestBreakerTransitions(t *testing.T) {
	f := newFake("a", secret)
	rec := &recorder{}
	c, clk := newCache(t, Options{Metrics: rec}, f, v1alpha1.RateLimit{}, BreakerOptions{Threshold: 3, CoolDown: 10 * time.Second, MaxCoolDown: 40 * time.Second})
	ref := providers.Ref{Key: "a"}
	u := unavailable("a")
	steps := []struct {
		name      string
		advance   time.Duration
		script    []error
		wantCalls int
		wantErr   string // substring; "" = success
		wantState BreakerState
	}{
		{"fail 1", 0, []error{u}, 1, "unavailable", BreakerClosed},
		{"fail 2", 0, []error{u}, 2, "unavailable", BreakerClosed},
		{"fail 3 opens", 0, []error{u}, 3, "unavailable", BreakerOpen},
		{"open: no call", 0, nil, 3, "circuit breaker is open", BreakerOpen},
		{"still open before cool-down", 9 * time.Second, nil, 3, "circuit breaker is open", BreakerOpen},
		{"probe fails, cool-down doubles", time.Second, []error{u}, 4, "unavailable", BreakerOpen},
		{"10s later still open", 10 * time.Second, nil, 4, "circuit breaker is open", BreakerOpen},
		{"20s: probe fails, 40s", 10 * time.Second, []error{u}, 5, "unavailable", BreakerOpen},
		{"40s: probe fails, capped at 40s", 40 * time.Second, []error{u}, 6, "unavailable", BreakerOpen},
		{"39s still open", 39 * time.Second, nil, 6, "circuit breaker is open", BreakerOpen},
		{"40s: probe succeeds, closed", time.Second, nil, 7, "", BreakerClosed},
		{"fail once after close", 0, []error{u}, 8, "unavailable", BreakerClosed},
		{"fail twice after close", 0, []error{u}, 9, "unavailable", BreakerClosed},
		{"opens again", 0, []error{u}, 10, "unavailable", BreakerOpen},
		{"probe after base cool-down", 10 * time.Second, nil, 11, "", BreakerClosed},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		f.mu.Lock()
		f.errs = nil
		f.mu.Unlock()
		f.script(s.script...)
		_, err := c.Refresh(ctx, "s", ref)
		c.mu.Lock()
		if e := c.entries[cacheKey{store: "s", key: "a"}]; e != nil {
			c.removeLocked(e) // no stale fallback in this test: errors must surface
		}
		c.mu.Unlock()
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if (s.wantErr == "") != (err == nil) || !strings.Contains(gotErr, s.wantErr) {
			t.Fatalf("%s: err = %q, want %q", s.name, gotErr, s.wantErr)
		}
		if err != nil && providers.KindOf(err) != providers.KindUnavailable {
			t.Errorf("%s: kind %v, want unavailable", s.name, providers.KindOf(err))
		}
		st := c.Stats().Stores["s"]
		if f.count() != s.wantCalls || st.Breaker != s.wantState {
			t.Fatalf("%s: calls=%d state=%v, want %d %v", s.name, f.count(), st.Breaker, s.wantCalls, s.wantState)
		}
	}
	c.inflight.Wait()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := []BreakerState{BreakerOpen, BreakerHalfOpen, BreakerOpen, BreakerHalfOpen, BreakerOpen, BreakerHalfOpen, BreakerOpen, BreakerHalfOpen, BreakerClosed, BreakerOpen, BreakerHalfOpen, BreakerClosed}
	if fmt.Sprint(rec.states) != fmt.Sprint(want) {
		t.Errorf("observed transitions %v, want %v", rec.states, want)
	}
}

func TestBreakerIgnoresAnswers(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want BreakerState
	}{
		{"not found", providers.Errorf(providers.KindNotFound, "s", "a", "gone"), BreakerClosed},
		{"permission denied", providers.Errorf(providers.KindPermissionDenied, "s", "a", "403"), BreakerClosed},
		{"unavailable", unavailable("a"), BreakerOpen},
		{"unmapped error", errors.New("dial tcp: i/o timeout"), BreakerOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake("a", "v")
			c, _ := newCache(t, Options{}, f, v1alpha1.RateLimit{}, BreakerOptions{Threshold: 5})
			for range 5 {
				f.script(tt.err)
				c.Refresh(ctx, "s", providers.Ref{Key: "a"})
			}
			if st := c.Stats().Stores["s"]; st.Breaker != tt.want {
				t.Errorf("after 5 %s errors: breaker %v, want %v", tt.name, st.Breaker, tt.want)
			}
		})
	}
}

func TestHalfOpenAdmitsOneProbe(t *testing.T) {
	f := newFake("a", "v", "b", "v")
	c, clk := newCache(t, Options{}, f, v1alpha1.RateLimit{}, BreakerOptions{Threshold: 1, CoolDown: time.Second})
	f.script(unavailable("a"))
	c.Refresh(ctx, "s", providers.Ref{Key: "a"})
	clk.Advance(time.Second)
	f.block = make(chan struct{})
	probe := make(chan error, 1)
	go func() { _, err := c.Refresh(ctx, "s", providers.Ref{Key: "a"}); probe <- err }()
	eventually(t, "probe in flight", func() bool { return f.count() == 2 })
	if st := c.Stats().Stores["s"].Breaker; st != BreakerHalfOpen {
		t.Fatalf("state during probe %v, want half-open", st)
	}
	_, err := c.Get(ctx, "s", providers.Ref{Key: "b"})
	if err == nil || !strings.Contains(err.Error(), "circuit breaker is open") || f.count() != 2 {
		t.Fatalf("second caller during probe: err=%v calls=%d, want refused without a call", err, f.count())
	}
	close(f.block)
	if err := <-probe; err != nil {
		t.Fatal(err)
	}
	if st := c.Stats().Stores["s"].Breaker; st != BreakerClosed {
		t.Errorf("after good probe: %v, want closed", st)
	}
}

func TestStaleOnError(t *testing.T) {
	notFound := providers.Errorf(providers.KindNotFound, "s", "a", "deleted")
	tests := []struct {
		name      string
		errs      []error
		wantStale bool
		wantErr   bool
		wantKept  bool   // value still cached afterwards
		lastErr   string // substring of LastError
	}{
		{"unavailable serves stale", []error{unavailable("a")}, true, false, true, "connection refused"},
		{"permission denied serves stale", []error{providers.Errorf(providers.KindPermissionDenied, "s", "a", "token revoked")}, true, false, true, "token revoked"},
		{"open breaker serves stale", []error{unavailable("a"), unavailable("a")}, true, false, true, "circuit breaker is open"},
		{"not found evicts", []error{notFound}, false, true, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake("a", secret)
			c, clk := newCache(t, Options{TTL: time.Minute}, f, v1alpha1.RateLimit{}, BreakerOptions{Threshold: 2})
			c.Get(ctx, "s", providers.Ref{Key: "a"})
			clk.Advance(2 * time.Minute)
			f.script(tt.errs...)
			var e Entry
			var err error
			for range max(1, len(tt.errs)) {
				e, err = c.Get(ctx, "s", providers.Ref{Key: "a"})
			}
			if tt.name == "open breaker serves stale" {
				e, err = c.Get(ctx, "s", providers.Ref{Key: "a"}) // now refused by the breaker
				if f.count() != 3 {
					t.Fatalf("calls = %d, want 3 (the last Get must not reach the provider)", f.count())
				}
			}
			if (err != nil) != tt.wantErr || e.Stale != tt.wantStale {
				t.Fatalf("err=%v stale=%v, want err=%v stale=%v", err, e.Stale, tt.wantErr, tt.wantStale)
			}
			if tt.wantStale {
				if string(e.Secret.Value) != secret || e.Age != 2*time.Minute || e.Hit {
					t.Errorf("stale entry: value ok=%v age=%v hit=%v, want the old value aged 2m", string(e.Secret.Value) == secret, e.Age, e.Hit)
				}
				if e.LastError == nil || !strings.Contains(e.LastError.Error(), tt.lastErr) {
					t.Errorf("LastError = %v, want it to contain %q", e.LastError, tt.lastErr)
				}
			} else if len(e.Secret.Value) != 0 {
				t.Errorf("an error came with a value")
			}
			if kept := c.Stats().Entries == 1; kept != tt.wantKept {
				t.Errorf("value still cached = %v, want %v", kept, tt.wantKept)
			}
		})
	}
}

func TestZeroedOnEviction(t *testing.T) {
	val := strings.Repeat("s", 64)
	tests := []struct {
		name  string
		evict func(c *Cache, f *fakeClient, clk *fakeClock)
	}{
		{"lru", func(c *Cache, f *fakeClient, clk *fakeClock) { c.Get(ctx, "s", providers.Ref{Key: "b"}) }},
		{"not found", func(c *Cache, f *fakeClient, clk *fakeClock) {
			f.script(providers.Errorf(providers.KindNotFound, "s", "a", "gone"))
			c.Refresh(ctx, "s", providers.Ref{Key: "a"})
		}},
		{"replaced by refresh", func(c *Cache, f *fakeClient, clk *fakeClock) { c.Refresh(ctx, "s", providers.Ref{Key: "a"}) }},
		{"store removed", func(c *Cache, f *fakeClient, clk *fakeClock) { c.RemoveStore("s") }},
		{"store replaced", func(c *Cache, f *fakeClient, clk *fakeClock) {
			c.AddStore("s", "fake", f, v1alpha1.RateLimit{}, BreakerOptions{})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake("a", val, "b", val) // same size: b evicts a
			one := entrySize(cacheKey{store: "s", key: "a"}, providers.Secret{Value: []byte(val), Version: "v1"})
			c, clk := newCache(t, Options{MaxBytes: one}, f, v1alpha1.RateLimit{}, BreakerOptions{})
			got, _ := c.Get(ctx, "s", providers.Ref{Key: "a"})
			c.mu.Lock()
			held := c.entries[cacheKey{store: "s", key: "a"}].secret.Value
			c.mu.Unlock()
			tt.evict(c, f, clk)
			for i, b := range held {
				if b != 0 {
					t.Fatalf("evicted bytes not zeroed (byte %d = %q)", i, b)
				}
			}
			if string(got.Secret.Value) != val {
				t.Error("the caller's copy was zeroed: Get must return a copy")
			}
			if string(f.values["a"]) != val {
				t.Error("the provider's bytes were zeroed: the cache must only zero its own")
			}
		})
	}
}

func TestCallerCannotCorruptCache(t *testing.T) {
	f := newFake("a", secret)
	c, _ := newCache(t, Options{}, f, v1alpha1.RateLimit{}, BreakerOptions{})
	e, _ := c.Get(ctx, "s", providers.Ref{Key: "a"})
	clear(e.Secret.Value)
	e, _ = c.Get(ctx, "s", providers.Ref{Key: "a"})
	if string(e.Secret.Value) != secret {
		t.Errorf("caller's write reached the cache: %q", e.Secret.Value)
	}
}

func TestErrorsNeverCarryValues(t *testing.T) {
	f := newFake("a", secret, "j", `{"p":"`+secret+`"}`)
	rec := &recorder{}
	c, clk := newCache(t, Options{Metrics: rec, TTL: time.Minute}, f, v1alpha1.RateLimit{}, BreakerOptions{Threshold: 1})
	var texts []string
	collect := func(e Entry, err error) {
		if err != nil {
			texts = append(texts, err.Error())
		}
		if e.LastError != nil {
			texts = append(texts, e.LastError.Error())
		}
	}
	collect(c.Get(ctx, "s", providers.Ref{Key: "a"}))
	collect(c.Get(ctx, "s", providers.Ref{Key: "j", Property: "missing"}))
	collect(c.Get(ctx, "s", providers.Ref{Key: "../x"}))
	collect(c.Get(ctx, "nostore", providers.Ref{Key: "a"}))
	clk.Advance(time.Hour)
	f.script(unavailable("a"))
	collect(c.Get(ctx, "s", providers.Ref{Key: "a"}))
	collect(c.Get(ctx, "s", providers.Ref{Key: "a"})) // breaker open, stale
	collect(c.Get(ctx, "s", providers.Ref{Key: "zzz"}))
	if len(texts) < 5 {
		t.Fatalf("expected several errors, got %d", len(texts))
	}
	c.inflight.Wait()
	rec.mu.Lock()
	texts = append(texts, rec.args...)
	rec.mu.Unlock()
	for _, s := range texts {
		if strings.Contains(s, secret) {
			t.Errorf("value leaked into %q", s)
		}
	}
}

func TestBadRequests(t *testing.T) {
	f := newFake("a", "v")
	c, _ := newCache(t, Options{}, f, v1alpha1.RateLimit{}, BreakerOptions{})
	tests := []struct {
		name, store, key string
		kind             providers.Kind
		substr           string
	}{
		{"unknown store", "nope", "a", providers.KindInvalidConfig, "storeRef"},
		{"traversal", "s", "../etc/shadow", providers.KindInvalidRef, ".."},
		{"absolute", "s", "/etc/shadow", providers.KindInvalidRef, "absolute"},
		{"missing key", "s", "b", providers.KindNotFound, "no such key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Get(ctx, tt.store, providers.Ref{Key: tt.key})
			if providers.KindOf(err) != tt.kind || !strings.Contains(fmt.Sprint(err), tt.substr) || !strings.Contains(fmt.Sprint(err), tt.store) {
				t.Errorf("err = %v (kind %v), want %v naming the store and %q", err, providers.KindOf(err), tt.kind, tt.substr)
			}
		})
	}
	if f.count() != 1 {
		t.Errorf("calls = %d, want 1 (invalid refs and unknown stores never reach the provider)", f.count())
	}
}

func TestRemoveStoreDuringFetch(t *testing.T) {
	f := newFake("a", "v")
	f.block = make(chan struct{})
	c, _ := newCache(t, Options{}, f, v1alpha1.RateLimit{}, BreakerOptions{})
	done := make(chan Entry, 1)
	go func() { e, _ := c.Get(ctx, "s", providers.Ref{Key: "a"}); done <- e }()
	eventually(t, "fetch in flight", func() bool { return f.count() == 1 })
	c.RemoveStore("s")
	close(f.block)
	if e := <-done; string(e.Secret.Value) != "v" {
		t.Errorf("waiter got %q, want the fetched value", e.Secret.Value)
	}
	c.inflight.Wait()
	if st := c.Stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Errorf("removed store's value was cached: %+v", st)
	}
}

func TestStatsAndObserver(t *testing.T) {
	f := newFake("a", "v")
	rec := &recorder{}
	c, _ := newCache(t, Options{Metrics: rec}, f, v1alpha1.RateLimit{}, BreakerOptions{})
	c.Get(ctx, "s", providers.Ref{Key: "a"})
	c.Get(ctx, "s", providers.Ref{Key: "a"})
	c.Get(ctx, "s", providers.Ref{Key: "b"})
	f.script(unavailable("a"))
	c.Refresh(ctx, "s", providers.Ref{Key: "a"})
	c.inflight.Wait()
	st := c.Stats()
	ss := st.Stores["s"]
	if ss.Calls != 3 || ss.Errors != 2 || ss.Provider != "fake" || ss.ConsecutiveFailures != 1 {
		t.Errorf("store stats %+v, want 3 calls, 2 errors, 1 consecutive failure", ss)
	}
	l := ss.Latency
	if l.Count != 3 || l.Min > l.P50 || l.P50 > l.P99 || l.P99 > l.Max || l.Avg < l.Min || l.Avg > l.Max {
		t.Errorf("latency stats inconsistent: %+v", l)
	}
	if st.Entries != 1 || st.Hits != 1 || st.Misses != 2 || st.HitRate() != 1.0/3 {
		t.Errorf("stats %+v", st)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.hits != 1 || rec.misses != 2 || fmt.Sprint(rec.results) != "[ok not_found unavailable]" {
		t.Errorf("observer: hits=%d misses=%d results=%v", rec.hits, rec.misses, rec.results)
	}
	if rec.lastSize != [2]int64{1, st.Bytes} {
		t.Errorf("OnSize last = %v, want [1 %d]", rec.lastSize, st.Bytes)
	}
}

func TestRank(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	tests := []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{s, 0.5, 50}, {s, 0.99, 99}, {s, 1, 100}, {s[:1], 0.99, 1}, {s[:2], 0.5, 1}, {s[:10], 0.99, 10},
	}
	for _, tt := range tests {
		if got := rank(tt.in, tt.p); got != tt.want {
			t.Errorf("rank(n=%d, %v) = %v, want %v", len(tt.in), tt.p, got, tt.want)
		}
	}
	var l latency
	for i := range 2 * latencyWindow {
		l.record(time.Duration(i))
	}
	if snap := l.snapshot(); snap.Min != 0 || snap.Max != time.Duration(2*latencyWindow-1) || snap.P50 < time.Duration(latencyWindow) {
		t.Errorf("ring should cover only the last %d samples for percentiles: %+v", latencyWindow, snap)
	}
}

func TestHitAllocations(t *testing.T) {
	f := newFake("a", secret)
	c, _ := newCache(t, Options{}, f, v1alpha1.RateLimit{}, BreakerOptions{})
	ref := providers.Ref{Key: "a"}
	c.Get(ctx, "s", ref)
	allocs := testing.AllocsPerRun(1000, func() { c.Get(ctx, "s", ref) })
	if allocs > 2 {
		t.Errorf("a hit costs %v allocations, want <= 2", allocs)
	}
}

// A forced refresh of an uncached key is a miss (the value had to come
// from the provider); a refresh of a cached value is a poll, not a miss.
func TestRefreshMisses(t *testing.T) {
	f := newFake("a", secret)
	c, _ := newCache(t, Options{TTL: time.Minute}, f, v1alpha1.RateLimit{}, BreakerOptions{})
	for i, want := range []uint64{1, 1, 1} {
		if _, err := c.Refresh(context.Background(), "s", providers.Ref{Key: "a"}); err != nil {
			t.Fatal(err)
		}
		if got := c.Stats().Misses; got != want {
			t.Fatalf("refresh %d: misses = %d, want %d", i, got, want)
		}
	}
	if _, err := c.Get(context.Background(), "s", providers.Ref{Key: "a"}); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Hits != 1 || st.Misses != 1 {
		t.Fatalf("after a Get: hits %d misses %d, want 1 and 1", st.Hits, st.Misses)
	}
}

// TestRetryAfterHoldsCalls: a provider's Retry-After hint keeps calls away
// from the store until it has passed, a cached value is served stale in the
// meantime, and the hint is capped at MaxRetryAfter.
func TestRetryAfterHoldsCalls(t *testing.T) {
	throttled := func(d time.Duration) error {
		e := providers.Errorf(providers.KindUnavailable, "s", "a", "429 Too Many Requests")
		e.RetryAfter = int64(d)
		return e
	}
	f := newFake("a", secret, "b", secret)
	c, clk := newCache(t, Options{TTL: time.Second}, f, v1alpha1.RateLimit{}, BreakerOptions{Threshold: 100})
	a, b := providers.Ref{Key: "a"}, providers.Ref{Key: "b"}

	if _, err := c.Get(ctx, "s", a); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second) // "a" is due again
	f.script(throttled(30 * time.Second))
	e, err := c.Get(ctx, "s", a)
	if err != nil || !e.Stale || string(e.Secret.Value) != secret {
		t.Fatalf("throttled refresh: stale=%v err=%v, want the old value served stale", e.Stale, err)
	}
	calls := f.count()

	// Within the hint: no call at all, for any key of the store.
	clk.Advance(10 * time.Second)
	_, err = c.Get(ctx, "s", b)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindUnavailable || !strings.Contains(err.Error(), "Retry-After") {
		t.Fatalf("held store: err = %v, want unavailable naming Retry-After", err)
	}
	if left := time.Duration(pe.RetryAfter); left != 20*time.Second {
		t.Errorf("held error RetryAfter = %v, want the 20s left", left)
	}
	if f.count() != calls {
		t.Fatalf("%d provider calls while held, want none", f.count()-calls)
	}

	// After it: calls go out again.
	clk.Advance(20 * time.Second)
	if _, err := c.Get(ctx, "s", b); err != nil {
		t.Fatalf("after the hint: %v", err)
	}
	if f.count() != calls+1 {
		t.Fatalf("calls after the hint = %d, want %d", f.count(), calls+1)
	}

	// An absurd hint is capped.
	f.script(throttled(24 * time.Hour))
	if e, _ := c.Refresh(ctx, "s", b); !e.Stale {
		t.Fatal("throttled refresh of b: want the cached value served stale")
	}
	calls = f.count()
	clk.Advance(MaxRetryAfter - time.Second)
	if e, _ := c.Refresh(ctx, "s", b); !e.Stale || f.count() != calls {
		t.Fatalf("just before MaxRetryAfter: stale=%v calls=%d, want stale and no call", e.Stale, f.count()-calls)
	}
	clk.Advance(time.Second)
	if e, err := c.Refresh(ctx, "s", b); err != nil || e.Stale || f.count() != calls+1 {
		t.Fatalf("at MaxRetryAfter: stale=%v err=%v calls=%d, want one fresh call", e.Stale, err, f.count()-calls)
	}
}
