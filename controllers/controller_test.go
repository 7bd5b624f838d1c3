package controllers

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dso-dev/dso/internal/testutil"
	"github.com/dso-dev/dso/reconcilers"
)

// recorder is a scripted reconciler: step n of key k returns script[n] (the
// last step repeats) and every call time is recorded.
type recorder struct {
	mu     sync.Mutex
	calls  map[string][]time.Time
	script []step
}

type step struct {
	res   reconcilers.Result
	err   error
	panic bool
}

func (r *recorder) reconcile(_ context.Context, k string) (reconcilers.Result, error) {
	r.mu.Lock()
	n := len(r.calls[k])
	r.calls[k] = append(r.calls[k], time.Now())
	s := r.script[min(n, len(r.script)-1)]
	r.mu.Unlock()
	if s.panic {
		panic("boom in " + k)
	}
	return s.res, s.err
}

func (r *recorder) count(k string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls[k])
}

func (r *recorder) times(k string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.calls[k]...)
}

func startController[K comparable](t *testing.T, c *Controller[K]) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Start(ctx) }()
	eventually(t, 5*time.Second, "controller workers running", c.Ready)
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestControllerOutcomes(t *testing.T) {
	transient := errors.New("provider unavailable")
	tests := []struct {
		name      string
		script    []step
		wantCalls int  // calls to wait for
		settled   bool // no further calls expected after wantCalls
		wantLog   string
		requeues  int // NumRequeues once settled
	}{
		{name: "success is reconciled once and forgotten", script: []step{{}}, wantCalls: 1, settled: true},
		{name: "terminal error is not retried", script: []step{{err: reconcilers.TerminalError(errors.New("binding has no data"))}},
			wantCalls: 1, settled: true, wantLog: "terminal error"},
		{name: "transient errors retry until success, then forget", script: []step{{err: transient}, {err: transient}, {err: transient}, {}},
			wantCalls: 4, settled: true, wantLog: `"retries"=3`},
		{name: "panic is recovered and retried", script: []step{{panic: true}, {}}, wantCalls: 2, settled: true, wantLog: "reconcile panicked"},
		{name: "RequeueAfter re-adds after success", script: []step{{res: reconcilers.Result{RequeueAfter: 20 * time.Millisecond}}, {}},
			wantCalls: 2, settled: true},
		{name: "result with an error is ignored in favour of backoff", script: []step{{res: reconcilers.Result{RequeueAfter: time.Hour}, err: transient}, {}},
			wantCalls: 2, settled: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &testutil.LogSink{}
			r := &recorder{calls: map[string][]time.Time{}, script: tc.script}
			c := New(Options{Name: "test", Workers: 2, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond, Log: logs.Logger(10)}, r.reconcile)
			startController(t, c)
			c.Enqueue("a")
			eventually(t, 10*time.Second, "reconcile calls", func() bool { return r.count("a") >= tc.wantCalls })
			if tc.settled {
				// A wrong retry would come within a few ms (1ms base delay).
				time.Sleep(100 * time.Millisecond)
				if got := r.count("a"); got != tc.wantCalls {
					t.Fatalf("reconcile calls = %d, want exactly %d", got, tc.wantCalls)
				}
				if got := c.queue.NumRequeues("a"); got != tc.requeues {
					t.Errorf("NumRequeues = %d, want %d (failure history forgotten)", got, tc.requeues)
				}
			}
			if tc.wantLog != "" && len(logs.Matching(tc.wantLog)) == 0 {
				t.Errorf("no log line contains %q; lines: %q", tc.wantLog, logs.Matching(""))
			}
		})
	}
}

func TestControllerRequeueAfterWaits(t *testing.T) {
	r := &recorder{calls: map[string][]time.Time{}, script: []step{{res: reconcilers.Result{RequeueAfter: 80 * time.Millisecond}}, {}}}
	c := New(Options{Name: "requeue"}, r.reconcile)
	startController(t, c)
	c.Enqueue("k")
	eventually(t, 10*time.Second, "second reconcile", func() bool { return r.count("k") == 2 })
	ts := r.times("k")
	if gap := ts[1].Sub(ts[0]); gap < 80*time.Millisecond {
		t.Fatalf("requeued after %s, want at least the RequeueAfter of 80ms", gap)
	}
}

