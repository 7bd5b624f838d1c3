// Package cache is the one path every secret fetch takes. It exists so that
// provider load is proportional to the number of distinct secrets, not to
// the number of bindings and containers using them, and so that a store
// that is slow or down degrades dso predictably instead of stampeding it.
//
// Entries are keyed by (store, key, requested version, property). On top of
// that key the cache adds, per call:
//
//   - TTL: a value is fresh for Options.TTL after it was fetched (or until
//     the provider's own Secret.Expires, if earlier). Expiry is lazy: an
//     expired entry stays in memory as the stale fallback until the byte
//     budget pushes it out. Get serves fresh entries; Refresh always asks
//     the provider (poll timers use it).
//   - Byte budget: Options.MaxBytes bounds the sum of entry sizes (value
//     bytes + JSON field bytes + key strings + EntryOverhead). Least recently
//     used entries are evicted first. A single value larger than the whole
//     budget is returned to the caller but not cached, so every Get of it is
//     a provider call.
//   - Singleflight: concurrent misses for one key share one provider call.
//     The call runs detached from any single caller's context; each caller
//     stops waiting when its own ctx ends, and the call is cancelled when
//     the last waiter has gone. Options.FetchTimeout bounds it regardless.
//   - Per-store token bucket (spec.rateLimit; zero QPS = unlimited), taken
//     once per provider call, never on a hit.
//   - Per-store circuit breaker: closed; open after Threshold consecutive
//     unavailable/unknown errors; half-open after a cool-down (doubling per
//     failed probe, capped) admitting one probe; closed again on any answer.
//     Not-found and permission errors prove the store answered and do not
//     trip it.
//
// Failure semantics (the contract readers rely on):
//
//   - A failed fetch while a value is cached returns that value with
//     Entry.Stale = true, Entry.Age and Entry.LastError set, and a nil
//     error. The cached value is kept, never replaced with nothing.
//   - Only a NotFound from the provider evicts a cached value: the secret
//     (or that version/property) was deleted, and serving it on would hide
//     the deletion.
//   - An open breaker makes no provider call: it returns the stale value as
//     above if there is one, else a KindUnavailable error saying the circuit
//     is open. It never returns an empty value, and never a stale one marked
//     fresh.
//   - A value past the provider's Secret.Expires is never served, not even
//     as stale.
//
// Memory: every Entry returned is the caller's own copy (one allocation
// holding Value and all Fields, plus the Fields map when the secret is a
// JSON object), so the cache can zero its own bytes when it evicts or
// replaces an entry without pulling memory out from under a reader. A hit
// for a plain value costs one allocation. Bytes returned by a provider are
// copied, never zeroed by the cache: they belong to the provider.
//
// The cache never logs and never puts a value in an error; Observer hooks
// carry names, results and durations only.
package cache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

// Defaults for Options.
const (
	DefaultTTL          = time.Hour
	DefaultMaxBytes     = 500 << 20
	DefaultFetchTimeout = 30 * time.Second
	// EntryOverhead is the bookkeeping charged per entry against MaxBytes,
	// so that many tiny secrets still count for something.
	EntryOverhead = 256
)

// Options configure a Cache. Zero fields take the defaults.
type Options struct {
	// TTL is how long a fetched value is served without asking the
	// provider again (agent.cache.ttl). Default 1h.
	TTL time.Duration
	// MaxBytes is the byte budget (agent.cache.max_size). Default 500 MiB.
	MaxBytes int64
	// FetchTimeout bounds one provider call. Default 30s.
	FetchTimeout time.Duration
	// Clock is for tests; default the real clock.
	Clock Clock
	// Metrics receives events; default none.
	Metrics Observer
}

// Entry is what Get and Refresh return.
type Entry struct {
	// Secret is the caller's own copy.
	Secret providers.Secret
	// FetchedAt is when the provider returned this value.
	FetchedAt time.Time
	// Age is how old the value was when it was returned.
	Age time.Duration
	// Hit is true when the value came from the cache without waiting for
	// a provider call.
	Hit bool
	// Stale is true when the provider could not be asked or failed and
	// this is the last good value; LastError says why.
	Stale     bool
	LastError error
}

