package planner

import (
	"math"
	"sort"
)

// Residual-budget bound used inside the search. For the positions d..n-1
// still open it solves the linear relaxation of
//
//	min sum r_e   s.t.  sum w_e <= budget,   r = c + lam*l
//
// exactly: each node's candidates are reduced to the lower convex hull of
// (w, r), the hull edges of all open nodes are merged by slope (extra r per
// unit of w saved), and the budget is met by taking edges in that order,
// the last one fractionally. By LP duality this is at least the Lagrangian
// bound for every price of w, and it adapts to the budget left by the
// assigned prefix. Suffix tables are stored at checkpoints (every depth if
// memory allows); between checkpoints nodes count with their minimum r and
// minimum w, which keeps the bound valid.

// maxTableEntries caps the memory of the suffix tables (2 floats each).
const maxTableEntries = 4 << 20

// point is a prefix sum of hull edges: w saved and r added.
type point struct{ w, r float64 }

// edge is one hull segment: saving dw of w costs dr more r.
type edge struct{ dw, dr float64 }

func (e edge) slope() float64 { return e.dr / e.dw }

// suffixTable is the merged hull of positions d..n-1.
type suffixTable struct {
	r0, w0 float64 // sums at every node's least-r point
	cum    []point // prefix sums of edges sorted by slope
	hint   int     // answer of the last search, where the next starts
}

// eval returns the LP minimum of sum r for the suffix under budget, the
// LP's price sigma of w (the slope of the hull segment where the budget
// falls, 0 when the budget is not binding) and whether that price is known
// (false when the budget lies beyond the hull: the caller checked
// feasibility, this is rounding).
func (t *suffixTable) eval(budget float64) (v, sigma float64, ok bool) {
	need := t.w0 - budget
	if need <= 0 {
		return t.r0, 0, true
	}
	// Least i with cum[i].w >= need. Consecutive calls come from siblings and
	// neighbouring search nodes with similar budgets, so the search gallops
	// out from the previous answer, which keeps it in cache.
	c := t.cum
	lo, hi := 0, len(c) // answer in [lo, hi]
	h := min(t.hint, len(c))
	if h < len(c) && c[h].w < need {
		lo = h + 1
		for step := 1; lo+step <= len(c); step *= 2 {
			if c[lo+step-1].w >= need {
				hi = lo + step - 1
				break
			}
			lo += step
		}
	} else {
		hi = h
		for step := 1; hi-step >= 0; step *= 2 {
			if c[hi-step].w < need {
				lo = hi - step + 1
				break
			}
			hi -= step
		}
		if hi < lo {
			lo = hi
		}
	}
	i, j := lo, hi
	for i < j {
		m := int(uint(i+j) >> 1)
		if c[m].w < need {
			i = m + 1
		} else {
			j = m
		}
	}
	t.hint = i
	if i == len(c) {
		if i == 0 {
			return t.r0, 0, false
		}
		return t.r0 + c[i-1].r, 0, false
	}
	pw, pr := 0.0, 0.0
	if i > 0 {
		pw, pr = c[i-1].w, c[i-1].r
	}
	sigma = (c[i].r - pr) / (c[i].w - pw)
	return t.r0 + pr + (need-pw)*sigma, sigma, true
}

// suffixBound answers eval(d, budget) for every depth.
type suffixBound struct {
	tables []*suffixTable // tables[d] != nil at checkpoints; tables[n] is empty
	next   []int          // next[d]: the first checkpoint >= d
	preR   []float64      // prefix sums of minimum r
	preW   []float64      // prefix sums of minimum w
	// verts[vertAt[d]:vertAt[d+1]] are the vertices of position d's lower
	// convex hull of (w, r), copied exactly from its candidates (see
	// minReduced).
	verts  []point
	vertAt []int32
}

// minReduced returns min over the candidates of position d of r + sigma*w
// for sigma >= 0. A linear function with non-negative slopes in r and w
// takes its minimum over a point set at a vertex of the lower-left convex
// hull, so only the hull vertices (usually two or three of the candidates,
// stored contiguously) are scanned. The vertices hold the candidates' own r
// and w, so the value is that of a real candidate, computed as
// (c + alpha*lp) + sigma*w like everywhere else.
func (sb *suffixBound) minReduced(d int, sigma float64) float64 {
	m := math.Inf(1)
	for _, v := range sb.verts[sb.vertAt[d]:sb.vertAt[d+1]] {
		m = min(m, v.r+sigma*v.w)
	}
	return m
}

// eval returns a lower bound on sum r over positions d..n-1 when their sum
// of w may not exceed budget.
func (sb *suffixBound) eval(d int, budget float64) float64 {
	e := sb.next[d]
	between := sb.preR[e] - sb.preR[d]
	v, _, _ := sb.tables[e].eval(budget - (sb.preW[e] - sb.preW[d]))
	return between + v
}

