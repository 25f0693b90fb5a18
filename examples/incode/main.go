package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/graph"
	"github.com/costwise/costwise/planner"
	"github.com/costwise/costwise/policies"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// workflow builds the workflow in code: inputs, budget and nodes.
func workflow() *graph.Workflow {
	node := func(id, task, prompt string, out float64, deps ...string) *graph.Node {
		return &graph.Node{ID: id, Task: task, Prompt: prompt, When: 1, DependsOn: deps,
			OutputTokens: graph.TokenHint{Mean: out, P95: 2 * out}}
	}
	w := &graph.Workflow{
		Name:   "invoice-extraction",
		Inputs: []graph.Input{{Name: "invoice", Tokens: 1800}},
		Budget: graph.Budget{MaxCostUSD: 0.01, MinSuccess: 0.6},
		Nodes: []*graph.Node{
			node("extract", graph.TaskExtraction, "Extract vendor, date, line items and totals as JSON: {{input.invoice}}", 250),
			node("check", graph.TaskReasoning, "Do the line items add up to the total? {{node.extract.output}}", 80, "extract"),
			node("summary", graph.TaskSummarization, "Write a one-line summary for the ledger: {{node.extract.output}} {{node.check.output}}", 40, "extract", "check"),
		},
	}
	w.Nodes[0].Requires = []string{graph.RequireJSON}
	return w
}

func run(out io.Writer) error {
	w := workflow()
	if err := w.Validate(); err != nil {
		return err
	}
	cat, err := catalog.Default()
	if err != nil {
		return err
	}
	e, err := estimator.New(cat, estimator.WithSamples(1000), estimator.WithSeed(7))
	if err != nil {
		return err
	}
	est, err := e.Estimate(w)
	if err != nil {
		return err
	}
	set, err := policies.Compile(w)
	if err != nil {
		return err
	}
	res, err := planner.New(set, planner.Options{Timeout: 5 * time.Second}).Plan(context.Background(), est)
	if err != nil {
		return err
	}
	if !res.Feasible {
		return fmt.Errorf("no plan: %v", res.Infeasible.Reasons)
	}
	for _, a := range res.Assignments {
		fmt.Fprintf(out, "%-8s %-32s $%.6f  quality %.2f  ladder %v\n", a.Node, a.Candidate.Model.ID, a.Candidate.Cost.Mean, a.Candidate.Quality, a.Ladder[1:])
	}
	t := res.Totals
	fmt.Fprintf(out, "run: mean $%.6f, p95 $%.6f, latency %.1f s, success %.3f, optimal %v\n", t.Cost.Mean, t.Cost.P95, t.LatencyS.Mean, t.Success, res.Optimal)
	return nil
}
