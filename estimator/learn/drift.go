package learn

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// Metric names what drifted.
type Metric string

// Metrics Drift watches.
const (
	MetricSuccess      Metric = "success"
	MetricLatencyP50   Metric = "latency_p50"
	MetricOutputTokens Metric = "output_tokens_p50"
	MetricCostPerCall  Metric = "cost_per_call_p50"
)

// Thresholds tune Drift. Zero fields take the defaults in brackets.
type Thresholds struct {
	// End is the end of the current window; zero means the time of the
	// newest observation.
	End time.Time
	// MinCalls is how many calls of a (task, model) each window needs
	// before it is compared [20].
	MinCalls int
	// Z is the |z| every test must exceed [3.29, two-sided p < 0.001:
	// about one false alarm per thousand stationary comparisons].
	Z float64
	// SuccessDelta is the smallest absolute change of the success rate
	// worth an alert, however significant [0.05].
	SuccessDelta float64
	// LatencyChange, TokensChange and CostChange are the smallest relative
	// changes of the median latency, median output tokens and median cost
	// per call worth an alert [0.25, 0.25, 0.20].
	LatencyChange float64
	TokensChange  float64
	CostChange    float64
}

func (t Thresholds) withDefaults() Thresholds {
	def := func(v *float64, d float64) {
		if *v <= 0 || math.IsNaN(*v) {
			*v = d
		}
	}
	if t.MinCalls <= 0 {
		t.MinCalls = 20
	}
	def(&t.Z, 3.29)
	def(&t.SuccessDelta, 0.05)
	def(&t.LatencyChange, 0.25)
	def(&t.TokensChange, 0.25)
	def(&t.CostChange, 0.20)
	return t
}

// Alert is one metric of one (task, model) that moved between the previous
// window and the current one.
type Alert struct {
	Task, Model string
	Metric      Metric
	// Previous and Current are the metric in each window: a success rate,
	// seconds, tokens or USD.
	Previous, Current float64
	// Change is Current - Previous for success and (Current - Previous) /
	// Previous for the others.
	Change float64
	// Z is the test statistic: two-proportion z for success, the
	// log-median difference over its standard error for the others
	// (±Inf when neither window varies).
	Z                           float64
	PreviousCalls, CurrentCalls int
	// Message says what moved, in one line.
	Message string
}

// Drift compares, for each (task, model), the calls of the current window
// (End-window, End] with those of the previous one (End-2*window,
// End-window] and returns an alert for each metric that moved beyond its
// threshold, sorted by task, model and metric. Windows are unweighted (no
// decay) and both need Thresholds.MinCalls calls.
//
// Success uses the two-proportion z-test with pooled variance,
// z = (p2 - p1) / sqrt(p(1-p)(1/n1 + 1/n2)), with feedback counted as
// fractional successes, and also requires |p2 - p1| >= SuccessDelta so
// that a tiny change in a huge stream does not alert. The other metrics
// compare medians, which are robust to the long tails of latency and
// output length: the relative change (m2 - m1) / m1 must exceed its
// threshold and the change must be significant, |z| > Z, with z the
// difference of the log-medians over its standard error. A median's
// standard error is taken as 1.2533 * s / sqrt(n) (its asymptotic value
// for a normal sample) with s = IQR / 1.349 of the log values, a robust
// spread; on the log scale the skewed latency, token and cost samples are
// close enough to normal for this. A window whose values are all equal has
// no spread, so any change beyond the threshold alerts (a price change
// shows up this way).
func Drift(obs []Observation, window time.Duration, th Thresholds) []Alert {
	th = th.withDefaults()
	if window <= 0 || len(obs) == 0 {
		return nil
	}
	end := th.End
	if end.IsZero() {
		for i := range obs {
			if obs[i].Time.After(end) {
				end = obs[i].Time
			}
		}
	}
	mid, start := end.Add(-window), end.Add(-2*window)
	type pair struct{ prev, cur []*Observation }
	groups := map[key]*pair{}
	for i := range obs {
		o := &obs[i]
		if o.Model == "" || o.Time.After(end) || !o.Time.After(start) {
			continue
		}
		k := key{o.Task, o.Model}
		g := groups[k]
		if g == nil {
			g = &pair{}
			groups[k] = g
		}
		if o.Time.After(mid) {
			g.cur = append(g.cur, o)
		} else {
			g.prev = append(g.prev, o)
		}
	}
	var alerts []Alert
	for k, g := range groups {
		if len(g.prev) < th.MinCalls || len(g.cur) < th.MinCalls {
			continue
		}
		alerts = append(alerts, compareWindows(k, g.prev, g.cur, th)...)
	}
	slices.SortFunc(alerts, func(a, b Alert) int {
		return cmp.Or(cmp.Compare(a.Task, b.Task), cmp.Compare(a.Model, b.Model), cmp.Compare(a.Metric, b.Metric))
	})
	return alerts
}

type windowStats struct {
	n                            int
	judged                       int // calls whose success is known (not set aside by a cascade)
	successes                    float64
	latency, tokens, costPerCall median // latency in seconds, cost in USD
	answered                     int
}

