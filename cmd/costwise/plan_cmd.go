package main

import (
	"context"

	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/graph"
	"github.com/costwise/costwise/planner"
)

// planFlags are the planner's options on plan and preview.
type planFlags struct {
	estimateFlags
	timeout      time.Duration
	maxNodes     int64
	alternatives int
}

func (f *planFlags) register(cmd *cobra.Command) {
	f.estimateFlags.register(cmd)
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "stop the search after this long and report the best plan with its proven gap")
	cmd.Flags().Int64Var(&f.maxNodes, "max-nodes", 0, "stop the search after exploring this many branch-and-bound nodes (0 = no limit)")
	cmd.Flags().IntVar(&f.alternatives, "alternatives", 4, "plans per Pareto frontier (cost-success, cost-latency); 0 for none")
}

// planWorkflow runs load -> estimate -> policies -> planner.
func planWorkflow(cmd *cobra.Command, path string, cf *catalogFlags, pf *planFlags) (*planner.Result, error) {
	if pf.timeout <= 0 {
		return nil, usageError("--timeout must be positive, got %v", pf.timeout)
	}
	if pf.maxNodes < 0 || pf.alternatives < 0 {
		return nil, usageError("--max-nodes and --alternatives must be >= 0")
	}
	w, p, err := loadForPipeline(cmd, path, cf, &pf.estimateFlags)
	if err != nil {
		return nil, err
	}
	alts := pf.alternatives
	if alts == 0 {
		alts = -1
	}
	pl, err := p.plan(context.Background(), w, planner.Options{Timeout: pf.timeout, MaxExplored: pf.maxNodes, Alternatives: alts})
	if err != nil {
		return nil, cliError(cmd, err)
	}
	return pl.plan, nil
}

// infeasibleExit prints why no plan exists and returns exit code 3.
func infeasibleExit(stderr io.Writer, res *planner.Result) error {
	fmt.Fprintf(stderr, "%s: no plan satisfies the constraints\n", res.Workflow.File)
	for _, r := range res.Infeasible.Reasons {
		fmt.Fprintf(stderr, "  - %s\n", r)
	}
	for _, c := range res.Infeasible.Closest {
		fmt.Fprintf(stderr, "  closest (%s): $%s, %.2f s, success %.4f\n", c.Frontier, usd(c.CostUSD), c.LatencyS, c.Success)
	}
	return &exitError{code: exitInfeasible}
}

func newPlanCmd(cf *catalogFlags) *cobra.Command {
	var pf planFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Find the provably cheapest model for every node under the workflow's budget and policies",
		Long: `Find the assignment of one model per node with the lowest expected cost that meets
the budget (max_cost_usd, max_latency_s, min_success), every node's min_quality and
models filter, and every [[policy]] rule; prove it optimal, or report the gap when
--timeout or --max-nodes stops the search. Exit code 3 when no plan satisfies the
constraints, with the constraints that conflict and the closest plans.`,
		Example: `  costwise plan examples/support-triage/workflow.toml
  costwise plan examples/code-review/workflow.toml --json --timeout 2s`,
		Args: exactArgs(1, "one workflow file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := planWorkflow(cmd, args[0], cf, &pf)
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), planJSON(res)); err != nil {
					return err
				}
				if !res.Feasible {
					return &exitError{code: exitInfeasible}
				}
				return nil
			}
			if !res.Feasible {
				return infeasibleExit(cmd.ErrOrStderr(), res)
			}
			return writePlanTable(cmd.OutOrStdout(), res, nil, false)
		},
	}
	pf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (the contract is documented in the README)")
	return cmd
}

// JSON contract of `costwise plan --json`.
type planOut struct {
	Workflow     string           `json:"workflow"`
	Feasible     bool             `json:"feasible"`
	Optimal      bool             `json:"optimal"`
	Gap          float64          `json:"gap"`
	Assignments  []assignmentOut  `json:"assignments"`
	Totals       *totalsOut       `json:"totals"`
	Binding      []bindingOut     `json:"binding"`
	Alternatives []alternativeOut `json:"alternatives"`
	Explain      []explainOut     `json:"explain"`
	Infeasible   *infeasibleOut   `json:"infeasible,omitempty"`
	Stats        statsOut         `json:"stats"`
}

