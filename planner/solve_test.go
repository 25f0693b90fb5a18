package planner

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// oracleResult is the exhaustive-search answer for a problem.
type oracleResult struct {
	feasible bool
	cost     float64 // optimum when feasible
	// ignoring MaxCost (but keeping latency, success and Accept)
	feasibleNoCost bool
	costNoCost     float64
}

// metrics computes cost, latency and success of a choice independently of
// the solver (node-index longest path by repeated relaxation).
func metrics(p *Problem, choice []int) (cost, lat, succ float64) {
	n := len(p.Cands)
	finish := make([]float64, n)
	succ = 1
	for i := 0; i < n; i++ {
		c := p.Cands[i][choice[i]]
		cost += c.Cost
		succ *= c.Quality
	}
	// n rounds of relaxation are enough for a DAG with n nodes.
	for round := 0; round < n; round++ {
		for i := 0; i < n; i++ {
			s := 0.0
			if p.Preds != nil {
				for _, u := range p.Preds[i] {
					s = math.Max(s, finish[u])
				}
			}
			finish[i] = s + p.Cands[i][choice[i]].Latency
		}
	}
	for _, f := range finish {
		lat = math.Max(lat, f)
	}
	return cost, lat, succ
}

// within applies the documented tolerance rule to cost and latency.
func within(v, bound float64) bool {
	return bound == 0 || v <= bound+1e-9*math.Max(1, bound)
}

// successOK applies the documented tolerance rule to success.
func successOK(s, min float64) bool {
	return min == 0 || s >= min*math.Exp(-1e-9)
}

// satisfies reports whether choice meets latency and success (and, when
// withCost, the cost bound) and Accept.
func satisfies(p *Problem, choice []int, withCost bool) bool {
	cost, lat, succ := metrics(p, choice)
	if withCost && !within(cost, p.MaxCost) {
		return false
	}
	if !within(lat, p.MaxLatency) || !successOK(succ, p.MinSuccess) {
		return false
	}
	return p.Accept == nil || p.Accept(append([]int(nil), choice...))
}

// oracle enumerates every assignment.
func oracle(p *Problem) oracleResult {
	n := len(p.Cands)
	res := oracleResult{cost: math.Inf(1), costNoCost: math.Inf(1)}
	choice := make([]int, n)
	for {
		cost, _, _ := metrics(p, choice)
		if satisfies(p, choice, false) {
			res.feasibleNoCost = true
			res.costNoCost = math.Min(res.costNoCost, cost)
			if within(cost, p.MaxCost) {
				res.feasible = true
				res.cost = math.Min(res.cost, cost)
			}
		}
		i := 0
		for ; i < n; i++ {
			if choice[i]++; choice[i] < len(p.Cands[i]) {
				break
			}
			choice[i] = 0
		}
		if i == n {
			return res
		}
	}
}

// randomProblem builds a small random instance whose constraints are derived
// from a random reference plan, so that they bind in some instances and make
// others infeasible.
func randomProblem(rng *rand.Rand) *Problem {
	n := 1 + rng.IntN(8)
	perm := rng.Perm(n)
	p := &Problem{Cands: make([][]Candidate, n), Preds: make([][]int, n), Order: perm}
	for d, v := range perm {
		for e := 0; e < d; e++ {
			if rng.Float64() < 0.35 {
				p.Preds[v] = append(p.Preds[v], perm[e])
			}
		}
	}
	if rng.IntN(4) == 0 {
		p.Order = nil // let the solver compute one
	}
	for i := range p.Cands {
		k := 1 + rng.IntN(5)
		for j := 0; j < k; j++ {
			c := Candidate{Cost: rng.Float64() * 10, Latency: rng.Float64() * 5, Quality: 0.5 + 0.5*rng.Float64()}
			switch rng.IntN(10) {
			case 0:
				c.Quality = 1
			case 1:
				c.Latency = 0
			case 2:
				c.Cost = 0
			case 3:
				if j > 0 { // exact duplicate of the previous candidate
					c = p.Cands[i][j-1]
				}
			}
			p.Cands[i] = append(p.Cands[i], c)
		}
	}
	ref := make([]int, n)
	for i := range ref {
		ref[i] = rng.IntN(len(p.Cands[i]))
	}
	cost, lat, succ := metrics(p, ref)
	if rng.Float64() < 0.7 {
		p.MaxCost = cost * (0.6 + 0.6*rng.Float64())
	}
	if rng.Float64() < 0.7 {
		p.MaxLatency = lat * (0.7 + 0.4*rng.Float64())
	}
	if rng.Float64() < 0.7 {
		p.MinSuccess = math.Min(1, succ*(0.9+0.4*rng.Float64()))
	}
	if rng.IntN(3) == 0 {
		salt := rng.Uint64()
		p.Accept = func(choice []int) bool { // rejects about a third of all plans
			h := salt
			for _, c := range choice {
				h = (h ^ uint64(c)) * 1099511628211
			}
			return h%3 != 0
		}
	}
	return p
}

func TestSolveMatchesOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var feasible, infeasible, withAccept int
	for it := 0; it < 600; it++ {
		p := randomProblem(rng)
		want := oracle(p)
		sol, err := Solve(context.Background(), p, Limits{})
		require.NoError(t, err, "instance %d", it)
		require.Equal(t, want.feasible, sol.Feasible, "instance %d: feasibility", it)
		if p.Accept != nil {
			withAccept++
		}
		if !want.feasible {
			infeasible++
			require.Equal(t, StatusInfeasible, sol.Status, "instance %d", it)
			require.NotNil(t, sol.Diagnosis, "instance %d", it)
			checkDiagnosis(t, p, want, sol.Diagnosis, it)
			continue
		}
		feasible++
		require.Equal(t, StatusOptimal, sol.Status, "instance %d", it)
		require.True(t, sol.Optimal)
		require.InDelta(t, want.cost, sol.Cost, 1e-9*math.Max(1, want.cost), "instance %d: cost", it)
		require.True(t, satisfies(p, sol.Choice, true), "instance %d: returned plan violates constraints", it)
		cost, lat, succ := metrics(p, sol.Choice)
		assert.InDelta(t, cost, sol.Cost, 1e-9)
		assert.InDelta(t, lat, sol.Latency, 1e-9)
		assert.InDelta(t, succ, sol.Success, 1e-12)
		assert.LessOrEqual(t, sol.LowerBound, sol.Cost+1e-9)
		assert.Zero(t, sol.Gap)
	}
	t.Logf("feasible %d, infeasible %d, with Accept %d", feasible, infeasible, withAccept)
	assert.Greater(t, feasible, 100)
	assert.Greater(t, infeasible, 50)
}

// checkDiagnosis compares the infeasibility figures with brute force.
func checkDiagnosis(t *testing.T, p *Problem, want oracleResult, d *Diagnosis, it int) {
	t.Helper()
	minCost, maxSucc := 0.0, 1.0
	for _, cs := range p.Cands {
		mc, mq := math.Inf(1), 0.0
		for _, c := range cs {
			mc, mq = math.Min(mc, c.Cost), math.Max(mq, c.Quality)
		}
		minCost += mc
		maxSucc *= mq
	}
	assert.InDelta(t, minCost, d.MinCost, 1e-9, "instance %d", it)
	assert.InDelta(t, maxSucc, d.MaxSuccess, 1e-12, "instance %d", it)
	require.True(t, d.MinCostWithinLimitsExact, "instance %d", it)
	if want.feasibleNoCost {
		assert.InDelta(t, want.costNoCost, d.MinCostWithinLimits, 1e-9*math.Max(1, want.costNoCost), "instance %d", it)
	} else {
		assert.True(t, math.IsInf(d.MinCostWithinLimits, 1), "instance %d", it)
	}
}

