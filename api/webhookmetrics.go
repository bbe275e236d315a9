package api

import (
	"time"

	"taskhub/webhooks"

	"github.com/prometheus/client_golang/prometheus"
)

// WatchWebhooks registers the webhook engine's counters, read from stats at every
// scrape, and the delivery-latency histogram, and returns the engine's Observe.
func (m *Metrics) WatchWebhooks(stats func() webhooks.Stats) func(time.Duration) {
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "taskhub_webhook_delivery_seconds",
		Help:    "Time from an event's time to the 2xx answer of a webhook endpoint it was delivered to, once per endpoint.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12), // 1ms to about 60s
	})
	m.registry.MustRegister(latency, webhookCollector{stats})
	return func(d time.Duration) { latency.Observe(d.Seconds()) }
}

// webhookCollector turns the engine's counters into metrics when scraped.
type webhookCollector struct{ stats func() webhooks.Stats }

var (
	webhookEndpointsDesc = prometheus.NewDesc("taskhub_webhook_endpoints",
		"Webhook endpoints this node delivers now (it holds their leases).", nil, nil)
	webhookDeliveredDesc = prometheus.NewDesc("taskhub_webhook_deliveries_total",
		"Webhook delivery attempts, by outcome: success (a 2xx answer) or failure.", []string{"outcome"}, nil)
	webhookDisabledDesc = prometheus.NewDesc("taskhub_webhook_endpoints_disabled_total",
		"Webhook endpoints this node disabled: answered 410, or failing after the last retry.", nil, nil)
)

func (c webhookCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{webhookEndpointsDesc, webhookDeliveredDesc, webhookDisabledDesc} {
		ch <- d
	}
}

func (c webhookCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(webhookEndpointsDesc, prometheus.GaugeValue, float64(s.Endpoints))
	ch <- prometheus.MustNewConstMetric(webhookDeliveredDesc, prometheus.CounterValue, float64(s.Delivered), "success")
	ch <- prometheus.MustNewConstMetric(webhookDeliveredDesc, prometheus.CounterValue, float64(s.Failed), "failure")
	ch <- prometheus.MustNewConstMetric(webhookDisabledDesc, prometheus.CounterValue, float64(s.Disabled))
}