type assignmentOut struct {
	Node        string   `json:"node"`
	Model       string   `json:"model"`
	CostUSD     distOut  `json:"cost_usd"`
	LatencyS    distOut  `json:"latency_s"`
	Quality     float64  `json:"quality"`
	InputTokens distOut  `json:"input_tokens"`
	Ladder      []string `json:"ladder"`
	// Cascade describes a fitted cascade when Model is one ("cascade:...").
	Cascade *cascadeOut `json:"cascade,omitempty"`
}

// cascadeOut is a planned cascade: its stages and the measured numbers
// behind its cost and quality.
type cascadeOut struct {
	Models     []string  `json:"models"`
	Thresholds []float64 `json:"thresholds"`
	Signal     string    `json:"signal"`
	Reach      []float64 `json:"reach"`
	Quality    float64   `json:"quality"`
	Rows       int       `json:"rows"`
	Source     string    `json:"source"`
}

func cascadeJSON(c *estimator.Candidate) *cascadeOut {
	if c.Cascade == nil {
		return nil
	}
	k := c.Cascade.Cascade
	return &cascadeOut{Models: k.Models, Thresholds: k.Thresholds, Signal: k.Signal, Reach: k.Reach, Quality: k.Quality, Rows: k.Rows, Source: k.Source}
}

type totalsOut struct {
	CostUSD  distOut  `json:"cost_usd"`
	LatencyS distOut  `json:"latency_s"`
	Success  float64  `json:"success"`
	Critical []string `json:"critical_path"`
}

type bindingOut struct {
	Constraint string  `json:"constraint"`
	Limit      float64 `json:"limit"`
	Value      float64 `json:"value"`
	SavingUSD  float64 `json:"saving_usd"`
	Detail     string  `json:"detail"`
}

type alternativeOut struct {
	Frontier string            `json:"frontier"`
	Models   map[string]string `json:"models"`
	CostUSD  float64           `json:"cost_usd"`
	LatencyS float64           `json:"latency_s"`
	Success  float64           `json:"success"`
}

type explainOut struct {
	Node             string   `json:"node"`
	Chosen           string   `json:"chosen"`
	Cheapest         string   `json:"cheapest"`
	CheapestReasons  []string `json:"cheapest_rejected_by"`
	CheapestFeasible string   `json:"cheapest_feasible"`
	Why              string   `json:"why,omitempty"`
}

type infeasibleOut struct {
	Reasons     []string         `json:"reasons"`
	Closest     []alternativeOut `json:"closest"`
	BestSuccess float64          `json:"best_success"`
	MinCostUSD  float64          `json:"min_cost_usd"`
	MinLatencyS float64          `json:"min_latency_s"`
}

type statsOut struct {
	Explored  int64   `json:"explored"`
	Rejected  int64   `json:"rejected_by_plan_rules"`
	ElapsedMS float64 `json:"elapsed_ms"`
	Stopped   string  `json:"stopped,omitempty"`
}

func altOut(w *graph.Workflow, a planner.Alternative) alternativeOut {
	m := make(map[string]string, len(a.Models))
	for i, id := range a.Models {
		m[w.Nodes[i].ID] = id
	}
	return alternativeOut{Frontier: a.Frontier, Models: m, CostUSD: a.CostUSD, LatencyS: a.LatencyS, Success: a.Success}
}