// Cache is safe for concurrent use.
type Cache struct {
	ttl, fetchTimeout time.Duration
	maxBytes          int64
	clock             Clock
	obs               Observer

	mu           sync.Mutex
	entries      map[cacheKey]*entry
	head, tail   *entry // LRU list, head = most recently used
	bytes        int64
	hits, misses uint64
	stores       map[string]*storeState
	calls        map[cacheKey]*call

	inflight sync.WaitGroup // fetch goroutines, for tests
}

type cacheKey struct{ store, key, version, property string }

type entry struct {
	k          cacheKey
	st         *storeState
	secret     providers.Secret // cache-owned, zeroed on removal
	size       int64
	fetchedAt  time.Time
	freshUntil time.Time
	prev, next *entry
}

type storeState struct {
	name, provider string
	client         providers.Client
	limiter        *rate.Limiter // nil: unlimited
	br             breaker
	// holdUntil is set from a provider's Retry-After hint: until then no
	// call goes to the store (a stale value is served where there is one).
	holdUntil time.Time

	hits, misses, calls, errors uint64
	lat                         latency
}

// call is one in-flight provider fetch shared by its waiters.
type call struct {
	done     chan struct{}
	waiters  int
	finished bool
	cancel   context.CancelFunc

	// Result, set before done is closed. secret is a cache-owned copy that
	// waiters copy from; the last waiter zeroes it.
	secret    providers.Secret
	fetchedAt time.Time
	stale     bool
	err       error
}

// New returns an empty cache with no stores.
func New(opts Options) *Cache {
	c := &Cache{
		ttl: opts.TTL, fetchTimeout: opts.FetchTimeout, maxBytes: opts.MaxBytes,
		clock: opts.Clock, obs: opts.Metrics,
		entries: map[cacheKey]*entry{}, stores: map[string]*storeState{}, calls: map[cacheKey]*call{},
	}
	if c.ttl <= 0 {
		c.ttl = DefaultTTL
	}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxBytes
	}
	if c.fetchTimeout <= 0 {
		c.fetchTimeout = DefaultFetchTimeout
	}
	if c.clock == nil {
		c.clock = realClock{}
	}
	if c.obs == nil {
		c.obs = NopObserver{}
	}
	return c
}

// AddStore makes a store available under name. Adding a name again
// replaces the client, rate limit and breaker and drops the store's cached
// values: the new settings may point at a different backend. The caller
// keeps ownership of client (the cache never closes it).
func (c *Cache) AddStore(name, provider string, client providers.Client, limit v1alpha1.RateLimit, breaker BreakerOptions) {
	st := &storeState{name: name, provider: provider, client: client, limiter: newLimiter(limit), br: newBreaker(breaker)}
	c.mu.Lock()
	if old := c.stores[name]; old != nil {
		c.dropStoreLocked(old)
	}
	c.stores[name] = st
	n, b := len(c.entries), c.bytes
	c.mu.Unlock()
	c.obs.OnSize(n, b)
}

// RemoveStore forgets a store and zeroes its cached values. Fetches in
// flight finish for their waiters but are not cached.
func (c *Cache) RemoveStore(name string) {
	c.mu.Lock()
	if st := c.stores[name]; st != nil {
		c.dropStoreLocked(st)
		delete(c.stores, name)
	}
	n, b := len(c.entries), c.bytes
	c.mu.Unlock()
	c.obs.OnSize(n, b)
}

func (c *Cache) dropStoreLocked(st *storeState) {
	for _, e := range c.entries {
		if e.st == st {
			c.removeLocked(e)
		}
	}
}

// newLimiter turns spec.rateLimit into a token bucket. A zero burst with a
// positive QPS means one second's worth of calls (at least one).
func newLimiter(l v1alpha1.RateLimit) *rate.Limiter {
	if l.QPS <= 0 || math.IsInf(l.QPS, 1) {
		return nil
	}
	burst := int(l.Burst)
	if burst <= 0 {
		burst = max(1, int(math.Ceil(l.QPS)))
	}
	return rate.NewLimiter(rate.Limit(l.QPS), burst)
}

// Get returns a fresh cached value, or fetches one (see the package doc for
// what happens when the fetch fails).
func (c *Cache) Get(ctx context.Context, store string, ref providers.Ref) (Entry, error) {
	return c.get(ctx, store, ref, false)
}

// Refresh asks the provider regardless of the TTL. It still shares an
// in-flight call, takes a rate-limit token and respects the breaker.
func (c *Cache) Refresh(ctx context.Context, store string, ref providers.Ref) (Entry, error) {
	return c.get(ctx, store, ref, true)
}

