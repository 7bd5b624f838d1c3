// Package controllers is dso's small controller machinery, written instead of
// pulling in controller-runtime (which assumes a Kubernetes API server): a
// generic Controller that feeds keys from a named, typed, rate-limited
// client-go workqueue to N workers that call a reconciler; a Manager that
// starts and gracefully stops the controllers and event sources of the agent;
// and a Debouncer that coalesces bursts of changes per key. The event sources
// themselves live in controllers/sources.
//
// The semantics follow sample-controller and controller-runtime so that the
// vocabulary of DESIGN.md §3 means what an operator expects: queues hold keys,
// never events; a nil error forgets the key's failure history; a terminal
// error is logged and not retried; any other error backs off per key.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	"k8s.io/client-go/util/workqueue"

	"github.com/dso-dev/dso/reconcilers"
)

// Reconciler converges whatever key names to its desired state.
type Reconciler[K comparable] interface {
	Reconcile(ctx context.Context, key K) (reconcilers.Result, error)
}

// ReconcileFunc adapts a function (or a method value such as r.Reconcile) to
// Reconciler.
type ReconcileFunc[K comparable] func(ctx context.Context, key K) (reconcilers.Result, error)

// Reconcile calls f.
func (f ReconcileFunc[K]) Reconcile(ctx context.Context, key K) (reconcilers.Result, error) {
	return f(ctx, key)
}

// Defaults for Options. The backoff is shorter at the start than
// sample-controller's 5ms..1000s: a provider error is worth retrying within a
// second, and a few minutes is the longest an operator should wait after the
// provider comes back.
const (
	DefaultBaseDelay    = 500 * time.Millisecond
	DefaultMaxDelay     = 5 * time.Minute
	DefaultQPS          = 50
	DefaultBurst        = 300
	DefaultDrainTimeout = 30 * time.Second
)

// Options configure a Controller. Zero values take the defaults above.
type Options struct {
	// Name names the workqueue; the workqueue MetricsProvider (set by the
	// agent through workqueue.SetProvider) labels the queue metrics with it.
	// client-go reads the provider when the queue is built, i.e. in New, so
	// SetProvider must run before New; names must be unique per process.
	Name string
	// Workers is how many keys are reconciled at once (default 1). One key is
	// never reconciled by two workers at the same time (workqueue guarantee).
	Workers int
	// BaseDelay and MaxDelay bound the per-key exponential backoff after a
	// failed reconcile.
	BaseDelay, MaxDelay time.Duration
	// QPS and Burst size the token bucket shared by all keys' retries.
	QPS   float64
	Burst int
	// DrainTimeout bounds how long Start waits, once its context ends, for
	// reconciles already running. After it their context is cancelled.
	DrainTimeout time.Duration
	// Log receives the controller's log lines (default: discard).
	Log logr.Logger
}

// Controller runs a reconciler over the keys of one rate-limited workqueue.
// Create it with New; Enqueue may be called before Start (the keys wait).
type Controller[K comparable] struct {
	opts      Options
	reconcile ReconcileFunc[K]
	queue     workqueue.TypedRateLimitingInterface[K]
	log       logr.Logger

	started  atomic.Bool
	running  atomic.Bool
	stopping atomic.Bool
}

// New builds a controller. The queue is created here (not in Start) so that
// sources wired before the manager starts can already enqueue keys.
func New[K comparable](opts Options, r ReconcileFunc[K]) *Controller[K] {
	if opts.Workers <= 0 {
		opts.Workers = 1
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = DefaultBaseDelay
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.MaxDelay < opts.BaseDelay {
		opts.MaxDelay = opts.BaseDelay
	}
	if opts.QPS <= 0 {
		opts.QPS = DefaultQPS
	}
	if opts.Burst <= 0 {
		opts.Burst = DefaultBurst
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	limiter := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[K](opts.BaseDelay, opts.MaxDelay),
		&workqueue.TypedBucketRateLimiter[K]{Limiter: rate.NewLimiter(rate.Limit(opts.QPS), opts.Burst)},
	)
	q := workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[K]{Name: opts.Name})
	return &Controller[K]{
		opts:      opts,
		reconcile: r,
		queue:     q,
		log:       opts.Log.WithValues("controller", opts.Name),
	}
}

