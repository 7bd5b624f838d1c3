package controllers

import (
	"context"
	"sync"
	"testing"
	"time"
)

type fireLog struct {
	mu    sync.Mutex
	fires map[string][]time.Time
}

func (f *fireLog) fire(k string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fires[k] = append(f.fires[k], time.Now())
}

func (f *fireLog) get(k string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.fires[k]...)
}

func TestDebouncerBurstFiresOnce(t *testing.T) {
	f := &fireLog{fires: map[string][]time.Time{}}
	window := 60 * time.Millisecond
	d := NewDebouncer(window, time.Hour, f.fire)
	var last time.Time
	for range 10 {
		d.Add("web")
		last = time.Now()
		time.Sleep(5 * time.Millisecond)
	}
	d.Add("db")
	eventually(t, 5*time.Second, "both keys fired", func() bool { return len(f.get("web")) == 1 && len(f.get("db")) == 1 })
	if got := f.get("web")[0]; got.Sub(last) < window {
		t.Errorf("fired %s after the last Add, want at least the window %s", got.Sub(last), window)
	}
	time.Sleep(3 * window)
	if n := len(f.get("web")); n != 1 {
		t.Fatalf("a burst of 10 Adds fired %d times, want 1", n)
	}
	if d.Pending() != 0 {
		t.Fatalf("Pending = %d after firing, want 0", d.Pending())
	}
}

func TestDebouncerMaxWaitBoundsAContinuousBurst(t *testing.T) {
	f := &fireLog{fires: map[string][]time.Time{}}
	window, maxWait := 50*time.Millisecond, 100*time.Millisecond
	d := NewDebouncer(window, maxWait, f.fire)
	first := time.Now()
	// Adds every 10ms for 600ms: without maxWait nothing would fire until
	// the burst ends.
	for time.Since(first) < 600*time.Millisecond {
		d.Add("web")
		time.Sleep(10 * time.Millisecond)
	}
	fires := f.get("web")
	if len(fires) < 2 {
		t.Fatalf("fired %d times during a 600ms burst with maxWait 100ms, want at least 2", len(fires))
	}
	if fires[0].Sub(first) < maxWait {
		t.Errorf("first fire after %s, want no earlier than maxWait %s (Adds never paused for a window)", fires[0].Sub(first), maxWait)
	}
}

func TestDebouncerDefaultsAndZeroWindow(t *testing.T) {
	tests := []struct {
		window, maxWait, wantMax time.Duration
	}{
		{window: time.Second, wantMax: 4 * time.Second},
		{window: time.Second, maxWait: 10 * time.Millisecond, wantMax: time.Second},
		{window: time.Second, maxWait: 3 * time.Second, wantMax: 3 * time.Second},
	}
	for _, tc := range tests {
		if d := NewDebouncer(tc.window, tc.maxWait, func(string) {}); d.maxWait != tc.wantMax {
			t.Errorf("NewDebouncer(%s, %s).maxWait = %s, want %s", tc.window, tc.maxWait, d.maxWait, tc.wantMax)
		}
	}
	f := &fireLog{fires: map[string][]time.Time{}}
	d := NewDebouncer(0, 0, f.fire)
	d.Add("now")
	if len(f.get("now")) != 1 {
		t.Fatal("window 0 did not fire inside Add")
	}
}

func TestDebouncerStopDropsPending(t *testing.T) {
	f := &fireLog{fires: map[string][]time.Time{}}
	d := NewDebouncer(30*time.Millisecond, 0, f.fire)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Start(ctx) }()
	d.Add("web")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	d.Add("late")
	time.Sleep(100 * time.Millisecond)
	if len(f.get("web"))+len(f.get("late")) != 0 {
		t.Fatalf("fired after stop: web=%d late=%d", len(f.get("web")), len(f.get("late")))
	}
}
