package cascade

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/costwise/costwise/internal/suggest"
	"github.com/costwise/costwise/internal/tomlpos"
)

// Policy routes every query through Models in order: model k answers when
// its confidence is >= Thresholds[k], otherwise the query escalates to model
// k+1; the last model always answers. A policy of one model (no thresholds)
// is a single model.
type Policy struct {
	Name       string    // optional label, e.g. the file it came from
	Models     []string  // cheap -> strong
	Thresholds []float64 // len(Models)-1 confidence thresholds

	file  string                 // the file ParsePolicy read
	where map[string]tomlpos.Pos // key positions when read by ParsePolicy
}

// fieldError is a problem with one key of a policy (models or thresholds).
type fieldError struct {
	field, msg string
}

func (e *fieldError) Error() string { return e.msg }

func policyErr(field, format string, args ...any) error {
	return &fieldError{field: field, msg: field + ": " + fmt.Sprintf(format, args...)}
}

// Single returns the policy that sends every query to model.
func Single(model string) Policy { return Policy{Models: []string{model}} }

// Kind returns "single" for a policy of one model and "cascade" otherwise.
func (p Policy) Kind() string {
	if len(p.Models) == 1 {
		return "single"
	}
	return "cascade"
}

// String formats p as "a" or "a (>= 0.7) -> b".
func (p Policy) String() string {
	var b strings.Builder
	for i, m := range p.Models {
		if i > 0 {
			b.WriteString(" -> ")
		}
		b.WriteString(m)
		if i < len(p.Thresholds) {
			fmt.Fprintf(&b, " (conf >= %.4g)", p.Thresholds[i])
		}
	}
	return b.String()
}

// compiled is a policy resolved against a table's columns.
type compiled struct {
	model []int
	thr   []float64
}

// compile checks p against t: known models, one threshold per model but the
// last, finite thresholds, and a confidence column for every model that may
// accept an answer before the last.
func compile(t *Table, p Policy) (compiled, error) {
	if len(p.Models) == 0 {
		return compiled{}, policyErr("models", "the policy names no model")
	}
	if len(p.Thresholds) != len(p.Models)-1 {
		return compiled{}, policyErr("thresholds", "%d models need %d thresholds (one per model but the last), got %d", len(p.Models), len(p.Models)-1, len(p.Thresholds))
	}
	c := compiled{model: make([]int, len(p.Models)), thr: p.Thresholds}
	for k, name := range p.Models {
		m, ok := t.Model(name)
		if !ok {
			msg := fmt.Sprintf("model %q is not in the outcome table", name)
			if s := suggest.Closest(name, t.Models); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += "; it has " + strings.Join(t.Models, ", ")
			}
			return compiled{}, policyErr("models", "%s", msg)
		}
		if k < len(p.Thresholds) {
			if math.IsNaN(p.Thresholds[k]) {
				return compiled{}, policyErr("thresholds", "threshold %d is NaN", k+1)
			}
			if t.Conf[m] == nil {
				return compiled{}, policyErr("models", "model %q stands before the last but the table has no %s|confidence column to decide when it escalates", name, name)
			}
		}
		c.model[k] = m
	}
	return c, nil
}

// Metrics are a policy's means per query over a set of rows.
type Metrics struct {
	Rows       int
	Quality    float64   // mean performance of the answering model
	CostUSD    float64   // mean sum of the costs of every model called
	LatencyMS  float64   // mean sum of the latencies of the models called (when HasLatency)
	HasLatency bool      // every model of the policy has a latency_ms column
	Answered   []float64 // share of queries answered by each stage of the policy
}

// Evaluate replays p on every row of t.
func Evaluate(t *Table, p Policy) (Metrics, error) {
	c, err := compile(t, p)
	if err != nil {
		return Metrics{}, err
	}
	return c.metrics(t), nil
}

func (c compiled) metrics(t *Table) Metrics {
	n := t.Len()
	met := Metrics{Rows: n, Answered: make([]float64, len(c.model))}
	hasLat := t.LatencyMS != nil
	for _, m := range c.model {
		hasLat = hasLat && t.LatencyMS[m] != nil
	}
	var q, cost, lat float64
	last := len(c.model) - 1
	for r := range n {
		for k, m := range c.model {
			cost += t.Cost[m][r]
			if hasLat {
				lat += t.LatencyMS[m][r]
			}
			if k == last || t.Conf[m][r] >= c.thr[k] {
				q += t.Perf[m][r]
				met.Answered[k]++
				break
			}
		}
	}
	if n > 0 {
		met.Quality, met.CostUSD, met.LatencyMS = q/float64(n), cost/float64(n), lat/float64(n)
		for k := range met.Answered {
			met.Answered[k] /= float64(n)
		}
	}
	met.HasLatency = hasLat
	return met
}

// PerQuery replays p on every row of t and returns the quality and the cost
// of each query.
func PerQuery(t *Table, p Policy) (quality, cost []float64, err error) {
	c, err := compile(t, p)
	if err != nil {
		return nil, nil, err
	}
	n := t.Len()
	quality, cost = make([]float64, n), make([]float64, n)
	last := len(c.model) - 1
	for r := range n {
		for k, m := range c.model {
			cost[r] += t.Cost[m][r]
			if k == last || t.Conf[m][r] >= c.thr[k] {
				quality[r] = t.Perf[m][r]
				break
			}
		}
	}
	return quality, cost, nil
}

// Oracle returns the metrics of the per-query oracle: every query goes to
// the cheapest model among those with the best performance on it.
func Oracle(t *Table) Metrics {
	n := t.Len()
	met := Metrics{Rows: n}
	if n == 0 {
		return met
	}
	var q, c float64
	for r := range n {
		best, cost := math.Inf(-1), math.Inf(1)
		for m := range t.Models {
			p, cm := t.Perf[m][r], t.Cost[m][r]
			if p > best || p == best && cm < cost {
				best, cost = p, cm
			}
		}
		q += best
		c += cost
	}
	met.Quality, met.CostUSD = q/float64(n), c/float64(n)
	return met
}

// Split shuffles the row indices 0..n-1 with a seeded generator and returns
// the training rows and the test rows (a share testFrac of n, rounded, at
// least one row each), both in ascending order. The same n, testFrac and
// seed always give the same split.
func Split(n int, testFrac float64, seed uint64) (train, test []int, err error) {
	if !(testFrac > 0 && testFrac < 1) {
		return nil, nil, fmt.Errorf("the test share must be in (0, 1), got %v", testFrac)
	}
	if n < 2 {
		return nil, nil, fmt.Errorf("%d row(s) cannot be split into training and test rows; give at least 2 (a useful fit needs hundreds)", n)
	}
	k := int(math.Round(testFrac * float64(n)))
	k = min(max(k, 1), n-1)
	perm := rand.New(rand.NewPCG(seed, 0x5eed_c0de_ca5c_ade5)).Perm(n)
	test = append([]int(nil), perm[:k]...)
	train = append([]int(nil), perm[k:]...)
	sort.Ints(test)
	sort.Ints(train)
	return train, test, nil
}
