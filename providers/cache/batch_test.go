package cache

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dso-dev/dso/api/v1alpha1"
	"github.com/dso-dev/dso/providers"
)

// batchFake is a BatchClient over a map; GetBatch records each call's size.
type batchFake struct {
	mu      sync.Mutex
	values  map[string]string
	batches []int
	gets    int
}

func (b *batchFake) Get(_ context.Context, ref providers.Ref) (providers.Secret, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gets++
	v, ok := b.values[ref.Key]
	if !ok {
		return providers.Secret{}, providers.Errorf(providers.KindNotFound, "s", ref.Key, "no such key")
	}
	return providers.Finish("s", ref, []byte(v), "1")
}
func (b *batchFake) Validate(context.Context) error { return nil }
func (b *batchFake) Close() error                   { return nil }
func (b *batchFake) MaxBatch() int                  { return 20 }
func (b *batchFake) GetBatch(_ context.Context, refs []providers.Ref) ([]providers.Secret, []error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches = append(b.batches, len(refs))
	secs := make([]providers.Secret, len(refs))
	errs := make([]error, len(refs))
	for i, r := range refs {
		v, ok := b.values[r.Key]
		if !ok {
			errs[i] = providers.Errorf(providers.KindNotFound, "s", r.Key, "no such key")
			continue
		}
		secs[i], errs[i] = providers.Finish("s", r, []byte(v), "1")
	}
	return secs, errs
}

func TestPrefetchBatches(t *testing.T) {
	b := &batchFake{values: map[string]string{}}
	var refs []providers.Ref
	for i := range 45 {
		k := fmt.Sprintf("app/key-%02d", i)
		b.values[k] = "v" + k
		refs = append(refs, providers.Ref{Key: k})
	}
	refs = append(refs, providers.Ref{Key: "app/missing"}, providers.Ref{Key: "app/key-01", Version: "v9"}, providers.Ref{Key: "../x"})
	c := New(Options{TTL: time.Hour})
	c.AddStore("s", "aws", b, v1alpha1.RateLimit{}, BreakerOptions{})
	n, err := c.Prefetch(context.Background(), "s", refs)
	if err != nil || n != 45 {
		t.Fatalf("Prefetch = %d, %v; want 45 fetched", n, err)
	}
	if fmt.Sprint(b.batches) != "[20 20 6]" {
		t.Fatalf("batches = %v, want [20 20 6]: 45 keys + 1 missing, versioned and invalid refs skipped", b.batches)
	}
	// Every prefetched key is now a hit: no per-key call.
	for _, r := range refs[:45] {
		e, err := c.Get(context.Background(), "s", providers.Ref{Key: r.Key, Property: ""})
		if err != nil || !e.Hit || string(e.Secret.Value) != b.values[r.Key] {
			t.Fatalf("%s: hit=%v err=%v", r.Key, e.Hit, err)
		}
	}
	if b.gets != 0 {
		t.Fatalf("%d single Gets after a prefetch, want 0", b.gets)
	}
	st := c.Stats()
	if st.Stores["s"].Calls != 3 || st.Misses != 45 || st.Hits != 45 {
		t.Fatalf("stats: calls %d misses %d hits %d", st.Stores["s"].Calls, st.Misses, st.Hits)
	}
	// A second prefetch asks only for what is not cached (the missing key).
	if n, _ := c.Prefetch(context.Background(), "s", refs); n != 0 || fmt.Sprint(b.batches) != "[20 20 6 1]" {
		t.Fatalf("second prefetch fetched %d, batches %v", n, b.batches)
	}
}

func TestPrefetchWithoutBatchClient(t *testing.T) {
	f := newFake("a", secret)
	c, _ := newCache(t, Options{TTL: time.Minute}, f, v1alpha1.RateLimit{}, BreakerOptions{})
	if n, err := c.Prefetch(context.Background(), "s", []providers.Ref{{Key: "a"}}); n != 0 || err != nil {
		t.Fatalf("Prefetch on a non-batch store = %d, %v", n, err)
	}
}
