// Package planner finds the provably cheapest assignment of one model per
// node that satisfies a workflow's budget and policies, and explains it.
//
// # The optimisation problem
//
// Input: the estimator's numbers for every node i and every candidate j that
// passed every node filter of the policies package (physical feasibility,
// min_quality, the models filter, node rules):
//
//	c_ij  expected cost of node i on candidate j in one run (USD; already
//	      includes the node's `when` probability and `repeat` calls)
//	l_ij  expected latency of node i on j (seconds; when x E[calls] x per-call)
//	q_ij  quality of j for node i's task, in (0, 1]
//
// Decision: x(i), one candidate per node.
//
// Objective: minimise cost(x) = sum_i c_i,x(i), the plan's expected cost.
//
// Constraints, each optional ([budget] in the workflow):
//
//	cost(x)    = sum_i c_i,x(i)                   <= max_cost_usd
//	latency(x) = longest path through the DAG
//	             with node weights l_i,x(i)        <= max_latency_s
//	success(x) = prod_i q_i,x(i)                   >= min_success
//	every plan rule ([[policy]] scope = "plan") holds for x
//
// Each check allows a relative slack of Tolerance (1e-9). Plan rules are
// opaque to the search, so they are checked on complete plans only; a
// rejected plan makes the search continue to the next best one, so the
// search stays complete.
//
// This is a multiple-choice knapsack with a longest-path resource, NP-hard
// in general. [Solve] solves it exactly by branch and bound (dominance and
// reachability prefilters, a Lagrangian bound on success and latency tuned
// by subgradient steps, greedy repair for first incumbents, depth-first
// search in topological order; see solve.go). It reports Optimal only when
// the bound proves it; when a limit (Timeout, MaxExplored) stops the search
// first, it returns the best plan and the proven relative Gap between its
// cost and the smallest lower bound of any unexplored subtree.
//
// # Around the optimum
//
// [Planner.Plan] builds the problem from an estimate and a policy set and
// returns, besides the plan:
//
//   - a fallback ladder per node for the executor: the chosen model, then
//     candidates at least as good that keep the plan within its limits when
//     substituted (higher quality first), then the other stronger ones,
//     cheapest first;
//   - alternatives on the cost-success and cost-latency Pareto frontiers,
//     found by solving again with higher success or lower latency bounds and
//     no cost bound (what more money buys);
//   - what binds: each global constraint dropped in turn, with the saving;
//   - an explanation per node: its cheapest candidate and what removed it,
//     and why the cheapest feasible candidate was not chosen (the
//     constraints it would break if substituted);
//   - when no plan exists: which constraints cannot be met (with the exact
//     best success, fastest latency and cheapest cost within the other
//     limits) and the closest plans, each meeting all but one constraint.
//
// A fitted cascade (estimator.AddCascades) is a candidate like any model:
// its cost and quality are its own, measured ones, so the proven optimum may
// use it. When it is chosen, its ID heads the node's ladder and the rungs
// after it are single models that are not among its stages.
//
// Boundary: the planner works on the estimator's numbers and the policies'
// verdicts; it prices nothing itself and runs nothing.
package planner
