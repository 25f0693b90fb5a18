package planner

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// exhaustiveOptimum returns the cost of the cheapest plan of p that meets
// every constraint (with the documented tolerance), by a depth-first
// enumeration in p.Order that prunes a prefix only when it already breaks
// the cost or latency limit (cost and finish times never fall as more nodes
// are assigned), when even the best qualities of the nodes left cannot meet
// the success floor, or when its cost plus the cheapest candidates of the
// nodes left is above the best plan found. It shares no code with the solver. ok is
// false when no plan is feasible.
func exhaustiveOptimum(p *Problem) (best float64, ok bool) {
	n := len(p.Cands)
	rest := make([]float64, n+1)  // cheapest completion of Order[t:]
	restQ := make([]float64, n+1) // best success of Order[t:]
	restQ[n] = 1
	for t := n - 1; t >= 0; t-- {
		m, q := math.Inf(1), 0.0
		for _, c := range p.Cands[p.Order[t]] {
			m, q = math.Min(m, c.Cost), math.Max(q, c.Quality)
		}
		rest[t], restQ[t] = rest[t+1]+m, restQ[t+1]*q
	}
	finish := make([]float64, n)
	best = math.Inf(1)
	var walk func(t int, cost, succ float64)
	walk = func(t int, cost, succ float64) {
		if cost+rest[t] > best || !within(cost, p.MaxCost) || !successOK(succ*restQ[t], p.MinSuccess) {
			return
		}
		if t == n {
			best, ok = cost, true
			return
		}
		v := p.Order[t]
		start := 0.0
		for _, u := range p.Preds[v] {
			start = math.Max(start, finish[u])
		}
		for _, c := range p.Cands[v] {
			finish[v] = start + c.Latency
			if within(finish[v], p.MaxLatency) {
				walk(t+1, cost+c.Cost, succ*c.Quality)
			}
		}
	}
	walk(0, 0, 1)
	return best, ok
}

// hardProblem builds a random instance that is small enough for
// exhaustiveOptimum but makes the search work: a random DAG in which every
// node may follow each earlier one, candidates whose latency and quality
// are unrelated to their cost (so the Lagrangian and LP bounds are loose),
// costs within 20% of each other (many plans within a fraction of a percent
// of the optimum, so that a bound too high by 0.1% already cuts the optimal
// plan on some instances), and a latency cap and a success floor both
// tighter than a random plan's.
func hardProblem(rng *rand.Rand, n, k int) *Problem {
	p := &Problem{Cands: make([][]Candidate, n), Preds: make([][]int, n), Order: make([]int, n)}
	for v := range p.Cands {
		p.Order[v] = v
		for u := 0; u < v; u++ {
			if rng.Float64() < 0.3 {
				p.Preds[v] = append(p.Preds[v], u)
			}
		}
		for j := 0; j < k; j++ {
			p.Cands[v] = append(p.Cands[v], Candidate{Cost: 5 + rng.Float64(),
				Latency: rng.Float64() * 5, Quality: 0.8 + 0.2*rng.Float64()})
		}
	}
	ref := make([]int, n)
	for v := range ref {
		ref[v] = rng.IntN(k)
	}
	_, lat, succ := metrics(p, ref)
	p.MaxLatency = lat * (0.75 + 0.25*rng.Float64())
	p.MinSuccess = math.Min(1, succ*(1+0.1*rng.Float64()))
	return p
}

// TestSolveMatchesExhaustiveOnHarderInstances checks the solver against
// exhaustive enumeration on instances where the search runs for dozens of
// nodes each, so that every bound of the search (quick checks from the
// parent's LP, the skipped searches for a better latency scaling, the
// release charges) cuts subtrees, both run to the end and stopped early
// (when the reported lower bound is the least bound of the open subtrees).
func TestSolveMatchesExhaustiveOnHarderInstances(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var explored int64
	var feasible int
	for it := 0; it < 60; it++ {
		p := hardProblem(rng, 14+it%4, 5)
		want, ok := exhaustiveOptimum(p)
		sol, err := Solve(context.Background(), p, Limits{})
		require.NoError(t, err)
		require.Equal(t, ok, sol.Feasible, "instance %d", it)
		explored += sol.Explored
		if !ok {
			continue
		}
		feasible++
		require.True(t, sol.Optimal, "instance %d: status %s", it, sol.Status)
		require.InDelta(t, want, sol.Cost, 1e-9*math.Max(1, want), "instance %d", it)
		require.True(t, satisfies(p, sol.Choice, true), "instance %d", it)
		// Stopped early, the search reports the least bound of the subtrees
		// it left open: it must not exceed the optimum either.
		for _, limit := range []int64{sol.Explored / 2, sol.Explored / 4, 3} {
			part, err := Solve(context.Background(), p, Limits{MaxExplored: max(limit, 1)})
			require.NoError(t, err)
			require.LessOrEqual(t, part.LowerBound, want+1e-9*math.Max(1, want), "instance %d, limit %d: bound above optimum", it, limit)
		}
	}
	t.Logf("feasible %d of 60, search nodes %d", feasible, explored)
	require.Greater(t, feasible, 30)
}

// TestMinReducedIsMinOverCandidates compares the hull-vertex scan of the
// quick check with a scan of every candidate, on hand-made point sets (ties,
// collinear points, equal w or r, one candidate) and seeded random ones, for
// prices of w from 0 to far beyond every hull slope.
func TestMinReducedIsMinOverCandidates(t *testing.T) {
	pts := func(rw ...float64) []cand {
		var cs []cand
		for i := 0; i+1 < len(rw); i += 2 {
			cs = append(cs, cand{c: rw[i], w: rw[i+1]})
		}
		return cs
	}
	sets := []struct {
		name string
		cs   []cand
	}{
		{"one", pts(1, 1)},
		{"dominated", pts(1, 1, 2, 2)},
		{"trade-off", pts(1, 3, 2, 2, 4, 1)},
		{"collinear", pts(1, 3, 2, 2, 3, 1)},
		{"above hull", pts(1, 3, 3, 2.5, 4, 1)},
		{"equal w", pts(1, 2, 3, 2, 2, 1)},
		{"equal r", pts(2, 3, 2, 1, 5, 0)},
		{"duplicates", pts(1, 2, 1, 2, 3, 0.5, 3, 0.5)},
		{"zero w", pts(0, 5, 7, 0, 3, 1)},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200; i++ {
		cs := make([]cand, 1+rng.IntN(12))
		for j := range cs {
			cs[j] = cand{c: rng.Float64(), w: rng.Float64() * 0.2, l: rng.Float64() * 5, lp: rng.Float64() * 0.01}
		}
		sets = append(sets, struct {
			name string
			cs   []cand
		}{"random", cs})
	}
	for _, set := range sets {
		in := &instance{n: 1, cands: [][]cand{set.cs}, preds: make([][]int32, 1), succs: make([][]int32, 1), capW: 1}
		for _, alpha := range []float64{0, 1, 3} {
			sb := newSuffixBound(in, alpha, maxTableEntries)
			for _, sigma := range []float64{0, 0.1, 0.5, 1, 2, 10, 1e3, 1e9} {
				want := math.Inf(1)
				for _, c := range set.cs {
					want = math.Min(want, c.c+alpha*c.lp+sigma*c.w)
				}
				got := sb.minReduced(0, sigma)
				require.InDelta(t, want, got, 1e-12*math.Max(1, math.Abs(want)), "%s alpha %g sigma %g", set.name, alpha, sigma)
			}
		}
	}
}
