package server

import (
	"sync"

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

	answered sync.Map // seriesKey -> *answeredSeries
}

// seriesKey is the labels of one answered route, model and provider.
type seriesKey struct{ route, model, provider string }

// answeredSeries are the series an answered request updates, looked up
// once per label set (WithLabelValues validates, hashes and locks on
// every call).
type answeredSeries struct {
	requests                 prometheus.Counter // status 200
	promptTokens, completion prometheus.Counter
	cacheRead, cacheWrite    prometheus.Counter // of the prompt tokens
	cost, escalations        prometheus.Counter
	latency                  prometheus.Observer
}

// answeredFor returns the series of requests answered by model (of
// provider) on route.
func (m *metrics) answeredFor(route, model, provider string) *answeredSeries {
	k := seriesKey{route, model, provider}
	if s, ok := m.answered.Load(k); ok {
		return s.(*answeredSeries)
	}
	s := &answeredSeries{
		requests:     m.requests.WithLabelValues(route, model, provider, "200"),
		promptTokens: m.tokens.WithLabelValues(route, model, provider, "prompt"),
		completion:   m.tokens.WithLabelValues(route, model, provider, "completion"),
		cacheRead:    m.tokens.WithLabelValues(route, model, provider, "cache_read"),
		cacheWrite:   m.tokens.WithLabelValues(route, model, provider, "cache_write"),
		cost:         m.cost.WithLabelValues(route, model, provider),
		escalations:  m.escalations.WithLabelValues(route, model, provider),
		latency:      m.latency.WithLabelValues(route, model, provider),
	}
	v, _ := m.answered.LoadOrStore(k, s)
	return v.(*answeredSeries)
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	lbl := []string{"route", "model", "provider"}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "costwise", Subsystem: "gateway", Name: "requests_total",
			Help: "Chat completion requests answered, by route, answering model, provider and HTTP status (model and provider empty when none answered)."},
			append(lbl, "status")),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "costwise", Subsystem: "gateway", Name: "tokens_total",
			Help: "Tokens of the accepted upstream calls, as the provider reported them, by type (prompt, completion; cache_read and cache_write count the prompt tokens read from and written to the provider's cache)."},
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