func planJSON(res *planner.Result) planOut {
	w := res.Workflow
	out := planOut{Workflow: w.Name, Feasible: res.Feasible, Optimal: res.Optimal, Gap: res.Gap,
		Assignments: []assignmentOut{}, Binding: []bindingOut{}, Alternatives: []alternativeOut{}, Explain: []explainOut{},
		Stats: statsOut{Explored: res.Stats.Explored, Rejected: res.Stats.Rejected, ElapsedMS: float64(res.Stats.Elapsed.Microseconds()) / 1000, Stopped: res.Stats.Stopped}}
	if math.IsInf(out.Gap, 0) || math.IsNaN(out.Gap) {
		out.Gap = -1
	}
	for _, a := range res.Assignments {
		c := a.Candidate
		out.Assignments = append(out.Assignments, assignmentOut{Node: a.Node, Model: c.ID(),
			CostUSD: fullDist(c.Cost.Dist), LatencyS: distOut{Mean: c.LatencyS.Mean}, Quality: c.Quality,
			InputTokens: distOut{Mean: c.InputTokens.Mean}, Ladder: a.Ladder, Cascade: cascadeJSON(c)})
	}
	if res.Feasible {
		t := res.Totals
		out.Totals = &totalsOut{CostUSD: fullDist(t.Cost.Dist), LatencyS: distOut{Mean: t.LatencyS.Mean}, Success: t.Success, Critical: []string{}}
		for _, i := range t.Critical {
			out.Totals.Critical = append(out.Totals.Critical, w.Nodes[i].ID)
		}
	}
	for _, b := range res.Binding {
		out.Binding = append(out.Binding, bindingOut{Constraint: b.Constraint, Limit: b.Limit, Value: b.Value, SavingUSD: b.Saving, Detail: b.Detail})
	}
	for _, a := range res.Alternatives {
		out.Alternatives = append(out.Alternatives, altOut(w, a))
	}
	for _, e := range res.Explain {
		reasons := e.CheapestReasons
		if reasons == nil {
			reasons = []string{}
		}
		out.Explain = append(out.Explain, explainOut{Node: e.Node, Chosen: e.Chosen, Cheapest: e.CheapestModel, CheapestReasons: reasons, CheapestFeasible: e.CheapestFeasible, Why: e.Why})
	}
	if inf := res.Infeasible; inf != nil {
		io := &infeasibleOut{Reasons: inf.Reasons, Closest: []alternativeOut{}, BestSuccess: inf.BestSuccess, MinCostUSD: inf.MinCostUSD, MinLatencyS: inf.MinLatencyS}
		for _, c := range inf.Closest {
			io.Closest = append(io.Closest, altOut(w, c))
		}
		out.Infeasible = io
	}
	return out
}

// baseline is the naive comparison: every node on one frontier model.
type baseline struct {
	Model  string
	Totals estimator.Totals
}

// frontierBaseline prices the run with the single model of highest default
// quality that can serve every node (or the model named by --baseline).
func frontierBaseline(est *estimator.Estimate, want string) (*baseline, error) {
	w := est.Workflow
	var best *baseline
	bestQ := -1.0
	ids := map[string]bool{}
	for k := range est.Nodes[0].Candidates {
		if c := &est.Nodes[0].Candidates[k]; c.Cascade == nil {
			ids[c.Model.ID] = true
		}
	}
	for id := range ids {
		if want != "" && id != want {
			continue
		}
		choice := make([]*estimator.Candidate, len(w.Nodes))
		ok := true
		for i := range w.Nodes {
			c, found := est.Candidate(i, id)
			if !found || (!c.Feasible && want == "") {
				ok = false
				break
			}
			choice[i] = c
		}
		if !ok {
			continue
		}
		q, _ := choice[0].Model.QualityFor("default")
		t, err := est.Totals(choice)
		if err != nil {
			return nil, err
		}
		if q > bestQ || (q == bestQ && best != nil && t.Cost.Mean < best.Totals.Cost.Mean) || (q == bestQ && best != nil && t.Cost.Mean == best.Totals.Cost.Mean && id < best.Model) {
			best, bestQ = &baseline{Model: id, Totals: t}, q
		}
	}
	if best == nil && want != "" {
		return nil, &exitError{code: exitBadInput, msg: fmt.Sprintf("--baseline %s is not a candidate of every node (check the nodes' models filters)", want)}
	}
	return best, nil
}

// writePlanTable prints a plan for a person; preview adds the budget bars,
// the baseline and the alternatives.
// writeCascades explains every planned cascade: its stages with their
// thresholds, the share of calls that reach each, and where its measured
// quality comes from.
func writeCascades(out io.Writer, res *planner.Result) {
	first := true
	for _, a := range res.Assignments {
		cc := a.Candidate.Cascade
		if cc == nil {
			continue
		}
		if first {
			fmt.Fprintln(out, "\ncascades (escalate when the answer's confidence is below the threshold):")
			first = false
		}
		var stages []string
		for k, m := range cc.Models {
			s := fmt.Sprintf("%s (%.0f%% of calls", m, 100*cc.Reach[k])
			if k < len(cc.Thresholds) {
				s += fmt.Sprintf(", %s >= %.4g", cc.Signal, cc.Thresholds[k])
			}
			stages = append(stages, s+")")
		}
		fmt.Fprintf(out, "  %s: %s\n", a.Node, strings.Join(stages, " -> "))
		src := cc.Source
		if src == "" {
			src = "no source given"
		}
		fmt.Fprintf(out, "    measured quality %.4f on %d rows (%s)\n", cc.Quality, cc.Rows, src)
	}
}

