package planner

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/graph"
	"github.com/costwise/costwise/policies"
)

// Options bound the planner's effort and shape its report.
type Options struct {
	// Timeout bounds the search for the optimal plan (default 10 s); the
	// best plan found is returned with its proven gap.
	Timeout time.Duration
	// MaxExplored caps branch-and-bound nodes (0 = no cap).
	MaxExplored int64
	// Alternatives is the number of plans per Pareto frontier (default 4;
	// negative disables alternatives).
	Alternatives int
	// LadderRungs caps each node's fallback ladder after the chosen model
	// (default 3).
	LadderRungs int
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Alternatives == 0 {
		o.Alternatives = 4
	}
	if o.LadderRungs <= 0 {
		o.LadderRungs = 3
	}
	return o
}

// Result is a plan and everything needed to explain it.
type Result struct {
	Workflow    *graph.Workflow
	Estimate    *estimator.Estimate
	Feasible    bool
	Optimal     bool    // proven optimal
	Gap         float64 // proven relative gap when a limit stopped the search
	Assignments []Assignment
	Totals      estimator.Totals
	Binding     []Binding
	// Alternatives are plans on the cost-success and cost-latency Pareto
	// frontiers, cheapest first within each frontier.
	Alternatives []Alternative
	Explain      []Explanation
	Rejections   []policies.Rejection // every candidate a node filter removed
	Infeasible   *Infeasibility       // set when !Feasible
	Stats        Stats
}

// Assignment is one node's chosen model and fallback ladder.
type Assignment struct {
	Node      string
	Index     int // node index in the workflow
	Candidate *estimator.Candidate
	// Ladder is the chosen candidate's ID (a model, or a cascade whose
	// stages the executor climbs first) followed by the single models the
	// executor escalates to: feasible candidates at least as good as the
	// chosen one.
	// Those that keep the plan within its limits when substituted come
	// first, higher quality first; then the others, cheapest first.
	Ladder []string
}

// Binding is a constraint that shapes the plan.
type Binding struct {
	Constraint string  // "budget.max_cost_usd", "budget.max_latency_s", "budget.min_success", "policy:NAME"
	Limit      float64 // the bound (0 for policies)
	Value      float64 // the plan's value
	// Saving is how much cheaper the optimum would be without this
	// constraint (USD); 0 when it is merely tight.
	Saving float64
	Detail string
}

// Alternative is another plan worth showing.
type Alternative struct {
	Frontier string // "cost-success" or "cost-latency"
	Models   []string
	CostUSD  float64
	LatencyS float64
	Success  float64
}

// Explanation says why a node did not get its cheapest model.
type Explanation struct {
	Node            string
	Chosen          string
	CheapestModel   string // the cheapest candidate of all
	CheapestReasons []string
	// CheapestFeasible is the cheapest candidate that passed every node
	// filter, and Why says which global constraint it would break.
	CheapestFeasible string
	Why              string
}

// Infeasibility says which constraints cannot be met together, and how close
// the best plans come.
type Infeasibility struct {
	Reasons []string
	// Closest are the cheapest plans meeting all but one named constraint.
	Closest []Alternative
	// BestSuccess is the highest success any plan reaches (ignoring cost and
	// latency); MinCostUSD the cheapest plan ignoring every global constraint;
	// MinLatencyS the fastest.
	BestSuccess float64
	MinCostUSD  float64
	MinLatencyS float64
}

// Stats are the search's figures.
type Stats struct {
	Explored   int64
	Iterations int64
	Rejected   int64 // complete plans rejected by plan rules
	Elapsed    time.Duration
	Stopped    string // "" or the limit that stopped the search
}

// Planner turns an estimate into the cheapest plan that satisfies the
// workflow's budget and policies.
type Planner struct {
	set  *policies.Set
	opts Options
}

// New returns a planner for the policy set (policies.Compile).
func New(set *policies.Set, opts Options) *Planner {
	return &Planner{set: set, opts: opts.withDefaults()}
}

// problem is the numeric instance behind a Result, with the candidates it
// maps back to.
type problem struct {
	est   *estimator.Estimate
	w     *graph.Workflow
	cands [][]*estimator.Candidate // feasible candidates per node
	base  Problem
}