// TestSolveLimitedBoundsAreValid stops the search after a few nodes and
// checks that what is reported is still true.
func TestSolveLimitedBoundsAreValid(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for it := 0; it < 300; it++ {
		p := randomProblem(rng)
		want := oracle(p)
		sol, err := Solve(context.Background(), p, Limits{MaxExplored: int64(1 + it%4)})
		require.NoError(t, err)
		if sol.Feasible {
			require.True(t, want.feasible, "instance %d", it)
			require.True(t, satisfies(p, sol.Choice, true), "instance %d", it)
			require.GreaterOrEqual(t, sol.Cost, want.cost-1e-9*math.Max(1, want.cost))
			require.GreaterOrEqual(t, sol.Gap, 0.0)
			if sol.Optimal {
				require.InDelta(t, want.cost, sol.Cost, 1e-9*math.Max(1, want.cost), "instance %d", it)
			}
		}
		if sol.Status == StatusInfeasible {
			require.False(t, want.feasible, "instance %d", it)
		}
		if want.feasible {
			require.LessOrEqual(t, sol.LowerBound, want.cost+1e-9*math.Max(1, want.cost), "instance %d: bound above optimum", it)
		}
		if sol.Status == StatusFeasible || sol.Status == StatusUnknown {
			require.Equal(t, "max-explored", sol.Stopped)
		}
	}
}

