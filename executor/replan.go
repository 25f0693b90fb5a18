package executor

import (
	"context"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/graph"
	"github.com/costwise/costwise/planner"
	"github.com/costwise/costwise/policies"
)

// PlannerReplan returns an Options.Replan that plans the residual workflow
// (graph.Workflow.Residual: finished nodes' actual outputs become inputs)
// with the budget left, using the same estimator and policies as the
// original plan, offering the fitted cascades again (give the same ones to
// Options.Cascades so that the executor can run them). When the residual has
// no feasible plan it keeps the current one.
func PlannerReplan(w *graph.Workflow, est *estimator.Estimator, set *policies.Set, opts planner.Options, cascades ...estimator.Cascade) func(context.Context, map[string]string, int64) (map[string][]string, error) {
	opts.Alternatives = -1
	return func(ctx context.Context, done map[string]string, remainingNano int64) (map[string][]string, error) {
		r, err := w.Residual(done)
		if err != nil {
			return nil, err
		}
		if remainingNano >= 0 {
			r.Budget.MaxCostUSD = float64(remainingNano) / 1e9
			if r.Budget.MaxCostUSD <= 0 {
				return nil, nil
			}
		}
		e, err := est.Estimate(r)
		if err != nil {
			return nil, err
		}
		if _, err := e.AddCascades(cascades); err != nil {
			return nil, err
		}
		res, err := planner.New(set, opts).Plan(ctx, e)
		if err != nil || !res.Feasible {
			return nil, err
		}
		out := make(map[string][]string, len(res.Assignments))
		for _, a := range res.Assignments {
			out[a.Node] = a.Ladder
		}
		return out, nil
	}
}
