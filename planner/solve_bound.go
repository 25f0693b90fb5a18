package planner

import (
	"math"
	"time"
)

// Lagrangian lower bound. Constraints are normalised (sum w / capW <= 1 and
// len(P) / capL <= 1 for every path P) so that all multipliers are in USD and
// one Polyak step size fits both.

const (
	maxIterations = 3000 // subgradient steps at most
	stallLimit    = 40   // steps without progress before the step halves
	minTheta      = 1e-4 // stop when the step factor falls below this
	lagrangeShare = 0.3  // at most this share of the time to the deadline
	fixEvery      = 50   // steps between reduced-cost fixing passes
)

// pathSet holds the latency paths generated so far and their multipliers.
type pathSet struct {
	nodes [][]int32
	mu    []float64
	index map[uint64]int
}

// add registers path p (if new) and returns its index.
func (ps *pathSet) add(p []int32) int {
	h := uint64(14695981039346656037)
	for _, v := range p {
		h = (h ^ uint64(v)) * 1099511628211
	}
	if i, ok := ps.index[h]; ok && equalPath(ps.nodes[i], p) {
		return i
	}
	ps.nodes = append(ps.nodes, append([]int32(nil), p...))
	ps.mu = append(ps.mu, 0)
	ps.index[h] = len(ps.nodes) - 1
	return len(ps.nodes) - 1
}

func equalPath(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// relaxed is one solution of the Lagrangian relaxation.
type relaxed struct {
	x      []int32
	finish []float64
	from   []int32
	path   []int32
}

// solveRelaxed picks the candidate of least reduced cost at every node and
// returns the dual value and the sum of w of the choice.
func (in *instance) solveRelaxed(du *duals, rx *relaxed) (value, w float64) {
	value = -du.k
	for d, cs := range in.cands {
		bj, br := 0, math.Inf(1)
		for j := range cs {
			if r := du.price(d, &cs[j]); r < br {
				bj, br = j, r
			}
		}
		rx.x[d] = int32(bj)
		value += br
		w += cs[bj].w
	}
	return value, w
}

// criticalPath computes the latency of rx.x and stores one longest path in
// rx.path.
func (in *instance) criticalPath(rx *relaxed) float64 {
	end, lat := 0, -1.0
	for d := 0; d < in.n; d++ {
		s, f := 0.0, int32(-1)
		for _, p := range in.preds[d] {
			if rx.finish[p] > s {
				s, f = rx.finish[p], p
			}
		}
		rx.finish[d] = s + in.cands[d][rx.x[d]].l
		rx.from[d] = f
		if rx.finish[d] > lat {
			end, lat = d, rx.finish[d]
		}
	}
	rx.path = rx.path[:0]
	for v := int32(end); v >= 0; v = rx.from[v] {
		rx.path = append(rx.path, v)
	}
	return lat
}

// setPrices derives node prices from the normalised multipliers.
func (in *instance) setPrices(du *duals, nu float64, ps *pathSet) {
	du.nu, du.k, du.kL = 0, nu, 0
	if nu > 0 {
		du.nu = nu / in.capW
	}
	clear(du.lam)
	for i, p := range ps.nodes {
		if m := ps.mu[i]; m > 0 {
			du.k += m
			du.kL += m
			for _, v := range p {
				du.lam[v] += m / in.capL
			}
		}
	}
}

// lagrange runs the subgradient ascent. Each relaxed solution raises the
// proven lower bound and is handed to the primal heuristics. The best
// multipliers end up in st.du.
func (in *instance) lagrange(st *state) {
	n := in.n
	hasW, hasL := !math.IsInf(in.capW, 1), !math.IsInf(in.capL, 1)
	st.du = &duals{lam: make([]float64, n)}
	if !hasW && !hasL {
		// Without resource constraints the cheapest candidates are optimal.
		rx := &relaxed{x: make([]int32, n)}
		in.solveRelaxed(st.du, rx)
		st.tryHeuristic(rx.x, newWorkspace(n), true)
		return
	}
	du := &duals{lam: make([]float64, n)}
	rx := &relaxed{x: make([]int32, n), finish: make([]float64, n), from: make([]int32, n)}
	ps := &pathSet{index: map[uint64]int{}}
	ws := newWorkspace(n)
	size := 0
	for _, cs := range in.cands {
		size += len(cs)
	}
	heurEvery := 1 + size/2000
	// With a deadline, keep most of the time for the search.
	stopAt := time.Time{}
	if dl, ok := st.ctx.Deadline(); ok {
		stopAt = time.Now().Add(time.Duration(lagrangeShare * float64(time.Until(dl))))
	}
	nu, theta, stall, best := 0.0, 1.0, 0, math.Inf(-1)
	var g []float64
	for it := 0; it < maxIterations && theta >= minTheta && !st.interrupted(); it++ {
		if !stopAt.IsZero() && time.Now().After(stopAt) {
			break
		}
		if it%fixEvery == 0 && it > 0 && st.have {
			// Reduced-cost fixing with the best multipliers so far shrinks
			// the candidate lists that every later step scans.
			if !in.prefilter(false, st.cut(), st.du) {
				st.exhausted()
				return
			}
		}
		in.setPrices(du, nu, ps)
		value, w := in.solveRelaxed(du, rx)
		lat := in.criticalPath(rx)
		st.iterations++
		if value > best+1e-12*math.Abs(value) {
			best, stall = value, 0
			st.du.nu, st.du.k, st.du.kL = du.nu, du.k, du.kL
			copy(st.du.lam, du.lam)
			st.du.paths, st.du.mu = ps.nodes, append(st.du.mu[:0], ps.mu...)
		} else if stall++; stall >= stallLimit {
			theta, stall = theta/2, 0
		}
		st.raiseLB(value)
		feasible := w <= in.capW && lat <= in.capL
		if feasible || it%heurEvery == 0 {
			st.tryHeuristic(rx.x, ws, feasible)
		}
		if st.closed() {
			return
		}
		// Subgradient of the normalised constraints.
		gW, norm2 := 0.0, 0.0
		if hasW {
			gW = w/in.capW - 1
			if nu > 0 || gW > 0 {
				norm2 += gW * gW
			}
		}
		if hasL {
			if lat > in.capL {
				ps.add(rx.path)
			}
			g = g[:0]
			for i, p := range ps.nodes {
				l := 0.0
				for _, v := range p {
					l += in.cands[v][rx.x[v]].l
				}
				gi := l/in.capL - 1
				g = append(g, gi)
				if ps.mu[i] > 0 || gi > 0 {
					norm2 += gi * gi
				}
			}
		}
		if norm2 == 0 {
			return // relaxed solution feasible with complementary slackness
		}
		t := theta * (st.upper() - value) / norm2
		nu = math.Max(0, nu+t*gW)
		for i := range g {
			ps.mu[i] = math.Max(0, ps.mu[i]+t*g[i])
		}
	}
}
