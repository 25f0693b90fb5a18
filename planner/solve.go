package planner

// # The assignment problem solved by Solve
//
// A workflow is a directed acyclic graph of n steps (nodes). Every node i has
// k_i >= 1 candidates j (a model, or a model with settings), each described by
// three estimates:
//
//	c_ij >= 0      expected cost in USD
//	l_ij >= 0      latency in seconds
//	q_ij in (0,1]  quality: probability that the step succeeds
//
// A plan picks exactly one candidate x(i) per node. Its figures are
//
//	cost(x)    = sum_i c_i,x(i)
//	latency(x) = longest path through the DAG when every node weighs
//	             l_i,x(i) (steps run as soon as all predecessors are done)
//	success(x) = prod_i q_i,x(i)
//
// Solve minimises cost(x) subject to the optional constraints
//
//	cost(x)    <= MaxCost
//	latency(x) <= MaxLatency
//	success(x) >= MinSuccess, evaluated in log space as
//	             sum_i -ln q_i,x(i) <= -ln MinSuccess
//	Accept(x)  == true       (arbitrary caller rule, complete plans only)
//
// This is a multiple-choice knapsack problem with an extra longest-path
// resource; it is NP-hard, so Solve is an exact branch and bound that can be
// stopped by a deadline or a node budget and then reports a proven gap.
//
// # Tolerance
//
// All constraint checks use one rule, with Tolerance = 1e-9:
//
//	cost, latency: value <= bound + Tolerance*max(1, bound)
//	success:       sum -ln q <= -ln MinSuccess + Tolerance
//	               (i.e. success >= MinSuccess*exp(-1e-9), a relative slack)
//
// A plan is called optimal when no plan satisfying the constraints is cheaper
// by more than a relative 1e-10 (gapTol) of its cost.
//
// # Method (stages, each in its own file)
//
//  1. prefilter (solve_prefilter.go): validate input, renumber nodes by
//     topological position, convert quality to -ln q, drop candidates that
//     are dominated at their node (no worse in cost, latency and quality;
//     skipped when Accept is set, because Accept may reject the dominating
//     plan), and drop candidates that cannot be in any feasible plan even
//     when every other node takes its individually best value (cost, success,
//     and latency via the fastest longest path before and after the node).
//     Repeated to a fixpoint.
//  2. bound (solve_bound.go): Lagrangian relaxation of the success constraint
//     and of the latency constraint. Latency is relaxed path by path: a
//     multiplier mu_P >= 0 per source-to-sink path P gives each node the price
//     lambda_i = sum of mu_P over paths through i, and for any feasible plan
//     sum_i lambda_i*l_i <= (sum_P mu_P)*MaxLatency. Paths are generated on
//     demand (the critical path of each relaxed solution). Multipliers are
//     tuned by a Polyak subgradient method. The relaxed problem separates per
//     node, so every relaxed solution is also repaired greedily into a
//     feasible plan and improved by a downgrade local search (solve_heur.go),
//     which gives the first incumbents. Every fixEvery steps, and once more
//     at the end, candidates whose reduced cost under the best multipliers
//     so far proves they cannot beat the incumbent are removed (variable
//     fixing) together with the filters of stage 1; the shrinking lists make
//     later steps cheaper and the bound (on improving plans) stronger.
//  3. order (solve_order.go): renumber the nodes for branching, still
//     topologically: a node weighs the spread of lambda_i*l over its
//     remaining candidates (how much its choice can move the latency
//     charge), and among the nodes whose predecessors are placed the one
//     with the heaviest node reachable from it goes next. Deciding the
//     latency-critical choices first lets the finish-time charge below
//     bite early (on the benchmark 10-100x fewer search nodes than plain
//     topological order). Nodes left with a single candidate are then
//     hoisted to just after their last predecessor: they cost no branching
//     and make their finish time known early.
//  4. search (solve_search.go, solve_release.go, solve_lp.go,
//     solve_memo.go): depth-first branch and bound over nodes in that
//     order. The bound of a search node combines three things: the exact
//     LP relaxation of the success budget left for the open nodes (per-node
//     lower convex hulls of (-ln q, price) merged by slope, tabulated per
//     suffix, solve_lp.go); the latency multipliers, charged with release
//     times (a path whose first open node is v cannot go on before rel(v),
//     the latest finish among v's assigned predecessors, whichever of them
//     the path comes through; updated per child in O(successors),
//     solve_release.go); and the best of several scalings alpha of those
//     latency multipliers, so the bound follows how much latency the prefix
//     used. The bound is concave in alpha, so the scan climbs from the
//     scaling that won last time at the same depth and stops at the peak or
//     as soon as the node is cut; while the peak of a depth stays put, the
//     climb is only tried every few calls (any scaling gives a valid bound).
//     Before that, an LP-duality reduced cost from the node's own bound
//     (whose LP value and price of w its parent computed) cuts most
//     hopeless children without any table lookup, and often without the
//     release charge, which can only raise it. Children are visited in ascending bound;
//     a child is cut when its bound reaches the incumbent (or MaxCost),
//     when success cannot be met even with the best quality left, or when
//     its finish time plus the fastest remaining tail exceeds MaxLatency.
//     Without a latency cap, a memo of completely explored states (cost,
//     success used) cuts states they dominate (not used with Accept;
//     switched off at depths where it rarely cuts; with a cap, states also
//     differ in release times, dominance is rare and checking it costs more
//     than it saves). Accept is asked only for complete plans that would
//     improve the incumbent; a rejection just continues the search, so the
//     search stays complete.
//
// The search returns early when the lower bound meets the incumbent. When a
// limit stops it, the lower bound is the smallest bound of any subtree not yet
// explored, and Gap = (Cost - LowerBound) / Cost. Every stage polls the
// context (the setup stages between passes), so a deadline is kept even when
// it falls before the search starts.

