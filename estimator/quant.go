package estimator

import "math"

// percentileRanks are the 0-based nearest ranks of P50, P95 and P99 among n
// samples.
func percentileRanks(n int) [3]int {
	rank := func(p float64) int { return max(0, min(n-1, int(math.Ceil(p*float64(n)))-1)) }
	return [3]int{rank(0.5), rank(0.95), rank(0.99)}
}

// linearQuantiles prices every run with the single-tier linear formula.
func linearQuantiles(d *nodeDraws, tc *tierCoef, perCall, once float64, buf []float64) Dist {
	for s, n := range d.calls {
		if n == 0 {
			buf[s] = 0
			continue
		}
		buf[s] = float64(n)*perCall + once + tc.in*d.sumDyn[s] + tc.out*d.sumOut[s]
	}
	return quantiles(buf)
}

// quantCache serves the candidates of one node whose runs all make the same
// number of calls. A run's cost is then out x v + shift with
// v = kappa x dynamic tokens + output tokens and kappa = input/output price
// ratio, so its percentiles follow from the order statistics of v, which
// every model with the same kappa shares. Runs where the node does not run
// cost 0 and, costs never being negative, rank first.
type quantCache struct {
	byKappa map[float64]orderStats
	buf     []float64
}

// orderStats are v's values at the percentile ranks of all runs, shifted
// past the runs that do not run (valid[k] is false for a rank among them).
type orderStats struct {
	at    [3]float64
	valid [3]bool
	max   float64
}

func newQuantCache(samples int) *quantCache {
	return &quantCache{byKappa: map[float64]orderStats{}, buf: make([]float64, 0, samples)}
}

// reset empties the cache for the next node.
func (qc *quantCache) reset() { clear(qc.byKappa) }

// linear returns the percentiles of scale x (kappa x dynamic + outputs) +
// shift over the runs, 0 where the node does not run.
func (qc *quantCache) linear(d *nodeDraws, kappa, scale, shift float64) Dist {
	key := kappa
	if d.constDyn && d.running > 0 {
		// The dynamic part is the same in every run: it moves no rank.
		shift += scale * kappa * d.runDyn
		key = 0
	}
	os, ok := qc.byKappa[key]
	if !ok {
		os = qc.orderStats(d, key)
		qc.byKappa[key] = os
	}
	var q Dist
	vals := [3]*float64{&q.P50, &q.P95, &q.P99}
	for k := range vals {
		if os.valid[k] {
			*vals[k] = scale*os.at[k] + shift
		}
	}
	if d.running > 0 {
		q.Max = scale*os.max + shift
	}
	return q
}

func (qc *quantCache) orderStats(d *nodeDraws, kappa float64) orderStats {
	qc.buf = qc.buf[:0]
	var os orderStats
	for s, n := range d.calls {
		if n > 0 {
			v := kappa*d.sumDyn[s] + d.sumOut[s]
			qc.buf = append(qc.buf, v)
			if len(qc.buf) == 1 || v > os.max {
				os.max = v
			}
		}
	}
	zeros := len(d.calls) - len(qc.buf)
	ranks := percentileRanks(len(d.calls))
	prev := 0
	for k, r := range ranks {
		if r < zeros {
			continue
		}
		r -= zeros
		selectRank(qc.buf[prev:], r-prev)
		os.at[k], os.valid[k], prev = qc.buf[r], true, r
	}
	return os
}

// runCalls is the number of calls every run makes (constCalls holds).
func runCalls(d *nodeDraws) float64 {
	for _, n := range d.calls {
		if n > 0 {
			return float64(n)
		}
	}
	return 0
}
