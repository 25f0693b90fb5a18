package main

import (
	"context"
	"fmt"
	"io"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/graph"
	"github.com/costwise/costwise/planner"
	"github.com/costwise/costwise/policies"
)

// pipeline is the planning half that estimate, plan, preview, run and the
// server share: a catalog, the Monte Carlo settings, and the fitted
// cascades (--cascades) offered to every node of their task.
type pipeline struct {
	cat      *catalog.Catalog
	samples  int
	seed     uint64
	cascades []estimator.Cascade
	warn     io.Writer // where to say that a cascade fits no node; nil = nowhere
}

// stageError is a problem with the workflow found at one stage: "estimate"
// or "policies" (the workflow's rules do not compile). Callers turn it into
// their own error kind (an exit code, an HTTP 400).
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// estimate prices w on every candidate model and fitted cascade.
func (p *pipeline) estimate(w *graph.Workflow) (*estimator.Estimator, *estimator.Estimate, error) {
	e, err := estimator.New(p.cat, estimator.WithSamples(p.samples), estimator.WithSeed(p.seed))
	if err != nil {
		return nil, nil, err
	}
	est, err := e.Estimate(w)
	if err != nil {
		return nil, nil, &stageError{"estimate", fmt.Errorf("%s: %w", w.File, err)}
	}
	if _, err := est.AddCascades(p.cascades); err != nil {
		return nil, nil, &stageError{"estimate", err}
	}
	if p.warn != nil {
		for k := range p.cascades {
			if c := &p.cascades[k]; !offered(est, c.ID()) {
				task := c.Task
				if task == "" {
					task = "any"
				}
				fmt.Fprintf(p.warn, "note: cascade %s (task %s) fits no node of %s: no node of its task has all its models as candidates\n", c.ID(), task, w.File)
			}
		}
	}
	return e, est, nil
}

// offered reports whether some node of est has the candidate id.
func offered(est *estimator.Estimate, id string) bool {
	for i := range est.Nodes {
		if _, ok := est.Candidate(i, id); ok {
			return true
		}
	}
	return false
}

// planned is a workflow carried through the pipeline.
type planned struct {
	e    *estimator.Estimator
	set  *policies.Set
	plan *planner.Result
}

// plan estimates w, compiles its policies and searches for the cheapest
// plan. An infeasible workflow is a plan with Feasible false, not an error.
func (p *pipeline) plan(ctx context.Context, w *graph.Workflow, opts planner.Options) (*planned, error) {
	e, est, err := p.estimate(w)
	if err != nil {
		return nil, err
	}
	set, err := policies.Compile(w)
	if err != nil {
		return nil, &stageError{"policies", err}
	}
	res, err := planner.New(set, opts).Plan(ctx, est)
	if err != nil {
		return nil, err
	}
	return &planned{e: e, set: set, plan: res}, nil
}

// replan re-plans the rest of a run after each node with the same
// estimator, policies and cascades (executor.Options.Replan; pass
// p.cascades as Options.Cascades too).
func (p *pipeline) replan(pl *planned, opts planner.Options) func(context.Context, map[string]string, int64) (map[string][]string, error) {
	return executor.PlannerReplan(pl.plan.Workflow, pl.e, pl.set, opts, p.cascades...)
}