import (
	"context"
	"math"
	"time"
)

// Tolerance is the slack allowed on every constraint; see the package comment
// on Solve for how it is applied.
const Tolerance = 1e-9

// gapTol is the relative difference below which a lower bound proves that the
// incumbent is optimal, and below which a new plan does not count as better.
const gapTol = 1e-10

// Candidate is one option for one node.
type Candidate struct {
	Cost    float64 // expected cost in USD, >= 0
	Latency float64 // expected latency in seconds, >= 0
	Quality float64 // success probability, in (0, 1]
}

// Problem is one instance. Zero values of MaxCost, MaxLatency and MinSuccess
// mean "no constraint". Solve does not modify it.
type Problem struct {
	// Cands[i] lists the candidates of node i; each node needs at least one.
	Cands [][]Candidate
	// Preds[i] lists the indices of the nodes that must finish before node i
	// starts. nil means no edges at all.
	Preds [][]int
	// Order is a topological order of the nodes (every predecessor before
	// its successors). nil lets Solve compute one.
	Order []int
	// MaxCost bounds the total expected cost in USD.
	MaxCost float64
	// MaxLatency bounds the longest path in seconds.
	MaxLatency float64
	// MinSuccess bounds the product of the chosen qualities from below.
	MinSuccess float64
	// Accept, when set, is asked about complete plans that satisfy every
	// other constraint; choice[i] is the candidate index of node i. The slice
	// is reused by the solver: copy it to keep it. Returning false makes the
	// solver look for the next best plan.
	Accept func(choice []int) bool
}

// Limits bounds the effort of Solve. The deadline comes from the context.
type Limits struct {
	// MaxExplored caps the number of branch-and-bound nodes; 0 means no cap.
	MaxExplored int64
}

// Status summarises the outcome of Solve.
type Status int

// Outcomes of Solve.
const (
	// StatusOptimal: Choice is proven optimal.
	StatusOptimal Status = iota
	// StatusFeasible: a limit stopped the search; Choice is the best plan
	// found and Gap bounds how far it may be from the optimum.
	StatusFeasible
	// StatusInfeasible: it is proven that no plan satisfies the constraints.
	StatusInfeasible
	// StatusUnknown: a limit stopped the search before any plan was found.
	StatusUnknown
)

// String returns the lower-case name of the status.
func (s Status) String() string {
	switch s {
	case StatusOptimal:
		return "optimal"
	case StatusFeasible:
		return "feasible"
	case StatusInfeasible:
		return "infeasible"
	case StatusUnknown:
		return "unknown"
	}
	return "invalid"
}

// Solution is the result of Solve.
type Solution struct {
	Status Status
	// Feasible reports that Choice satisfies every constraint.
	Feasible bool
	// Optimal reports that Choice is proven optimal (Status == StatusOptimal).
	Optimal bool
	// Choice[i] is the chosen candidate index of node i; nil if !Feasible.
	Choice []int
	// Cost, Latency and Success describe Choice.
	Cost, Latency, Success float64
	// LowerBound is a proven lower bound on the cost of every feasible plan
	// (+Inf when infeasibility is proven).
	LowerBound float64
	// Gap is (Cost-LowerBound)/Cost when Feasible (0 when Optimal), else +Inf.
	Gap float64
	// Explored counts branch-and-bound nodes; Iterations counts subgradient
	// steps; Rejected counts plans refused by Accept.
	Explored, Iterations, Rejected int64
	// Elapsed is the wall time spent in Solve.
	Elapsed time.Duration
	// Stopped names the limit that ended the search early: "" when the
	// search finished, else "context" or "max-explored".
	Stopped string
	// Diagnosis explains infeasibility; it is set only when !Feasible.
	Diagnosis *Diagnosis
}