func TestSolveEdgeCases(t *testing.T) {
	chain := func(n int, cs ...Candidate) *Problem {
		p := &Problem{Cands: make([][]Candidate, n), Preds: make([][]int, n)}
		for i := range p.Cands {
			p.Cands[i] = cs
			if i > 0 {
				p.Preds[i] = []int{i - 1}
			}
		}
		return p
	}
	cheap := Candidate{Cost: 1, Latency: 1, Quality: 0.9}
	dear := Candidate{Cost: 5, Latency: 3, Quality: 0.99}
	fast := Candidate{Cost: 3, Latency: 0.5, Quality: 0.95}
	tests := []struct {
		name     string
		p        *Problem
		status   Status
		cost     float64
		choice   []int
		validate func(t *testing.T, s Solution)
	}{
		{name: "single node", p: &Problem{Cands: [][]Candidate{{dear, cheap}}}, status: StatusOptimal, cost: 1, choice: []int{1}},
		{name: "single node with success", p: &Problem{Cands: [][]Candidate{{dear, cheap}}, MinSuccess: 0.95},
			status: StatusOptimal, cost: 5, choice: []int{0}},
		{name: "empty workflow", p: &Problem{}, status: StatusOptimal, cost: 0, choice: []int{}},
		{name: "no constraints", p: chain(4, dear, cheap, fast), status: StatusOptimal, cost: 4, choice: []int{1, 1, 1, 1}},
		{name: "latency binds", p: func() *Problem { q := chain(3, cheap, fast); q.MaxLatency = 2; return q }(),
			status: StatusOptimal, cost: 1 + 3 + 3},
		{name: "success binds", p: func() *Problem { q := chain(2, cheap, dear); q.MinSuccess = 0.9 * 0.99; return q }(),
			status: StatusOptimal, cost: 6},
		{name: "success exactly at bound", p: func() *Problem { q := chain(3, cheap); q.MinSuccess = 0.9 * 0.9 * 0.9; return q }(),
			status: StatusOptimal, cost: 3},
		{name: "latency unreachable", p: func() *Problem { q := chain(3, cheap, fast); q.MaxLatency = 1; return q }(),
			status: StatusInfeasible, validate: func(t *testing.T, s Solution) {
				assert.InDelta(t, 1.5, s.Diagnosis.MinLatency, 1e-12)
				assert.True(t, math.IsInf(s.Diagnosis.MinCostWithinLimits, 1))
				assert.True(t, s.Diagnosis.MinCostWithinLimitsExact)
			}},
		{name: "success unreachable", p: func() *Problem { q := chain(2, cheap, dear); q.MinSuccess = 0.99; return q }(),
			status: StatusInfeasible, validate: func(t *testing.T, s Solution) {
				assert.InDelta(t, 0.99*0.99, s.Diagnosis.MaxSuccess, 1e-12)
			}},
		{name: "budget too small", p: func() *Problem { q := chain(2, cheap, dear); q.MaxCost = 1.5; return q }(),
			status: StatusInfeasible, validate: func(t *testing.T, s Solution) {
				assert.InDelta(t, 2, s.Diagnosis.MinCost, 1e-12)
				assert.InDelta(t, 2, s.Diagnosis.MinCostWithinLimits, 1e-12)
				assert.True(t, s.Diagnosis.MinCostWithinLimitsExact)
			}},
		{name: "latency and success jointly impossible", p: func() *Problem {
			q := chain(2, cheap, dear)
			q.MaxLatency, q.MinSuccess = 2, 0.95
			return q
		}(), status: StatusInfeasible, validate: func(t *testing.T, s Solution) {
			assert.LessOrEqual(t, s.Diagnosis.MinLatency, 2.0)
			assert.GreaterOrEqual(t, s.Diagnosis.MaxSuccess, 0.95)
			assert.True(t, math.IsInf(s.Diagnosis.MinCostWithinLimits, 1))
		}},
		{name: "accept rejects all", p: func() *Problem {
			q := chain(2, cheap, dear)
			q.Accept = func([]int) bool { return false }
			return q
		}(), status: StatusInfeasible, validate: func(t *testing.T, s Solution) {
			assert.GreaterOrEqual(t, s.Rejected, int64(4))
		}},
		{name: "accept forces dominated plan", p: func() *Problem {
			q := &Problem{Cands: [][]Candidate{{cheap, {Cost: 2, Latency: 2, Quality: 0.8}}}}
			q.Accept = func(c []int) bool { return c[0] == 1 }
			return q
		}(), status: StatusOptimal, cost: 2, choice: []int{1}},
		{name: "zero latency everywhere", p: func() *Problem {
			z := []Candidate{{Cost: 2, Quality: 0.9}, {Cost: 1, Quality: 0.8}}
			q := chain(3, z...)
			q.MaxLatency = 1e-6
			return q
		}(), status: StatusOptimal, cost: 3, validate: func(t *testing.T, s Solution) { assert.Zero(t, s.Latency) }},
		{name: "quality one and MinSuccess one", p: func() *Problem {
			q := chain(3, cheap, Candidate{Cost: 4, Latency: 1, Quality: 1})
			q.MinSuccess = 1
			return q
		}(), status: StatusOptimal, cost: 12, choice: []int{1, 1, 1}},
		{name: "zero cost plan", p: chain(2, Candidate{Quality: 0.5}, Candidate{Cost: 1, Quality: 1}), status: StatusOptimal, cost: 0},
		{name: "diamond latency", p: &Problem{
			Cands: [][]Candidate{{cheap}, {cheap, fast}, {cheap, fast}, {cheap}},
			Preds: [][]int{nil, {0}, {0}, {1, 2}}, MaxLatency: 2.5,
		}, status: StatusOptimal, cost: 8, choice: []int{0, 1, 1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Solve(context.Background(), tc.p, Limits{})
			require.NoError(t, err)
			require.Equal(t, tc.status, s.Status, "status %s", s.Status)
			if tc.status == StatusOptimal {
				assert.True(t, s.Feasible && s.Optimal)
				assert.InDelta(t, tc.cost, s.Cost, 1e-12)
				assert.True(t, satisfies(tc.p, s.Choice, true))
				assert.Nil(t, s.Diagnosis)
			} else {
				assert.False(t, s.Feasible)
				assert.Nil(t, s.Choice)
				require.NotNil(t, s.Diagnosis)
			}
			if tc.choice != nil {
				assert.Equal(t, tc.choice, s.Choice)
			}
			if tc.validate != nil {
				tc.validate(t, s)
			}
		})
	}
}