// median is a window's median and the standard error of its logarithm.
type median struct{ v, logSE float64 }

// medianOf summarizes xs (weights 1); offset keeps the logarithm of zero
// values finite.
func medianOf(xs []weighted, offset float64) median {
	if len(xs) == 0 {
		return median{}
	}
	m := median{v: quantile(xs, 0.5)}
	logs := make([]weighted, len(xs))
	for i, x := range xs {
		logs[i] = weighted{math.Log(x.v + offset), 1}
	}
	iqr := quantile(logs, 0.75) - quantile(logs, 0.25)
	m.logSE = 1.2533 * (iqr / 1.349) / math.Sqrt(float64(len(xs)))
	return m
}

func (m median) logOf(offset float64) float64 { return math.Log(m.v + offset) }

func summarize(obs []*Observation) windowStats {
	ws := windowStats{n: len(obs)}
	var lat, tok, cost []weighted
	for _, o := range obs {
		if !o.Unjudged {
			ws.judged++
			ws.successes += o.success()
		}
		cost = append(cost, weighted{float64(o.CostNano) / 1e9, 1})
		if o.answered() {
			ws.answered++
			tok = append(tok, weighted{float64(o.OutputTokens), 1})
			if o.Latency > 0 {
				lat = append(lat, weighted{o.Latency.Seconds(), 1})
			}
		}
	}
	ws.latency, ws.tokens, ws.costPerCall = medianOf(lat, latOffset), medianOf(tok, tokOffset), medianOf(cost, costOffset)
	return ws
}

func compareWindows(k key, prev, cur []*Observation, th Thresholds) []Alert {
	p, c := summarize(prev), summarize(cur)
	base := Alert{Task: k.task, Model: k.model, PreviousCalls: p.n, CurrentCalls: c.n}
	label := k.model
	if k.task != "" {
		label = k.task + " on " + k.model
	}
	var out []Alert

	p1, p2 := p.successes/float64(max(p.judged, 1)), c.successes/float64(max(c.judged, 1))
	if z := twoProportionZ(p.successes, float64(p.judged), c.successes, float64(c.judged)); p.judged > 0 && c.judged > 0 && math.Abs(z) > th.Z && math.Abs(p2-p1) >= th.SuccessDelta {
		a := base
		a.Metric, a.Previous, a.Current, a.Change, a.Z = MetricSuccess, p1, p2, p2-p1, z
		a.Message = fmt.Sprintf("%s: success %.0f%% -> %.0f%% (z = %.1f, %d vs %d calls)", label, 100*p1, 100*p2, z, p.judged, c.judged)
		out = append(out, a)
	}
	rel := func(m Metric, pm, cm median, offset, limit float64, enough bool, format func(float64) string) {
		prev, cur := pm.v, cm.v
		if !enough || prev <= 0 {
			return
		}
		ch := (cur - prev) / prev
		if math.Abs(ch) <= limit {
			return
		}
		z := math.Inf(1)
		if se := math.Hypot(pm.logSE, cm.logSE); se > 0 {
			z = (cm.logOf(offset) - pm.logOf(offset)) / se
		} else if ch < 0 {
			z = math.Inf(-1)
		}
		if math.Abs(z) <= th.Z {
			return
		}
		a := base
		a.Metric, a.Previous, a.Current, a.Change, a.Z = m, prev, cur, ch, z
		a.Message = fmt.Sprintf("%s: %s %s -> %s (%+.0f%%, limit %.0f%%)", label, m, format(prev), format(cur), 100*ch, 100*limit)
		out = append(out, a)
	}
	// Latency and tokens are compared over answered calls, each window
	// needing MinCalls of them.
	answered := p.answered >= th.MinCalls && c.answered >= th.MinCalls
	rel(MetricLatencyP50, p.latency, c.latency, latOffset, th.LatencyChange, answered, func(v float64) string { return fmt.Sprintf("%.2fs", v) })
	rel(MetricOutputTokens, p.tokens, c.tokens, tokOffset, th.TokensChange, answered, func(v float64) string { return fmt.Sprintf("%.0f tokens", v) })
	rel(MetricCostPerCall, p.costPerCall, c.costPerCall, costOffset, th.CostChange, true, func(v float64) string { return fmt.Sprintf("$%.4g", v) })
	return out
}

// Offsets added before taking logarithms: a millisecond, a token, a
// nano-USD.
const (
	latOffset  = 1e-3
	tokOffset  = 1
	costOffset = 1e-9
)

// twoProportionZ is the pooled two-proportion z statistic of x2/n2 against
// x1/n1; 0 when the pooled rate is 0 or 1 (no variance).
func twoProportionZ(x1, n1, x2, n2 float64) float64 {
	pool := (x1 + x2) / (n1 + n2)
	v := pool * (1 - pool) * (1/n1 + 1/n2)
	if !(v > 0) {
		return 0
	}
	return (x2/n2 - x1/n1) / math.Sqrt(v)
}