func writePlanTable(out io.Writer, res *planner.Result, base *baseline, preview bool) error {
	w := res.Workflow
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tNODE\tTASK\tMODEL\tIN TOK\tOUT TOK\tCALLS\tCOST P50\tCOST P95\tLATENCY\tQUALITY\tFALLBACK LADDER")
	for k, a := range res.Assignments {
		c, ne := a.Candidate, &res.Estimate.Nodes[a.Index]
		ladder := "-"
		if len(a.Ladder) > 1 {
			ladder = strings.Join(a.Ladder[1:], " > ")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.0f\t%.0f\t%.2f\t$%s\t$%s\t%.1fs\t%.3f\t%s\n", k+1, a.Node, w.Nodes[a.Index].Task, c.ID(),
			c.InputTokens.Mean, ne.OutputTokens.Mean, ne.Calls.Mean, usd(c.Cost.P50), usd(c.Cost.P95), c.LatencyS.Mean, c.Quality, ladder)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	t := res.Totals
	fmt.Fprintf(out, "\nrun cost: mean $%s  p50 $%s  p95 $%s  p99 $%s   latency %.1f s (critical path)   success %.4f\n",
		usd(t.Cost.Mean), usd(t.Cost.P50), usd(t.Cost.P95), usd(t.Cost.P99), t.LatencyS.Mean, t.Success)
	if preview {
		writeBudgetBars(out, w.Budget, t)
	}
	status := "proven optimal"
	if !res.Optimal {
		status = fmt.Sprintf("best found, within %.2f%% of the optimum (stopped by %s)", 100*res.Gap, res.Stats.Stopped)
	}
	fmt.Fprintf(out, "plan: %s (%d search nodes, %s)\n", status, res.Stats.Explored, res.Stats.Elapsed.Round(time.Microsecond))
	writeCascades(out, res)
	if len(res.Binding) > 0 {
		fmt.Fprintln(out, "\nwhat binds:")
		for _, b := range res.Binding {
			fmt.Fprintf(out, "  %s: %s\n", b.Constraint, b.Detail)
		}
	}
	var why []string
	for _, e := range res.Explain {
		if e.Why != "" {
			why = append(why, fmt.Sprintf("  %s: %s instead of the cheaper %s: %s", e.Node, e.Chosen, e.CheapestFeasible, e.Why))
		}
	}
	if len(why) > 0 {
		fmt.Fprintln(out, "\nwhy not the cheapest model:")
		fmt.Fprintln(out, strings.Join(why, "\n"))
	}
	if preview && len(res.Alternatives) > 0 {
		fmt.Fprintln(out, "\nalternatives:")
		for _, a := range res.Alternatives {
			over := ""
			if b := w.Budget.MaxCostUSD; b > 0 && a.CostUSD > b {
				over = "  over max_cost_usd"
			}
			fmt.Fprintf(out, "  %-12s $%s  %.1f s  success %.4f  (%s)%s\n", a.Frontier, usd(a.CostUSD), a.LatencyS, a.Success, changed(res, a), over)
		}
	}
	if base != nil {
		saving := base.Totals.Cost.Mean - t.Cost.Mean
		pct := 0.0
		if base.Totals.Cost.Mean > 0 {
			pct = 100 * saving / base.Totals.Cost.Mean
		}
		fmt.Fprintf(out, "\nnaive: every node on %s: mean $%s, p95 $%s, success %.4f -> this plan saves $%s per run (%.0f%%)\n",
			base.Model, usd(base.Totals.Cost.Mean), usd(base.Totals.Cost.P95), base.Totals.Success, usd(saving), pct)
	}
	return nil
}

// changed lists the nodes whose model differs from the plan's.
func changed(res *planner.Result, a planner.Alternative) string {
	var parts []string
	for _, as := range res.Assignments {
		if m := a.Models[as.Index]; m != as.Candidate.ID() {
			parts = append(parts, as.Node+"="+m)
		}
	}
	return strings.Join(parts, ", ")
}

func writeBudgetBars(out io.Writer, b graph.Budget, t estimator.Totals) {
	bar := func(used float64) string {
		const width = 30
		n := int(math.Round(math.Min(used, 1) * width))
		return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
	}
	if b == (graph.Budget{}) {
		fmt.Fprintln(out, "budget: none set")
		return
	}
	fmt.Fprintln(out, "budget:")
	if b.MaxCostUSD > 0 {
		fmt.Fprintf(out, "  max_cost_usd  $%-10s %s %3.0f%% used (p95 $%s)\n", usd(b.MaxCostUSD), bar(t.Cost.Mean/b.MaxCostUSD), 100*t.Cost.Mean/b.MaxCostUSD, usd(t.Cost.P95))
	}
	if b.MaxLatencyS > 0 {
		fmt.Fprintf(out, "  max_latency_s %-11s %s %3.0f%% used\n", fmt.Sprintf("%.1fs", b.MaxLatencyS), bar(t.LatencyS.Mean/b.MaxLatencyS), 100*t.LatencyS.Mean/b.MaxLatencyS)
	}
	if b.MinSuccess > 0 {
		fmt.Fprintf(out, "  min_success   %-11s success %.4f (headroom %+.4f)\n", fmt.Sprintf("%.3f", b.MinSuccess), t.Success, t.Success-b.MinSuccess)
	}
}

func newPreviewCmd(cf *catalogFlags) *cobra.Command {
	var pf planFlags
	var format, baselineModel string
	cmd := &cobra.Command{
		Use:   "preview FILE",
		Short: "Show what a run will cost before anything runs: plan, budget, percentiles, alternatives, saving",
		Long: `Plan the workflow and show, before anything runs: every node in topological order with
its model, tokens, cost p50/p95, latency, quality and fallback ladder; the run's cost
p50/p95/p99 against the budget; what binds; the cheapest alternative plans; and what
the run would cost with one frontier model on every node. Uses the embedded catalog
unless told otherwise: no API key, no network.`,
		Example: `  costwise preview examples/support-triage/workflow.toml
  costwise preview examples/research-agent/workflow.toml --format markdown
  costwise preview examples/code-review/workflow.toml --format dot | dot -Tsvg > plan.svg`,
		Args: exactArgs(1, "one workflow file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "table", "markdown", "json", "dot", "mermaid":
			default:
				return usageError("--format must be table, markdown, json, dot or mermaid, got %q", format)
			}
			res, err := planWorkflow(cmd, args[0], cf, &pf)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !res.Feasible {
				if format == "json" {
					_ = writeJSON(out, planJSON(res))
				}
				return infeasibleExit(cmd.ErrOrStderr(), res)
			}
			base, err := frontierBaseline(res.Estimate, baselineModel)
			if err != nil {
				return err
			}
			switch format {
			case "json":
				return writeJSON(out, previewJSON(res, base))
			case "dot":
				return res.Workflow.WriteDOT(out, costAnnotator(res))
			case "mermaid":
				return res.Workflow.WriteMermaid(out, costAnnotator(res))
			case "markdown":
				return writePreviewMarkdown(out, res, base)
			}
			fmt.Fprintf(out, "%s: plan preview (%d Monte Carlo runs, seed %d; estimates, nothing has run)\n\n", res.Workflow.Name, res.Estimate.Samples, res.Estimate.Seed)
			return writePlanTable(out, res, base, true)
		},
	}
	pf.register(cmd)
	cmd.Flags().StringVar(&format, "format", "table", "table, markdown, json, dot or mermaid (DOT and Mermaid colour nodes by cost)")
	cmd.Flags().StringVar(&baselineModel, "baseline", "", "model for the naive comparison (default: the highest-quality model that can serve every node)")
	return cmd
}

