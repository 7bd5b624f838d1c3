package cache

import (
	"context"
	"time"

	"github.com/dso-dev/dso/providers"
)

// Prefetch fills the cache for refs of one store in as few provider calls
// as the store allows: when its client is a providers.BatchClient (AWS
// BatchGetSecretValue, 20 ids a call), refs that are not cached fresh and
// not being fetched are asked for in batches of MaxBatch. For other stores
// it does nothing (each key is fetched on its own Get). Refs with a version
// or a property are skipped: the batch API reads the current version, and
// properties are extracted from the cached whole value.
//
// The agent calls it when it (re)loads its declarations, so a host with
// 45 keys in one AWS store starts with 3 calls instead of 45. Each batch
// takes one rate-limit token and counts as one call for the breaker.
func (c *Cache) Prefetch(ctx context.Context, store string, refs []providers.Ref) (fetched int, err error) {
	c.mu.Lock()
	st := c.stores[store]
	if st == nil {
		c.mu.Unlock()
		return 0, providers.Errorf(providers.KindInvalidConfig, store, "", "no SecretStore of this name is loaded")
	}
	bc, ok := st.client.(providers.BatchClient)
	if !ok {
		c.mu.Unlock()
		return 0, nil
	}
	now := c.clock.Now()
	var due []providers.Ref
	seen := map[cacheKey]bool{}
	for _, r := range refs {
		if r.Version != "" || r.Property != "" || providers.ValidateRef(store, r) != nil {
			continue
		}
		k := cacheKey{store, r.Key, "", ""}
		if seen[k] || c.calls[k] != nil {
			continue
		}
		if e := c.entries[k]; e != nil && now.Before(e.freshUntil) {
			continue
		}
		seen[k] = true
		due = append(due, r)
	}
	c.mu.Unlock()

	size := max(bc.MaxBatch(), 1)
	for len(due) > 0 {
		chunk := due[:min(size, len(due))]
		due = due[len(chunk):]
		n, err := c.batch(ctx, st, bc, chunk)
		fetched += n
		if err != nil {
			return fetched, err
		}
	}
	return fetched, nil
}

func (c *Cache) batch(ctx context.Context, st *storeState, bc providers.BatchClient, refs []providers.Ref) (int, error) {
	c.mu.Lock()
	ok, ch := st.br.allow(c.clock.Now())
	state := st.br.state
	c.mu.Unlock()
	if ch {
		c.obs.OnBreakerState(st.name, state)
	}
	if !ok {
		return 0, providers.Errorf(providers.KindUnavailable, st.name, "", "circuit breaker is open: batch prefetch skipped")
	}
	if err := c.waitToken(ctx, st); err != nil {
		c.mu.Lock()
		st.br.release()
		c.mu.Unlock()
		return 0, providers.Wrap(providers.KindUnavailable, st.name, "", err, "gave up waiting for the store's rate limit")
	}
	start := time.Now()
	secs, errs := bc.GetBatch(ctx, refs)
	dur := time.Since(start)

	// The call as a whole: it failed only when every ref failed as unavailable.
	var callErr error
	okCount := 0
	for i := range refs {
		if i < len(errs) && errs[i] != nil {
			if callErr == nil {
				callErr = errs[i]
			}
			continue
		}
		okCount++
	}
	out, label := outOK, "ok"
	if okCount == 0 && callErr != nil {
		out, label = classify(ctx, callErr)
	}

	c.mu.Lock()
	now := c.clock.Now()
	st.calls++
	st.lat.record(dur)
	if okCount == 0 && callErr != nil {
		st.errors++
	}
	var changed bool
	switch out {
	case outOK, outAnswered:
		changed = st.br.success()
	case outFailure:
		changed = st.br.failure(now, callErr)
	default:
		st.br.release()
	}
	live := c.stores[st.name] == st
	n := 0
	for i, r := range refs {
		if i >= len(secs) || (i < len(errs) && errs[i] != nil) {
			continue
		}
		if live {
			c.insertLocked(cacheKey{st.name, r.Key, "", ""}, st, cloneSecret(secs[i]), now)
			c.misses++
			st.misses++
			n++
		}
	}
	state = st.br.state
	entries, bytes := len(c.entries), c.bytes
	c.mu.Unlock()

	c.obs.OnProviderCall(st.name, st.provider, "batch_get", label, dur)
	for range n {
		c.obs.OnMiss(st.name)
	}
	if changed {
		c.obs.OnBreakerState(st.name, state)
	}
	c.obs.OnSize(entries, bytes)
	return n, nil
}
