package secretfetch

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/dso-dev/dso/providers"
	"github.com/dso-dev/dso/providers/cache"
)

type scripted struct {
	values    []string
	errs      []error
	stale     []bool
	calls     int
	firstGets int
}

func (s *scripted) Get(ctx context.Context, store string, ref providers.Ref) (cache.Entry, error) {
	s.firstGets++
	return s.Refresh(ctx, store, ref)
}

func (s *scripted) Refresh(_ context.Context, store string, ref providers.Ref) (cache.Entry, error) {
	i := s.calls
	s.calls++
	if i < len(s.errs) && s.errs[i] != nil {
		return cache.Entry{}, s.errs[i]
	}
	e := cache.Entry{Secret: providers.Secret{Value: []byte(s.values[i])}}
	if i < len(s.stale) && s.stale[i] {
		e.Stale, e.Age, e.LastError = true, time.Minute, errors.New("store unavailable")
	}
	return e, nil
}

func TestReconcileNotifiesOnChangeOnly(t *testing.T) {
	var logs strings.Builder
	src := &scripted{
		values: []string{"v1", "v1", "v2", "v2", "v3"},
		errs:   []error{nil, nil, nil, nil, providers.Errorf(providers.KindUnavailable, "s", "k", "down")},
		stale:  []bool{false, false, false, true},
	}
	var changed []string
	r := &Reconciler{
		Cache:    src,
		Interval: func(Key) (time.Duration, bool) { return time.Minute, true },
		Targets:  func(Key) []string { return []string{"api-1", "api-2"} },
		Changed:  func(t string, _ Key) { changed = append(changed, t) },
		Log:      funcr.New(func(_, a string) { logs.WriteString(a + "\n") }, funcr.Options{}),
		Jitter:   func(d time.Duration) time.Duration { return d },
	}
	k := Key{Store: "s", Key: "k"}
	for i, want := range [][]string{nil, nil, {"api-1", "api-2"}, {"api-1", "api-2"}} {
		res, err := r.Reconcile(context.Background(), k)
		if err != nil || res.RequeueAfter != time.Minute {
			t.Fatalf("call %d: res=%v err=%v", i, res, err)
		}
		if !reflect.DeepEqual(changed, want) {
			t.Fatalf("after call %d changed = %v, want %v", i, changed, want)
		}
	}
	// An unavailable store is an error (backoff), and does not notify.
	if _, err := r.Reconcile(context.Background(), k); providers.KindOf(err) != providers.KindUnavailable {
		t.Fatalf("err = %v, want unavailable", err)
	}
	if len(changed) != 2 {
		t.Fatalf("error notified targets: %v", changed)
	}
	if src.firstGets != 0 {
		t.Errorf("%d Gets without a prefetch, want 0 (every look forces a refresh)", src.firstGets)
	}
	if !strings.Contains(logs.String(), "serving stale secret value") {
		t.Errorf("stale value not logged:\n%s", logs.String())
	}
	for _, v := range []string{"v1", "v2", "v3"} {
		if strings.Contains(logs.String(), `"`+v+`"`) {
			t.Errorf("log contains value %q", v)
		}
	}
}

func TestUnusedKeyStops(t *testing.T) {
	src := &scripted{values: []string{"v1"}}
	r := &Reconciler{Cache: src, Interval: func(Key) (time.Duration, bool) { return 0, false }}
	res, err := r.Reconcile(context.Background(), Key{Store: "s", Key: "k"})
	if err != nil || res.RequeueAfter != 0 || src.calls != 0 {
		t.Fatalf("unused key: res=%v err=%v calls=%d", res, err, src.calls)
	}
}

func TestJitterBounds(t *testing.T) {
	for range 1000 {
		j := Jitter(100 * time.Second)
		if j < 90*time.Second || j > 110*time.Second {
			t.Fatalf("jitter %v outside ±10%%", j)
		}
	}
}

func TestPrefetchedKeyReadsTheCache(t *testing.T) {
	src := &scripted{values: []string{"v1", "v1"}}
	once := true
	r := &Reconciler{Cache: src, Interval: func(Key) (time.Duration, bool) { return time.Minute, true },
		Targets: func(Key) []string { return nil }, Changed: func(string, Key) {},
		Prefetched: func(Key) bool { p := once; once = false; return p }}
	for range 2 {
		if _, err := r.Reconcile(context.Background(), Key{Store: "s", Key: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	if src.firstGets != 1 || src.calls != 2 {
		t.Fatalf("gets %d, calls %d: want the prefetched look from the cache, then a refresh", src.firstGets, src.calls)
	}
}

// TestRetryAfterRequeuesThen: a store's Retry-After hint decides when the
// key is asked again, instead of the error backoff.
func TestRetryAfterRequeuesThen(t *testing.T) {
	throttled := providers.Errorf(providers.KindUnavailable, "s", "k", "429 Too Many Requests")
	throttled.RetryAfter = int64(42 * time.Second)
	src := &scripted{values: []string{""}, errs: []error{throttled}}
	r := &Reconciler{
		Cache:    src,
		Interval: func(Key) (time.Duration, bool) { return time.Minute, true },
		Targets:  func(Key) []string { return nil },
		Changed:  func(string, Key) {},
		Log:      funcr.New(func(_, _ string) {}, funcr.Options{}),
	}
	res, err := r.Reconcile(context.Background(), Key{Store: "s", Key: "k"})
	if err != nil || res.RequeueAfter != 42*time.Second {
		t.Fatalf("res=%v err=%v, want RequeueAfter 42s and no error", res, err)
	}
}