// Diagnosis gives the figures a caller needs to explain why no plan was
// found. Each figure ignores the constraints it names.
type Diagnosis struct {
	// MinCost is the cost of the cheapest plan when every constraint is
	// ignored (exact).
	MinCost float64
	// MinLatency is the lowest achievable plan latency when every other
	// constraint is ignored (exact). MinLatency > MaxLatency means the
	// latency bound alone is unreachable.
	MinLatency float64
	// MaxSuccess is the highest achievable success when every other
	// constraint is ignored (exact).
	MaxSuccess float64
	// MinCostWithinLimits is the cost of the cheapest plan that meets the
	// latency, success and Accept rules but ignores MaxCost; +Inf when no
	// such plan exists. It is exact when MinCostWithinLimitsExact, otherwise
	// a lower bound (a limit stopped the search).
	MinCostWithinLimits      float64
	MinCostWithinLimitsExact bool
}

// Solve finds the cheapest plan of p that satisfies its constraints. It
// returns an error only for malformed input; infeasibility and limits are
// reported in the Solution. See the comment at the top of this file for the
// problem definition, the tolerance rule and the method.
func Solve(ctx context.Context, p *Problem, lim Limits) (Solution, error) {
	start := time.Now()
	sol, err := solve(ctx, p, lim)
	if err != nil {
		return Solution{}, err
	}
	if !sol.Feasible {
		sol.Diagnosis = diagnose(ctx, p, lim, &sol)
	}
	sol.Elapsed = time.Since(start)
	return sol, nil
}

// solve runs the stages without the infeasibility diagnosis.
func solve(ctx context.Context, p *Problem, lim Limits) (Solution, error) {
	in, err := newInstance(p)
	if err != nil {
		return Solution{}, err
	}
	if in.n == 0 {
		return Solution{Status: StatusOptimal, Feasible: true, Optimal: true, Choice: []int{}, Success: 1}, nil
	}
	in.ctx = ctx
	st := newState(ctx, p, in, lim)
	if !in.prefilter(p.Accept == nil, st.cut(), nil) {
		st.exhausted()
		return st.solution(), nil
	}
	if !st.interrupted() {
		in.lagrange(st)
	}
	st.fixAndPrepare()
	st.reorder()
	if !st.closed() && !st.interrupted() {
		st.search()
	}
	return st.solution(), nil
}

// diagnose fills the Diagnosis of an infeasible (or unsolved) instance.
func diagnose(ctx context.Context, p *Problem, lim Limits, sol *Solution) *Diagnosis {
	d := &Diagnosis{MaxSuccess: 1}
	n := len(p.Cands)
	minL := make([]float64, n)
	for i, cs := range p.Cands {
		mc, ml, mq := math.Inf(1), math.Inf(1), 0.0
		for _, c := range cs {
			mc = math.Min(mc, c.Cost)
			ml = math.Min(ml, c.Latency)
			mq = math.Max(mq, c.Quality)
		}
		d.MinCost += mc
		d.MaxSuccess *= mq
		minL[i] = ml
	}
	order := p.Order
	if order == nil {
		order, _ = topoOrder(n, p.Preds)
	}
	finish := make([]float64, n)
	for _, v := range order {
		s := 0.0
		if p.Preds != nil {
			for _, u := range p.Preds[v] {
				s = math.Max(s, finish[u])
			}
		}
		finish[v] = s + minL[v]
		d.MinLatency = math.Max(d.MinLatency, finish[v])
	}
	d.MinCostWithinLimits = math.Inf(1)
	if p.MaxCost == 0 || math.IsInf(p.MaxCost, 1) {
		// The cost bound played no part: the main search already decided.
		d.MinCostWithinLimitsExact = sol.Status == StatusInfeasible
		if !d.MinCostWithinLimitsExact {
			d.MinCostWithinLimits = sol.LowerBound
		}
		return d
	}
	if ctx.Err() != nil {
		// No time left for a second search. Plans within MaxCost cost at
		// least the proven bound, plans above it more than MaxCost.
		d.MinCostWithinLimits = math.Min(sol.LowerBound, p.MaxCost)
		return d
	}
	q := *p
	q.MaxCost = 0
	lim2 := lim
	if lim2.MaxExplored > 0 {
		lim2.MaxExplored = max(lim2.MaxExplored-sol.Explored, 1)
	}
	s2, err := solve(ctx, &q, lim2)
	if err != nil {
		return d
	}
	switch {
	case s2.Feasible:
		d.MinCostWithinLimits = s2.Cost
		d.MinCostWithinLimitsExact = s2.Optimal
		if !s2.Optimal {
			d.MinCostWithinLimits = s2.LowerBound
		}
	case s2.Status == StatusInfeasible:
		d.MinCostWithinLimitsExact = true
	default:
		d.MinCostWithinLimits = s2.LowerBound
	}
	return d
}