func TestControllerBackoffGrowsPerKey(t *testing.T) {
	r := &recorder{calls: map[string][]time.Time{}, script: []step{{err: errors.New("down")}}}
	base := 10 * time.Millisecond
	c := New(Options{Name: "backoff", BaseDelay: base, MaxDelay: time.Second}, r.reconcile)
	startController(t, c)
	c.Enqueue("k")
	eventually(t, 10*time.Second, "five attempts", func() bool { return r.count("k") >= 5 })
	ts := r.times("k")
	// Attempt n+1 waits at least base*2^(n-1) after attempt n: 10, 20, 40, 80ms.
	for i := 1; i < 5; i++ {
		want := base << (i - 1)
		if gap := ts[i].Sub(ts[i-1]); gap < want {
			t.Errorf("gap before attempt %d = %s, want >= %s (exponential backoff)", i+1, gap, want)
		}
	}
	// Another key is not slowed down by k's failures.
	c.Enqueue("other")
	eventually(t, 5*time.Second, "other key reconciled", func() bool { return r.count("other") >= 1 })
}

func TestControllerGracefulDrain(t *testing.T) {
	release := make(chan struct{})
	inFlight := make(chan struct{})
	var mu sync.Mutex
	var seen []string
	var ctxErrDuringDrain error
	c := New(Options{Name: "drain", Workers: 1}, func(ctx context.Context, k string) (reconcilers.Result, error) {
		mu.Lock()
		seen = append(seen, k)
		mu.Unlock()
		if k == "slow" {
			close(inFlight)
			<-release
			ctxErrDuringDrain = ctx.Err()
		}
		return reconcilers.Result{}, nil
	})
	stop := startController(t, c)
	c.Enqueue("slow")
	<-inFlight
	c.Enqueue("queued") // waits behind "slow" (one worker)
	if c.Len() != 1 {
		t.Fatalf("Len = %d, want 1 key waiting", c.Len())
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Start returned (%v) while a reconcile was still running", err)
	case <-time.After(100 * time.Millisecond):
	}
	c.Enqueue("after-stop")
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Start = %v, want nil after a clean drain", err)
	}
	if ctxErrDuringDrain != nil {
		t.Errorf("in-flight reconcile saw ctx error %v during the drain, want a live context", ctxErrDuringDrain)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != "slow" {
		t.Errorf("reconciled %v, want only the in-flight key (no new keys after stop)", seen)
	}
}

func TestControllerDrainTimeout(t *testing.T) {
	inFlight := make(chan struct{})
	cancelled := make(chan struct{})
	c := New(Options{Name: "stuck", DrainTimeout: 50 * time.Millisecond}, func(ctx context.Context, _ string) (reconcilers.Result, error) {
		close(inFlight)
		<-ctx.Done()
		close(cancelled)
		return reconcilers.Result{}, ctx.Err()
	})
	stop := startController(t, c)
	c.Enqueue("k")
	<-inFlight
	err := stop()
	if err == nil || !strings.Contains(err.Error(), "drain timeout") {
		t.Fatalf("Start = %v, want an error about the drain timeout", err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck reconcile's context was not cancelled after the drain timeout")
	}
}

func TestControllerStartTwice(t *testing.T) {
	c := New(Options{Name: "twice"}, func(context.Context, int) (reconcilers.Result, error) { return reconcilers.Result{}, nil })
	startController(t, c)
	if err := c.Start(context.Background()); err == nil {
		t.Fatal("second Start = nil, want an error")
	}
}

func TestControllerEnqueueBeforeStartAndDefaults(t *testing.T) {
	r := &recorder{calls: map[string][]time.Time{}, script: []step{{}}}
	c := New(Options{Name: "early"}, r.reconcile)
	if c.opts.Workers != 1 || c.opts.BaseDelay != DefaultBaseDelay || c.opts.MaxDelay != DefaultMaxDelay ||
		c.opts.QPS != DefaultQPS || c.opts.Burst != DefaultBurst || c.opts.DrainTimeout != DefaultDrainTimeout {
		t.Fatalf("defaults not applied: %+v", c.opts)
	}
	c.Enqueue("a")
	c.Enqueue("a") // deduplicated
	c.EnqueueAfter("b", 10*time.Millisecond)
	if c.Len() != 1 {
		t.Fatalf("Len = %d before Start, want 1", c.Len())
	}
	startController(t, c)
	eventually(t, 5*time.Second, "both keys reconciled", func() bool { return r.count("a") == 1 && r.count("b") == 1 })
}