type previewOut struct {
	planOut
	Baseline *baselineOut `json:"baseline"`
}

type baselineOut struct {
	Model     string  `json:"model"`
	CostUSD   distOut `json:"cost_usd"`
	Success   float64 `json:"success"`
	SavingUSD float64 `json:"saving_usd"`
	SavingPct float64 `json:"saving_pct"`
}

func previewJSON(res *planner.Result, base *baseline) previewOut {
	out := previewOut{planOut: planJSON(res)}
	if base != nil {
		saving := base.Totals.Cost.Mean - res.Totals.Cost.Mean
		pct := 0.0
		if base.Totals.Cost.Mean > 0 {
			pct = 100 * saving / base.Totals.Cost.Mean
		}
		out.Baseline = &baselineOut{Model: base.Model, CostUSD: fullDist(base.Totals.Cost.Dist), Success: base.Totals.Success, SavingUSD: saving, SavingPct: pct}
	}
	return out
}

// costAnnotator labels each node with its model and cost and colours it from
// white (cheapest) to red (most expensive).
func costAnnotator(res *planner.Result) graph.Annotator {
	byIndex := map[int]*planner.Assignment{}
	maxCost := 0.0
	for k := range res.Assignments {
		a := &res.Assignments[k]
		byIndex[a.Index] = a
		maxCost = math.Max(maxCost, a.Candidate.Cost.Mean)
	}
	return func(i int) graph.Annotation {
		a := byIndex[i]
		if a == nil {
			return graph.Annotation{}
		}
		frac := 0.0
		if maxCost > 0 {
			frac = a.Candidate.Cost.Mean / maxCost
		}
		gb := int(math.Round(255 * (1 - 0.75*frac)))
		return graph.Annotation{
			Lines: []string{a.Candidate.ID(), fmt.Sprintf("$%s (p95 $%s)", usd(a.Candidate.Cost.Mean), usd(a.Candidate.Cost.P95))},
			Fill:  fmt.Sprintf("#ff%02x%02x", gb, gb),
		}
	}
}

