package planner

import (
	"cmp"
	"context"
	"math"
	"slices"
)

// state carries the incumbent, the proven lower bound and the counters across
// the stages of one Solve call.
type state struct {
	ctx         context.Context
	p           *Problem
	in          *instance
	accept      func([]int) bool
	maxExplored int64
	buf         []int // choice in original indexing, handed to Accept

	have     bool
	bestCost float64
	best     []int // incumbent, original indexing
	lb       float64
	du       *duals // multipliers used for search bounds

	explored, iterations, rejected int64
	stopped                        string
}

func newState(ctx context.Context, p *Problem, in *instance, lim Limits) *state {
	return &state{ctx: ctx, p: p, in: in, accept: p.Accept, maxExplored: lim.MaxExplored,
		buf: make([]int, in.n), best: make([]int, in.n)}
}

// cut returns the current improvement test.
func (st *state) cut() cutoff {
	return cutoff{have: st.have, ub: st.bestCost - gapTol*st.bestCost, cap: st.in.capC}
}

// upper returns the best known upper bound on the optimum (for step sizes).
func (st *state) upper() float64 {
	if st.have {
		return st.bestCost
	}
	return st.in.capC
}

// raiseLB records a proven lower bound.
func (st *state) raiseLB(v float64) {
	st.lb = math.Max(st.lb, v)
}

// exhausted records that no plan passing the current cut exists.
func (st *state) exhausted() {
	if st.have {
		st.raiseLB(st.cut().ub)
	} else {
		st.lb = math.Inf(1)
	}
}

// closed reports that nothing is left to do: a limit stopped the run, or the
// lower bound rules out any improvement (which, without incumbent, proves
// infeasibility).
func (st *state) closed() bool {
	return st.stopped != "" || !st.cut().allows(st.lb)
}

// interrupted polls the context.
func (st *state) interrupted() bool {
	if st.stopped == "" && st.ctx.Err() != nil {
		st.stopped = "context"
	}
	return st.stopped != ""
}

// offer considers a feasible assignment (indices into in.cands) of the given
// cost as new incumbent, asking Accept first.
func (st *state) offer(x []int32, cost float64) {
	if !st.cut().allows(cost) {
		return
	}
	for d, j := range x {
		st.buf[st.in.node[d]] = st.in.cands[d][j].orig
	}
	if st.accept != nil && !st.accept(st.buf) {
		st.rejected++
		return
	}
	copy(st.best, st.buf)
	st.bestCost, st.have = cost, true
}

// tryHeuristic repairs (unless already feasible) and improves a copy of x,
// then offers it.
func (st *state) tryHeuristic(x []int32, ws *workspace, feasible bool) {
	copy(ws.x, x)
	if !feasible && !st.in.repair(ws, st.have) {
		return
	}
	st.offer(ws.x, st.in.improve(ws))
}

// fixAndPrepare applies reduced-cost fixing with the best multipliers and
// stores every candidate's latency price lam*l for the search.
func (st *state) fixAndPrepare() {
	if st.closed() {
		return
	}
	in := st.in
	if !in.prefilter(false, st.cut(), st.du) {
		st.exhausted()
		return
	}
	for d, cs := range in.cands {
		for j := range cs {
			cs[j].lp = st.du.lam[d] * cs[j].l
		}
	}
}

// child is a candidate of the current position with its bound.
type child struct {
	j   int32
	lb  float64
	phi float64 // latency charge of the child (see bound)
	at  lpAt    // LP part of the child's bound, for its quick check
}

// searcher is the depth-first branch and bound over topological positions.
type searcher struct {
	st         *state
	in         *instance
	kL         float64
	alphas     []float64      // scalings of the latency prices
	sb         []*suffixBound // one per alpha
	sufW, tail []float64
	x          []int32
	kids       [][]child // per-depth buffers
	openLB     float64   // least bound of subtrees left unexplored
	peak       []int     // per depth: index of the best scaling last time
	climbs     []climb   // per depth: when bound next looks for a better peak
	memo       *memo     // nil when Accept is set
	// Release state (solve_release.go).
	outflow [][]float64 // latency multiplier mass per edge d->succs[d][i]
	rel     []float64   // latest finish of the assigned preds, by position
	inTot   []float64   // multiplier mass charged up to rel, by position
	saved   [][]float64 // per depth: successors' rel and inTot to restore
}

