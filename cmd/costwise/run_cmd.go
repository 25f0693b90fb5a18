package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/executor/provider"
	"github.com/costwise/costwise/graph"
	"github.com/costwise/costwise/planner"
)

type runFlags struct {
	planFlags
	inputs      []string
	config      string
	ledgerPath  string
	resume      string
	dryRun      bool
	simulate    bool
	concurrency int
	noReplan    bool
	asJSON      bool
}

func newRunCmd(cf *catalogFlags) *cobra.Command {
	var rf runFlags
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a workflow on its cheapest plan: retries, fallbacks, escalation, budget, ledger",
		Long: `Plan the workflow, then run it through the configured providers: nodes in topological
order (independent ones concurrently), each climbing its fallback ladder on failures,
within the run's budget (calls reserve their p95 cost before they are sent), re-planning
the nodes not yet run after each node. Every call is recorded in the ledger; a killed run
continues with --resume RUN_ID without paying twice for completed nodes.

Providers come from --config (default ./costwise.toml, then $XDG_CONFIG_HOME/costwise/config.toml).
--simulate uses a built-in simulated provider instead: no keys, no network, and every
output says SIMULATED.`,
		Example: `  costwise run examples/support-triage/workflow.toml --input ticket=@ticket.txt --input customer=@crm.yaml --input playbook=@playbook.md
  costwise run examples/support-triage/workflow.toml --simulate
  costwise run examples/support-triage/workflow.toml --dry-run
  costwise run examples/support-triage/workflow.toml --resume r_20261127T041200Z_ab12cd`,
		Args: exactArgs(1, "one workflow file"),
		RunE: func(cmd *cobra.Command, args []string) error { return runWorkflow(cmd, args[0], cf, &rf) },
	}
	rf.planFlags.register(cmd)
	f := cmd.Flags()
	f.StringArrayVar(&rf.inputs, "input", nil, "a run input NAME=VALUE, or NAME=@path to read it from a file; repeatable")
	f.StringVar(&rf.config, "config", "", "provider config file (default ./costwise.toml, then $XDG_CONFIG_HOME/costwise/config.toml)")
	f.StringVar(&rf.ledgerPath, "ledger", "", "ledger database (default $XDG_DATA_HOME/costwise/ledger.db)")
	f.StringVar(&rf.resume, "resume", "", "continue the run RUN_ID: completed nodes are not run (or paid) again")
	f.BoolVar(&rf.dryRun, "dry-run", false, "print the preview and stop")
	f.BoolVar(&rf.simulate, "simulate", false, "use the built-in SIMULATED provider (no keys, no network)")
	f.IntVar(&rf.concurrency, "concurrency", 4, "nodes run at once")
	f.BoolVar(&rf.noReplan, "no-replan", false, "keep the initial plan instead of re-planning after each node")
	f.BoolVar(&rf.asJSON, "json", false, "print the result as JSON (the contract is documented in the README)")
	return cmd
}

func openLedger(path string) (*ledger.Ledger, error) {
	if path == "" {
		p, err := ledger.DefaultPath()
		if err != nil {
			return nil, &exitError{code: exitBadInput, msg: "ledger: " + err.Error() + "; pass --ledger PATH"}
		}
		path = p
	}
	l, err := ledger.Open(path)
	if err != nil {
		return nil, &exitError{code: exitBadInput, msg: err.Error()}
	}
	return l, nil
}

