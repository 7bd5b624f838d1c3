package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
)

// The workqueue_* family, named as Kubernetes components name it so that
// existing dashboards and alerts for client-go queues apply unchanged. Every
// series is labelled by the queue's name (one queue per controller).
//
// client-go takes one process-wide provider (workqueue.SetProvider, first
// call wins), so these collectors are process-wide too and every Metrics
// registry registers the same ones; a collector may sit in several
// registries.
var (
	wqDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "workqueue_depth", Help: "Current depth of the workqueue.",
	}, []string{"name"})
	wqAdds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "workqueue_adds_total", Help: "Adds handled by the workqueue.",
	}, []string{"name"})
	wqLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "workqueue_queue_duration_seconds", Help: "Time an item stays in the workqueue before it is processed.",
		Buckets: prometheus.ExponentialBuckets(1e-8, 10, 10),
	}, []string{"name"})
	wqWorkDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "workqueue_work_duration_seconds", Help: "Time processing an item from the workqueue takes.",
		Buckets: prometheus.ExponentialBuckets(1e-8, 10, 10),
	}, []string{"name"})
	wqUnfinished = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "workqueue_unfinished_work_seconds",
		Help: "Seconds of work in progress not yet observed by work_duration; large values mean stuck workers.",
	}, []string{"name"})
	wqLongest = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "workqueue_longest_running_processor_seconds", Help: "Seconds the longest running worker of the queue has been running.",
	}, []string{"name"})
	wqRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "workqueue_retries_total", Help: "Retries (rate-limited re-adds) handled by the workqueue.",
	}, []string{"name"})
)

func registerWorkqueue(reg prometheus.Registerer) {
	reg.MustRegister(wqDepth, wqAdds, wqLatency, wqWorkDuration, wqUnfinished, wqLongest, wqRetries)
}

// WorkqueueProvider implements workqueue.MetricsProvider on the workqueue_*
// collectors. Pass it as a queue config's MetricsProvider, or install it for
// every queue with RegisterWorkqueueProvider.
type WorkqueueProvider struct{}

var _ workqueue.MetricsProvider = WorkqueueProvider{}

func (WorkqueueProvider) NewDepthMetric(name string) workqueue.GaugeMetric {
	return wqDepth.WithLabelValues(name)
}

func (WorkqueueProvider) NewAddsMetric(name string) workqueue.CounterMetric {
	return wqAdds.WithLabelValues(name)
}

func (WorkqueueProvider) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return wqLatency.WithLabelValues(name)
}

func (WorkqueueProvider) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return wqWorkDuration.WithLabelValues(name)
}

func (WorkqueueProvider) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return wqUnfinished.WithLabelValues(name)
}

func (WorkqueueProvider) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return wqLongest.WithLabelValues(name)
}

func (WorkqueueProvider) NewRetriesMetric(name string) workqueue.CounterMetric {
	return wqRetries.WithLabelValues(name)
}

var workqueueOnce sync.Once

// RegisterWorkqueueProvider makes every workqueue created afterwards in
// this process report into the workqueue_* metrics. Call it before the
// controllers build their queues; later calls do nothing. Queues without a
// Name get no metrics (client-go's rule).
func RegisterWorkqueueProvider() {
	workqueueOnce.Do(func() { workqueue.SetProvider(WorkqueueProvider{}) })
}