// search runs the branch and bound and records its outcome in st.
func (st *state) search() {
	in := st.in
	n := in.n
	s := &searcher{st: st, in: in, kL: st.du.kL, x: make([]int32, n),
		sufW: make([]float64, n+1), kids: make([][]child, n), openLB: math.Inf(1)}
	for d := n - 1; d >= 0; d-- {
		mw := math.Inf(1)
		for _, c := range in.cands[d] {
			mw = math.Min(mw, c.w)
		}
		s.sufW[d] = s.sufW[d+1] + mw
		s.kids[d] = make([]child, 0, len(in.cands[d]))
	}
	_, s.tail = in.minLatencyHeadTail()
	s.initRelease(st.du)
	s.alphas = []float64{1}
	s.peak = make([]int, n+1)
	s.climbs = make([]climb, n+1)
	if s.kL > 0 {
		s.alphas = latencyScalings
		one := slices.Index(latencyScalings, 1)
		for d := range s.peak {
			s.peak[d] = one
		}
	}
	for _, a := range s.alphas {
		if st.interrupted() {
			return
		}
		s.sb = append(s.sb, newSuffixBound(in, a, maxTableEntries/len(s.alphas)))
	}
	if st.accept == nil && math.IsInf(in.capL, 1) {
		// Only without a latency cap: a state is then just (cost, w) and
		// dominance is cheap and frequent. With a cap, the release times
		// of the frontier make dominance rare, and the checks cost more
		// than they save (on the benchmark 7-40% fewer nodes per second).
		s.memo = newMemo(in)
	}
	rootLB, rootAt := s.bound(-1, 0, 0, 0, cutoff{cap: math.Inf(1)})
	st.raiseLB(rootLB)
	if st.closed() {
		return
	}
	s.dfs(0, 0, 0, 0, rootAt)
	if st.stopped == "" {
		st.exhausted()
		return
	}
	ub := math.Inf(1)
	if st.have {
		ub = st.bestCost
	}
	st.raiseLB(math.Min(s.openLB, ub))
}

// limitHit counts a node and reports whether a limit is reached.
func (s *searcher) limitHit() bool {
	st := s.st
	if st.maxExplored > 0 && st.explored >= st.maxExplored {
		st.stopped = "max-explored"
		return true
	}
	st.explored++
	if st.explored&255 == 0 {
		return st.interrupted()
	}
	return false
}

// latencyScalings are the factors alpha applied to the latency prices in the
// search bound, ascending; see bound.
var latencyScalings = []float64{0, 0.5, 1, 1.5, 2, 3}

// maxClimbEvery is the longest interval, in calls at one depth, between two
// searches of bound for a better scaling while the best one stays put.
const maxClimbEvery = 4

// climb schedules the searches of bound for a better scaling at one depth.
type climb struct {
	every uint32 // calls between two searches (1 after a move, then doubling)
	wait  uint32 // calls left before the next search
}

// lpAt is the LP part of the bound of a search node at one scaling: the LP
// value v over the open positions, its price sigma of w, and ok when both
// come from an exact table at the node's first open position. The parent
// computes it while bounding a child and hands it down, so that the child's
// quick check needs no second table lookup.
type lpAt struct {
	ok       bool
	i        int // index of the scaling
	v, sigma float64
}