func runWorkflow(cmd *cobra.Command, path string, cf *catalogFlags, rf *runFlags) error {
	if rf.concurrency < 1 {
		return usageError("--concurrency must be >= 1")
	}
	if rf.dryRun {
		pv := newPreviewCmd(cf)
		pv.SetOut(cmd.OutOrStdout())
		pv.SetErr(cmd.ErrOrStderr())
		return pv.RunE(pv, []string{path})
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return &exitError{code: exitBadInput, msg: fmt.Sprintf("%s: cannot read: %v", path, unwrapPath(err))}
	}
	if rf.timeout <= 0 {
		return usageError("--timeout must be positive")
	}
	w, p, err := loadForPipeline(cmd, path, cf, &rf.estimateFlags)
	if err != nil {
		return err
	}
	if _, err := executor.CompileRules(w); err != nil {
		return reportLoadError(cmd.ErrOrStderr(), err)
	}
	cat := p.cat
	pl, err := p.plan(cmd.Context(), w, planner.Options{Timeout: rf.timeout, MaxExplored: rf.maxNodes, Alternatives: -1})
	if err != nil {
		return cliError(cmd, err)
	}
	plan := pl.plan
	if !plan.Feasible {
		return infeasibleExit(cmd.ErrOrStderr(), plan)
	}

	var clients executor.Clients
	if rf.simulate {
		clients = executor.NewSimulator(cat, rf.seed)
	} else {
		cfgPath := rf.config
		if cfgPath == "" {
			cfgPath = provider.DefaultConfigPath()
		}
		cfg, err := provider.LoadConfig(cfgPath)
		if err != nil {
			var errs graph.Errors
			if errors.As(err, &errs) {
				return reportLoadError(cmd.ErrOrStderr(), err)
			}
			return &exitError{code: exitBadInput, msg: fmt.Sprintf("%v (or try --simulate)", err)}
		}
		defer cfg.Close()
		clients = cfg
	}

	l, err := openLedger(rf.ledgerPath)
	if err != nil {
		return err
	}
	defer l.Close()

	spec := executor.Spec{Plan: plan, BudgetNan: int64(w.Budget.MaxCostUSD * 1e9)}
	if rf.resume != "" {
		rec, err := l.ResumeRun(rf.resume, ledger.HashWorkflow(src))
		if err != nil {
			return &exitError{code: exitBadInput, msg: err.Error()}
		}
		if rec.Simulated != rf.simulate {
			return &exitError{code: exitBadInput, msg: fmt.Sprintf("run %s was %s; resume it with the same --simulate setting", rec.ID, map[bool]string{true: "simulated", false: "real"}[rec.Simulated])}
		}
		spec.RunID, spec.Spent = rec.ID, rec.SpentNano
		if err := json.Unmarshal(rec.Inputs, &spec.Inputs); err != nil {
			return &exitError{code: exitBadInput, msg: "ledger: the run's inputs cannot be read: " + err.Error()}
		}
		if spec.Done, err = l.CompletedNodes(rec.ID); err != nil {
			return &exitError{code: exitBadInput, msg: err.Error()}
		}
	} else {
		if spec.Inputs, err = runInputs(w, rf.inputs, rf.simulate); err != nil {
			return err
		}
		spec.RunID, err = createLedgerRun(l, w, path, src, plan, spec.Inputs, rf.simulate, int64(w.Budget.MaxCostUSD*1e9), "")
		if err != nil {
			return &exitError{code: exitBadInput, msg: err.Error()}
		}
	}

	progress := newProgress(cmd.ErrOrStderr(), rf.simulate)
	opts := executor.Options{Concurrency: rf.concurrency, Simulated: rf.simulate, Seed: rf.seed, OnEvent: progress.event, Cascades: p.cascades}
	if !rf.noReplan {
		opts.Replan = p.replan(pl, planner.Options{Timeout: min(rf.timeout, 2*time.Second), MaxExplored: rf.maxNodes})
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(cmd.ErrOrStderr(), "run %s: %s, predicted $%s (p95 $%s)%s\n", spec.RunID, w.Name, usd(plan.Totals.Cost.Mean), usd(plan.Totals.Cost.P95), simTag(rf.simulate))
	res, err := executor.New(cat, clients, executor.LedgerRecorder{L: l}, opts).Run(ctx, spec)
	if err != nil {
		return reportLoadError(cmd.ErrOrStderr(), err)
	}
	if err := l.FinishRun(spec.RunID, ledger.RunStatus(res.Status)); err != nil {
		return &exitError{code: exitBadInput, msg: err.Error()}
	}
	if rf.asJSON {
		if err := writeJSON(cmd.OutOrStdout(), runJSON(res)); err != nil {
			return err
		}
	} else {
		writeRunSummary(cmd.OutOrStdout(), res)
	}
	if res.Status != executor.StatusSucceeded {
		return &exitError{code: exitBadInput, msg: fmt.Sprintf("run %s %s: %s (resume with --resume %s)", res.RunID, res.Status, res.Error, res.RunID)}
	}
	return nil
}

func simTag(sim bool) string {
	if sim {
		return "  [SIMULATED: no provider is called]"
	}
	return ""
}

// ladders is the plan as the ledger stores it: node id -> model ladder.
func ladders(p *planner.Result) map[string][]string {
	out := map[string][]string{}
	for _, a := range p.Assignments {
		out[a.Node] = a.Ladder
	}
	return out
}

// runInputs parses --input NAME=VALUE and NAME=@path, and checks that every
// input the nodes reference is given.
func runInputs(w *graph.Workflow, specs []string, simulate bool) (map[string]string, error) {
	in := map[string]string{}
	for _, s := range specs {
		name, value, ok := strings.Cut(s, "=")
		if !ok || name == "" {
			return nil, usageError("--input %q: want NAME=VALUE or NAME=@path", s)
		}
		if w.Input(name) == nil {
			return nil, &exitError{code: exitBadInput, msg: fmt.Sprintf("--input %s: the workflow declares no input %q", name, name)}
		}
		if strings.HasPrefix(value, "@") {
			b, err := os.ReadFile(value[1:])
			if err != nil {
				return nil, &exitError{code: exitBadInput, msg: fmt.Sprintf("--input %s: cannot read %s: %v", name, value[1:], unwrapPath(err))}
			}
			value = string(b)
		}
		in[name] = value
	}
	var missing []string
	for _, decl := range w.Inputs {
		if _, ok := in[decl.Name]; ok {
			continue
		}
		switch {
		case simulate:
			in[decl.Name] = simulatedInput(decl)
		default:
			missing = append(missing, decl.Name)
		}
	}
	if len(missing) > 0 {
		return nil, &exitError{code: exitBadInput, msg: fmt.Sprintf("missing inputs: %s; pass --input NAME=VALUE or --input NAME=@path for each", strings.Join(missing, ", "))}
	}
	return in, nil
}

// simulatedInput stands in for a missing input in a simulated run: the
// declared example or file text, else filler of the declared size, so that
// simulated usage matches the estimate.
func simulatedInput(in graph.Input) string {
	switch {
	case in.Example != "":
		return in.Example
	case in.Text != "":
		return in.Text
	}
	return "(SIMULATED input " + in.Name + ")" + strings.Repeat(" simulated", max(0, in.Tokens-8))
}

// progress prints one plain line per event to stderr.
type progress struct {
	mu  sync.Mutex
	out io.Writer
	sim string
}

func newProgress(out io.Writer, sim bool) *progress {
	p := &progress{out: out}
	if sim {
		p.sim = " SIMULATED"
	}
	return p
}

func (p *progress) event(e executor.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Kind {
	case "start":
		fmt.Fprintf(p.out, "  %-14s started\n", e.Node)
	case "attempt":
		a := e.Attempt
		line := fmt.Sprintf("  %-14s %s %s $%s %.1fs%s", e.Node, a.Model, a.Outcome, usd(float64(a.CostNano)/1e9), a.Latency.Seconds(), p.sim)
		if a.Outcome != executor.OutcomeOK && a.Reason != "" {
			line += ": " + firstLineOf(a.Reason)
		}
		fmt.Fprintln(p.out, line)
	case "done":
		fmt.Fprintf(p.out, "  %-14s %s\n", e.Node, e.Status)
	}
}

func firstLineOf(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// JSON contract of `costwise run --json`.
type runOut struct {
	RunID            string    `json:"run_id"`
	Status           string    `json:"status"`
	Error            string    `json:"error,omitempty"`
	Simulated        bool      `json:"simulated"`
	CostUSD          float64   `json:"cost_usd"`
	CostNanoUSD      int64     `json:"cost_nano_usd"`
	PredictedCostUSD distOut   `json:"predicted_cost_usd"`
	Nodes            []runNode `json:"nodes"`
}

type runNode struct {
	ID           string       `json:"id"`
	Status       string       `json:"status"`
	Model        string       `json:"model"`
	Output       string       `json:"output"`
	CostUSD      float64      `json:"cost_usd"`
	PredictedUSD float64      `json:"predicted_cost_usd"`
	Escalations  int          `json:"escalations"`
	Resumed      bool         `json:"resumed"`
	Replanned    string       `json:"replanned,omitempty"`
	Attempts     []runAttempt `json:"attempts"`
}

type runAttempt struct {
	Model         string         `json:"model"`
	Iteration     int            `json:"iteration"`
	Outcome       string         `json:"outcome"`
	Reason        string         `json:"reason"`
	Usage         map[string]any `json:"usage"`
	UsageReported bool           `json:"usage_reported"`
	MayHaveBilled bool           `json:"may_have_billed"`
	CostUSD       float64        `json:"cost_usd"`
	LatencyS      float64        `json:"latency_s"`
	// Purpose is "self_check" for a cascade's check of an answer (absent
	// for answers); Confidence is the cascade signal judged on the answer.
	Purpose    string   `json:"purpose,omitempty"`
	Confidence *float64 `json:"confidence,omitempty"`
}

func runJSON(res *executor.Result) runOut {
	out := runOut{RunID: res.RunID, Status: res.Status, Error: res.Error, Simulated: res.Simulated, CostUSD: float64(res.CostNano) / 1e9,
		CostNanoUSD: res.CostNano, PredictedCostUSD: fullDist(res.PredictedUSD), Nodes: []runNode{}}
	for _, n := range res.Nodes {
		rn := runNode{ID: n.ID, Status: n.Status, Model: n.Model, Output: n.Output, CostUSD: float64(n.CostNano) / 1e9,
			PredictedUSD: n.PredictedUSD, Escalations: n.Escalations, Resumed: n.Resumed, Replanned: n.ReplannedFrom, Attempts: []runAttempt{}}
		for _, a := range n.Attempts {
			u := a.Usage
			rn.Attempts = append(rn.Attempts, runAttempt{Model: a.Model, Iteration: a.Iteration, Outcome: a.Outcome, Reason: a.Reason,
				Usage: map[string]any{"input_tokens": u.InputTokens, "cache_read_tokens": u.CacheReadTokens, "cache_write_tokens": u.CacheWriteTokens,
					"cache_write_1h_tokens": u.CacheWrite1hTokens, "output_tokens": u.OutputTokens, "reasoning_tokens": u.ReasoningTokens,
					"audio_input_tokens": u.AudioInputTokens, "audio_output_tokens": u.AudioOutputTokens},
				UsageReported: a.UsageReported, MayHaveBilled: a.MayHaveBilled, CostUSD: float64(a.CostNano) / 1e9, LatencyS: a.Latency.Seconds(),
				Purpose: a.Purpose, Confidence: a.Confidence})
		}
		out.Nodes = append(out.Nodes, rn)
	}
	return out
}

func writeRunSummary(out io.Writer, res *executor.Result) {
	sim := ""
	if res.Simulated {
		sim = " (SIMULATED)"
	}
	fmt.Fprintf(out, "\nrun %s: %s%s\n", res.RunID, res.Status, sim)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATUS\tMODEL\tCOST\tPREDICTED\tATTEMPTS\tESCALATIONS\tOUTPUT")
	for _, n := range res.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t$%s\t$%s\t%d\t%d\t%s\n", n.ID, n.Status, n.Model, usd(float64(n.CostNano)/1e9), usd(n.PredictedUSD),
			len(n.Attempts), n.Escalations, strings.ReplaceAll(firstLineOf(n.Output), "\t", " "))
	}
	tw.Flush()
	fmt.Fprintf(out, "cost $%s (nano-USD %d) vs predicted mean $%s, p95 $%s\n", usd(float64(res.CostNano)/1e9), res.CostNano, usd(res.PredictedUSD.Mean), usd(res.PredictedUSD.P95))
	for _, n := range res.Nodes {
		if n.ReplannedFrom != "" {
			fmt.Fprintf(out, "re-planned %s: %s\n", n.ID, n.ReplannedFrom)
		}
	}
	if res.Error != "" {
		fmt.Fprintf(out, "stopped: %s\n", res.Error)
	}
}

