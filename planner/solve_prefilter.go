package planner

import (
	"context"
	"fmt"
	"math"
	"sort"
)

// cand is a candidate in the solver's internal form.
type cand struct {
	c, l, w float64 // cost, latency, -ln(quality)
	lp      float64 // latency price lam[d]*l under the search multipliers
	r       float64 // scratch: c + alpha*lp while building bound tables
	orig    int     // index in Problem.Cands[node]
}

// instance is a validated problem with nodes renumbered by topological
// position (position d holds node node[d]; predecessors have smaller
// positions).
type instance struct {
	n     int
	node  []int
	preds [][]int32
	succs [][]int32
	cands [][]cand
	// Constraint caps with Tolerance included; +Inf when absent.
	capC, capL, capW float64
	// ctx, when set, lets the setup stages stop early at a deadline.
	ctx context.Context
}

// expired reports whether the context of the run is done. Setup stages poll
// it between passes and leave the instance valid (they only ever remove
// candidates that provably cannot help).
func (in *instance) expired() bool {
	return in.ctx != nil && in.ctx.Err() != nil
}

// newInstance validates p and converts it to internal form.
func newInstance(p *Problem) (*instance, error) {
	if p == nil {
		return nil, fmt.Errorf("planner: nil Problem")
	}
	n := len(p.Cands)
	if p.Preds != nil && len(p.Preds) != n {
		return nil, fmt.Errorf("planner: Preds has %d entries but Cands has %d nodes; give one predecessor list per node (or nil for no edges)", len(p.Preds), n)
	}
	if err := checkLimits(p); err != nil {
		return nil, err
	}
	for i, cs := range p.Cands {
		if len(cs) == 0 {
			return nil, fmt.Errorf("planner: Cands[%d] is empty; every node needs at least one candidate", i)
		}
		for j, c := range cs {
			if err := checkCandidate(i, j, c); err != nil {
				return nil, err
			}
		}
	}
	for i, ps := range p.Preds {
		for _, u := range ps {
			if u < 0 || u >= n || u == i {
				return nil, fmt.Errorf("planner: Preds[%d] contains %d; predecessors must be other node indices in [0,%d)", i, u, n)
			}
		}
	}
	order := p.Order
	if order == nil {
		var err error
		if order, err = topoOrder(n, p.Preds); err != nil {
			return nil, err
		}
	}
	pos, err := checkOrder(n, order, p.Preds)
	if err != nil {
		return nil, err
	}
	in := &instance{n: n, node: order, preds: make([][]int32, n), succs: make([][]int32, n), cands: make([][]cand, n)}
	for d, v := range order {
		if p.Preds != nil {
			seen := map[int]bool{}
			for _, u := range p.Preds[v] {
				if !seen[u] {
					seen[u] = true
					in.preds[d] = append(in.preds[d], int32(pos[u]))
					in.succs[pos[u]] = append(in.succs[pos[u]], int32(d))
				}
			}
		}
		cs := make([]cand, len(p.Cands[v]))
		for j, c := range p.Cands[v] {
			cs[j] = cand{c: c.Cost, l: c.Latency, w: -math.Log(c.Quality), orig: j}
		}
		in.cands[d] = cs
	}
	in.capC, in.capL, in.capW = capOf(p.MaxCost), capOf(p.MaxLatency), math.Inf(1)
	// No plan costs more than the sum of the dearest candidates; capping
	// there lets a lower bound above it prove infeasibility.
	sumMax := 0.0
	for _, cs := range p.Cands {
		m := 0.0
		for _, c := range cs {
			m = math.Max(m, c.Cost)
		}
		sumMax += m
	}
	in.capC = math.Min(in.capC, capOf(sumMax)+Tolerance)
	if p.MinSuccess > 0 {
		in.capW = -math.Log(p.MinSuccess) + Tolerance
	}
	return in, nil
}

// capOf applies the Tolerance rule to a cost or latency bound (0 = none).
func capOf(b float64) float64 {
	if b == 0 || math.IsInf(b, 1) {
		return math.Inf(1)
	}
	return b + Tolerance*math.Max(1, b)
}

