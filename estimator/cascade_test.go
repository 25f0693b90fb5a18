package estimator

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAddCascades(t *testing.T) {
	cat := testCatalog(t, "")
	w := parseWorkflow(t, string(readTestdata(t, "hand.toml")))
	two := Cascade{Models: []string{mCachey, mTiered}, Thresholds: []float64{0.7}, Signal: SignalLogprob,
		Reach: []float64{1, 0.25}, Quality: 0.93, Rows: 400, Source: "test"}
	selfCheck := two
	selfCheck.Signal = SignalSelfCheck
	selfCheck.Thresholds = []float64{0.5}
	withNoCache := Cascade{Models: []string{mNoCache, mTiered}, Thresholds: []float64{0.6}, Signal: SignalLogprob,
		Reach: []float64{1, 0.5}, Quality: 0.9}
	extractOnly := two
	extractOnly.Task = "extraction"
	extractOnly.Thresholds = []float64{0.9}

	est := estimate(t, cat, w)
	n, err := est.AddCascades([]Cascade{two, selfCheck, withNoCache, extractOnly})
	require.NoError(t, err)
	// two, selfCheck, withNoCache on each of 4 nodes; extractOnly on extract.
	require.Equal(t, 13, n)

	cases := []struct {
		name, node, id string
		cost           float64 // mean USD per run, by hand from the single-model figures of TestEstimateHandComputed
		feasible       bool
	}{
		{"reach-weighted stages", "final", "cascade:logprob:acme/cachey@0.7>acme/tiered", 0.001306 + 0.25*0.003812, true},
		{"a loop node", "agent", "cascade:logprob:acme/cachey@0.7>acme/tiered", 0.004028 + 0.25*0.012936, true},
		// One self-check per call of the first stage: prompt 706 + answer 300
		// + 60 question tokens at $1/M, 5 output tokens at $2/M.
		{"self-check calls are paid for", "final", "cascade:self_check:acme/cachey@0.5>acme/tiered",
			0.001306 + 0.25*0.003812 + (706+300+60)*1e-6 + 5*2e-6, true},
		// review runs half the time: its self-checks too.
		{"self-check under when", "review", "cascade:self_check:acme/cachey@0.5>acme/tiered",
			0.0012 + 0.25*0.0044 + 0.5*((400+1000+60)*1e-6+5*2e-6), true},
		{"an infeasible stage makes the cascade infeasible", "extract", "cascade:logprob:plain/nocache@0.6>acme/tiered", 0.0011 + 0.5*0.0048, false},
		{"a task-bound cascade on its task", "extract", "cascade:logprob:acme/cachey@0.9>acme/tiered", 0.002575 + 0.25*0.0048, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			i, ok := w.NodeIndex(tc.node)
			require.True(t, ok)
			c, ok := est.Candidate(i, tc.id)
			require.True(t, ok, "no candidate %s on %s", tc.id, tc.node)
			require.NotNil(t, c.Cascade)
			assert.Equal(t, tc.id, c.ID())
			assert.InDelta(t, tc.cost, c.Cost.Mean, 1e-9)
			assert.Equal(t, tc.feasible, c.Feasible, "%v", c.Reasons)
			if !tc.feasible {
				require.NotEmpty(t, c.Reasons)
				assert.Contains(t, c.Reasons[0].Detail, "stage plain/nocache")
			}
			assert.Equal(t, mTiered, c.Model.ID, "Model is the last stage")
			assert.LessOrEqual(t, c.Cost.P50, c.Cost.P95)
			assert.LessOrEqual(t, c.Cost.P95, c.Cost.Max)
		})
	}
	t.Run("a task-bound cascade stays off other tasks", func(t *testing.T) {
		i, _ := w.NodeIndex("final")
		_, ok := est.Candidate(i, "cascade:logprob:acme/cachey@0.9>acme/tiered")
		assert.False(t, ok)
	})
	t.Run("quality is the measured one", func(t *testing.T) {
		i, _ := w.NodeIndex("final")
		c, _ := est.Candidate(i, two.ID())
		assert.Equal(t, 0.93, c.Quality)
		assert.Equal(t, "cascade fit: test", c.QualitySource)
	})
}