func newRunsCmd(cf *catalogFlags) *cobra.Command {
	var ledgerPath string
	var last int
	var threshold float64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List recorded runs, with cost per completed run and re-route warnings",
		Example: `  costwise runs
  costwise runs --last 50 --reroute-threshold 0.1
  costwise runs show r_20261127T041200Z_ab12cd`,
		Args: exactArgs(0, "no arguments (or the subcommand show RUN_ID)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := openLedger(ledgerPath)
			if err != nil {
				return err
			}
			defer l.Close()
			runs, err := l.Runs(last)
			if err != nil {
				return &exitError{code: exitBadInput, msg: err.Error()}
			}
			rates, err := l.RerouteRates(last)
			if err != nil {
				return &exitError{code: exitBadInput, msg: err.Error()}
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"runs": runs, "reroute_rates": rates})
			}
			out := cmd.OutOrStdout()
			if len(runs) == 0 {
				fmt.Fprintln(out, "no runs recorded yet: costwise run FILE")
				return nil
			}
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tWORKFLOW\tSTATUS\tSPENT\tPREDICTED\tNODES OK\tESCALATIONS\tCREATED")
			workflows := map[string]bool{}
			var stopped []string
			for _, r := range runs {
				status := string(r.Status)
				if r.StopNote != "" {
					status += " (stopped)"
					stopped = append(stopped, r.ID+": "+r.StopNote)
				}
				if r.Simulated {
					status += " (simulated)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t$%s\t$%s\t%d/%d\t%d\t%s\n", r.ID, r.WorkflowName, status, usd(float64(r.SpentNano)/1e9), usd(r.PredictedMeanUSD),
					r.Nodes.Succeeded, r.Nodes.Total, r.Escalations, r.CreatedAt.Format(time.RFC3339))
				workflows[r.WorkflowName] = true
			}
			tw.Flush()
			for _, s := range stopped {
				fmt.Fprintln(out, s)
			}
			names := make([]string, 0, len(workflows))
			for n := range workflows {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				c, err := l.CostPerCompletedRun(n)
				if err != nil || c.Succeeded == 0 {
					continue
				}
				fmt.Fprintf(out, "%s: $%s per completed run (%d of %d runs succeeded; failed runs' spend included)\n", n, usd(float64(c.PerCompletedNano)/1e9), c.Succeeded, c.Runs)
			}
			for _, r := range rates {
				if r.Rate > threshold && r.Calls > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s/%s on %s re-routed %.0f%% of %d calls (threshold %.0f%%): the cheap model fails too often; revisit the plan or its quality data\n",
						r.WorkflowName, r.NodeID, r.Model, 100*r.Rate, r.Calls, 100*threshold)
				}
			}
			return nil
		},
	}
	cmd.PersistentFlags().StringVar(&ledgerPath, "ledger", "", "ledger database (default $XDG_DATA_HOME/costwise/ledger.db)")
	cmd.Flags().IntVar(&last, "last", 20, "how many recent runs")
	cmd.Flags().Float64Var(&threshold, "reroute-threshold", 0.05, "warn when a node x model escalates more often than this")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(newRunsShowCmd(&ledgerPath))
	return cmd
}