func TestSolveRejectsMalformedInput(t *testing.T) {
	ok := []Candidate{{Cost: 1, Latency: 1, Quality: 0.9}}
	tests := []struct {
		name string
		p    *Problem
		want string
	}{
		{"nil problem", nil, "nil Problem"},
		{"empty candidates", &Problem{Cands: [][]Candidate{ok, {}}}, "Cands[1] is empty"},
		{"quality zero", &Problem{Cands: [][]Candidate{{{Cost: 1, Quality: 0}}}}, "Cands[0][0]: Quality"},
		{"quality above one", &Problem{Cands: [][]Candidate{{{Cost: 1, Quality: 1.5}}}}, "Quality = 1.5"},
		{"negative cost", &Problem{Cands: [][]Candidate{{{Cost: -1, Quality: 1}}}}, "Cost = -1"},
		{"NaN latency", &Problem{Cands: [][]Candidate{{{Latency: math.NaN(), Quality: 1}}}}, "Latency = NaN"},
		{"preds length", &Problem{Cands: [][]Candidate{ok, ok}, Preds: [][]int{nil}}, "Preds has 1 entries"},
		{"pred out of range", &Problem{Cands: [][]Candidate{ok}, Preds: [][]int{{3}}}, "Preds[0] contains 3"},
		{"self loop", &Problem{Cands: [][]Candidate{ok}, Preds: [][]int{{0}}}, "Preds[0] contains 0"},
		{"cycle", &Problem{Cands: [][]Candidate{ok, ok}, Preds: [][]int{{1}, {0}}}, "cycle"},
		{"order not topological", &Problem{Cands: [][]Candidate{ok, ok}, Preds: [][]int{nil, {0}}, Order: []int{1, 0}}, "must be topological"},
		{"order repeated", &Problem{Cands: [][]Candidate{ok, ok}, Order: []int{0, 0}}, "Order[1] = 0"},
		{"order short", &Problem{Cands: [][]Candidate{ok, ok}, Order: []int{0}}, "Order has 1 entries"},
		{"negative MaxCost", &Problem{Cands: [][]Candidate{ok}, MaxCost: -1}, "MaxCost = -1"},
		{"MinSuccess above one", &Problem{Cands: [][]Candidate{ok}, MinSuccess: 2}, "MinSuccess = 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Solve(context.Background(), tc.p, Limits{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestSolveHonoursCancelledContext(t *testing.T) {
	p := benchProblem(200, 50, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := Solve(ctx, p, Limits{})
	require.NoError(t, err)
	assert.Equal(t, "context", s.Stopped)
	assert.Contains(t, []Status{StatusFeasible, StatusUnknown}, s.Status)
}

func TestSolveTimeoutReturnsIncumbentWithGap(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	p := benchProblem(1000, 50, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	s, err := Solve(ctx, p, Limits{})
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 3*time.Second, "solver must stop soon after the deadline")
	require.True(t, s.Feasible, "status %s", s.Status)
	assert.True(t, satisfies(p, s.Choice, true))
	assert.GreaterOrEqual(t, s.Gap, 0.0)
	assert.LessOrEqual(t, s.LowerBound, s.Cost)
	t.Logf("status %s gap %.3g explored %d in %v", s.Status, s.Gap, s.Explored, s.Elapsed)
}

// TestSolveBenchInstancesAreValid makes sure the benchmark generator yields
// feasible, constrained instances that the solver answers consistently.
func TestSolveBenchInstancesAreValid(t *testing.T) {
	for _, size := range []struct{ n, k int }{{50, 10}, {50, 50}} {
		t.Run(fmt.Sprintf("n%d_k%d", size.n, size.k), func(t *testing.T) {
			p := benchProblem(size.n, size.k, 1)
			s, err := Solve(context.Background(), p, Limits{})
			require.NoError(t, err)
			require.True(t, s.Optimal, "status %s gap %g", s.Status, s.Gap)
			require.True(t, satisfies(p, s.Choice, true))
			// Every constraint matters: dropping it changes the optimum.
			for _, drop := range []func(q *Problem){
				func(q *Problem) { q.MaxLatency = 0 },
				func(q *Problem) { q.MinSuccess = 0 },
			} {
				q := *p
				drop(&q)
				s2, err := Solve(context.Background(), &q, Limits{})
				require.NoError(t, err)
				assert.Less(t, s2.Cost, s.Cost-1e-12)
			}
		})
	}
}