func (c *Cache) get(ctx context.Context, store string, ref providers.Ref, refresh bool) (Entry, error) {
	k := cacheKey{store, ref.Key, ref.Version, ref.Property}
	c.mu.Lock()
	st := c.stores[store]
	if st == nil {
		c.mu.Unlock()
		return Entry{}, providers.Errorf(providers.KindInvalidConfig, store, ref.Key, "no SecretStore of this name is loaded: check the binding's storeRef")
	}
	now := c.clock.Now()
	if !refresh {
		if e := c.entries[k]; e != nil && now.Before(e.freshUntil) {
			c.moveToFrontLocked(e)
			c.hits++
			st.hits++
			out := Entry{Secret: cloneSecret(e.secret), FetchedAt: e.fetchedAt, Age: now.Sub(e.fetchedAt), Hit: true}
			c.mu.Unlock()
			c.obs.OnHit(store)
			return out, nil
		}
		c.misses++
		st.misses++
	}
	// A forced refresh of a key with nothing cached is a miss too (the
	// first fetch after start, or after an eviction): the value had to
	// come from the provider. A refresh of a cached value is a poll, not a miss.
	missed := !refresh
	if refresh && c.entries[k] == nil {
		c.misses++
		st.misses++
		missed = true
	}
	cl := c.calls[k]
	if cl == nil {
		// Validate here, on the miss path only: ValidateRef allocates,
		// and a hit can only be for a key that was valid when fetched.
		if err := providers.ValidateRef(store, ref); err != nil {
			c.mu.Unlock()
			return Entry{}, err
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.fetchTimeout)
		cl = &call{done: make(chan struct{}), cancel: cancel}
		c.calls[k] = cl
		c.inflight.Add(1)
		go c.fetch(fctx, cl, k, st, ref)
	}
	cl.waiters++
	c.mu.Unlock()
	if missed {
		c.obs.OnMiss(store)
	}

	select {
	case <-cl.done:
		c.mu.Lock()
		out, err := cl.result(c.clock.Now())
		c.leaveLocked(k, cl)
		c.mu.Unlock()
		return out, err
	case <-ctx.Done():
		c.mu.Lock()
		c.leaveLocked(k, cl)
		c.mu.Unlock()
		return Entry{}, providers.Wrap(providers.KindUnavailable, store, ref.Key, ctx.Err(), "stopped waiting for the secret (the caller's deadline or cancellation)")
	}
}

// result builds one waiter's copy of the call's outcome.
func (cl *call) result(now time.Time) (Entry, error) {
	if cl.err != nil && !cl.stale {
		return Entry{}, cl.err
	}
	e := Entry{Secret: cloneSecret(cl.secret), FetchedAt: cl.fetchedAt, Age: now.Sub(cl.fetchedAt)}
	if cl.stale {
		e.Stale, e.LastError = true, cl.err
	}
	return e, nil
}

// leaveLocked drops one waiter. The last waiter of a finished call zeroes
// the shared copy; the last waiter of an unfinished call cancels it and
// unlists it so that a later Get starts a fresh call instead of joining a
// cancelled one.
func (c *Cache) leaveLocked(k cacheKey, cl *call) {
	cl.waiters--
	if cl.waiters > 0 {
		return
	}
	if cl.finished {
		zeroSecret(cl.secret)
		return
	}
	cl.cancel()
	if c.calls[k] == cl {
		delete(c.calls, k)
	}
}

// outcome classifies a provider result for the breaker and for Observer.
type outcome int

const (
	outOK       outcome = iota
	outAnswered         // not found, permission denied: the store is up
	outNeutral          // cancelled by waiters, invalid ref/config: proves nothing
	outFailure          // unavailable, unknown, timeout
)

func classify(ctx context.Context, err error) (outcome, string) {
	if err == nil {
		return outOK, "ok"
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return outNeutral, "canceled"
	}
	switch providers.KindOf(err) {
	case providers.KindNotFound:
		return outAnswered, "not_found"
	case providers.KindPermissionDenied:
		return outAnswered, "permission_denied"
	case providers.KindInvalidRef:
		return outNeutral, "invalid_ref"
	case providers.KindInvalidConfig:
		return outNeutral, "invalid_config"
	case providers.KindUnavailable:
		return outFailure, "unavailable"
	default:
		return outFailure, "error"
	}
}

