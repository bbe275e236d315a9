package api

import (
	"net/http"
	"time"

	"taskhub/broadcaster"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is what GET /metrics shows, in the Prometheus text format: the broadcaster's
// counters, its publish-to-flush latency, and the Go runtime's and process's figures.
type Metrics struct {
	registry *prometheus.Registry
	latency  prometheus.Histogram
}

// NewMetrics returns Metrics with the runtime's and process's collectors registered.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "taskhub_publish_to_flush_seconds",
			Help:    "Time from the publishing of an event to the flush that sent it to a subscriber, once per subscriber.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12), // 100µs to about 6s
		}),
	}
	m.registry.MustRegister(m.latency, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveDelivery records one publish-to-flush latency: the broadcaster's Observe.
func (m *Metrics) ObserveDelivery(d time.Duration) { m.latency.Observe(d.Seconds()) }

// WatchHub registers the counters that stats reads, read at every scrape.
func (m *Metrics) WatchHub(stats func() broadcaster.Stats) {
	m.registry.MustRegister(hubCollector{stats})
}

// Handler returns the handler of GET /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// hubCollector turns the broadcaster's counters into metrics when scraped.
type hubCollector struct{ stats func() broadcaster.Stats }

var (
	subscribersDesc = prometheus.NewDesc("taskhub_subscribers",
		"Event stream subscribers connected now.", nil, nil)
	publishedDesc = prometheus.NewDesc("taskhub_events_published_total",
		"Events the broadcaster has published.", nil, nil)
	sentDesc = prometheus.NewDesc("taskhub_events_sent_total",
		"Events written to subscribers; an event in a batch counts once per subscriber.", nil, nil)
	batchesDesc = prometheus.NewDesc("taskhub_batches_sent_total",
		"batch_update events written to subscribers.", nil, nil)
	droppedDesc = prometheus.NewDesc("taskhub_subscribers_dropped_total",
		"Subscribers disconnected because they read too slowly.", nil, nil)
)

func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{subscribersDesc, publishedDesc, sentDesc, batchesDesc, droppedDesc} {
		ch <- d
	}
}

func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(subscribersDesc, prometheus.GaugeValue, float64(s.ConnectedClients))
	ch <- prometheus.MustNewConstMetric(publishedDesc, prometheus.CounterValue, float64(s.EventsPublished))
	ch <- prometheus.MustNewConstMetric(sentDesc, prometheus.CounterValue, float64(s.EventsSent))
	ch <- prometheus.MustNewConstMetric(batchesDesc, prometheus.CounterValue, float64(s.BatchesSent))
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(s.SubscribersDropped))
}
