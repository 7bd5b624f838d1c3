package controllers

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dso-dev/dso/reconcilers"
)

// blocker runs until its context ends and records that it was stopped.
type blocker struct {
	started, stopped atomic.Bool
	ready            atomic.Bool
	linger           time.Duration // keeps running this long after ctx ends
	err              error         // returned after ctx ends
}

func (b *blocker) Start(ctx context.Context) error {
	b.started.Store(true)
	<-ctx.Done()
	time.Sleep(b.linger)
	b.stopped.Store(true)
	return b.err
}

func (b *blocker) Ready() bool { return b.ready.Load() }

func TestManagerStop(t *testing.T) {
	boom := errors.New("event stream refused")
	tests := []struct {
		name       string
		failing    Runnable // added as "failing" when set
		cancelCtx  bool
		stopAfter  time.Duration
		others     []*blocker
		wantErr    string // substring; "" = nil
		wantStoped bool
	}{
		{name: "context end stops all gracefully", cancelCtx: true, others: []*blocker{{}, {err: context.Canceled}}},
		{name: "first error cancels the rest and is returned",
			failing: RunnableFunc(func(context.Context) error { return boom }),
			others:  []*blocker{{}, {}}, wantErr: "failing: event stream refused"},
		{name: "early nil return does not stop the others", cancelCtx: true,
			failing: RunnableFunc(func(context.Context) error { return nil }), others: []*blocker{{}}},
		{name: "panic becomes the error", failing: RunnableFunc(func(context.Context) error { panic("nil map") }),
			others: []*blocker{{}}, wantErr: "failing: panic: nil map"},
		{name: "error while stopping is reported", cancelCtx: true,
			others: []*blocker{{err: errors.New("could not flush state")}}, wantErr: "could not flush state"},
		{name: "stop timeout names the stuck runnable", cancelCtx: true, stopAfter: 50 * time.Millisecond,
			others: []*blocker{{linger: 2 * time.Second}}, wantErr: "did not stop within 50ms: r0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &Manager{StopTimeout: tc.stopAfter}
			names := []string{"r0", "r1", "r2"}
			for i, b := range tc.others {
				m.Add(names[i], b)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- m.Start(ctx) }()
			for _, b := range tc.others {
				eventually(t, 5*time.Second, "runnable started", b.started.Load)
			}
			if tc.failing != nil {
				m.Add("failing", tc.failing) // added after Start: launched at once
			}
			if tc.cancelCtx {
				time.Sleep(20 * time.Millisecond) // let the "early nil" case return first
				cancel()
			}
			var err error
			select {
			case err = <-errc:
			case <-time.After(10 * time.Second):
				t.Fatal("Manager.Start did not return")
			}
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Start = %v, want nil", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Start = %v, want an error containing %q", err, tc.wantErr)
			}
			if tc.stopAfter == 0 {
				for i, b := range tc.others {
					if !b.stopped.Load() {
						t.Errorf("runnable %d was not stopped before Start returned", i)
					}
				}
			}
		})
	}
}

func TestManagerReady(t *testing.T) {
	a, b := &blocker{}, &blocker{}
	m := &Manager{}
	m.Add("informer", a)
	m.Add("controller", b)
	m.Add("plain", RunnableFunc(func(ctx context.Context) error { <-ctx.Done(); return nil }))
	if m.Ready() {
		t.Fatal("Ready before Start")
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- m.Start(ctx) }()
	eventually(t, 5*time.Second, "started", func() bool { return a.started.Load() && b.started.Load() })
	if m.Ready() {
		t.Fatal("Ready while no runnable is ready")
	}
	a.ready.Store(true)
	if m.Ready() || strings.Join(m.NotReady(), ",") != "controller" {
		t.Fatalf("Ready = %v, NotReady = %v; want false, [controller]", m.Ready(), m.NotReady())
	}
	b.ready.Store(true)
	if !m.Ready() {
		t.Fatal("not Ready although every readier is ready")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err == nil {
		t.Fatal("second Start = nil, want an error")
	}
}

func TestManagerRunsAController(t *testing.T) {
	// The pieces compose: a Controller is a Runnable and a readier, and its
	// in-flight reconcile finishes before Manager.Start returns.
	var calls atomic.Int32
	c := New(Options{Name: "composed"}, func(context.Context, string) (reconcilers.Result, error) {
		calls.Add(1)
		return reconcilers.Result{}, nil
	})
	m := &Manager{}
	m.Add("composed", c)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- m.Start(ctx) }()
	eventually(t, 5*time.Second, "manager ready", m.Ready)
	c.Enqueue("x")
	eventually(t, 5*time.Second, "reconciled", func() bool { return calls.Load() == 1 })
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if m.Ready() {
		t.Error("Ready after stop")
	}
}
