package planner

import (
	"cmp"
	"math"
	"slices"
)

// Primal heuristics: turn a (possibly infeasible) assignment into a feasible
// plan by greedy repair, then lower its cost by a downgrade local search.
// Assignments are x[d] = index into instance.cands[d].

// workspace holds the buffers the heuristics reuse.
type workspace struct {
	x          []int32
	head, tail []float64
}

func newWorkspace(n int) *workspace {
	return &workspace{x: make([]int32, n), head: make([]float64, n), tail: make([]float64, n)}
}

// measure returns cost, sum of w and latency of x, and fills head[d] (start
// time of d) and tail[d] (longest path after d, excluding d).
func (in *instance) measure(x []int32, head, tail []float64) (cost, w, lat float64) {
	for d := 0; d < in.n; d++ {
		c := &in.cands[d][x[d]]
		cost += c.c
		w += c.w
		s := 0.0
		for _, p := range in.preds[d] {
			s = math.Max(s, head[p]+in.cands[p][x[p]].l)
		}
		head[d] = s
		lat = math.Max(lat, s+c.l)
	}
	for d := in.n - 1; d >= 0; d-- {
		t := 0.0
		for _, s := range in.succs[d] {
			t = math.Max(t, tail[s]+in.cands[s][x[s]].l)
		}
		tail[d] = t
	}
	return cost, w, lat
}

// swap is a proposed change of one node's candidate with its benefit per
// extra dollar.
type swap struct {
	d, j  int
	ratio float64
}

// repair makes ws.x feasible for the latency and success caps. It works in
// rounds: each round proposes, for every node that can help, its best swap
// (most improvement per extra dollar) and applies the proposals in order of
// that ratio until the violation is gone or the proposals run out. While
// success is violated a swap must not raise the latency above max(current,
// cap); while latency is violated only critical nodes move, and a swap must
// keep success feasible. It returns false when it gets stuck, or when the
// context expires and stoppable is set (the caller passes false while no
// plan is known yet, so that a deadline still yields one plan).
func (in *instance) repair(ws *workspace, stoppable bool) bool {
	for round := 0; round < 2*in.n+16 && !(stoppable && in.expired()); round++ {
		_, w, lat := in.measure(ws.x, ws.head, ws.tail)
		if w <= in.capW && lat <= in.capL {
			return true
		}
		props := in.proposals(ws, w, lat)
		if len(props) == 0 {
			return false
		}
		slices.SortFunc(props, func(a, b swap) int { return cmp.Compare(b.ratio, a.ratio) })
		in.applyProposals(ws, props, w > in.capW)
	}
	return false
}

// proposals returns the best swap of every node that can reduce the current
// violation (success first, then latency).
func (in *instance) proposals(ws *workspace, w, lat float64) []swap {
	fixW := w > in.capW
	var props []swap
	for d := 0; d < in.n; d++ {
		cur := &in.cands[d][ws.x[d]]
		if !fixW && ws.head[d]+cur.l+ws.tail[d] < lat-1e-12*math.Max(1, lat) {
			continue // not on a critical path
		}
		bj, br := -1, 0.0
		for j := range in.cands[d] {
			c := &in.cands[d][j]
			var gain float64
			if fixW {
				if c.w >= cur.w || ws.head[d]+c.l+ws.tail[d] > math.Max(lat, in.capL) {
					continue
				}
				gain = (cur.w - c.w) / in.capW
			} else {
				if c.l >= cur.l || w-cur.w+c.w > in.capW {
					continue
				}
				gain = (cur.l - c.l) / in.capL
			}
			if r := gain / math.Max(c.c-cur.c, 1e-12); r > br {
				bj, br = j, r
			}
		}
		if bj >= 0 {
			props = append(props, swap{d, bj, br})
		}
	}
	return props
}

// applyProposals applies the sorted proposals while they remain valid and
// the violation they address persists.
func (in *instance) applyProposals(ws *workspace, props []swap, fixW bool) {
	_, w, lat := in.measure(ws.x, ws.head, ws.tail)
	for _, p := range props {
		cur, c := &in.cands[p.d][ws.x[p.d]], &in.cands[p.d][p.j]
		through := ws.head[p.d] + cur.l + ws.tail[p.d]
		if fixW {
			if w <= in.capW {
				return
			}
			if ws.head[p.d]+c.l+ws.tail[p.d] > math.Max(lat, in.capL) {
				continue
			}
		} else {
			if lat <= in.capL {
				return
			}
			if through < lat-1e-12*math.Max(1, lat) || w-cur.w+c.w > in.capW {
				continue
			}
		}
		ws.x[p.d] = int32(p.j)
		_, w, lat = in.measure(ws.x, ws.head, ws.tail)
	}
}

// improve lowers the cost of the feasible assignment ws.x by moving single
// nodes to the cheapest candidate that keeps every constraint, until no such
// move exists. It returns the final cost.
func (in *instance) improve(ws *workspace) float64 {
	x := ws.x
	for changed := true; changed; {
		changed = false
		_, w, _ := in.measure(x, ws.head, ws.tail)
		for d := 0; d < in.n; d++ {
			cur := &in.cands[d][x[d]]
			bj, bc := -1, cur.c
			for j := range in.cands[d] {
				c := &in.cands[d][j]
				if c.c < bc && w-cur.w+c.w <= in.capW && ws.head[d]+c.l+ws.tail[d] <= in.capL {
					bj, bc = j, c.c
				}
			}
			if bj < 0 {
				continue
			}
			nc := &in.cands[d][bj]
			x[d] = int32(bj)
			changed = true
			if nc.l > cur.l {
				_, w, _ = in.measure(x, ws.head, ws.tail)
			} else {
				// Shorter latency only shortens other paths: the stored
				// heads and tails stay valid upper bounds.
				w += nc.w - cur.w
			}
		}
	}
	cost, _, _ := in.measure(x, ws.head, ws.tail)
	return cost
}
