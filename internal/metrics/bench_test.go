package metrics

import (
	"testing"

	"github.com/go-logr/logr"
)

// BenchmarkCacheHitObserver is the cost the observer adds to every cache
// hit (counter + a disabled debug log line).
func BenchmarkCacheHitObserver(b *testing.B) {
	o := New().CacheObserver(logr.Discard())
	b.ReportAllocs()
	for b.Loop() {
		o.OnHit("vault-prod")
	}
}