func writePreviewMarkdown(out io.Writer, res *planner.Result, base *baseline) error {
	w := res.Workflow
	fmt.Fprintf(out, "# %s: plan preview\n\n", w.Name)
	fmt.Fprintf(out, "Estimates from %d Monte Carlo runs (seed %d); nothing has run.\n\n", res.Estimate.Samples, res.Estimate.Seed)
	fmt.Fprintln(out, "| # | node | task | model | in tok | out tok | calls | cost p50 | cost p95 | latency | quality | fallback ladder |")
	fmt.Fprintln(out, "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
	for k, a := range res.Assignments {
		c, ne := a.Candidate, &res.Estimate.Nodes[a.Index]
		fmt.Fprintf(out, "| %d | %s | %s | `%s` | %.0f | %.0f | %.2f | $%s | $%s | %.1f s | %.3f | %s |\n", k+1, a.Node, w.Nodes[a.Index].Task, c.ID(),
			c.InputTokens.Mean, ne.OutputTokens.Mean, ne.Calls.Mean, usd(c.Cost.P50), usd(c.Cost.P95), c.LatencyS.Mean, c.Quality, strings.Join(a.Ladder[1:], " → "))
	}
	t := res.Totals
	fmt.Fprintf(out, "\n**Run cost:** mean $%s, p50 $%s, p95 $%s, p99 $%s. **Latency:** %.1f s. **Success:** %.4f.\n\n",
		usd(t.Cost.Mean), usd(t.Cost.P50), usd(t.Cost.P95), usd(t.Cost.P99), t.LatencyS.Mean, t.Success)
	if b := w.Budget; b != (graph.Budget{}) {
		fmt.Fprintln(out, "| budget | limit | plan | used |\n|---|---:|---:|---:|")
		if b.MaxCostUSD > 0 {
			fmt.Fprintf(out, "| max_cost_usd | $%s | $%s | %.0f%% |\n", usd(b.MaxCostUSD), usd(t.Cost.Mean), 100*t.Cost.Mean/b.MaxCostUSD)
		}
		if b.MaxLatencyS > 0 {
			fmt.Fprintf(out, "| max_latency_s | %.1f s | %.1f s | %.0f%% |\n", b.MaxLatencyS, t.LatencyS.Mean, 100*t.LatencyS.Mean/b.MaxLatencyS)
		}
		if b.MinSuccess > 0 {
			fmt.Fprintf(out, "| min_success | %.3f | %.4f | |\n", b.MinSuccess, t.Success)
		}
		fmt.Fprintln(out)
	}
	for _, b := range res.Binding {
		fmt.Fprintf(out, "- binds: `%s`: %s\n", b.Constraint, b.Detail)
	}
	if base != nil {
		saving := base.Totals.Cost.Mean - t.Cost.Mean
		fmt.Fprintf(out, "\nNaive plan (every node on `%s`): $%s per run; this plan saves $%s (%.0f%%).\n", base.Model, usd(base.Totals.Cost.Mean), usd(saving), 100*saving/math.Max(base.Totals.Cost.Mean, 1e-300))
	}
	return nil
}