// Plan finds the cheapest plan. It returns an error only when the search
// cannot run at all; an infeasible workflow is a Result with Feasible false.
func (p *Planner) Plan(ctx context.Context, est *estimator.Estimate) (*Result, error) {
	w := est.Workflow
	res := &Result{Workflow: w, Estimate: est}
	pr := &problem{est: est, w: w, cands: make([][]*estimator.Candidate, len(w.Nodes))}
	var empty []string
	for i, n := range w.Nodes {
		ne := &est.Nodes[i]
		for k := range ne.Candidates {
			c := &ne.Candidates[k]
			if rej := p.set.FilterNode(n, ne, c); len(rej) > 0 {
				res.Rejections = append(res.Rejections, rej...)
				continue
			}
			pr.cands[i] = append(pr.cands[i], c)
		}
		if len(pr.cands[i]) == 0 {
			empty = append(empty, n.ID)
		}
	}
	res.Explain = p.explainSkeleton(pr, res)
	if len(empty) > 0 {
		res.Infeasible = &Infeasibility{Reasons: noCandidateReasons(w, empty, res.Rejections)}
		return res, nil
	}
	pr.base = pr.numeric(w.Budget)
	if p.set.HasPlanFilters() {
		pr.base.Accept = p.accept(pr)
	}
	sol, err := p.solve(ctx, &pr.base)
	if err != nil {
		return nil, err
	}
	res.Stats = Stats{Explored: sol.Explored, Iterations: sol.Iterations, Rejected: sol.Rejected, Elapsed: sol.Elapsed, Stopped: sol.Stopped}
	if !sol.Feasible {
		res.Infeasible = p.diagnose(ctx, pr, sol)
		return res, nil
	}
	res.Feasible, res.Optimal, res.Gap = true, sol.Optimal, sol.Gap
	choice := pr.choice(sol.Choice)
	res.Totals, err = est.Totals(choice)
	if err != nil {
		return nil, err
	}
	for _, i := range w.Order() {
		res.Assignments = append(res.Assignments, Assignment{Node: w.Nodes[i].ID, Index: i, Candidate: choice[i],
			Ladder: p.ladder(pr, sol.Choice, i)})
	}
	res.Binding = p.binding(ctx, pr, sol)
	if p.opts.Alternatives > 0 {
		res.Alternatives = p.alternatives(ctx, pr, sol)
	}
	p.explainChoice(pr, sol.Choice, res.Explain)
	return res, nil
}

func (p *Planner) solve(ctx context.Context, prob *Problem) (Solution, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	return Solve(ctx, prob, Limits{MaxExplored: p.opts.MaxExplored})
}

// minQuality keeps qualities inside the solver's (0, 1]: a model with no
// quality score is almost certain to fail, not impossible to plan.
const minQuality = 1e-9

func (pr *problem) numeric(b graph.Budget) Problem {
	w := pr.w
	prob := Problem{Cands: make([][]Candidate, len(w.Nodes)), Preds: make([][]int, len(w.Nodes)), Order: w.Order(),
		MaxCost: b.MaxCostUSD, MaxLatency: b.MaxLatencyS, MinSuccess: b.MinSuccess}
	for i := range w.Nodes {
		prob.Preds[i] = w.Preds(i)
		for _, c := range pr.cands[i] {
			prob.Cands[i] = append(prob.Cands[i], Candidate{Cost: c.Cost.Mean, Latency: c.LatencyS.Mean, Quality: math.Max(c.Quality, minQuality)})
		}
	}
	return prob
}

func (pr *problem) choice(idx []int) []*estimator.Candidate {
	out := make([]*estimator.Candidate, len(idx))
	for i, k := range idx {
		out[i] = pr.cands[i][k]
	}
	return out
}

// figures are a complete plan's cost, latency and success.
func (pr *problem) figures(idx []int) (cost, latency, success float64) {
	lat := make([]float64, len(idx))
	success = 1
	for i, k := range idx {
		c := pr.cands[i][k]
		cost += c.Cost.Mean
		lat[i] = c.LatencyS.Mean
		success *= c.Quality
	}
	latency, _ = pr.w.LongestPath(lat)
	return cost, latency, success
}

// accept evaluates the plan filters on a complete plan.
func (p *Planner) accept(pr *problem) func([]int) bool {
	return func(idx []int) bool {
		cost, lat, succ := pr.figures(idx)
		return p.set.FilterPlan(&policies.Plan{Workflow: pr.w, Choice: pr.choice(idx), CostUSD: cost, LatencyS: lat, Success: succ}).OK()
	}
}