// The Monte Carlo draws escalate in the measured share of runs, so a plan's
// sampled mean agrees with the analytic reach-weighted mean.
func TestCascadeTotalsAgreeWithMean(t *testing.T) {
	cat := testCatalog(t, "")
	w := parseWorkflow(t, string(readTestdata(t, "hand.toml")))
	est := estimate(t, cat, w, WithSamples(20000))
	c := Cascade{Models: []string{mCachey, mTiered}, Thresholds: []float64{0.7}, Signal: SignalLogprob, Reach: []float64{1, 0.3}, Quality: 0.9}
	_, err := est.AddCascades([]Cascade{c})
	require.NoError(t, err)
	choice := make([]*Candidate, len(w.Nodes))
	for i := range w.Nodes {
		var ok bool
		choice[i], ok = est.Candidate(i, c.ID())
		require.True(t, ok)
	}
	tot, err := est.Totals(choice)
	require.NoError(t, err)
	sum := 0.0
	for i := range w.Nodes {
		sum += est.runCostMean(choice[i], i)
	}
	assert.InDelta(t, tot.Cost.Mean, sum, tot.Cost.Mean*0.03, "sampled mean %v vs analytic %v", sum, tot.Cost.Mean)
	assert.InDelta(t, math.Pow(0.9, 4), tot.Success, 1e-12)
	assert.Greater(t, tot.Cost.P95, tot.Cost.P50, "escalations widen the tail")
}

// runCostMean is the mean of candidate c's sampled costs at node i.
func (est *Estimate) runCostMean(c *Candidate, i int) float64 {
	sum := 0.0
	for s := range est.Samples {
		sum += est.runCost(c, i, est.draws[i], s)
	}
	return sum / float64(est.Samples)
}

func TestCascadeCheck(t *testing.T) {
	ok := Cascade{Models: []string{"a", "b"}, Thresholds: []float64{0.5}, Signal: SignalLogprob, Reach: []float64{1, 0.4}, Quality: 0.8}
	cases := []struct {
		name  string
		edit  func(*Cascade)
		field string
	}{
		{"one model", func(c *Cascade) { c.Models = c.Models[:1] }, "models:"},
		{"threshold count", func(c *Cascade) { c.Thresholds = nil }, "thresholds:"},
		{"NaN threshold", func(c *Cascade) { c.Thresholds = []float64{math.NaN()} }, "thresholds:"},
		{"reach count", func(c *Cascade) { c.Reach = []float64{1} }, "reach:"},
		{"first reach", func(c *Cascade) { c.Reach = []float64{0.9, 0.4} }, "reach:"},
		{"growing reach", func(c *Cascade) { c.Reach = []float64{1, 1.2} }, "reach:"},
		{"signal", func(c *Cascade) { c.Signal = "vibes" }, "signal:"},
		{"quality", func(c *Cascade) { c.Quality = 0 }, "quality:"},
	}
	require.NoError(t, (&ok).Check())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			c.Models, c.Thresholds, c.Reach = append([]string(nil), ok.Models...), append([]float64(nil), ok.Thresholds...), append([]float64(nil), ok.Reach...)
			tc.edit(&c)
			err := c.Check()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
}

func TestCascadeSignalNeeds(t *testing.T) {
	cat := testCatalog(t, `
[[model]]
id = "anthropic/claude"
provider = "anthropic"
input_per_mtok = 1.0
output_per_mtok = 2.0
context_window = 100000
`)
	w := parseWorkflow(t, `name = "s"
[[node]]
id = "plain"
prompt = "p"
output_tokens = 10
[[node]]
id = "checked"
prompt = "p"
output_tokens = 10
validate = 'len(output) > 0'
`)
	est := estimate(t, cat, w)
	mk := func(first, signal string) Cascade {
		return Cascade{Models: []string{first, mTiered}, Thresholds: []float64{0.5}, Signal: signal, Reach: []float64{1, 0.5}, Quality: 0.9}
	}
	cs := []Cascade{mk(mCachey, SignalValidate), mk("anthropic/claude", SignalLogprob), mk("anthropic/claude", SignalSelfCheck), mk(mCachey, SignalLogprob)}
	_, err := est.AddCascades(cs)
	require.NoError(t, err)
	cases := []struct {
		node     string
		c        Cascade
		feasible bool
		why      string
	}{
		{"plain", cs[0], false, "validate rule"},
		{"checked", cs[0], true, ""},
		{"plain", cs[1], false, "anthropic calls do not return"},
		{"plain", cs[2], true, ""},
		{"plain", cs[3], true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.node+"/"+tc.c.ID()+"/"+tc.c.Signal, func(t *testing.T) {
			i, _ := w.NodeIndex(tc.node)
			c, ok := est.Candidate(i, tc.c.ID())
			require.True(t, ok)
			assert.Equal(t, tc.feasible, c.Feasible, "%v", c.Reasons)
			if tc.why != "" {
				require.NotEmpty(t, c.Reasons)
				assert.Equal(t, ReasonCapability, c.Reasons[0].Code)
				assert.Contains(t, c.Reasons[0].Detail, tc.why)
			}
		})
	}
}
