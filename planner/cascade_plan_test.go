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

// planWithCascades plans the two-node workflow of planFor with cascades
// offered to every node.
func planWithCascades(t *testing.T, budget, extra string, cs ...estimator.Cascade) *Result {
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
	_, err = est.AddCascades(cs)
	require.NoError(t, err)
	set, err := policies.Compile(w)
	require.NoError(t, err)
	res, err := New(set, Options{Timeout: 5 * time.Second}).Plan(context.Background(), est)
	require.NoError(t, err)
	return res
}

func TestPlanChoosesFittedCascade(t *testing.T) {
	// cheap -> dear escalating 30% of calls: $0.001 + 0.3 x $0.010 = $0.004
	// per node with measured quality 0.985: cheaper than dear ($0.010) and
	// good enough where mid (0.90) is not.
	cas := estimator.Cascade{Models: []string{"a/cheap", "c/dear"}, Thresholds: []float64{0.8}, Signal: estimator.SignalLogprob,
		Reach: []float64{1, 0.3}, Quality: 0.985, Rows: 500}
	id := cas.ID()
	cases := []struct {
		name, budget, extra string
		want                []string // chosen per node, x then y
	}{
		{"min_success picks the cascade", "[budget]\nmin_success = 0.96", "", []string{id, id}},
		{"a cheaper single model when quality allows", "[budget]\nmin_success = 0.80", "", []string{"b/mid", "b/mid"}},
		{"a rule against a stage's provider removes the cascade", "[budget]\nmin_success = 0.96",
			"[[policy]]\nname = \"no-a\"\nscope = \"node\"\nrule = 'model.provider != \"a\"'\n", []string{"c/dear", "c/dear"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := planWithCascades(t, tc.budget, tc.extra, cas)
			require.True(t, res.Feasible, "%+v", res.Infeasible)
			var got []string
			for _, a := range res.Assignments {
				got = append(got, a.Candidate.ID())
			}
			assert.Equal(t, tc.want, got)
			if tc.want[0] == id {
				a := res.Assignments[0]
				assert.Equal(t, id, a.Ladder[0])
				assert.NotContains(t, a.Ladder[1:], "a/cheap", "stages are not repeated as rungs")
				assert.NotContains(t, a.Ladder[1:], "c/dear")
				assert.InDelta(t, 2*(0.001+0.3*0.010), res.Totals.Cost.Mean, 1e-9)
				assert.InDelta(t, 0.985*0.985, res.Totals.Success, 1e-12)
			}
			if tc.extra != "" {
				var msgs []string
				for _, r := range res.Rejections {
					if r.Model == id {
						msgs = append(msgs, r.Msg)
					}
				}
				require.NotEmpty(t, msgs, "the cascade's rejection is recorded")
				assert.Contains(t, msgs[0], "stage a/cheap")
			}
		})
	}
}
