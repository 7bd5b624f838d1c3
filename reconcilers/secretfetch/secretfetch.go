// Package secretfetch is the reconciler whose key is one secret of one store
// (store, key, version). It asks the provider — through the shared cache,
// so one call serves every binding and container that uses the key — and
// when the value's digest changes it tells the targets that consume it.
// It requeues itself at the key's refresh interval with ±10% jitter, so
// hosts sharing a store do not poll in lockstep.
package secretfetch

import (
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/dso-dev/dso/providers"
	"github.com/dso-dev/dso/providers/cache"
	"github.com/dso-dev/dso/reconcilers"
)

// Key is one secret of one store. Properties are extracted after the fetch.
type Key struct {
	Store   string
	Key     string
	Version string
}

func (k Key) String() string {
	s := k.Store + "/" + k.Key
	if k.Version != "" {
		s += "@" + k.Version
	}
	return s
}

// Refresher is the cache: Refresh forces a provider call, Get serves a
// fresh cached value (used right after a batch prefetch, so it is not
// followed by one call per key).
type Refresher interface {
	Refresh(ctx context.Context, store string, ref providers.Ref) (cache.Entry, error)
	Get(ctx context.Context, store string, ref providers.Ref) (cache.Entry, error)
}

// Reconciler fetches secrets and reports changes.
type Reconciler struct {
	Cache Refresher
	// Interval returns the key's poll interval, or used=false when no
	// binding consumes it any more.
	Interval func(k Key) (interval time.Duration, used bool)
	// Targets returns the names of the containers consuming k.
	Targets func(k Key) []string
	// Changed is called once per consuming target when k's value changed
	// (the agent debounces it per target).
	Changed func(target string, k Key)
	Log     logr.Logger
	// Jitter, for tests; default ±10% uniform.
	Jitter func(time.Duration) time.Duration
	// Prefetched reports (once) that k was just fetched by a batch
	// prefetch; Reconcile then reads the cache instead of calling again.
	Prefetched func(k Key) bool
	// ExternalTimers is set when poll timers (controllers/sources.PollTimers)
	// enqueue the keys: Reconcile then never asks to be requeued itself.
	ExternalTimers bool

	mu     sync.Mutex
	last   map[Key][32]byte
	status map[Key]KeyStatus
}

// KeyStatus is what the last fetches of one key did (for status/describe).
type KeyStatus struct {
	LastAttempt time.Time `json:"lastAttempt"`
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	// LastError is the last failure's message (names store and key only).
	LastError string `json:"lastError,omitempty"`
	Stale     bool   `json:"stale,omitempty"`
}

// Status returns the fetch status of k.
func (r *Reconciler) Status(k Key) (KeyStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.status[k]
	return s, ok
}

func (r *Reconciler) record(k Key, err error, stale bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status == nil {
		r.status = map[Key]KeyStatus{}
	}
	s := r.status[k]
	s.LastAttempt = time.Now()
	s.Stale = stale
	if err != nil {
		s.LastError = err.Error()
	} else {
		s.LastError = ""
		if !stale {
			s.LastSuccess = s.LastAttempt
		}
	}
	r.status[k] = s
}

// Reconcile fetches k once.
func (r *Reconciler) Reconcile(ctx context.Context, k Key) (reconcilers.Result, error) {
	interval, used := r.Interval(k)
	if !used {
		r.mu.Lock()
		delete(r.last, k)
		delete(r.status, k)
		r.mu.Unlock()
		return reconcilers.Result{}, nil
	}
	fetch := r.Cache.Refresh
	if r.Prefetched != nil && r.Prefetched(k) {
		fetch = r.Cache.Get // just fetched in a batch: no second call
	}
	e, err := fetch(ctx, k.Store, providers.Ref{Key: k.Key, Version: k.Version})
	var staleErr error
	if err == nil && e.Stale {
		staleErr = e.LastError
	}
	if staleErr != nil {
		r.record(k, staleErr, true)
	} else {
		r.record(k, err, false)
	}
	if err != nil {
		r.Log.Info("secret fetch failed", "store", k.Store, "key", k.Key, "kind", providers.KindOf(err).String(), "error", err.Error())
		if providers.KindOf(err) == providers.KindInvalidRef || providers.KindOf(err) == providers.KindInvalidConfig {
			return reconcilers.Result{RequeueAfter: r.jitter(interval)}, nil
		}
		var pe *providers.Error
		if errors.As(err, &pe) && pe.RetryAfter > 0 {
			// The store said when to come back (429 Retry-After): that
			// beats a guessed backoff, and asking sooner cannot help.
			return reconcilers.Result{RequeueAfter: time.Duration(pe.RetryAfter)}, nil
		}
		return reconcilers.Result{}, err
	}
	if e.Stale {
		msg := ""
		if e.LastError != nil {
			msg = e.LastError.Error()
		}
		r.Log.Info("serving stale secret value: refresh failed", "store", k.Store, "key", k.Key, "age", e.Age.Round(time.Second).String(), "error", msg)
		return reconcilers.Result{RequeueAfter: r.jitter(interval)}, nil
	}
	sum := sha256.Sum256(e.Secret.Value)
	for i := range e.Secret.Value {
		e.Secret.Value[i] = 0 // our copy; the digest is all we keep
	}
	r.mu.Lock()
	if r.last == nil {
		r.last = map[Key][32]byte{}
	}
	prev, seen := r.last[k]
	r.last[k] = sum
	r.mu.Unlock()
	if seen && prev != sum {
		targets := r.Targets(k)
		r.Log.Info("secret changed", "store", k.Store, "key", k.Key, "version", e.Secret.Version, "targets", len(targets))
		for _, t := range targets {
			r.Changed(t, k)
		}
	}
	return reconcilers.Result{RequeueAfter: r.jitter(interval)}, nil
}

// Forget drops what is known of k (a fresh start for that key).
func (r *Reconciler) Forget(k Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.last, k)
}

func (r *Reconciler) jitter(d time.Duration) time.Duration {
	if r.ExternalTimers {
		return 0
	}
	if r.Jitter != nil {
		return r.Jitter(d)
	}
	return Jitter(d)
}

// Jitter returns d ±10%, uniformly.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	f := 0.9 + 0.2*rand.Float64() //nolint:gosec // jitter, not a secret
	return time.Duration(float64(d) * f)
}
