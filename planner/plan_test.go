package planner

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/graph"
	"github.com/costwise/costwise/policies"
)

// Three models with round numbers: cheap and weak, mid, dear and strong.
const planCatalog = `
[[model]]
id = "a/cheap"
input_per_mtok = 1.0
output_per_mtok = 1.0
modalities = ["text"]
ttft_s = 1
output_tokens_per_s = 100
[model.quality]
default = 0.80

[[model]]
id = "b/mid"
input_per_mtok = 2.0
output_per_mtok = 2.0
modalities = ["text"]
ttft_s = 3
output_tokens_per_s = 100
[model.quality]
default = 0.90

[[model]]
id = "c/dear"
input_per_mtok = 10.0
output_per_mtok = 10.0
modalities = ["text"]
ttft_s = 0.5
output_tokens_per_s = 100
[model.quality]
default = 0.99
`

// Every node: 900 input + 100 output tokens, one call: cost = 1000 tokens x rate.
// cheap $0.001, mid $0.002, dear $0.010; latency = ttft + 1 s: 2 s, 4 s, 1.5 s.
// Cascades, when given, are offered to both nodes.
func planFor(t *testing.T, budget, extra string, cascades ...estimator.Cascade) *Result {
	t.Helper()
	src := "name = \"p\"\n" + budget + "\n" + extra + `
[[node]]
id = "x"
prompt = "p"
input_tokens = 900
output_tokens = { mean = 100, p95 = 100 }
[[node]]
id = "y"
depends_on = ["x"]
prompt = "p"
input_tokens = 900
output_tokens = { mean = 100, p95 = 100 }
`
	w, err := graph.Parse("p.toml", []byte(src))
	require.NoError(t, err)
	cat, err := catalog.LoadTOML("cat.toml", []byte(planCatalog))
	require.NoError(t, err)
	e, err := estimator.New(cat, estimator.WithSamples(100))
	require.NoError(t, err)
	est, err := e.Estimate(w)
	require.NoError(t, err)
	_, err = est.AddCascades(cascades)
	require.NoError(t, err)
	set, err := policies.Compile(w)
	require.NoError(t, err)
	res, err := New(set, Options{Timeout: 5 * time.Second}).Plan(context.Background(), est)
	require.NoError(t, err)
	return res
}

func models(res *Result) []string {
	var out []string
	for _, a := range res.Assignments {
		out = append(out, a.Candidate.Model.ID)
	}
	return out
}

func TestPlanChoicesAndExplanations(t *testing.T) {
	cases := []struct {
		name    string
		budget  string
		extra   string
		models  []string
		cost    float64
		binding []string
		why     map[string]string // node -> substring of Explanation.Why
	}{
		{"no constraints: cheapest everywhere", "", "", []string{"a/cheap", "a/cheap"}, 0.002, nil, nil},
		{"success forces one upgrade", "[budget]\nmin_success = 0.72", "", []string{"b/mid", "a/cheap"}, 0.003,
			[]string{"budget.min_success"}, map[string]string{"x": "success would be 0.6400 < min_success 0.7200"}},
		{"latency forces fast models", "[budget]\nmax_latency_s = 3.5\nmin_success = 0.72", "", []string{"c/dear", "a/cheap"}, 0.011,
			[]string{"budget.max_latency_s"}, map[string]string{"x": "critical path would take 4.00 s > max_latency_s 3.50"}},
		{"plan rule", "", "[[policy]]\nname = \"diverse\"\nscope = \"plan\"\nrule = 'plan.providers[\"a\"] <= 1'\n", []string{"a/cheap", "b/mid"}, 0.003,
			[]string{"policy (plan rules)"}, map[string]string{"y": "a plan rule rejects the plan"}},
		{"node rule", "", "[[policy]]\nname = \"no-a\"\nscope = \"node\"\nrule = 'model.provider != \"a\"'\n", []string{"b/mid", "b/mid"}, 0.004, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := planFor(t, c.budget, c.extra)
			require.True(t, res.Feasible, "%+v", res.Infeasible)
			assert.True(t, res.Optimal)
			assert.Equal(t, c.models, models(res))
			assert.InDelta(t, c.cost, res.Totals.Cost.Mean, 1e-12)
			var binding []string
			for _, b := range res.Binding {
				binding = append(binding, b.Constraint)
			}
			assert.Equal(t, c.binding, binding)
			for node, want := range c.why {
				found := false
				for _, e := range res.Explain {
					if e.Node == node {
						found = true
						assert.Contains(t, e.Why, want)
					}
				}
				assert.True(t, found, "no explanation for %s", node)
			}
		})
	}
}