// bound returns a lower bound for a node whose assigned prefix (positions
// <= d) has the given cost, sum of w and latency charge phi, and the LP part
// at the scaling that gave it. With path multipliers mu_P (normalised by
// capL), every feasible completion satisfies, for each path P, T_P + sum of
// l over the open nodes of P <= capL, where T_P is a time the open part of P
// cannot start before (solve_release.go). Pricing these by alpha*mu_P for
// any alpha >= 0 gives
//
//	g(alpha) = cost + alpha*(phi - kL) + LP_w(open nodes, c + alpha*lam*l)
//
// with phi = sum_P mu_P*T_P/capL. Any g is a valid bound; the best over the
// scalings lets it follow how much latency the prefix has used (alpha = 0
// is the pure cost bound). d = -1 gives the root bound.
//
// g is concave in alpha (the LP is a minimum of functions affine in alpha),
// so over the ascending scalings it rises to one peak and then falls. Each
// depth remembers the peak found last time, and bound evaluates it first;
// it returns at once when that value is cut. Otherwise it climbs to the
// neighbouring peak (usually three evaluations), but only every climb.every
// calls: the peak of a depth seldom moves (on the 200x50 benchmark in 7% of
// the searches), so after a search that found no better scaling the interval
// doubles, up to maxClimbEvery, and it falls back to 1 after a move. Skipping
// a search only returns a smaller, still valid, bound; there it halves the
// evaluations of g for 1% more search nodes. (Longer intervals save a little
// more time on that instance, but change the order of the children enough to
// find the best plan of the 1000x50 benchmark later than its deadline.)
func (s *searcher) bound(d int, cost, w, phi float64, cut cutoff) (float64, lpAt) {
	g := func(i int) (float64, lpAt) {
		at := lpAt{i: i}
		sb := s.sb[i]
		budget := s.in.capW - w
		if sb.next[d+1] == d+1 {
			at.v, at.sigma, at.ok = sb.tables[d+1].eval(budget)
		} else {
			at.v = sb.eval(d+1, budget)
		}
		return cost + s.alphas[i]*(phi-s.kL) + at.v, at
	}
	k := len(s.alphas)
	i := s.peak[d+1]
	lb, at := g(i)
	if !cut.allows(lb) {
		return lb, at
	}
	cl := &s.climbs[d+1]
	if cl.wait > 0 {
		cl.wait--
		return lb, at
	}
	moved := false
	for dir := 1; dir >= -1 && !moved; dir -= 2 {
		// Once it climbed up one side, the other side only falls.
		for j := i + dir; j >= 0 && j < k; j += dir {
			v, atj := g(j)
			if v <= lb {
				break
			}
			lb, at, i, moved = v, atj, j, true
			if !cut.allows(lb) {
				break
			}
		}
	}
	if moved {
		cl.every = 1
	} else {
		cl.every = min(max(2*cl.every, 1), maxClimbEvery)
	}
	cl.wait = cl.every - 1
	s.peak[d+1] = i
	return lb, at
}

// quickCheck is a cheap lower bound on the children of one node, from the
// node's own bound at one scaling alpha and the LP price sigma of w there:
// by LP duality, fixing candidate c at position d raises
// cost + alpha*(phi - kL) + LP by at least alpha*(release charge of c) plus
// the reduced cost (c + alpha*lp + sigma*w) - min over the node's candidates
// of the same. A child whose quick bound already reaches the incumbent is
// cut without evaluating the tables.
type quickCheck struct {
	ok                       bool
	base, alpha, sigma, minR float64
}

// quick prepares the quick check of the children of the node at position d.
// It needs an exact table at d (no checkpoint gap) and a known price: at,
// when ok, is the LP part the parent computed for this node; otherwise the
// table is evaluated at the depth's current peak scaling.
func (s *searcher) quick(d int, cost, w, phi float64, at lpAt) quickCheck {
	if !at.ok {
		at.i = s.peak[d]
		sb := s.sb[at.i]
		if sb.next[d] != d {
			return quickCheck{}
		}
		if at.v, at.sigma, at.ok = sb.tables[d].eval(s.in.capW - w); !at.ok {
			return quickCheck{}
		}
	}
	a := s.alphas[at.i]
	return quickCheck{ok: true, base: cost + a*(phi-s.kL) + at.v, alpha: a, sigma: at.sigma,
		minR: s.sb[at.i].minReduced(d, at.sigma)}
}

// childBound returns the lower bound of the child taking candidate c at
// position d (which starts at start = rel[d]), its latency charge, the LP
// part of its bound (see lpAt; not ok when the quick check cut it), and
// whether the child can still meet success and latency.
func (s *searcher) childBound(d int, c *cand, cost, w, phi, start float64, cut cutoff, q *quickCheck) (lb, phiC float64, at lpAt, ok bool) {
	in := s.in
	if w+c.w+s.sufW[d+1] > in.capW || start+c.l+s.tail[d] > in.capL {
		return 0, 0, lpAt{}, false
	}
	var red float64
	if q.ok {
		// The release charge is >= 0 (see releaseCharge), so the quick
		// bound without it is a bound too, and most cut children need no
		// walk over the successors.
		red = q.base + (c.c + q.alpha*c.lp + q.sigma*c.w - q.minR)
		if !cut.allows(red) {
			return red, 0, lpAt{}, true
		}
	}
	rc := s.releaseCharge(d, start+c.l)
	phiC = phi + c.lp + rc
	if q.ok {
		if lb = red + q.alpha*rc; !cut.allows(lb) {
			return lb, phiC, lpAt{}, true
		}
	}
	lb, at = s.bound(d, cost+c.c, w+c.w, phiC, cut)
	return lb, phiC, at, true
}

