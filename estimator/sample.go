package estimator

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/costwise/costwise/graph"
)

// z95 is the standard normal's 95th percentile.
const z95 = 1.6448536269514722

// outputDist is the log-normal output length of one call, clamped at max.
type outputDist struct {
	mu, sigma float64
	max       float64 // 0 = unclamped
	mean, p95 float64 // of the clamped distribution
}

// fitOutput fits the node's output hint (or the task default).
func fitOutput(n *graph.Node) outputDist {
	h := n.OutputTokens
	mean, p95 := h.Mean, h.P95
	if h.IsZero() {
		mean = DefaultOutputTokens[n.Task]
		if mean == 0 {
			mean = DefaultOutputTokens[graph.TaskDefault]
		}
		p95 = 2 * mean
	} else if p95 == 0 {
		p95 = 1.5 * mean
	}
	if h.Max > 0 {
		p95 = math.Min(p95, float64(h.Max))
	}
	d := outputDist{max: float64(h.Max)}
	if mean <= 0 {
		return d
	}
	if p95 > mean {
		r := math.Log(p95 / mean)
		if disc := z95*z95 - 2*r; disc > 0 {
			d.sigma = z95 - math.Sqrt(disc)
		} else {
			d.sigma = z95
		}
	}
	d.mu = math.Log(mean) - d.sigma*d.sigma/2
	d.mean = d.clampedMean()
	d.p95 = d.quantile(0.95)
	return d
}

func normCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// clampedMean is E[min(X, max)] for X log-normal(mu, sigma).
func (d outputDist) clampedMean() float64 {
	m := math.Exp(d.mu + d.sigma*d.sigma/2)
	if d.max <= 0 {
		return m
	}
	if d.sigma == 0 {
		return math.Min(m, d.max)
	}
	lc := math.Log(d.max)
	return m*normCDF((lc-d.mu-d.sigma*d.sigma)/d.sigma) + d.max*(1-normCDF((lc-d.mu)/d.sigma))
}

