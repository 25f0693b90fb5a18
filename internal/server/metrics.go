package server

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus series. Labels are bounded: route is
// a configured route (or costwise/pinned), model a catalog id, provider a
// catalog provider, status an HTTP status code.
type metrics struct {
	requests    *prometheus.CounterVec   // route, model, provider, status
	tokens      *prometheus.CounterVec   // route, model, provider, type
	cost        *prometheus.CounterVec   // route, model, provider
	escalations *prometheus.CounterVec   // route, model, provider
	latency     *prometheus.HistogramVec // route, model, provider
	rejected    *prometheus.CounterVec   // reason
	inFlight    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	lbl := []string{"route", "model", "provider"}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "costwise", Subsystem: "gateway", Name: "requests_total",
			Help: "Chat completion requests answered, by route, answering model, provider and HTTP status (model and provider empty when none answered)."},
			append(lbl, "status")),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "costwise", Subsystem: "gateway", Name: "tokens_total",
			Help: "Tokens of the accepted upstream calls, as the provider reported them, by type (prompt, completion)."},
			append(lbl, "type")),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "costwise", Subsystem: "gateway", Name: "cost_usd_total",
			Help: "What answered requests cost in USD (catalog prices of the reported usage, failed paid attempts included)."}, lbl),
		escalations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "costwise", Subsystem: "gateway", Name: "escalations_total",
			Help: "Rungs climbed to answer requests, by the model that finally answered."}, lbl),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "costwise", Subsystem: "gateway", Name: "request_duration_seconds",
			Help:    "Time from reading a chat request to writing its answer.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}}, lbl),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "costwise", Subsystem: "gateway", Name: "rejected_total",
			Help: "Requests refused before routing, by reason (unauthorized, rate_limited, budget, bad_request)."}, []string{"reason"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "costwise", Subsystem: "gateway", Name: "in_flight_requests",
			Help: "Chat completion requests being answered."}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.tokens, m.cost, m.escalations, m.latency, m.rejected, m.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
