package planner

// Release-time latency charge of the search bound.
//
// Every latency path P with normalised multiplier mu_P is charged in the
// search bound with mu_P*T_P, where T_P is a time that the open part of P
// cannot start before. While the search assigns positions in topological
// order, the first open node v of P cannot start before rel(v), the latest
// finish of its assigned predecessors, whichever predecessor P itself comes
// through (for a path that has not started yet, P begins at v). So
//
//	T_P = rel(v)        for the first open node v of P, or
//	T_P = finish(last)  once P is fully assigned,
//
// and every completion satisfies T_P + (latency of the open nodes of P) <=
// capL. Charging rel(v) rather than the finish of P's own predecessor lets a
// late sibling tighten the bound of every path into v before v is branched
// on. The charge phi = sum_P mu_P*T_P is updated per child in O(successors):
// assigning position d with finish f moves the paths through d from rel(d)
// to f (c.lp), and raises rel(s) of every successor s to at least f, which
// moves the paths entering s from d from f to rel(s), and those already
// waiting at s from the old rel(s) to the new one.

// initRelease sets up the edge flows of the multipliers du and the release
// state of the root: nothing assigned, rel = 0, and only the paths that
// start at a node are waiting there.
func (s *searcher) initRelease(du *duals) {
	in := s.in
	s.outflow, s.inTot = in.pathFlows(du.paths, du.mu)
	s.rel = make([]float64, in.n)
	s.saved = make([][]float64, in.n)
	for d := range s.saved {
		s.saved[d] = make([]float64, 2*len(in.succs[d]))
	}
}

// pathFlows splits path multipliers over the DAG's edges: outflow[d][i] is
// the (normalised) multiplier mass of the paths that go from d to
// succs[d][i], and src[v] that of the paths starting at v. Paths are stored
// from their end back to their start.
func (in *instance) pathFlows(paths [][]int32, mu []float64) (outflow [][]float64, src []float64) {
	outflow, src = make([][]float64, in.n), make([]float64, in.n)
	for d := range outflow {
		outflow[d] = make([]float64, len(in.succs[d]))
	}
	for i, m := range mu {
		if m <= 0 {
			continue
		}
		m /= in.capL
		p := paths[i]
		for t := 0; t+1 < len(p); t++ {
			v, u := p[t], p[t+1]
			for k, q := range in.succs[u] {
				if q == v {
					outflow[u][k] += m
				}
			}
		}
		src[p[len(p)-1]] += m
	}
	return outflow, src
}

// releaseCharge returns the increase of phi at the successors of d when d
// finishes at f (see the comment at the top of this file). It is never
// negative: each term is a multiplier mass (>= 0) times the amount by which
// a release time rises or a path has to wait (>= 0); the quick check of the
// search relies on this.
func (s *searcher) releaseCharge(d int, f float64) float64 {
	e := 0.0
	for i, v := range s.in.succs[d] {
		r := s.rel[v]
		if f > r {
			e += s.inTot[v] * (f - r)
		} else {
			e += s.outflow[d][i] * (r - f)
		}
	}
	return e
}

// release records that d finishes at f, saving the successors' state.
func (s *searcher) release(d int, f float64) {
	sv := s.saved[d]
	for i, v := range s.in.succs[d] {
		sv[2*i], sv[2*i+1] = s.rel[v], s.inTot[v]
		if f > s.rel[v] { // times are never NaN: plain max
			s.rel[v] = f
		}
		s.inTot[v] += s.outflow[d][i]
	}
}

// unrelease undoes release(d, ...).
func (s *searcher) unrelease(d int) {
	sv := s.saved[d]
	for i, v := range s.in.succs[d] {
		s.rel[v], s.inTot[v] = sv[2*i], sv[2*i+1]
	}
}