// Name is the controller's (and its queue's) name.
func (c *Controller[K]) Name() string { return c.opts.Name }

// Enqueue adds k now. Adding a key already waiting is a no-op; adding a key
// being reconciled makes it run once more afterwards.
func (c *Controller[K]) Enqueue(k K) { c.queue.Add(k) }

// EnqueueAfter adds k once d has passed (at once when d <= 0).
func (c *Controller[K]) EnqueueAfter(k K, d time.Duration) { c.queue.AddAfter(k, d) }

// Len is the number of keys waiting to be reconciled (not counting keys
// waiting for a backoff or RequeueAfter delay).
func (c *Controller[K]) Len() int { return c.queue.Len() }

// Ready reports whether the workers are running.
func (c *Controller[K]) Ready() bool { return c.running.Load() }

// Start runs the workers until ctx ends, then stops gracefully: the queue
// takes no new keys, keys still waiting are dropped (the next start re-lists
// everything, reconcilers are level-triggered), and reconciles in flight get
// up to DrainTimeout to finish with a context that is still live — a swap
// half-way through is better finished than abandoned. After the timeout their
// context is cancelled and Start returns an error saying so.
// Start may be called once.
func (c *Controller[K]) Start(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return fmt.Errorf("controller %q was already started; build a new one with controllers.New", c.opts.Name)
	}
	// Reconciles run under a context that outlives ctx by the drain timeout.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	var wg sync.WaitGroup
	for range c.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.processNext(workCtx) {
			}
		}()
	}
	c.running.Store(true)
	c.log.Info("controller started", "workers", c.opts.Workers)

	<-ctx.Done()
	c.running.Store(false)
	c.stopping.Store(true)
	c.log.Info("controller stopping; waiting for running reconciles", "drainTimeout", c.opts.DrainTimeout.String())
	// ShutDown (not ShutDownWithDrain, which blocks without bound) makes Get
	// return the remaining keys and then shutdown=true; workers drop the
	// remaining keys because stopping is set.
	c.queue.ShutDown()

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	timer := time.NewTimer(c.opts.DrainTimeout)
	defer timer.Stop()
	select {
	case <-done:
		c.log.Info("controller stopped")
		return nil
	case <-timer.C:
		cancelWork()
		return fmt.Errorf("controller %q: reconciles still running after the drain timeout of %s; their context was cancelled", c.opts.Name, c.opts.DrainTimeout)
	}
}

// processNext is sample-controller's processNextWorkItem: Get, defer Done,
// reconcile, then Forget / AddAfter / AddRateLimited. It returns false once
// the queue is shut down.
func (c *Controller[K]) processNext(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	if c.stopping.Load() {
		// Stopping: start no new reconciles.
		return true
	}

	res, err := c.safeReconcile(ctx, key)
	switch {
	case err == nil:
		c.queue.Forget(key)
		if res.RequeueAfter > 0 {
			c.queue.AddAfter(key, res.RequeueAfter)
		}
	case reconcilers.IsTerminal(err):
		// Retrying cannot help (bad spec, refused input): wait for a change.
		c.log.Error(err, "reconcile failed with a terminal error; not retrying until something changes", "key", key)
		c.queue.Forget(key)
	default:
		// As controller-runtime: a Result returned with an error is ignored,
		// the backoff decides when to look again.
		c.queue.AddRateLimited(key)
		c.log.Info("reconcile failed; will retry with backoff", "key", key, "error", err.Error(), "retries", c.queue.NumRequeues(key))
	}
	return true
}

// errPanic marks an error made from a recovered panic.
var errPanic = errors.New("reconcile panicked")

// safeReconcile turns a panic in the reconciler into an ordinary (retried)
// error so that one bad key cannot take the agent down.
func (c *Controller[K]) safeReconcile(ctx context.Context, key K) (res reconcilers.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error(fmt.Errorf("%w: %v", errPanic, r), "reconcile panicked; treating it as a failed reconcile", "key", key, "stack", string(debug.Stack()))
			res, err = reconcilers.Result{}, fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	return c.reconcile(ctx, key)
}