// checkLimits validates the global bounds of p.
func checkLimits(p *Problem) error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"MaxCost", p.MaxCost}, {"MaxLatency", p.MaxLatency}} {
		if math.IsNaN(f.v) || f.v < 0 {
			return fmt.Errorf("planner: %s = %v; use a non-negative number (0 for no limit)", f.name, f.v)
		}
	}
	if !(p.MinSuccess >= 0 && p.MinSuccess <= 1) {
		return fmt.Errorf("planner: MinSuccess = %v; use a probability in [0,1] (0 for no limit)", p.MinSuccess)
	}
	return nil
}

// checkCandidate validates candidate j of node i. The message names the
// candidate first, so that it starts in lower case like every error string
// (the field names that follow are the exported, capitalised ones).
func checkCandidate(i, j int, c Candidate) error {
	switch {
	case !(c.Cost >= 0) || math.IsInf(c.Cost, 1):
		return fmt.Errorf("planner: Cands[%d][%d]: Cost = %v; must be a finite number >= 0", i, j, c.Cost)
	case !(c.Latency >= 0) || math.IsInf(c.Latency, 1):
		return fmt.Errorf("planner: Cands[%d][%d]: Latency = %v; must be a finite number >= 0", i, j, c.Latency)
	case !(c.Quality > 0 && c.Quality <= 1):
		return fmt.Errorf("planner: Cands[%d][%d]: Quality = %v; must be a probability in (0,1]", i, j, c.Quality)
	}
	return nil
}

// checkOrder verifies that order is a topological permutation and returns
// the position of every node.
func checkOrder(n int, order []int, preds [][]int) ([]int, error) {
	if len(order) != n {
		return nil, fmt.Errorf("planner: Order has %d entries, want %d (one per node); pass nil to let Solve compute it", len(order), n)
	}
	pos := make([]int, n)
	for i := range pos {
		pos[i] = -1
	}
	for d, v := range order {
		if v < 0 || v >= n || pos[v] >= 0 {
			return nil, fmt.Errorf("planner: Order[%d] = %d is out of range or repeated; Order must be a permutation of 0..%d", d, v, n-1)
		}
		pos[v] = d
	}
	for v, ps := range preds {
		for _, u := range ps {
			if pos[u] > pos[v] {
				return nil, fmt.Errorf("planner: Order puts node %d before its predecessor %d; Order must be topological", v, u)
			}
		}
	}
	return pos, nil
}

// topoOrder computes a topological order (Kahn, smallest index first).
func topoOrder(n int, preds [][]int) ([]int, error) {
	indeg := make([]int, n)
	succ := make([][]int, n)
	for v, ps := range preds {
		for _, u := range ps {
			if u < 0 || u >= n {
				return nil, fmt.Errorf("planner: Preds[%d] contains %d; out of range", v, u)
			}
			indeg[v]++
			succ[u] = append(succ[u], v)
		}
	}
	var order, ready []int
	for v := 0; v < n; v++ {
		if indeg[v] == 0 {
			ready = append(ready, v)
		}
	}
	for len(ready) > 0 {
		v := ready[0]
		ready = ready[1:]
		order = append(order, v)
		for _, s := range succ[v] {
			if indeg[s]--; indeg[s] == 0 {
				ready = append(ready, s)
			}
		}
	}
	if len(order) != n {
		return nil, fmt.Errorf("planner: Preds contain a cycle; the workflow must be a DAG")
	}
	return order, nil
}

// cutoff decides whether a lower bound still allows a better plan: below the
// incumbent by more than gapTol, and within the cost cap.
type cutoff struct {
	have bool    // an incumbent exists
	ub   float64 // incumbent cost minus the gapTol margin
	cap  float64 // cost cap (+Inf when none)
}

// allows reports whether a plan with cost lb could still be an improvement.
func (c cutoff) allows(lb float64) bool {
	if c.have {
		return lb < c.ub
	}
	return lb <= c.cap
}

// duals are the Lagrange multipliers used for bounds: nu prices -ln q, lam[d]
// prices the latency of position d, k is the constant term, so that every
// feasible plan costs at least sum_d (c + lam[d]*l + nu*w) - k. Likewise every
// feasible plan costs at least sum_d (c + lam[d]*l) - kL.
type duals struct {
	nu  float64
	lam []float64
	k   float64
	kL  float64 // the part of k that belongs to latency
	// The latency paths and their normalised multipliers (search only).
	paths [][]int32
	mu    []float64
}