func newRunsShowCmd(ledgerPath *string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show RUN_ID",
		Short: "Show a run: predicted vs actual per node and every attempt",
		Args:  exactArgs(1, "one run id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := openLedger(*ledgerPath)
			if err != nil {
				return err
			}
			defer l.Close()
			rec, err := l.Run(args[0])
			if err != nil {
				return &exitError{code: exitBadInput, msg: err.Error()}
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), rec)
			}
			out := cmd.OutOrStdout()
			sim := ""
			if rec.Simulated {
				sim = " (SIMULATED)"
			}
			fmt.Fprintf(out, "run %s%s: %s, workflow %s (%s)\n", rec.ID, sim, rec.Status, rec.WorkflowName, rec.WorkflowFile)
			fmt.Fprintf(out, "spent $%s (nano-USD %d) vs predicted mean $%s, p95 $%s\n\n", usd(float64(rec.SpentNano)/1e9), rec.SpentNano, usd(rec.PredictedMeanUSD), usd(rec.PredictedP95USD))
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tSTATUS\tMODEL\tACTUAL\tPREDICTED\tATTEMPTS")
			for _, n := range rec.Nodes {
				var spent int64
				for _, a := range n.Attempts {
					spent += a.CostNano
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t$%s\t$%s\t%d\n", n.NodeID, n.Status, n.FinalModel, usd(float64(spent)/1e9), usd(n.PredictedCostUSD), len(n.Attempts))
			}
			tw.Flush()
			for _, n := range rec.Nodes {
				for _, a := range n.Attempts {
					if a.Outcome != ledger.OutcomeOK {
						fmt.Fprintf(out, "  %s #%d %s: %s (%s)%s\n", n.NodeID, a.Seq, a.Model, a.Outcome, firstLineOf(a.Reason), billed(a.MayHaveBilled))
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func billed(b bool) string {
	if b {
		return ", may have been billed"
	}
	return ""
}
