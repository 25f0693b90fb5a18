package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/graph"
)

// estimateFlags are the Monte Carlo options of every command that estimates.
type estimateFlags struct {
	samples int
	seed    uint64
}

func (f *estimateFlags) register(cmd *cobra.Command) {
	cmd.Flags().IntVar(&f.samples, "samples", estimator.DefaultSamples, "Monte Carlo runs for percentiles")
	cmd.Flags().Uint64Var(&f.seed, "seed", 1, "Monte Carlo seed; the same seed gives the same numbers")
}

// loadAndEstimate loads the workflow and the catalog and estimates.
func loadAndEstimate(cmd *cobra.Command, path string, cf *catalogFlags, ef *estimateFlags) (*estimator.Estimate, error) {
	w, p, err := loadForPipeline(cmd, path, cf, ef)
	if err != nil {
		return nil, err
	}
	_, est, err := p.estimate(w)
	if err != nil {
		return nil, cliError(cmd, err)
	}
	return est, nil
}

// loadForPipeline checks the Monte Carlo flags, loads the workflow, and
// builds the pipeline from the catalog flags.
func loadForPipeline(cmd *cobra.Command, path string, cf *catalogFlags, ef *estimateFlags) (*graph.Workflow, *pipeline, error) {
	if ef.samples < 1 || ef.samples > 1_000_000 {
		return nil, nil, usageError("--samples must be between 1 and 1000000, got %d", ef.samples)
	}
	w, err := graph.Load(path)
	if err != nil {
		return nil, nil, reportLoadError(cmd.ErrOrStderr(), err)
	}
	p, err := cf.pipeline(cmd.ErrOrStderr(), ef.samples, ef.seed)
	if err != nil {
		return nil, nil, err
	}
	return w, p, nil
}

// cliError turns a pipeline error into the CLI's: a workflow problem is bad
// input (rules with file:line:col), anything else too, with its message.
func cliError(cmd *cobra.Command, err error) error {
	var se *stageError
	if errors.As(err, &se) && se.stage == "policies" {
		return reportLoadError(cmd.ErrOrStderr(), se.err)
	}
	return &exitError{code: exitBadInput, msg: err.Error()}
}

func newEstimateCmd(cf *catalogFlags) *cobra.Command {
	var ef estimateFlags
	var asJSON, all bool
	cmd := &cobra.Command{
		Use:   "estimate FILE",
		Short: "Price every node of a workflow on every candidate model",
		Long: `For every node and every catalog model (or those the node's models filter admits):
feasibility with reasons, tokens in and out, calls, cost (mean, p50, p95), latency and
quality, over the whole trajectory: loops, branches, upstream outputs, cached prefixes
and long-context tiers. The table shows the cheapest feasible candidates of each node;
--json prints them all.`,
		Example: `  costwise estimate examples/support-triage/workflow.toml
  costwise estimate examples/research-agent/workflow.toml --json --samples 5000 --seed 7`,
		Args: exactArgs(1, "one workflow file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			est, err := loadAndEstimate(cmd, args[0], cf, &ef)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), estimateJSON(est))
			}
			return writeEstimateTable(cmd.OutOrStdout(), est, all)
		},
	}
	ef.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (the contract is documented in the README)")
	cmd.Flags().BoolVar(&all, "all", false, "show every candidate in the table, infeasible ones too")
	return cmd
}

// JSON contract of `costwise estimate --json` (snake_case, documented in the README).
type estimateOut struct {
	Workflow string    `json:"workflow"`
	Samples  int       `json:"samples"`
	Seed     uint64    `json:"seed"`
	Nodes    []nodeOut `json:"nodes"`
}

type nodeOut struct {
	ID           string         `json:"id"`
	Task         string         `json:"task"`
	When         float64        `json:"when"`
	Calls        distOut        `json:"calls"`
	OutputTokens distOut        `json:"output_tokens"`
	Candidates   []candidateOut `json:"candidates"`
}

type candidateOut struct {
	Model         string      `json:"model"`
	Feasible      bool        `json:"feasible"`
	Reasons       []reasonOut `json:"reasons"`
	InputTokens   distOut     `json:"input_tokens"`
	CachedTokens  float64     `json:"cached_tokens"`
	OutputTokens  distOut     `json:"output_tokens"`
	Calls         distOut     `json:"calls"`
	CostUSD       distOut     `json:"cost_usd"`
	MeanMethod    string      `json:"mean_method"`
	UnknownPrices []string    `json:"unknown_prices"`
	LatencyS      distOut     `json:"latency_s"`
	LatencySource string      `json:"latency_source"`
	Quality       float64     `json:"quality"`
	QualitySource string      `json:"quality_source"`
	QualityNote   string      `json:"quality_note"` // the catalog's citation, or how much was learned from the ledger
}

type reasonOut struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

type distOut struct {
	Mean float64  `json:"mean"`
	P50  *float64 `json:"p50,omitempty"`
	P95  *float64 `json:"p95,omitempty"`
	P99  *float64 `json:"p99,omitempty"`
	Max  *float64 `json:"max,omitempty"`
}