// within reports whether a plan meets the budget (with the solver's tolerance).
func withinBudget(b graph.Budget, cost, latency, success float64) bool {
	if b.MaxCostUSD > 0 && cost > b.MaxCostUSD+Tolerance*math.Max(1, b.MaxCostUSD) {
		return false
	}
	if b.MaxLatencyS > 0 && latency > b.MaxLatencyS+Tolerance*math.Max(1, b.MaxLatencyS) {
		return false
	}
	if b.MinSuccess > 0 && success < b.MinSuccess*math.Exp(-Tolerance) {
		return false
	}
	return true
}

// ladder orders node i's escalation rungs.
func (p *Planner) ladder(pr *problem, idx []int, i int) []string {
	chosen := pr.cands[i][idx[i]]
	trial := slices.Clone(idx)
	type rung struct {
		c      *estimator.Candidate
		within bool
	}
	// Rungs are single models: a cascade chosen for the node already
	// climbs its own stages first, so they are not repeated.
	stage := map[string]bool{}
	if chosen.Cascade != nil {
		for _, id := range chosen.Cascade.Models {
			stage[id] = true
		}
	}
	var rungs []rung
	for k, c := range pr.cands[i] {
		if k == idx[i] || c.Cascade != nil || stage[c.Model.ID] || c.Quality < chosen.Quality {
			continue
		}
		trial[i] = k
		cost, lat, succ := pr.figures(trial)
		rungs = append(rungs, rung{c, withinBudget(pr.w.Budget, cost, lat, succ)})
	}
	// Rungs that keep the plan within its limits come first, higher quality
	// first; then the others, cheapest first (the executor still enforces
	// the budget before it spends).
	sort.SliceStable(rungs, func(a, b int) bool {
		ra, rb := rungs[a], rungs[b]
		if ra.within != rb.within {
			return ra.within
		}
		if ra.within && ra.c.Quality != rb.c.Quality {
			return ra.c.Quality > rb.c.Quality
		}
		return ra.c.Cost.Mean < rb.c.Cost.Mean
	})
	out := []string{chosen.ID()}
	for _, r := range rungs {
		if len(out) > p.opts.LadderRungs {
			break
		}
		out = append(out, r.c.ID())
	}
	return out
}

// binding finds the constraints that shape the optimum: each global
// constraint is dropped in turn and the problem solved again.
func (p *Planner) binding(ctx context.Context, pr *problem, sol Solution) []Binding {
	b := pr.w.Budget
	var out []Binding
	try := func(name string, limit, value float64, relax func(q *Problem)) {
		q := pr.base
		relax(&q)
		s, err := p.solve(ctx, &q)
		if err != nil || !s.Feasible {
			return
		}
		saving := sol.Cost - s.Cost
		if saving > 1e-12*math.Max(1, sol.Cost) {
			out = append(out, Binding{Constraint: name, Limit: limit, Value: value, Saving: saving,
				Detail: fmt.Sprintf("without it the plan would cost $%.6f less", saving)})
		} else if limit > 0 && math.Abs(limit-value) <= 0.05*limit {
			out = append(out, Binding{Constraint: name, Limit: limit, Value: value, Detail: "within 5% of its limit"})
		}
	}
	if b.MaxCostUSD > 0 && sol.Cost >= 0.95*b.MaxCostUSD {
		out = append(out, Binding{Constraint: "budget.max_cost_usd", Limit: b.MaxCostUSD, Value: sol.Cost, Detail: "the cheapest plan uses at least 95% of the budget"})
	}
	if b.MaxLatencyS > 0 {
		try("budget.max_latency_s", b.MaxLatencyS, sol.Latency, func(q *Problem) { q.MaxLatency = 0 })
	}
	if b.MinSuccess > 0 {
		try("budget.min_success", b.MinSuccess, sol.Success, func(q *Problem) { q.MinSuccess = 0 })
	}
	if pr.base.Accept != nil && sol.Rejected > 0 {
		try("policy (plan rules)", 0, 0, func(q *Problem) { q.Accept = nil })
	}
	return out
}