func (d outputDist) quantile(p float64) float64 {
	if d.mean == 0 {
		return 0
	}
	// Inverse normal CDF by bisection on Erfc: run once per node.
	lo, hi := -10.0, 10.0
	for range 100 {
		mid := (lo + hi) / 2
		if normCDF(mid) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	x := math.Exp(d.mu + d.sigma*lo)
	if d.max > 0 {
		x = math.Min(x, d.max)
	}
	return x
}

func (d outputDist) sample(r *rand.Rand) float64 {
	if d.mean == 0 {
		return 0
	}
	x := math.Exp(d.mu + d.sigma*r.NormFloat64())
	if d.max > 0 && x > d.max {
		x = d.max
	}
	return x
}

func (d outputDist) summary() Dist {
	return Dist{Mean: d.mean, P50: d.quantile(0.5), P95: d.p95, P99: d.quantile(0.99), Max: d.max}
}

// nodeDraws are one node's Monte Carlo runs: per sample, its calls and their
// dynamic prompt tokens (upstream outputs and loop history) and outputs.
// They do not depend on the model.
type nodeDraws struct {
	when    float64
	out     outputDist
	loopN   int     // repeat.max - 1 (binomial trials); 0 = no loop
	loopP   float64 // binomial probability
	history bool
	turn    float64 // repeat.turn_tokens

	// Analytic moments, given that the node runs.
	eN, eNN1 float64 // E[N], E[N(N-1)]
	eU       float64 // E[upstream output tokens referenced]

	// Per sample.
	calls   []int32
	sumDyn  []float64 // dynamic prompt tokens summed over the calls
	firstDy []float64 // dynamic tokens of the first call (the smallest)
	lastDy  []float64 // dynamic tokens of the last call (the largest)
	sumOut  []float64
	lastOut []float64 // the output downstream nodes see (0 when not run)
	off     []int32   // per-call arrays of sample s are [off[s], off[s+1])
	dyn     []float64
	outs    []float64

	minFirst, maxLast float64 // over all samples that run
	dynQ              Dist    // dynamic prompt tokens per call (model-independent)

	// Shape of the runs, for pricing shortcuts: how many samples run, and
	// whether every run makes the same number of calls and sends the same
	// dynamic tokens.
	running              int
	constCalls, constDyn bool
	runDyn               float64 // sumDyn of a run that runs (when constDyn)
}

// drawRuns draws the Monte Carlo runs of every node in topological order.
// Each node has its own seeded stream, so a node's draws do not depend on
// the order in which others are drawn.
func drawRuns(w *graph.Workflow, samples int, seed uint64) []*nodeDraws {
	all := make([]*nodeDraws, len(w.Nodes))
	for _, i := range w.Order() {
		all[i] = drawNode(w, w.Nodes[i], all, samples, rand.New(rand.NewPCG(seed, uint64(i)+1)))
	}
	return all
}

func drawNode(w *graph.Workflow, n *graph.Node, all []*nodeDraws, samples int, r *rand.Rand) *nodeDraws {
	d := &nodeDraws{when: n.When, out: fitOutput(n), history: n.Repeat.History, turn: float64(n.Repeat.TurnTokens)}
	d.eN = 1
	if n.Repeat.Max > 1 {
		d.loopN = n.Repeat.Max - 1
		d.loopP = (n.Repeat.Iterations() - 1) / float64(d.loopN)
		d.eN = n.Repeat.Iterations()
		d.eNN1 = float64(d.loopN)*d.loopP*(1-d.loopP) + d.eN*d.eN - d.eN
	}
	var ups []*nodeDraws
	if n.InputTokens == 0 {
		for _, ref := range n.Refs {
			if ref.Kind == graph.RefNode {
				j, _ := w.NodeIndex(ref.Name)
				ups = append(ups, all[j])
				d.eU += all[j].when * all[j].out.mean
			}
		}
	}
	d.calls = make([]int32, samples)
	d.sumDyn = make([]float64, samples)
	d.firstDy = make([]float64, samples)
	d.lastDy = make([]float64, samples)
	d.sumOut = make([]float64, samples)
	d.lastOut = make([]float64, samples)
	d.off = make([]int32, samples+1)
	d.minFirst, d.maxLast = math.Inf(1), math.Inf(-1)
	for s := range samples {
		d.off[s] = int32(len(d.dyn))
		if d.when < 1 && r.Float64() >= d.when {
			continue
		}
		u := 0.0
		for _, up := range ups {
			u += up.lastOut[s]
		}
		calls := 1 + d.loopCount(r)
		dyn := u
		var o float64
		for k := range calls {
			if k > 0 && d.history {
				dyn += o + d.turn
			}
			o = d.out.sample(r)
			d.dyn = append(d.dyn, dyn)
			d.outs = append(d.outs, o)
			d.sumDyn[s] += dyn
			d.sumOut[s] += o
		}
		d.calls[s] = int32(calls)
		d.firstDy[s], d.lastDy[s], d.lastOut[s] = u, dyn, o
		d.minFirst, d.maxLast = math.Min(d.minFirst, u), math.Max(d.maxLast, dyn)
	}
	d.off[samples] = int32(len(d.dyn))
	if math.IsInf(d.minFirst, 1) { // never ran
		d.minFirst, d.maxLast = 0, 0
	}
	d.dynQ = d.dynDist()
	d.constCalls, d.constDyn = true, true
	first := -1
	for s, c := range d.calls {
		if c == 0 {
			continue
		}
		d.running++
		if first < 0 {
			first = s
			d.runDyn = d.sumDyn[s]
			continue
		}
		d.constCalls = d.constCalls && c == d.calls[first]
		d.constDyn = d.constDyn && d.sumDyn[s] == d.sumDyn[first]
	}
	return d
}

// loopCount draws Binomial(loopN, loopP): exactly by Bernoulli trials up to
// 64 trials, exactly by geometric gaps between successes when few successes
// (or few failures) are expected, and by the rounded normal approximation
// only when both are expected at least 30 times, where its clamp never bites.
func (d *nodeDraws) loopCount(r *rand.Rand) int {
	n, p := d.loopN, d.loopP
	switch {
	case n == 0:
		return 0
	case n <= 64:
		k := 0
		for range n {
			if r.Float64() < p {
				k++
			}
		}
		return k
	case float64(n)*min(p, 1-p) < 30:
		q, flip := p, false
		if p > 0.5 {
			q, flip = 1-p, true
		}
		k := geometricSuccesses(r, n, q)
		if flip {
			return n - k
		}
		return k
	}
	fn := float64(n)
	x := math.Round(fn*p + math.Sqrt(fn*p*(1-p))*r.NormFloat64())
	return int(math.Max(0, math.Min(fn, x)))
}

// geometricSuccesses counts successes in n Bernoulli(q) trials by jumping
// from one success to the next with geometric gaps: exact, O(expected count).
func geometricSuccesses(r *rand.Rand, n int, q float64) int {
	if q <= 0 {
		return 0
	}
	lq := math.Log1p(-q)
	k, pos := 0, 0
	for {
		gap := int(math.Floor(math.Log(1-r.Float64())/lq)) + 1
		pos += gap
		if pos > n || gap <= 0 {
			return k
		}
		k++
	}
}

// eSumDyn is E[sum over calls of dynamic prompt tokens | the node runs].
func (d *nodeDraws) eSumDyn() float64 {
	s := d.eN * d.eU
	if d.history {
		s += (d.out.mean + d.turn) * d.eNN1 / 2
	}
	return s
}

// callsDist summarises calls per run of the workflow.
func (d *nodeDraws) callsDist() Dist {
	buf := make([]float64, len(d.calls))
	for s, c := range d.calls {
		buf[s] = float64(c)
	}
	q := quantiles(buf)
	q.Mean = d.when * d.eN
	return q
}

// dynQuantiles summarises the dynamic prompt tokens per call.
func (d *nodeDraws) dynDist() Dist {
	if len(d.dyn) == 0 {
		return Dist{}
	}
	q := quantiles(slices.Clone(d.dyn))
	if d.eN > 0 {
		q.Mean = d.eSumDyn() / d.eN
	}
	return q
}

// quantiles reads the sample mean, P50, P95, P99 and Max of buf (the
// nearest-rank percentiles), reordering buf. It selects the three ranks in
// expected linear time instead of sorting.
func quantiles(buf []float64) Dist {
	n := len(buf)
	if n == 0 {
		return Dist{}
	}
	sum, top := 0.0, buf[0]
	for _, v := range buf {
		sum += v
		if v > top {
			top = v
		}
	}
	r := percentileRanks(n)
	r50, r95, r99 := r[0], r[1], r[2]
	selectRank(buf, r50)
	selectRank(buf[r50:], r95-r50)
	selectRank(buf[r95:], r99-r95)
	return Dist{Mean: sum / float64(n), P50: buf[r50], P95: buf[r95], P99: buf[r99], Max: top}
}

// selectRank reorders a so that a[k] is its k-th smallest element, with no
// larger element before it and no smaller one after it (Hoare's selection).
func selectRank(a []float64, k int) {
	lo, hi := 0, len(a)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if a[mid] < a[lo] {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if a[hi] < a[lo] {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if a[hi] < a[mid] {
			a[hi], a[mid] = a[mid], a[hi]
		}
		pivot := a[mid]
		i, j := lo, hi
		for i <= j {
			for a[i] < pivot {
				i++
			}
			for a[j] > pivot {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return
		}
	}
}
