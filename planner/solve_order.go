package planner

import "math"

// branchOrder returns a topological order of the positions for the search:
// among the positions whose predecessors are all placed it takes the one of
// highest priority, where a position's priority is the largest weight of any
// position reachable from it (itself included), so that the ancestors of an
// important position come early. Ties keep the current order.
func (in *instance) branchOrder(weight []float64) []int {
	n := in.n
	prio := append([]float64(nil), weight...)
	for d := n - 1; d >= 0; d-- {
		for _, s := range in.succs[d] {
			prio[d] = math.Max(prio[d], prio[s])
		}
	}
	indeg := make([]int, n)
	for d := range indeg {
		indeg[d] = len(in.preds[d])
	}
	ready := make([]bool, n)
	for d := range ready {
		ready[d] = indeg[d] == 0
	}
	order := make([]int, 0, n)
	for len(order) < n {
		b := -1
		for d := 0; d < n; d++ {
			if ready[d] && (b < 0 || prio[d] > prio[b] || (prio[d] == prio[b] && weight[d] > weight[b])) {
				b = d
			}
		}
		ready[b] = false
		order = append(order, b)
		for _, s := range in.succs[b] {
			if indeg[s]--; indeg[s] == 0 {
				ready[s] = true
			}
		}
	}
	return order
}

// renumber moves position order[t] to position t, in the instance and in
// the multipliers.
func (in *instance) renumber(order []int, du *duals) {
	n := in.n
	pos := make([]int32, n)
	for t, d := range order {
		pos[d] = int32(t)
	}
	node := make([]int, n)
	cands := make([][]cand, n)
	preds, succs := make([][]int32, n), make([][]int32, n)
	lam := make([]float64, n)
	for t, d := range order {
		node[t], cands[t], lam[t] = in.node[d], in.cands[d], du.lam[d]
		for _, p := range in.preds[d] {
			preds[t] = append(preds[t], pos[p])
		}
		for _, s := range in.succs[d] {
			succs[t] = append(succs[t], pos[s])
		}
	}
	in.node, in.cands, in.preds, in.succs, du.lam = node, cands, preds, succs, lam
	paths := make([][]int32, len(du.paths))
	for i, p := range du.paths {
		q := make([]int32, len(p))
		for t, v := range p {
			q[t] = pos[v]
		}
		paths[i] = q
	}
	du.paths = paths
}

// reorder renumbers the positions so that the search branches first on the
// nodes whose choice moves the latency charge most: the weight of a position
// is the spread of lam*l over its remaining candidates (its latency price
// times how much its latency can vary), and branchOrder pulls heavy positions
// and their ancestors to the front while keeping the order topological, which
// the finish-time charge of the search bound needs.
func (st *state) reorder() {
	if st.closed() {
		return
	}
	in := st.in
	w := make([]float64, in.n)
	for d, cs := range in.cands {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, c := range cs {
			lo, hi = math.Min(lo, c.lp), math.Max(hi, c.lp)
		}
		w[d] = hi - lo
	}
	in.renumber(in.hoistForced(in.branchOrder(w)), st.du)
}

// hoistForced moves every position with a single candidate to just after its
// last predecessor in order (keeping the relative order of the others): it
// adds no branching, and once it is placed its finish time is known, which
// the release charge of the search bound (solve_release.go) uses at once.
func (in *instance) hoistForced(order []int) []int {
	placed := make([]bool, in.n)
	out := make([]int, 0, in.n)
	var place func(d int)
	place = func(d int) {
		placed[d] = true
		out = append(out, d)
		for _, s := range in.succs[d] {
			if placed[s] || len(in.cands[s]) != 1 {
				continue
			}
			ready := true
			for _, p := range in.preds[s] {
				ready = ready && placed[p]
			}
			if ready {
				place(int(s))
			}
		}
	}
	for _, d := range order {
		if !placed[d] {
			place(d)
		}
	}
	return out
}