// price returns the reduced cost of a candidate at position d.
func (du *duals) price(d int, c *cand) float64 {
	if du == nil {
		return c.c
	}
	return c.c + du.lam[d]*c.l + du.nu*c.w
}

// prefilter removes dominated candidates (when allowed) and then repeats
// filter to a fixpoint. It returns false when some node has no candidate left,
// i.e. no plan can pass cut. When the context expires it stops early and
// returns true.
func (in *instance) prefilter(dominance bool, cut cutoff, du *duals) bool {
	if dominance {
		for d := range in.cands {
			if d%64 == 63 && in.expired() {
				return true
			}
			in.cands[d] = paretoFront(in.cands[d])
		}
	}
	for !in.expired() {
		removed, ok := in.filter(cut, du)
		if !ok {
			return false
		}
		if !removed {
			return true
		}
	}
	return true
}

// paretoFront keeps the candidates not dominated in (cost, latency, w); of
// identical candidates the one with the smallest original index stays.
func paretoFront(cs []cand) []cand {
	sort.Slice(cs, func(a, b int) bool {
		x, y := &cs[a], &cs[b]
		if x.c != y.c {
			return x.c < y.c
		}
		if x.l != y.l {
			return x.l < y.l
		}
		if x.w != y.w {
			return x.w < y.w
		}
		return x.orig < y.orig
	})
	out := cs[:0]
	for _, c := range cs {
		dominated := false
		for _, k := range out {
			if k.l <= c.l && k.w <= c.w {
				dominated = true
				break
			}
		}
		if !dominated {
			out = append(out, c)
		}
	}
	return out
}

// filter makes one pass removing every candidate that cannot belong to a plan
// passing cut, given that all other nodes take their individually best values:
// the cheapest cost, the best quality, the fastest latency on the longest
// path through the node, and (when du != nil) the smallest reduced cost. It
// reports whether anything was removed and false as second result when a node
// ran empty.
func (in *instance) filter(cut cutoff, du *duals) (removed, ok bool) {
	n := in.n
	minC, minW, minR := make([]float64, n), make([]float64, n), make([]float64, n)
	var sumC, sumW, sumR float64
	for d, cs := range in.cands {
		minC[d], minW[d], minR[d] = math.Inf(1), math.Inf(1), math.Inf(1)
		for i := range cs {
			minC[d] = math.Min(minC[d], cs[i].c)
			minW[d] = math.Min(minW[d], cs[i].w)
			minR[d] = math.Min(minR[d], du.price(d, &cs[i]))
		}
		sumC += minC[d]
		sumW += minW[d]
		sumR += minR[d]
	}
	head, tail := in.minLatencyHeadTail()
	k := 0.0
	if du != nil {
		k = du.k
	}
	for d, cs := range in.cands {
		out := cs[:0]
		for i := range cs {
			c := &cs[i]
			keep := cut.allows(sumC-minC[d]+c.c) &&
				sumW-minW[d]+c.w <= in.capW &&
				head[d]+c.l+tail[d] <= in.capL &&
				(du == nil || cut.allows(sumR-minR[d]+du.price(d, c)-k))
			if keep {
				out = append(out, *c)
			}
		}
		if len(out) < len(cs) {
			removed = true
		}
		in.cands[d] = out
		if len(out) == 0 {
			return true, false
		}
	}
	return removed, true
}

// minLatencyHeadTail returns, for every position, the longest path before it
// and after it (both excluding the node itself) when every node takes its
// fastest remaining candidate.
func (in *instance) minLatencyHeadTail() (head, tail []float64) {
	n := in.n
	minL := make([]float64, n)
	for d, cs := range in.cands {
		minL[d] = math.Inf(1)
		for i := range cs {
			minL[d] = math.Min(minL[d], cs[i].l)
		}
	}
	head, tail = make([]float64, n), make([]float64, n)
	for d := 0; d < n; d++ {
		for _, p := range in.preds[d] {
			head[d] = math.Max(head[d], head[p]+minL[p])
		}
	}
	for d := n - 1; d >= 0; d-- {
		for _, s := range in.succs[d] {
			tail[d] = math.Max(tail[d], tail[s]+minL[s])
		}
	}
	return head, tail
}
