package cache

import (
	"fmt"
	"testing"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

// BenchmarkConcurrentDistinctKeys: per iteration, a cold cache takes 1,000
// concurrent Gets over 50 keys. provider-calls/op must be 50 (asserted in
// TestConcurrentDistinctKeys; the benchmark reports it).
func BenchmarkConcurrentDistinctKeys(b *testing.B) {
	f := newFake()
	for i := range 50 {
		f.values[fmt.Sprintf("k%d", i)] = []byte("value")
	}
	total := 0
	for b.Loop() {
		c := New(Options{})
		c.AddStore("s", "fake", f, v1alpha1.RateLimit{}, BreakerOptions{})
		total += runDistinct(b, c, f, func() {})
		c.inflight.Wait()
	}
	b.ReportMetric(float64(total)/float64(b.N), "provider-calls/op")
}

// BenchmarkHit is one cache hit of a 32-byte value.
func BenchmarkHit(b *testing.B) {
	f := newFake("shop/db", "0123456789abcdef0123456789abcdef")
	c := New(Options{})
	c.AddStore("s", "fake", f, v1alpha1.RateLimit{}, BreakerOptions{})
	ref := providers.Ref{Key: "shop/db"}
	if _, err := c.Get(ctx, "s", ref); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(ctx, "s", ref); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHitParallel is the same hit from GOMAXPROCS goroutines, showing
// what the single mutex costs under contention.
func BenchmarkHitParallel(b *testing.B) {
	f := newFake("shop/db", "0123456789abcdef0123456789abcdef")
	c := New(Options{})
	c.AddStore("s", "fake", f, v1alpha1.RateLimit{}, BreakerOptions{})
	ref := providers.Ref{Key: "shop/db"}
	c.Get(ctx, "s", ref)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Get(ctx, "s", ref)
		}
	})
}
