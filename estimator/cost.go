package estimator

import (
	"fmt"
	"math"
	"sort"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/graph"
)

// fill computes a candidate's feasibility, cost, latency and quality.
func fill(c *Candidate, n *graph.Node, d *nodeDraws, buf []float64, qc *quantCache) {
	m, st, lp := c.Model, &c.static, c.linear
	c.Reasons = append(c.Reasons, st.reasons...)
	c.Cost.Unknown = append(c.Cost.Unknown, st.unknown...)

	// Prompt sizes per call.
	dyn := d.dynQ
	base := st.prompt()
	c.InputTokens = Dist{Mean: base + dyn.Mean, P50: base + dyn.P50, P95: base + dyn.P95, P99: base + dyn.P99, Max: base + dyn.Max}
	if d.eN > 1 {
		c.CachedTokens = st.prefix * (d.eN - 1) / d.eN
	}

	// Limits: the largest sampled prompt plus the node's largest output.
	outMax := d.out.max
	if outMax == 0 {
		outMax = d.out.p95
	}
	if m.MaxOutputTokens > 0 && outMax > float64(m.MaxOutputTokens) {
		c.Reasons = append(c.Reasons, Reason{ReasonMaxOutput, fmt.Sprintf("the node may write %.0f tokens; %s writes at most %d", outMax, m.ID, m.MaxOutputTokens)})
	}
	if need := base + d.maxLast + outMax; m.ContextWindow > 0 && need > float64(m.ContextWindow) {
		c.Reasons = append(c.Reasons, Reason{ReasonContextWindow, fmt.Sprintf("a call may need %.0f tokens (prompt + output); %s holds %d", need, m.ID, m.ContextWindow)})
	}

	// Unknown prices of components this node uses.
	used := map[catalog.Component]bool{catalog.CompInput: true, catalog.CompOutput: true, catalog.CompAudioInput: st.audio > 0}
	for _, tc := range lp.tiers {
		for comp := range tc.unknown {
			if used[comp] {
				c.Cost.Unknown = appendUnique(c.Cost.Unknown, string(comp))
			}
		}
	}
	if len(c.Cost.Unknown) > 0 {
		sort.Strings(c.Cost.Unknown)
		c.Reasons = append(c.Reasons, Reason{ReasonUnknownPrice, fmt.Sprintf("the catalog gives no price for %s of %s", joinAnd(c.Cost.Unknown), m.ID)})
	}
	c.Feasible = len(c.Reasons) == 0

	costOf(c, d, buf, qc)
	c.LatencyS, c.LatencySource = latency(m, d)
	c.Quality, c.QualitySource = quality(m, n.Task, st.vision, c.InputTokens.Mean)
}

func appendUnique(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := s[0]
	for _, x := range s[1 : len(s)-1] {
		out += ", " + x
	}
	return out + " and " + s[len(s)-1]
}

// cost fills c.Cost: analytic mean when every sampled call of the node bills
// in one price tier, Monte Carlo mean otherwise; percentiles from the draws.
func costOf(c *Candidate, d *nodeDraws, buf []float64, qc *quantCache) {
	lp, st := c.linear, &c.static
	lo, hi := lp.tierFor(st.prompt()+d.minFirst), lp.tierFor(st.prompt()+d.maxLast)
	var q Dist
	if lo == hi {
		// Every sampled call bills in one tier: the cost of a run is linear
		// in its calls, dynamic tokens and outputs.
		tc := &lp.tiers[lo]
		perCall := tc.in*(st.text+st.media-st.prefix) + tc.cacheRead*st.prefix + tc.audio*st.audio + st.perCallUSD
		once := (tc.cacheWrite - tc.cacheRead) * st.prefix
		if d.constCalls && tc.out > 0 && qc != nil {
			// Every run makes the same calls, so a run's cost is
			// out x (kappa x dynamic + outputs) + a constant, and its
			// percentiles are those of kappa x dynamic + outputs, shared by
			// every model with the same input/output price ratio kappa.
			// kappa is rounded to 1e-9 so that ratios read off the catalog with
			// float noise (0.2 vs 0.19999999999999998) share a cache entry.
			kappa := math.Round(tc.in/tc.out*1e9) / 1e9
			q = qc.linear(d, kappa, tc.out, runCalls(d)*perCall+once)
		} else {
			q = linearQuantiles(d, tc, perCall, once, buf)
		}
	} else {
		for s := range d.calls {
			buf[s] = costSample(lp, st, d, s)
		}
		q = quantiles(buf)
	}
	if lo == hi {
		q.Mean = d.when * (lp.tiers[lo].usd(meanParts(st, d)) + d.eN*st.perCallUSD)
		c.Cost.MeanMethod = "analytic"
	} else {
		c.Cost.MeanMethod = "monte_carlo" // q.Mean is the sample mean
	}
	c.Cost.Dist = q
}

