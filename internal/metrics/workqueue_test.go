package metrics

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/util/workqueue"
)

func sampleOr0(t *testing.T, m *Metrics, name string, l map[string]string) float64 {
	v, _ := sample(t, m, name, l)
	return v
}

var queueSeq atomic.Int64

func newQueue(name string) workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name})
}

// TestWorkqueueProvider uses the process-wide provider, as the controllers
// will: a named queue created after RegisterWorkqueueProvider reports
// depth, adds, latency, work duration and retries under its name.
func TestWorkqueueProvider(t *testing.T) {
	RegisterWorkqueueProvider()
	RegisterWorkqueueProvider() // idempotent
	m := New()
	// A fresh name per run: the series are process-wide, so -count=N must
	// not see the previous run's counts.
	qname := fmt.Sprintf("secretbinding-%d", queueSeq.Add(1))
	q := newQueue(qname)
	defer q.ShutDown()
	name := map[string]string{"name": qname}

	q.Add("a")
	q.Add("b")
	q.Add("a") // already queued: the queue drops it and does not count it
	want(t, m, "workqueue_depth", name, 2)
	want(t, m, "workqueue_adds_total", name, 2)

	item, _ := q.Get()
	want(t, m, "workqueue_depth", name, 1)
	want(t, m, "workqueue_queue_duration_seconds", name, 1)
	q.Done(item)
	want(t, m, "workqueue_work_duration_seconds", name, 1)

	// Another registry sees the same process-wide series.
	if v := sampleOr0(t, New(), "workqueue_adds_total", name); v != 2 {
		t.Errorf("second registry sees adds=%v, want 2", v)
	}

	q.AddRateLimited("c") // re-added by a timer after its backoff: only retries is checked
	want(t, m, "workqueue_retries_total", name, 1)
	for _, n := range []string{"workqueue_unfinished_work_seconds", "workqueue_longest_running_processor_seconds"} {
		if _, ok := sample(t, m, n, name); !ok {
			t.Errorf("%s{name=%s} not created", n, qname)
		}
	}

	// A queue without a name gets no series (client-go's rule).
	unnamed := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer unnamed.ShutDown()
	unnamed.Add("z")
	if _, ok := sample(t, m, "workqueue_adds_total", map[string]string{"name": ""}); ok {
		t.Error("an unnamed queue created series")
	}
}
