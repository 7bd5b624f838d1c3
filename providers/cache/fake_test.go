package cache

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dso-dev/dso/internal/testutil"
	"github.com/dso-dev/dso/providers"
)

// fakeClock moves only when told to.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clk     *fakeClock
	c       chan time.Time
	at      time.Time
	stopped bool
	fired   bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{clk: f, c: make(chan time.Time, 1), at: f.now.Add(d)}
	if d <= 0 {
		t.fired = true
		t.c <- f.now
	}
	f.timers = append(f.timers, t)
	return t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	for _, t := range f.timers {
		if !t.stopped && !t.fired && !f.now.Before(t.at) {
			t.fired = true
			t.c <- f.now
		}
	}
}

// pending counts timers that are neither fired nor stopped.
func (f *fakeClock) pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.timers {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

// fakeClient counts calls, plays scripted errors and can block.
type fakeClient struct {
	mu      sync.Mutex
	calls   int
	values  map[string][]byte
	expires time.Time
	errs    []error       // consumed one per call; nil = answer normally
	block   chan struct{} // when set, Get waits for it to close (or ctx)
	ctxErrs []error       // ctx errors seen while blocked
}

func newFake(kv ...string) *fakeClient {
	f := &fakeClient{values: map[string][]byte{}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.values[kv[i]] = []byte(kv[i+1])
	}
	return f
}

func (f *fakeClient) Get(ctx context.Context, ref providers.Ref) (providers.Secret, error) {
	f.mu.Lock()
	f.calls++
	var err error
	if len(f.errs) > 0 {
		err, f.errs = f.errs[0], f.errs[1:]
	}
	v, ok := f.values[ref.Key]
	block, exp := f.block, f.expires
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			f.mu.Lock()
			f.ctxErrs = append(f.ctxErrs, ctx.Err())
			f.mu.Unlock()
			return providers.Secret{}, ctx.Err()
		}
	}
	if err != nil {
		return providers.Secret{}, err
	}
	if !ok {
		return providers.Secret{}, providers.Errorf(providers.KindNotFound, "s", ref.Key, "no such key")
	}
	s, err := providers.Finish("s", ref, v, "v1")
	s.Expires = exp
	return s, err
}

func (f *fakeClient) Validate(context.Context) error { return nil }
func (f *fakeClient) Close() error                   { return nil }

func (f *fakeClient) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeClient) script(errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, errs...)
}

func (f *fakeClient) set(k, v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[k] = []byte(v)
}

// recorder is an Observer that remembers everything it saw.
type recorder struct {
	mu       sync.Mutex
	hits     int
	misses   int
	results  []string
	states   []BreakerState
	args     []string
	lastSize [2]int64
}

func (r *recorder) OnHit(s string) { r.mu.Lock(); r.hits++; r.args = append(r.args, s); r.mu.Unlock() }
func (r *recorder) OnMiss(s string) {
	r.mu.Lock()
	r.misses++
	r.args = append(r.args, s)
	r.mu.Unlock()
}
func (r *recorder) OnProviderCall(store, provider, op, result string, _ time.Duration) {
	r.mu.Lock()
	r.results = append(r.results, result)
	r.args = append(r.args, store, provider, op, result)
	r.mu.Unlock()
}
func (r *recorder) OnBreakerState(store string, st BreakerState) {
	r.mu.Lock()
	r.states = append(r.states, st)
	r.mu.Unlock()
}
func (r *recorder) OnSize(n int, b int64) {
	r.mu.Lock()
	r.lastSize = [2]int64{int64(n), b}
	r.mu.Unlock()
}

func unavailable(key string) error {
	return providers.Errorf(providers.KindUnavailable, "s", key, "connection refused")
}

// eventually polls cond for up to 5 s; used to wait for goroutines to reach
// a state, never to assert on timing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, time.Millisecond, what, cond)
}

// waiters returns the number of callers waiting on in-flight calls.
func (c *Cache) waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, cl := range c.calls {
		n += cl.waiters
	}
	return n
}