// runParts are the billed quantities of a node's calls in one price tier:
// calls calls sending sumDyn dynamic tokens and writing sumOut tokens in all,
// the cached prefix written once and read by every later call. With
// expectations for the three arguments it gives the expected quantities.
func runParts(st *staticTokens, calls, sumDyn, sumOut float64) callParts {
	return callParts{
		uncached:   calls*(st.text+st.media-st.prefix) + sumDyn,
		cacheRead:  (calls - 1) * st.prefix,
		cacheWrite: st.prefix,
		out:        sumOut,
		audio:      calls * st.audio,
	}
}

// meanParts are the expected billed quantities of a node's calls, given
// that it runs.
func meanParts(st *staticTokens, d *nodeDraws) callParts {
	return runParts(st, d.eN, d.eSumDyn(), d.eN*d.out.mean)
}

// costSample is the node's cost in Monte Carlo run s.
func costSample(lp *linearPrices, st *staticTokens, d *nodeDraws, s int) float64 {
	n := float64(d.calls[s])
	if n == 0 {
		return 0
	}
	a := st.text + st.media
	k := lp.tierFor(st.prompt() + d.firstDy[s])
	if k == lp.tierFor(st.prompt()+d.lastDy[s]) {
		return lp.tiers[k].usd(runParts(st, n, d.sumDyn[s], d.sumOut[s])) + n*st.perCallUSD
	}
	// The calls straddle a tier boundary: bill each call in its own tier.
	total := 0.0
	for j := d.off[s]; j < d.off[s+1]; j++ {
		p := callParts{uncached: a - st.prefix + d.dyn[j], out: d.outs[j], audio: st.audio}
		if j == d.off[s] {
			p.cacheWrite = st.prefix
		} else {
			p.cacheRead = st.prefix
		}
		total += lp.tiers[lp.tierFor(st.prompt()+d.dyn[j])].usd(p) + st.perCallUSD
	}
	return total
}

// latency is the node's expected latency in one run: when x E[N] x (TTFT +
// E[output] / speed).
func latency(m *catalog.Model, d *nodeDraws) (Dist, string) {
	ttft, tps, src := m.TTFTSeconds, m.OutputTokensPerSecond, "catalog"
	if ttft <= 0 || tps <= 0 {
		src = "default"
		if ttft <= 0 {
			ttft = DefaultTTFTSeconds
		}
		if tps <= 0 {
			tps = DefaultOutputTokensPerSecond
		}
	}
	perCall := ttft + d.out.mean/tps
	return Dist{Mean: d.when * d.eN * perCall, P95: (ttft + d.out.p95/tps) * d.eN}, src
}

// quality is the model's score for the task kind, capped by its vision score
// for visual input and its long-context score for long prompts.
func quality(m *catalog.Model, task string, vision bool, prompt float64) (float64, string) {
	q, src := 0.0, ""
	if v, ok := m.Quality[task]; ok {
		q, src = v, task
	} else if v, ok := m.Quality[graph.TaskDefault]; ok {
		q, src = v, graph.TaskDefault
	}
	cap := func(kind string) {
		if v, ok := m.QualityFor(kind); ok && v < q {
			q, src = v, kind
		}
	}
	if vision {
		cap(graph.TaskVision)
	}
	if prompt > LongContextTokens {
		cap(graph.TaskLongContext)
	}
	return math.Max(0, math.Min(1, q)), src
}