func ptr(v float64) *float64 { return &v }

func fullDist(d estimator.Dist) distOut {
	return distOut{Mean: d.Mean, P50: ptr(d.P50), P95: ptr(d.P95), P99: ptr(d.P99), Max: ptr(d.Max)}
}

func estimateJSON(est *estimator.Estimate) estimateOut {
	out := estimateOut{Workflow: est.Workflow.Name, Samples: est.Samples, Seed: est.Seed, Nodes: []nodeOut{}}
	for _, i := range est.Workflow.Order() {
		ne := est.Nodes[i]
		no := nodeOut{ID: ne.ID, Task: ne.Task, When: ne.When, Calls: fullDist(ne.Calls),
			OutputTokens: distOut{Mean: ne.OutputTokens.Mean, P50: ptr(ne.OutputTokens.P50), P95: ptr(ne.OutputTokens.P95), Max: ptr(ne.OutputTokens.Max)},
			Candidates:   []candidateOut{}}
		for k := range ne.Candidates {
			no.Candidates = append(no.Candidates, candidateJSON(&ne, &ne.Candidates[k]))
		}
		out.Nodes = append(out.Nodes, no)
	}
	return out
}

func candidateJSON(ne *estimator.NodeEstimate, c *estimator.Candidate) candidateOut {
	co := candidateOut{
		Model: c.ID(), Feasible: c.Feasible, Reasons: []reasonOut{},
		InputTokens: fullDist(c.InputTokens), CachedTokens: c.CachedTokens,
		OutputTokens: distOut{Mean: ne.OutputTokens.Mean, P95: ptr(ne.OutputTokens.P95)},
		Calls:        distOut{Mean: ne.Calls.Mean},
		CostUSD:      fullDist(c.Cost.Dist), MeanMethod: c.Cost.MeanMethod, UnknownPrices: []string{},
		LatencyS: distOut{Mean: c.LatencyS.Mean, P95: ptr(c.LatencyS.P95)}, LatencySource: c.LatencySource,
		Quality: c.Quality, QualitySource: c.QualitySource, QualityNote: c.Model.QualitySource[c.QualitySource],
	}
	for _, r := range c.Reasons {
		co.Reasons = append(co.Reasons, reasonOut{Code: string(r.Code), Detail: r.Detail})
	}
	co.UnknownPrices = append(co.UnknownPrices, c.Cost.Unknown...)
	return co
}

// tableRows is how many candidates per node the table shows without --all.
const tableRows = 8

func writeEstimateTable(out io.Writer, est *estimator.Estimate, all bool) error {
	fmt.Fprintf(out, "workflow %s: %d nodes, %d Monte Carlo runs (seed %d)\n", est.Workflow.Name, len(est.Nodes), est.Samples, est.Seed)
	for _, i := range est.Workflow.Order() {
		ne := &est.Nodes[i]
		cands := make([]*estimator.Candidate, 0, len(ne.Candidates))
		infeasible := 0
		for k := range ne.Candidates {
			c := &ne.Candidates[k]
			if !c.Feasible {
				infeasible++
				if !all {
					continue
				}
			}
			cands = append(cands, c)
		}
		sort.SliceStable(cands, func(a, b int) bool {
			if cands[a].Feasible != cands[b].Feasible {
				return cands[a].Feasible
			}
			return cands[a].Cost.Mean < cands[b].Cost.Mean
		})
		fmt.Fprintf(out, "\n%s (%s)  calls %.2f  output %.0f tokens/call (p95 %.0f)", ne.ID, ne.Task, ne.Calls.Mean, ne.OutputTokens.Mean, ne.OutputTokens.P95)
		if ne.When < 1 {
			fmt.Fprintf(out, "  runs with p=%s", strconv.FormatFloat(ne.When, 'g', 3, 64))
		}
		fmt.Fprintln(out)
		tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  MODEL\tIN TOK\tCOST MEAN\tP50\tP95\tLATENCY\tQUALITY\t")
		shown := cands
		if !all && len(shown) > tableRows {
			shown = shown[:tableRows]
		}
		for _, c := range shown {
			note := ""
			if !c.Feasible {
				codes := make([]string, len(c.Reasons))
				for k, r := range c.Reasons {
					codes[k] = string(r.Code)
				}
				note = "  infeasible: " + strings.Join(codes, ", ")
			}
			fmt.Fprintf(tw, "  %s\t%.0f\t$%s\t$%s\t$%s\t%.1fs\t%.2f\t%s\n", c.ID(), c.InputTokens.Mean, usd(c.Cost.Mean), usd(c.Cost.P50), usd(c.Cost.P95), c.LatencyS.Mean, c.Quality, note)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if hidden := len(cands) - len(shown); hidden > 0 || (!all && infeasible > 0) {
			fmt.Fprintf(out, "  (%d more feasible, %d infeasible; --all shows them)\n", hidden, infeasible)
		}
	}
	return nil
}
