package notify

import (
	"testing"

	"github.com/go-logr/logr"

	"github.com/dso-dev/dso/api/v1alpha1"
)

// BenchmarkNotifyFullQueue is the cost a rotation pays per event when the
// sink is dead and its queue is full: every call drops the oldest entry.
func BenchmarkNotifyFullQueue(b *testing.B) {
	n, err := New([]v1alpha1.NotificationSink{sinkFor("dead", "http://127.0.0.1:1/")}, resolveKey, logr.Discard())
	if err != nil {
		b.Fatal(err)
	}
	ev := RotationEvent(failedRotation())
	for range DefaultQueueSize {
		n.Notify(ev)
	}
	b.ReportAllocs()
	for b.Loop() {
		n.Notify(ev)
	}
	if q := n.QueueLen("dead"); q != DefaultQueueSize {
		b.Fatalf("queue %d, want %d", q, DefaultQueueSize)
	}
}