// alternatives traces the cost-success and cost-latency frontiers by
// solving again with tighter success and latency bounds.
func (p *Planner) alternatives(ctx context.Context, pr *problem, sol Solution) []Alternative {
	var out []Alternative
	seen := map[string]bool{fmt.Sprint(sol.Choice): true}
	add := func(frontier string, q Problem) bool {
		s, err := p.solve(ctx, &q)
		if err != nil || !s.Feasible || seen[fmt.Sprint(s.Choice)] {
			return err == nil && s.Feasible
		}
		seen[fmt.Sprint(s.Choice)] = true
		models := make([]string, len(s.Choice))
		for i, k := range s.Choice {
			models[i] = pr.cands[i][k].ID()
		}
		out = append(out, Alternative{Frontier: frontier, Models: models, CostUSD: s.Cost, LatencyS: s.Latency, Success: s.Success})
		return true
	}
	k := p.opts.Alternatives
	maxSucc := 1.0
	for i := range pr.cands {
		best := 0.0
		for _, c := range pr.cands[i] {
			best = math.Max(best, c.Quality)
		}
		maxSucc *= best
	}
	// Both frontiers drop the cost bound: they show what more money buys.
	for step := 1; step <= k && sol.Success < maxSucc; step++ {
		q := pr.base
		q.MaxCost = 0
		q.MinSuccess = sol.Success + (maxSucc-sol.Success)*float64(step)/float64(k)
		add("cost-success", q)
	}
	for step := 1; step <= k; step++ {
		q := pr.base
		q.MaxCost = 0
		q.MaxLatency = sol.Latency * (1 - 0.5*float64(step)/float64(k))
		if !add("cost-latency", q) {
			break
		}
	}
	return out
}

// explainSkeleton records, per node, its cheapest candidate and cheapest
// feasible candidate; explainChoice fills in why the chosen one differs.
func (p *Planner) explainSkeleton(pr *problem, res *Result) []Explanation {
	why := map[[2]string][]string{}
	for _, r := range res.Rejections {
		k := [2]string{r.Node, r.Model}
		why[k] = append(why[k], fmt.Sprintf("%s (%s): %s", r.Reason, r.Policy, r.Msg))
	}
	var out []Explanation
	for _, i := range pr.w.Order() {
		ne := &pr.est.Nodes[i]
		e := Explanation{Node: ne.ID}
		var cheapest *estimator.Candidate
		for k := range ne.Candidates {
			if c := &ne.Candidates[k]; cheapest == nil || c.Cost.Mean < cheapest.Cost.Mean {
				cheapest = c
			}
		}
		if cheapest != nil {
			e.CheapestModel = cheapest.ID()
			e.CheapestReasons = why[[2]string{ne.ID, cheapest.ID()}]
		}
		var cf *estimator.Candidate
		for _, c := range pr.cands[i] {
			if cf == nil || c.Cost.Mean < cf.Cost.Mean {
				cf = c
			}
		}
		if cf != nil {
			e.CheapestFeasible = cf.ID()
		}
		out = append(out, e)
	}
	return out
}

func (p *Planner) explainChoice(pr *problem, idx []int, ex []Explanation) {
	for n := range ex {
		i, _ := pr.w.NodeIndex(ex[n].Node)
		chosen := pr.cands[i][idx[i]]
		ex[n].Chosen = chosen.ID()
		if ex[n].CheapestFeasible == "" || ex[n].CheapestFeasible == chosen.ID() {
			continue
		}
		k := slices.IndexFunc(pr.cands[i], func(c *estimator.Candidate) bool { return c.ID() == ex[n].CheapestFeasible })
		trial := slices.Clone(idx)
		trial[i] = k
		cost, lat, succ := pr.figures(trial)
		b := pr.w.Budget
		var broken []string
		if b.MinSuccess > 0 && !withinBudget(graph.Budget{MinSuccess: b.MinSuccess}, 0, 0, succ) {
			broken = append(broken, fmt.Sprintf("the plan's success would be %.4f < min_success %.4f", succ, b.MinSuccess))
		}
		if b.MaxLatencyS > 0 && !withinBudget(graph.Budget{MaxLatencyS: b.MaxLatencyS}, 0, lat, 1) {
			broken = append(broken, fmt.Sprintf("the critical path would take %.2f s > max_latency_s %.2f", lat, b.MaxLatencyS))
		}
		if b.MaxCostUSD > 0 && !withinBudget(graph.Budget{MaxCostUSD: b.MaxCostUSD}, cost, 0, 1) {
			broken = append(broken, fmt.Sprintf("the plan would cost $%.6f > max_cost_usd %.6g", cost, b.MaxCostUSD))
		}
		if len(broken) == 0 && pr.base.Accept != nil && !pr.base.Accept(trial) {
			broken = append(broken, "a plan rule rejects the plan")
		}
		if len(broken) > 0 {
			ex[n].Why = "with it " + strings.Join(broken, " and ")
		} else {
			ex[n].Why = "every plan that uses it costs more in total: the constraints then force stronger models elsewhere"
		}
	}
}