// dfs explores position d given the totals of positions < d: cost, sum of w
// and latency charge phi (see bound), and the LP part at of the bound the
// parent computed for this node.
func (s *searcher) dfs(d int, cost, w, phi float64, at lpAt) {
	in := s.in
	if d == in.n {
		s.st.offer(s.x, cost)
		return
	}
	if s.memo != nil && s.memo.dominated(d, cost, w, s.rel) {
		return
	}
	start := s.rel[d] // every predecessor is assigned
	cs := in.cands[d]
	kids := s.kids[d][:0]
	cut := s.st.cut()
	q := s.quick(d, cost, w, phi, at)
	for j := range cs {
		if lb, phiC, at, ok := s.childBound(d, &cs[j], cost, w, phi, start, cut, &q); ok && cut.allows(lb) {
			kids = append(kids, child{int32(j), lb, phiC, at})
		}
	}
	sortChildren(kids)
	s.kids[d] = kids
	for i, k := range kids {
		if !s.st.cut().allows(k.lb) {
			break
		}
		if s.limitHit() {
			s.noteOpen(d, cost, w, kids[i:])
			return
		}
		c := &cs[k.j]
		s.x[d] = k.j
		s.release(d, start+c.l)
		s.dfs(d+1, cost+c.c, w+c.w, k.phi, k.at)
		s.unrelease(d)
		if s.st.stopped != "" {
			s.noteOpen(d, cost, w, kids[i+1:])
			return
		}
	}
	if s.memo != nil {
		s.memo.store(d, cost, w, s.rel)
	}
}

// sortChildren orders children by ascending bound (insertion sort: lists
// are short after dominance filtering).
func sortChildren(k []child) {
	if len(k) > 32 {
		slices.SortFunc(k, func(a, b child) int { return cmp.Compare(a.lb, b.lb) })
		return
	}
	for i := 1; i < len(k); i++ {
		for j := i; j > 0 && k[j].lb < k[j-1].lb; j-- {
			k[j], k[j-1] = k[j-1], k[j]
		}
	}
}

// noteOpen folds the bounds of unexplored children of the node at position
// d (with totals cost and w) into openLB. A stop leaves at most a few
// children per depth open, so each one is bounded again at every scaling
// (bound may have skipped the search for the best one): the proven gap is
// then no weaker than with a full search at every call.
func (s *searcher) noteOpen(d int, cost, w float64, kids []child) {
	for _, k := range kids {
		c := &s.in.cands[d][k.j]
		s.openLB = math.Min(s.openLB, max(k.lb, s.fullBound(d, cost+c.c, w+c.w, k.phi)))
	}
}

// fullBound is bound (same arguments) evaluated at every scaling, without
// touching the peaks and the climb schedules.
func (s *searcher) fullBound(d int, cost, w, phi float64) float64 {
	lb := math.Inf(-1)
	for i, a := range s.alphas {
		lb = max(lb, cost+a*(phi-s.kL)+s.sb[i].eval(d+1, s.in.capW-w))
	}
	return lb
}

// solution converts the state into the public result.
func (st *state) solution() Solution {
	sol := Solution{LowerBound: st.lb, Gap: math.Inf(1), Explored: st.explored,
		Iterations: st.iterations, Rejected: st.rejected, Stopped: st.stopped}
	switch {
	case st.have:
		sol.Feasible = true
		sol.Choice = append([]int(nil), st.best...)
		sol.Cost, sol.Latency, sol.Success = evaluate(st.p, st.in.node, sol.Choice)
		sol.LowerBound = math.Min(st.lb, sol.Cost)
		sol.Gap = 0
		if sol.Cost > 0 {
			sol.Gap = (sol.Cost - sol.LowerBound) / sol.Cost
		}
		sol.Optimal = !st.cut().allows(st.lb)
		sol.Status = StatusFeasible
		if sol.Optimal {
			sol.Status, sol.Gap, sol.Stopped = StatusOptimal, 0, ""
		}
	case math.IsInf(st.lb, 1) || !st.cut().allows(st.lb):
		sol.Status, sol.LowerBound, sol.Stopped = StatusInfeasible, math.Inf(1), ""
	default:
		sol.Status = StatusUnknown
	}
	return sol
}

// evaluate returns cost, latency and success of a complete choice.
func evaluate(p *Problem, order, choice []int) (cost, lat, success float64) {
	success = 1
	finish := make([]float64, len(choice))
	for _, v := range order {
		c := p.Cands[v][choice[v]]
		cost += c.Cost
		success *= c.Quality
		s := 0.0
		if p.Preds != nil {
			for _, u := range p.Preds[v] {
				s = math.Max(s, finish[u])
			}
		}
		finish[v] = s + c.Latency
		lat = math.Max(lat, finish[v])
	}
	return cost, lat, success
}