// fetch runs one provider call for a call record and publishes the result.
func (c *Cache) fetch(ctx context.Context, cl *call, k cacheKey, st *storeState, ref providers.Ref) {
	defer c.inflight.Done()
	defer cl.cancel()

	var (
		sec     providers.Secret
		err     error
		called  bool
		out     outcome
		label   string
		dur     time.Duration
		changed []BreakerState
		openErr error
	)

	c.mu.Lock()
	if now := c.clock.Now(); now.Before(st.holdUntil) {
		openErr = holdError(st, ref.Key, now) // a breaker probe waits too
	} else {
		ok, ch := st.br.allow(now)
		if ch {
			changed = append(changed, st.br.state)
		}
		if !ok {
			openErr = providers.Wrap(providers.KindUnavailable, st.name, ref.Key, st.br.lastErr,
				fmt.Sprintf("circuit breaker is open after %d consecutive failures, no call made; next probe at %s",
					st.br.failures, st.br.retryAt().UTC().Format(time.RFC3339)))
		}
	}
	c.mu.Unlock()

	if openErr != nil {
		err = openErr
	} else if werr := c.waitToken(ctx, st); werr != nil {
		c.mu.Lock()
		st.br.release()
		c.mu.Unlock()
		err = providers.Wrap(providers.KindUnavailable, st.name, ref.Key, werr, "gave up waiting for the store's rate limit")
	} else {
		start := time.Now()
		sec, err = st.client.Get(ctx, ref)
		dur = time.Since(start)
		called = true
		out, label = classify(ctx, err)
	}

	c.mu.Lock()
	now := c.clock.Now()
	if called {
		st.calls++
		st.lat.record(dur)
		if err != nil {
			st.errors++
		}
		if d := retryAfter(err); d > 0 {
			st.holdUntil = now.Add(d)
		}
		var ch bool
		switch out {
		case outOK, outAnswered:
			ch = st.br.success()
		case outFailure:
			ch = st.br.failure(now, err)
		default:
			st.br.release()
		}
		if ch {
			changed = append(changed, st.br.state)
		}
	}
	live := c.stores[st.name] == st
	cur := c.entries[k]
	switch {
	case err == nil:
		cl.secret, cl.fetchedAt = cloneSecret(sec), now
		if live {
			c.insertLocked(k, st, cloneSecret(sec), now)
		}
	case providers.KindOf(err) == providers.KindNotFound && called:
		if cur != nil {
			c.removeLocked(cur)
		}
		cl.err = err
	case cur != nil && (cur.secret.Expires.IsZero() || now.Before(cur.secret.Expires)):
		cl.secret, cl.fetchedAt, cl.stale, cl.err = cloneSecret(cur.secret), cur.fetchedAt, true, err
	default:
		cl.err = err
	}
	cl.finished = true
	if c.calls[k] == cl {
		delete(c.calls, k)
	}
	if cl.waiters == 0 {
		zeroSecret(cl.secret)
	}
	n, b := len(c.entries), c.bytes
	c.mu.Unlock()

	// The observer hears of the call before any waiter is released, so a
	// Get that returns has its provider call, breaker change and size
	// already counted (metrics read right after a Get are exact).
	defer close(cl.done)
	if called {
		c.obs.OnProviderCall(st.name, st.provider, "get", label, dur)
	}
	for _, s := range changed {
		c.obs.OnBreakerState(st.name, s)
	}
	c.obs.OnSize(n, b)
}

// MaxRetryAfter caps how long a provider's Retry-After hint holds back
// calls to its store.
const MaxRetryAfter = 5 * time.Minute

// retryAfter is the provider's Retry-After hint carried by err, capped.
func retryAfter(err error) time.Duration {
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.RetryAfter <= 0 {
		return 0
	}
	return min(time.Duration(pe.RetryAfter), MaxRetryAfter)
}

// holdError is the answer, without a call, while a store's Retry-After
// hint holds; it carries the time left so callers can back off as long.
func holdError(st *storeState, key string, now time.Time) error {
	left := st.holdUntil.Sub(now)
	e := providers.Errorf(providers.KindUnavailable, st.name, key,
		"the store asked to retry after %s (Retry-After), no call made; next call at %s",
		left.Round(time.Second), st.holdUntil.UTC().Format(time.RFC3339))
	e.RetryAfter = int64(left)
	return e
}

