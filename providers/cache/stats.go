package cache

import (
	"math"
	"slices"
	"time"
)

// Stats is a snapshot for `status`, `doctor` and metrics.
type Stats struct {
	Entries  int
	Bytes    int64
	MaxBytes int64
	Hits     uint64
	Misses   uint64
	Stores   map[string]StoreStats
}

// HitRate is Hits/(Hits+Misses), 0 when there were no requests.
func (s Stats) HitRate() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

// StoreStats describes the calls made to one store.
type StoreStats struct {
	Provider string
	Hits     uint64
	Misses   uint64
	// Calls counts provider calls actually made; Errors those that failed
	// (any kind, including not found).
	Calls   uint64
	Errors  uint64
	Latency LatencyStats
	Breaker BreakerState
	// ConsecutiveFailures counts unavailable/unknown errors since the last
	// answer from the store.
	ConsecutiveFailures int
	// NextProbe is when an open breaker lets the next probe through.
	NextProbe time.Time `json:",omitzero"`
}

// LatencyStats: Min, Max and Avg cover every call since the store was
// added; P50 and P99 cover the last latencyWindow calls.
type LatencyStats struct {
	Count         uint64
	Min, Max, Avg time.Duration
	P50, P99      time.Duration
}

// latencyWindow is the ring size for percentiles: big enough for a stable
// p99 over recent calls, small enough to sort on every Stats call.
const latencyWindow = 512

type latency struct {
	ring     [latencyWindow]time.Duration
	n        int // filled slots
	next     int
	count    uint64
	sum      time.Duration
	min, max time.Duration
}

func (l *latency) record(d time.Duration) {
	l.ring[l.next] = d
	l.next = (l.next + 1) % latencyWindow
	if l.n < latencyWindow {
		l.n++
	}
	if l.count == 0 || d < l.min {
		l.min = d
	}
	if d > l.max {
		l.max = d
	}
	l.count++
	l.sum += d
}

func (l *latency) snapshot() LatencyStats {
	if l.count == 0 {
		return LatencyStats{}
	}
	s := slices.Clone(l.ring[:l.n])
	slices.Sort(s)
	return LatencyStats{
		//nolint:gosec // G115: count would need 2^63 provider calls to overflow int64
		Count: l.count, Min: l.min, Max: l.max, Avg: l.sum / time.Duration(l.count),
		P50: rank(s, 0.50), P99: rank(s, 0.99),
	}
}

// rank is the nearest-rank percentile of sorted s.
func rank(s []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
