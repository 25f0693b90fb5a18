package planner

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator"
)

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
			res := planFor(t, tc.budget, tc.extra, cas)
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