func TestNodeRuleRejectionsAreRecorded(t *testing.T) {
	res := planFor(t, "", "[[policy]]\nname = \"no-a\"\nscope = \"node\"\nrule = 'model.provider != \"a\"'\n")
	require.Len(t, res.Rejections, 2)
	for _, r := range res.Rejections {
		assert.Equal(t, "a/cheap", r.Model)
		assert.Equal(t, policies.ReasonRule, r.Reason)
		assert.Equal(t, "no-a", r.Policy)
	}
	assert.Equal(t, "a/cheap", res.Explain[0].CheapestModel)
	assert.Equal(t, []string{`policy (no-a): rule model.provider != "a" is false`}, res.Explain[0].CheapestReasons)
}

func TestLadder(t *testing.T) {
	res := planFor(t, "[budget]\nmax_cost_usd = 0.05", "")
	require.True(t, res.Feasible)
	// Chosen cheap; every stronger model keeps the plan under $0.05: highest quality first.
	assert.Equal(t, []string{"a/cheap", "c/dear", "b/mid"}, res.Assignments[0].Ladder)

	res = planFor(t, "[budget]\nmax_cost_usd = 0.004", "")
	require.True(t, res.Feasible)
	// c/dear would break the budget: b/mid (within) first, then c/dear.
	assert.Equal(t, []string{"a/cheap", "b/mid", "c/dear"}, res.Assignments[0].Ladder)
}

func TestInfeasible(t *testing.T) {
	cases := []struct {
		name    string
		budget  string
		extra   string
		reasons []string
		closest int
	}{
		{"success unreachable", "[budget]\nmin_success = 0.99", "",
			[]string{"budget.min_success 0.99 cannot be met: the best success any plan reaches is 0.9801"}, 1},
		{"latency unreachable", "[budget]\nmax_latency_s = 2", "",
			[]string{"budget.max_latency_s 2 cannot be met: the fastest plan takes 3 s"}, 1},
		{"cost and success conflict", "[budget]\nmax_cost_usd = 0.0025\nmin_success = 0.72", "",
			[]string{"budget.max_cost_usd 0.0025 cannot be met: the cheapest plan that meets the other constraints costs $0.003"}, 2},
		{"node filters remove everything", "", "[[policy]]\nname = \"none\"\nscope = \"node\"\nrule = 'model.id == \"z/none\"'\n",
			[]string{`node "x" has no candidate model left: removed 3 by policy (none)`, `node "y" has no candidate model left: removed 3 by policy (none)`}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := planFor(t, c.budget, c.extra)
			require.False(t, res.Feasible)
			require.NotNil(t, res.Infeasible)
			assert.Equal(t, c.reasons, res.Infeasible.Reasons)
			assert.Len(t, res.Infeasible.Closest, c.closest)
		})
	}
}

func TestAlternativesAreOnTheFrontier(t *testing.T) {
	res := planFor(t, "", "")
	require.NotEmpty(t, res.Alternatives)
	for _, a := range res.Alternatives {
		assert.GreaterOrEqual(t, a.CostUSD, res.Totals.Cost.Mean)
		switch a.Frontier {
		case "cost-success":
			assert.Greater(t, a.Success, res.Totals.Success)
		case "cost-latency":
			assert.Less(t, a.LatencyS, res.Totals.LatencyS.Mean)
		default:
			t.Fatalf("unknown frontier %q", a.Frontier)
		}
	}
}
