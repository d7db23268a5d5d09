// Package metrics defines Schakel's Prometheus metrics (schakel_*), created
// once and passed to the parts that count.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is the full set; every field is registered by New.
type Metrics struct {
	Ingested        *prometheus.CounterVec   // source, status (accepted|updated|duplicate)
	Rejected        *prometheus.CounterVec   // source, reason (invalid|indicator|auth|limit)
	Held            prometheus.Counter       //
	Deliveries      *prometheus.CounterVec   // channel, outcome (delivered|retry|deferred|dead)
	CriticalBypass  *prometheus.CounterVec   // channel
	Routed          prometheus.Counter       // deliveries created
	QueueDepth      *prometheus.GaugeVec     // channel, state (pending|delayed|dead)
	DeliveryLatency *prometheus.HistogramVec // channel: event received → receiver accepted
	IngestDuration  *prometheus.HistogramVec // source: request handling incl. routing
	Unowned         prometheus.Counter       // notification indicators no constituent owns
}

// New creates and registers the metrics on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schakel_ingested_total", Help: "Events received, by source and outcome.",
		}, []string{"source", "status"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schakel_rejected_total", Help: "Inputs or indicators rejected, by source and reason.",
		}, []string{"source", "reason"}),
		Held: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schakel_held_total", Help: "Event versions held because the policy lets nobody receive them.",
		}),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schakel_deliveries_total", Help: "Delivery attempt outcomes, by channel.",
		}, []string{"channel", "outcome"}),
		CriticalBypass: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schakel_critical_bypass_total", Help: "Critical deliveries sent past a rate limit.",
		}, []string{"channel"}),
		Routed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schakel_routed_deliveries_total", Help: "Deliveries created by routing.",
		}),
		QueueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "schakel_queue_depth", Help: "Outbox entries by channel and state.",
		}, []string{"channel", "state"}),
		DeliveryLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "schakel_delivery_latency_seconds", Help: "From event receipt to the receiver accepting it.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600},
		}, []string{"channel"}),
		IngestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "schakel_ingest_duration_seconds", Help: "Time to accept and route one event.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"source"}),
		Unowned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schakel_notification_unowned_indicators_total", Help: "Notification indicators no constituent owns (kept, not sent).",
		}),
	}
	reg.MustRegister(m.Ingested, m.Rejected, m.Held, m.Deliveries, m.CriticalBypass, m.Routed,
		m.QueueDepth, m.DeliveryLatency, m.IngestDuration, m.Unowned)
	return m
}
