package executor

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/graph"
	"github.com/costwise/costwise/planner"
	"github.com/costwise/costwise/policies"
)

func planExample(t *testing.T, name string) (*catalog.Catalog, *estimator.Estimator, *policies.Set, *planner.Result) {
	t.Helper()
	w, err := graph.Load(filepath.Join("..", "examples", name, "workflow.toml"))
	require.NoError(t, err)
	cat, err := catalog.Default()
	require.NoError(t, err)
	e, err := estimator.New(cat, estimator.WithSamples(200))
	require.NoError(t, err)
	est, err := e.Estimate(w)
	require.NoError(t, err)
	set, err := policies.Compile(w)
	require.NoError(t, err)
	res, err := planner.New(set, planner.Options{Timeout: 5 * time.Second, Alternatives: -1}).Plan(context.Background(), est)
	require.NoError(t, err)
	require.True(t, res.Feasible)
	return cat, e, set, res
}

func TestSimulatedRun(t *testing.T) {
	cat, e, set, plan := planExample(t, "support-triage")
	inputs := map[string]string{"ticket": "My invoice is wrong", "customer": "plan: pro", "playbook": "be kind"}
	x := New(cat, NewSimulator(cat, 3), nil, Options{Simulated: true, BackoffBase: time.Millisecond,
		Replan: PlannerReplan(plan.Workflow, e, set, planner.Options{Timeout: time.Second})})
	res, err := x.Run(context.Background(), Spec{RunID: "r1", Plan: plan, Inputs: inputs, BudgetNan: 1_000_000_000})
	require.NoError(t, err)
	assert.True(t, res.Simulated)
	require.Len(t, res.Nodes, len(plan.Workflow.Nodes))
	var sum int64
	for _, n := range res.Nodes {
		for _, a := range n.Attempts {
			sum += a.CostNano
			m, ok := cat.Lookup(a.Model)
			require.True(t, ok)
			assert.Equal(t, catalog.Price(m, a.Usage).NanoUSD(), a.CostNano, "attempt cost is the catalog price of its usage")
		}
		if n.Status == NodeSucceeded {
			assert.True(t, strings.HasPrefix(n.Output, SimulatedPrefix), n.Output)
		}
	}
	assert.Equal(t, sum, res.CostNano)
	assert.Contains(t, []string{StatusSucceeded, StatusFailed}, res.Status)
}

func TestSimulatedBudgetStops(t *testing.T) {
	cat, _, _, plan := planExample(t, "support-triage")
	x := New(cat, NewSimulator(cat, 1), nil, Options{Simulated: true})
	res, err := x.Run(context.Background(), Spec{RunID: "r2", Plan: plan, Inputs: map[string]string{}, BudgetNan: 2_000_000})
	require.NoError(t, err)
	assert.Equal(t, StatusBudgetExhausted, res.Status)
	assert.LessOrEqual(t, res.CostNano, int64(2_000_000))
	assert.Contains(t, res.Error, "budget exhausted")
}

func TestResumeSkipsDoneNodes(t *testing.T) {
	cat, _, _, plan := planExample(t, "support-triage")
	x := New(cat, NewSimulator(cat, 1), nil, Options{Simulated: true})
	res, err := x.Run(context.Background(), Spec{RunID: "r3", Plan: plan, Inputs: map[string]string{},
		Done: map[string]string{"classify": "billing", "retrieve": "facts"}})
	require.NoError(t, err)
	for _, n := range res.Nodes {
		if n.ID == "classify" || n.ID == "retrieve" {
			assert.True(t, n.Resumed)
			assert.Empty(t, n.Attempts)
		}
	}
}
