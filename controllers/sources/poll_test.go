package sources

import (
	"context"
	"sync"
	"testing"
	"time"
)

type fires struct {
	mu sync.Mutex
	at map[string][]time.Time
}

func newFires() *fires { return &fires{at: map[string][]time.Time{}} }

func (f *fires) fire(k string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.at[k] = append(f.at[k], time.Now())
}

func (f *fires) of(k string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.at[k]...)
}

func TestJittered(t *testing.T) {
	d := 10 * time.Second
	tests := []struct {
		r    float64
		want time.Duration
	}{
		{0, 9 * time.Second},
		{0.25, 9500 * time.Millisecond},
		{0.5, 10 * time.Second},
		{0.75, 10500 * time.Millisecond},
		{0.999999, 11*time.Second - 2*time.Microsecond},
	}
	for _, tc := range tests {
		got := jittered(d, tc.r)
		if diff := got - tc.want; diff < -time.Microsecond || diff > time.Microsecond {
			t.Errorf("jittered(%s, %v) = %s, want %s", d, tc.r, got, tc.want)
		}
	}
}

func TestPollTimersFireRateWithinJitterBounds(t *testing.T) {
	f := newFires()
	p := NewPollTimers(f.fire)
	interval := 50 * time.Millisecond
	start := time.Now()
	p.Set(map[string]time.Duration{"vault/db": interval})
	window := time.Second
	time.Sleep(window + 50*time.Millisecond)
	var n int
	for _, at := range f.of("vault/db") {
		if at.Sub(start) <= window {
			n++
		}
	}
	// Every interval is at least 45ms, so at most 22 fires fit in 1s; the
	// lower bound is loose because a loaded machine delays timers.
	if n > 22 || n < 8 {
		t.Fatalf("%d fires in %s at interval %s ±10%%, want 8..22", n, window, interval)
	}
	if first := f.of("vault/db")[0].Sub(start); first < 45*time.Millisecond {
		t.Fatalf("first fire after %s, want no sooner than one jittered interval (>= 45ms)", first)
	}
}

func TestPollTimersSpreadKeysApart(t *testing.T) {
	f := newFires()
	p := NewPollTimers(f.fire)
	set := map[string]time.Duration{}
	keys := []string{"k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07", "k08", "k09",
		"k10", "k11", "k12", "k13", "k14", "k15", "k16", "k17", "k18", "k19"}
	for _, k := range keys {
		set[k] = 200 * time.Millisecond
	}
	start := time.Now()
	p.Set(set)
	eventually(t, 10*time.Second, "every key fired", func() bool {
		for _, k := range keys {
			if len(f.of(k)) == 0 {
				return false
			}
		}
		return true
	})
	var lo, hi time.Duration
	for i, k := range keys {
		d := f.of(k)[0].Sub(start)
		if d < 180*time.Millisecond {
			t.Errorf("%s first fired after %s, want >= 180ms (interval minus 10%%)", k, d)
		}
		if i == 0 || d < lo {
			lo = d
		}
		if d > hi {
			hi = d
		}
	}
	// 20 uniform draws over a 40ms range all within 2ms of each other would
	// mean there is no jitter.
	if hi-lo < 2*time.Millisecond {
		t.Fatalf("first fires spread over %s only; keys with one interval fire in lockstep", hi-lo)
	}
}

func TestPollTimersSet(t *testing.T) {
	f := newFires()
	p := NewPollTimers(f.fire)
	p.Set(map[string]time.Duration{"same": time.Hour, "changed": time.Hour, "removed": 30 * time.Millisecond, "off": time.Hour})
	p.mu.Lock()
	sameBefore, changedBefore := p.timers["same"], p.timers["changed"]
	p.mu.Unlock()

	p.Set(map[string]time.Duration{"same": time.Hour, "changed": 2 * time.Hour, "new": time.Hour, "off": 0})
	p.mu.Lock()
	sameAfter, changedAfter := p.timers["same"], p.timers["changed"]
	_, removed := p.timers["removed"]
	_, off := p.timers["off"]
	_, added := p.timers["new"]
	p.mu.Unlock()
	tests := []struct {
		what string
		ok   bool
	}{
		{"unchanged interval keeps its timer (phase kept)", sameAfter == sameBefore},
		{"changed interval gets a new timer", changedAfter != changedBefore && changedAfter.interval == 2*time.Hour},
		{"key missing from Set is removed", !removed},
		{"interval 0 turns polling off", !off},
		{"new key is added", added},
		{"Len counts the polled keys", p.Len() == 3},
	}
	for _, tc := range tests {
		if !tc.ok {
			t.Error(tc.what)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(f.of("removed")); n != 0 {
		t.Fatalf("removed key fired %d times after Set dropped it", n)
	}
}

func TestPollTimersStop(t *testing.T) {
	f := newFires()
	p := NewPollTimers(f.fire)
	p.Set(map[string]time.Duration{"a": 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()
	eventually(t, 5*time.Second, "a fired", func() bool { return len(f.of("a")) > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	n := len(f.of("a"))
	p.Set(map[string]time.Duration{"b": 10 * time.Millisecond})
	time.Sleep(100 * time.Millisecond)
	if got := len(f.of("a")); got > n+1 { // one callback may have been past the check
		t.Fatalf("a fired %d more times after stop", got-n)
	}
	if len(f.of("b")) != 0 || p.Len() != 0 {
		t.Fatalf("Set after stop armed timers: b fired %d times, Len %d", len(f.of("b")), p.Len())
	}
}