// waitToken takes one token from the store's bucket, waiting on the cache's
// clock and giving the token back if ctx ends first.
func (c *Cache) waitToken(ctx context.Context, st *storeState) error {
	if st.limiter == nil {
		return nil
	}
	now := c.clock.Now()
	r := st.limiter.ReserveN(now, 1)
	if !r.OK() {
		return errors.New("rate limit admits no calls: set spec.rateLimit.burst to at least 1")
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	t := c.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		r.CancelAt(c.clock.Now())
		return ctx.Err()
	}
}

// entrySize is what an entry costs against the budget.
func entrySize(k cacheKey, s providers.Secret) int64 {
	n := EntryOverhead + len(k.store) + len(k.key) + len(k.version) + len(k.property) + len(s.Value) + len(s.Version)
	for f, v := range s.Fields {
		n += len(f) + len(v)
	}
	return int64(n)
}

// insertLocked stores sec (already a cache-owned copy) under k, replacing
// and zeroing any older value, then evicts least recently used entries
// until the budget holds. A value bigger than the whole budget is not
// cached (and the older value it supersedes is dropped too).
func (c *Cache) insertLocked(k cacheKey, st *storeState, sec providers.Secret, now time.Time) {
	if old := c.entries[k]; old != nil {
		c.removeLocked(old)
	}
	size := entrySize(k, sec)
	if size > c.maxBytes {
		zeroSecret(sec)
		return
	}
	fresh := now.Add(c.ttl)
	if !sec.Expires.IsZero() && sec.Expires.Before(fresh) {
		fresh = sec.Expires
	}
	e := &entry{k: k, st: st, secret: sec, size: size, fetchedAt: now, freshUntil: fresh}
	c.entries[k] = e
	c.pushFrontLocked(e)
	c.bytes += size
	for c.bytes > c.maxBytes && c.tail != nil && c.tail != e {
		c.removeLocked(c.tail)
	}
}

// removeLocked unlinks e and zeroes its bytes.
func (c *Cache) removeLocked(e *entry) {
	delete(c.entries, e.k)
	c.unlinkLocked(e)
	c.bytes -= e.size
	zeroSecret(e.secret)
}

func (c *Cache) pushFrontLocked(e *entry) {
	e.prev, e.next = nil, c.head
	if c.head != nil {
		c.head.prev = e
	}
	c.head = e
	if c.tail == nil {
		c.tail = e
	}
}

func (c *Cache) unlinkLocked(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (c *Cache) moveToFrontLocked(e *entry) {
	if c.head == e {
		return
	}
	c.unlinkLocked(e)
	c.pushFrontLocked(e)
}

// cloneSecret copies s into one fresh allocation (plus the Fields map).
func cloneSecret(s providers.Secret) providers.Secret {
	out := providers.Secret{Version: s.Version, Expires: s.Expires}
	n := len(s.Value)
	if s.Fields != nil { // ranging over a nil map still costs an iterator setup
		for _, v := range s.Fields {
			n += len(v)
		}
	}
	buf := make([]byte, n)
	if s.Value != nil {
		out.Value = buf[:len(s.Value):len(s.Value)]
		copy(out.Value, s.Value)
	}
	if s.Fields != nil {
		off := len(s.Value)
		out.Fields = make(map[string][]byte, len(s.Fields))
		for f, v := range s.Fields {
			b := buf[off : off+len(v) : off+len(v)]
			copy(b, v)
			out.Fields[f] = b
			off += len(v)
		}
	}
	return out
}

// zeroSecret overwrites the bytes of a cache-owned secret.
func zeroSecret(s providers.Secret) {
	clear(s.Value)
	for _, v := range s.Fields {
		clear(v)
	}
}

// Stats returns a snapshot.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{Entries: len(c.entries), Bytes: c.bytes, MaxBytes: c.maxBytes, Hits: c.hits, Misses: c.misses,
		Stores: make(map[string]StoreStats, len(c.stores))}
	for name, st := range c.stores {
		ss := StoreStats{
			Provider: st.provider, Hits: st.hits, Misses: st.misses, Calls: st.calls, Errors: st.errors,
			Latency: st.lat.snapshot(), Breaker: st.br.state, ConsecutiveFailures: st.br.failures,
		}
		if st.br.state == BreakerOpen {
			ss.NextProbe = st.br.retryAt()
		}
		s.Stores[name] = ss
	}
	return s
}