// newSuffixBound builds the tables for r = c + alpha*lp, with at most
// maxEntries stored table entries.
func newSuffixBound(in *instance, alpha float64, maxEntries int) *suffixBound {
	for _, cs := range in.cands {
		for j := range cs {
			cs[j].r = cs[j].c + alpha*cs[j].lp
		}
	}
	n := in.n
	sb := &suffixBound{tables: make([]*suffixTable, n+1), next: make([]int, n+1),
		preR: make([]float64, n+1), preW: make([]float64, n+1), vertAt: make([]int32, n+1)}
	hulls := make([][]edge, n)
	r0, w0 := make([]float64, n), make([]float64, n)
	total := 0
	for d := range in.cands {
		hull := hullVertices(in.cands[d])
		for _, v := range hull {
			sb.verts = append(sb.verts, point{w: v.w, r: v.r})
		}
		sb.vertAt[d+1] = int32(len(sb.verts))
		hulls[d], r0[d], w0[d] = hullEdges(hull)
		total += len(hulls[d])
		mr, mw := math.Inf(1), math.Inf(1)
		for _, c := range in.cands[d] {
			mr, mw = math.Min(mr, c.r), math.Min(mw, c.w)
		}
		sb.preR[d+1], sb.preW[d+1] = sb.preR[d]+mr, sb.preW[d]+mw
	}
	step := 1
	if math.IsInf(in.capW, 1) {
		step = n + 1 // no budget: only the empty table, everything "between"
	} else if entries := n * (total/2 + 1); entries > maxEntries {
		step = entries/maxEntries + 1
	}
	sb.tables[n] = &suffixTable{}
	sb.next[n] = n
	var merged, buf []edge
	var sr, sw float64
	for d := n - 1; d >= 0; d-- {
		sr, sw = sr+r0[d], sw+w0[d]
		if step <= n {
			buf = mergeEdges(buf[:0], merged, hulls[d])
			merged, buf = buf, merged
		}
		if d%step == 0 && step <= n {
			sb.tables[d] = newSuffixTable(sr, sw, merged)
			sb.next[d] = d
		} else {
			sb.next[d] = sb.next[d+1]
		}
	}
	return sb
}

func newSuffixTable(r0, w0 float64, edges []edge) *suffixTable {
	t := &suffixTable{r0: r0, w0: w0, cum: make([]point, len(edges))}
	var cw, cr float64
	for i, e := range edges {
		cw, cr = cw+e.dw, cr+e.dr
		t.cum[i] = point{cw, cr}
	}
	return t
}

// mergeEdges merges two slope-sorted edge lists into dst.
func mergeEdges(dst, a, b []edge) []edge {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i].slope() <= b[j].slope() {
			dst = append(dst, a[i])
			i++
		} else {
			dst = append(dst, b[j])
			j++
		}
	}
	dst = append(dst, a[i:]...)
	return append(dst, b[j:]...)
}

// hullVertices returns the lower convex hull of (w, r) of one node's
// candidates, walked from the least-r point (least w among ties) towards
// less w, as a list of candidates whose edges have increasing slope.
func hullVertices(cs []cand) []cand {
	pts := make([]cand, len(cs))
	copy(pts, cs)
	sort.Slice(pts, func(a, b int) bool {
		if pts[a].w != pts[b].w {
			return pts[a].w > pts[b].w
		}
		return pts[a].r < pts[b].r
	})
	// Start at the least r (least w among ties).
	s := 0
	for i := range pts {
		if pts[i].r < pts[s].r || (pts[i].r == pts[s].r && pts[i].w < pts[s].w) {
			s = i
		}
	}
	hull := []cand{pts[s]}
	for _, p := range pts[s+1:] {
		last := hull[len(hull)-1]
		if p.w >= last.w {
			continue // same w, larger r
		}
		for len(hull) >= 2 {
			a, b := hull[len(hull)-2], hull[len(hull)-1]
			// Drop b when it lies on or above the segment a-p.
			if (b.r-a.r)*(a.w-p.w) >= (p.r-a.r)*(a.w-b.w) {
				hull = hull[:len(hull)-1]
				continue
			}
			break
		}
		hull = append(hull, p)
	}
	return hull
}

// hullEdges turns the hull vertices of hullVertices into edges of
// increasing slope, plus the starting point.
func hullEdges(hull []cand) (edges []edge, r0, w0 float64) {
	for i := 1; i < len(hull); i++ {
		edges = append(edges, edge{dw: hull[i-1].w - hull[i].w, dr: hull[i].r - hull[i-1].r})
	}
	return edges, hull[0].r, hull[0].w
}