// noCandidateReasons explains nodes that lost every candidate to node filters.
func noCandidateReasons(w *graph.Workflow, nodes []string, rej []policies.Rejection) []string {
	var out []string
	for _, id := range nodes {
		count := map[string]int{}
		for _, r := range rej {
			if r.Node == id {
				count[fmt.Sprintf("%s (%s)", r.Reason, r.Policy)]++
			}
		}
		keys := make([]string, 0, len(count))
		for k := range count {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(a, b int) bool {
			return count[keys[a]] > count[keys[b]] || (count[keys[a]] == count[keys[b]] && keys[a] < keys[b])
		})
		parts := make([]string, len(keys))
		for k, key := range keys {
			parts[k] = fmt.Sprintf("%d by %s", count[key], key)
		}
		msg := fmt.Sprintf("node %q has no candidate model left", id)
		if len(parts) > 0 {
			msg += ": removed " + strings.Join(parts, ", ")
		} else {
			msg += ": its models filter matches no catalog model"
		}
		out = append(out, msg)
	}
	return out
}

// diagnose names the constraints that cannot be met together and finds the
// closest plans: the cheapest meeting all but one constraint.
func (p *Planner) diagnose(ctx context.Context, pr *problem, sol Solution) *Infeasibility {
	inf := &Infeasibility{}
	b := pr.w.Budget
	if d := sol.Diagnosis; d != nil {
		inf.BestSuccess, inf.MinCostUSD, inf.MinLatencyS = d.MaxSuccess, d.MinCost, d.MinLatency
		if b.MinSuccess > 0 && d.MaxSuccess < b.MinSuccess*math.Exp(-Tolerance) {
			inf.Reasons = append(inf.Reasons, fmt.Sprintf("budget.min_success %.4g cannot be met: the best success any plan reaches is %.4g", b.MinSuccess, d.MaxSuccess))
		}
		if b.MaxLatencyS > 0 && d.MinLatency > b.MaxLatencyS*(1+Tolerance) {
			inf.Reasons = append(inf.Reasons, fmt.Sprintf("budget.max_latency_s %.4g cannot be met: the fastest plan takes %.4g s", b.MaxLatencyS, d.MinLatency))
		}
		if b.MaxCostUSD > 0 && !math.IsInf(d.MinCostWithinLimits, 1) && d.MinCostWithinLimits > b.MaxCostUSD {
			qual := "costs"
			if !d.MinCostWithinLimitsExact {
				qual = "costs at least"
			}
			inf.Reasons = append(inf.Reasons, fmt.Sprintf("budget.max_cost_usd %.6g cannot be met: the cheapest plan that meets the other constraints %s $%.6g", b.MaxCostUSD, qual, d.MinCostWithinLimits))
		}
	}
	if sol.Stopped != "" {
		inf.Reasons = append(inf.Reasons, fmt.Sprintf("the search was stopped by %s before any plan was found; raise --timeout or --max-nodes", sol.Stopped))
	}
	type relax struct {
		name string
		set  func(q *Problem)
	}
	relaxations := []relax{
		{"budget.max_cost_usd", func(q *Problem) { q.MaxCost = 0 }},
		{"budget.max_latency_s", func(q *Problem) { q.MaxLatency = 0 }},
		{"budget.min_success", func(q *Problem) { q.MinSuccess = 0 }},
		{"plan rules", func(q *Problem) { q.Accept = nil }},
	}
	for _, r := range relaxations {
		q := pr.base
		r.set(&q)
		if q.MaxCost == pr.base.MaxCost && q.MaxLatency == pr.base.MaxLatency && q.MinSuccess == pr.base.MinSuccess && (q.Accept == nil) == (pr.base.Accept == nil) {
			continue // that constraint is not set
		}
		s, err := p.solve(ctx, &q)
		if err != nil || !s.Feasible {
			continue
		}
		models := make([]string, len(s.Choice))
		for i, k := range s.Choice {
			models[i] = pr.cands[i][k].ID()
		}
		inf.Closest = append(inf.Closest, Alternative{Frontier: "all but " + r.name, Models: models, CostUSD: s.Cost, LatencyS: s.Latency, Success: s.Success})
	}
	if len(inf.Reasons) == 0 {
		inf.Reasons = append(inf.Reasons, "the constraints cannot be met together, though each can be met alone; the closest plans below each drop one of them")
	}
	return inf
}
