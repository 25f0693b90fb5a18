package estimator

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/graph"
)

// Tolerances: costs are ~1e-3 USD and exact up to float rounding.
const (
	usdTol = 1e-12
	tokTol = 1e-9
	secTol = 1e-9
)

// TestEstimateHandComputed checks every number of testdata/hand.toml against
// testdata/catalog.toml, computed by hand.
//
// Prices (USD per token): cachey in 1e-6, out 2e-6, cache read 0.1e-6,
// cache write 1.25e-6; tiered in 2e-6, out 8e-6 (tier above 5000 not reached
// here); nocache in 0.5e-6, out 1e-6. Latency: cachey 0.5 s + out/100;
// tiered 1 s + out/50; nocache has no profile: default 1 s + out/50.
//
// extract: input_tokens = 2000, output fixed at 100, one call, prefix 1500.
//
//	cachey:  uncached 2000-1500 = 500, cache write 1500, no read:
//	         500*1e-6 + 1500*1.25e-6 + 100*2e-6 = 0.0005 + 0.001875 + 0.0002 = 0.002575
//	tiered:  no caching: 2000*2e-6 + 100*8e-6 = 0.004 + 0.0008 = 0.0048
//	nocache: 2000*0.5e-6 + 100*1e-6 = 0.001 + 0.0001 = 0.0011
//	latency: 0.5+100/100 = 1.5; 1+100/50 = 3; 3
//	nocache: 2000 + 100 > 2000 context window -> context_window
//
// agent: static text = "" (references only) + framing 3x1 message + 3 = 6,
// plus input doc 1000 = 1006. N = 3 always (mean = max). Dynamic tokens of
// call k: extract's output 100 + (k-1) x (200 + 50) -> 100, 350, 600; sum 1050
// (analytic: E[N] x E[U] + (out + turn) x E[N(N-1)]/2 = 3x100 + 250x6/2).
//
//	cachey:  prefix 800; uncached 3x(1006-800) + 1050 = 1668, read 2x800 = 1600,
//	         write 800, out 3x200 = 600:
//	         0.001668 + 0.00016 + 0.001 + 0.0012 = 0.004028
//	tiered:  uncached 3x1006 + 1050 = 4068: 4068*2e-6 + 600*8e-6 = 0.008136 + 0.0048 = 0.012936
//	nocache: 4068*0.5e-6 + 600*1e-6 = 0.002034 + 0.0006 = 0.002634
//	input per call: 1006 + 1050/3 = 1356; cached per call 800x2/3
//	latency: 3x(0.5+2) = 7.5; 3x(1+4) = 15; 15
//	nocache: no tools -> capability
//
// review: input_tokens = 400, output fixed at 1000, when = 0.5.
//
//	cachey:  0.5x(400*1e-6 + 1000*2e-6) = 0.5x0.0024 = 0.0012
//	tiered:  0.5x(400*2e-6 + 1000*8e-6) = 0.5x0.0088 = 0.0044
//	nocache: 0.5x(400*0.5e-6 + 1000*1e-6) = 0.5x0.0012 = 0.0006
//	latency: 0.5x(0.5+10) = 5.25; 0.5x(1+20) = 10.5; 10.5
//	nocache: 1000 > max output 500 -> max_output
//
// final: static 6; upstream E[U] = 200 (agent's last) + 0.5x1000 (review) = 700;
// output mean 300 (p95 450).
//
//	cachey:  706*1e-6 + 300*2e-6 = 0.000706 + 0.0006 = 0.001306
//	tiered:  706*2e-6 + 300*8e-6 = 0.001412 + 0.0024 = 0.003812
//	nocache: 706*0.5e-6 + 300*1e-6 = 0.000353 + 0.0003 = 0.000653
//	latency: 0.5+3 = 3.5; 1+6 = 7; 7
//	nocache: 6 + 1200 + 450 = 1656 <= 2000, 450 <= 500: feasible
func TestEstimateHandComputed(t *testing.T) {
	cat := testCatalog(t, "")
	w := parseWorkflow(t, string(readTestdata(t, "hand.toml")))
	est := estimate(t, cat, w)

	type want struct {
		cost, input, cached, latency, quality float64
		qualitySrc, latencySrc                string
		reasons                               []ReasonCode
	}
	nodes := []struct {
		id            string
		calls         float64
		outMean       float64
		outP95        float64
		inputMax      float64 // largest sampled prompt, any model (static is model-independent here)
		deterministic bool    // every run costs the same
		models        map[string]want
	}{
		{"extract", 1, 100, 100, 2000, true, map[string]want{
			mCachey:  {0.002575, 2000, 0, 1.5, 0.95, "extraction", "catalog", nil},
			mTiered:  {0.0048, 2000, 0, 3, 0.80, "default", "catalog", nil},
			mNoCache: {0.0011, 2000, 0, 3, 0.70, "default", "default", []ReasonCode{ReasonContextWindow}},
		}},
		{"agent", 3, 200, 200, 1606, true, map[string]want{
			mCachey:  {0.004028, 1356, 800.0 * 2 / 3, 7.5, 0.90, "default", "catalog", nil},
			mTiered:  {0.012936, 1356, 0, 15, 0.80, "default", "catalog", nil},
			mNoCache: {0.002634, 1356, 0, 15, 0.70, "default", "default", []ReasonCode{ReasonCapability}},
		}},
		{"review", 0.5, 1000, 1000, 400, false, map[string]want{
			mCachey:  {0.0012, 400, 0, 5.25, 0.90, "default", "catalog", nil},
			mTiered:  {0.0044, 400, 0, 10.5, 0.80, "default", "catalog", nil},
			mNoCache: {0.0006, 400, 0, 10.5, 0.70, "default", "default", []ReasonCode{ReasonMaxOutput}},
		}},
		{"final", 1, 300, 450, 6 + 200 + 1000, false, map[string]want{
			mCachey:  {0.001306, 706, 0, 3.5, 0.90, "default", "catalog", nil},
			mTiered:  {0.003812, 706, 0, 7, 0.80, "default", "catalog", nil},
			mNoCache: {0.000653, 706, 0, 7, 0.70, "default", "default", nil},
		}},
	}
	for _, nt := range nodes {
		t.Run(nt.id, func(t *testing.T) {
			i, ok := w.NodeIndex(nt.id)
			require.True(t, ok)
			ne := est.Nodes[i]
			assert.Equal(t, nt.id, ne.ID)
			assert.InDelta(t, nt.calls, ne.Calls.Mean, 1e-12, "Calls.Mean")
			assert.InDelta(t, nt.outMean, ne.OutputTokens.Mean, tokTol, "OutputTokens.Mean")
			assert.InDelta(t, nt.outP95, ne.OutputTokens.P95, 1e-6, "OutputTokens.P95")
			require.Len(t, ne.Candidates, len(nt.models))
			for model, wt := range nt.models {
				t.Run(model, func(t *testing.T) {
					c := candidate(t, est, nt.id, model)
					assert.Equal(t, "analytic", c.Cost.MeanMethod)
					assert.InDelta(t, wt.cost, c.Cost.Mean, usdTol, "Cost.Mean")
					assert.InDelta(t, wt.input, c.InputTokens.Mean, tokTol, "InputTokens.Mean")
					assert.InDelta(t, nt.inputMax, c.InputTokens.Max, tokTol, "InputTokens.Max")
					assert.InDelta(t, wt.cached, c.CachedTokens, tokTol, "CachedTokens")
					assert.InDelta(t, wt.latency, c.LatencyS.Mean, secTol, "LatencyS.Mean")
					assert.Equal(t, wt.latencySrc, c.LatencySource)
					assert.InDelta(t, wt.quality, c.Quality, 1e-12, "Quality")
					assert.Equal(t, wt.qualitySrc, c.QualitySource)
					assert.Equal(t, wt.reasons, reasonCodes(c))
					assert.Equal(t, len(wt.reasons) == 0, c.Feasible)
					assert.Empty(t, c.Cost.Unknown)
					requireOrdered(t, "cost", c.Cost.Dist)
					if nt.deterministic {
						// Every run costs the same: all percentiles are the mean.
						for _, q := range []float64{c.Cost.P50, c.Cost.P95, c.Cost.P99, c.Cost.Max} {
							assert.InDelta(t, wt.cost, q, usdTol)
						}
					}
				})
			}
		})
	}

	// review bills either nothing or its full call: P95 and Max are the call.
	t.Run("review percentiles", func(t *testing.T) {
		c := candidate(t, est, "review", mCachey)
		assert.InDelta(t, 0.0024, c.Cost.P95, usdTol)
		assert.InDelta(t, 0.0024, c.Cost.Max, usdTol)
		calls := est.Nodes[2].Calls
		assert.Equal(t, 1.0, calls.Max)
	})
}

// TestEstimateFeasibility checks each feasibility reason on a one-node
// workflow against the test catalog plus a model without an output price.
func TestEstimateFeasibility(t *testing.T) {
	cat := testCatalog(t, `
[[model]]
id = "acme/nooutput"
input_per_mtok = 1.0
context_window = 100000
modalities = ["text", "image"]
tools = true
json_mode = true
reasoning = true
[model.quality]
default = 0.5
`)
	const nooutput = "acme/nooutput"
	head := "name = \"f\"\n[[node]]\nid = \"n\"\nprompt = \"p\"\n"
	tests := []struct {
		name string
		node string
		want map[string][]ReasonCode // model -> reasons; models not listed are feasible except nooutput (unknown_price)
	}{
		{"all fit but the unpriced", "input_tokens = 100\noutput_tokens = { mean = 10, p95 = 10 }\n",
			map[string][]ReasonCode{}},
		{
			// 1950 + 100 = 2050 > 2000 (nocache); 2050 <= 100000 (others).
			"context window", "input_tokens = 1950\noutput_tokens = { mean = 100, p95 = 100 }\n",
			map[string][]ReasonCode{mNoCache: {ReasonContextWindow}},
		},
		{
			// Exactly at the window: 1900 + 100 = 2000 is allowed.
			"context window boundary", "input_tokens = 1900\noutput_tokens = { mean = 100, p95 = 100 }\n",
			map[string][]ReasonCode{},
		},
		{
			// max given: the limit uses max (800 > 500), not the mean.
			"max output from max", "input_tokens = 10\noutput_tokens = { mean = 100, p95 = 200, max = 800 }\n",
			map[string][]ReasonCode{mNoCache: {ReasonMaxOutput}},
		},
		{
			// No max: the limit uses p95 = 1.5 x 400 = 600 > 500.
			"max output from p95", "input_tokens = 10\noutput_tokens = 400\n",
			map[string][]ReasonCode{mNoCache: {ReasonMaxOutput}},
		},
		{
			// A history loop grows the prompt: the last call of max = 5 sends
			// 1000 + 4 x (100 + 100) = 1800; 1800 + 100 = 1900 <= 2000 fits.
			"loop fits", "input_tokens = 1000\noutput_tokens = { mean = 100, p95 = 100 }\nrepeat = { mean = 5, max = 5, history = true, turn_tokens = 100 }\n",
			map[string][]ReasonCode{},
		},
		{
			// max = 6: last call sends 1000 + 5 x 200 = 2000; + 100 > 2000.
			"loop outgrows the window", "input_tokens = 1000\noutput_tokens = { mean = 100, p95 = 100 }\nrepeat = { mean = 6, max = 6, history = true, turn_tokens = 100 }\n",
			map[string][]ReasonCode{mNoCache: {ReasonContextWindow}},
		},
		{
			"modality", "input_tokens = 100\noutput_tokens = 10\n[[node.attachment]]\nkind = \"image\"\nwidth = 512\nheight = 512\n",
			map[string][]ReasonCode{mCachey: {ReasonModality}, mNoCache: {ReasonModality}},
		},
		{
			"capability json", "input_tokens = 100\noutput_tokens = 10\nrequires = [\"json\"]\n",
			map[string][]ReasonCode{mNoCache: {ReasonCapability}},
		},
		{
			"capability reasoning", "input_tokens = 100\noutput_tokens = 10\nrequires = [\"reasoning\", \"tools\"]\n",
			map[string][]ReasonCode{mCachey: {ReasonCapability}, mTiered: {ReasonCapability}, mNoCache: {ReasonCapability, ReasonCapability}},
		},
		{
			"several reasons", "input_tokens = 1990\noutput_tokens = { mean = 600, p95 = 600 }\nrequires = [\"tools\"]\n[[node.attachment]]\nkind = \"image\"\nwidth = 64\nheight = 64\n",
			map[string][]ReasonCode{mCachey: {ReasonModality}, mNoCache: {ReasonModality, ReasonCapability, ReasonMaxOutput, ReasonContextWindow}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			est := estimate(t, cat, parseWorkflow(t, head+tt.node))
			require.Len(t, est.Nodes[0].Candidates, 4)
			for k := range est.Nodes[0].Candidates {
				c := &est.Nodes[0].Candidates[k]
				want := tt.want[c.Model.ID]
				if c.Model.ID == nooutput {
					want = append(want, ReasonUnknownPrice)
					assert.Equal(t, []string{"output"}, c.Cost.Unknown)
				} else {
					assert.Empty(t, c.Cost.Unknown, c.Model.ID)
				}
				assert.Equal(t, want, reasonCodes(c), c.Model.ID)
				assert.Equal(t, len(want) == 0, c.Feasible, c.Model.ID)
				for _, r := range c.Reasons {
					assert.NotEmpty(t, r.Detail)
				}
			}
		})
	}

	t.Run("models filter", func(t *testing.T) {
		est := estimate(t, cat, parseWorkflow(t, head+"input_tokens = 10\nmodels = [\"acme/c*\", \"plain/*\"]\n"))
		var ids []string
		for _, c := range est.Nodes[0].Candidates {
			ids = append(ids, c.Model.ID)
		}
		assert.ElementsMatch(t, []string{mCachey, mNoCache}, ids)
		_, ok := est.Candidate(0, mTiered)
		assert.False(t, ok)
	})

	t.Run("unknown price detail", func(t *testing.T) {
		est := estimate(t, cat, parseWorkflow(t, head+"input_tokens = 10\n"))
		c := candidate(t, est, "n", nooutput)
		require.Len(t, c.Reasons, 1)
		assert.Contains(t, c.Reasons[0].Detail, "output")
		assert.Contains(t, c.Reasons[0].Detail, nooutput)
		// The known part is still priced: 10 input tokens at 1e-6.
		assert.InDelta(t, 10e-6, c.Cost.Mean, usdTol)
	})
}

// TestEstimateQualityCaps checks the vision and long-context caps.
func TestEstimateQualityCaps(t *testing.T) {
	cat := testCatalog(t, "")
	tests := []struct {
		name    string
		node    string
		model   string
		quality float64
		source  string
	}{
		{"plain", "input_tokens = 100\n", mTiered, 0.80, "default"},
		{"image caps at vision", "input_tokens = 100\n[[node.attachment]]\nkind = \"image\"\nwidth = 64\nheight = 64\n", mTiered, 0.50, "vision"},
		{"long prompt caps at long_context", "input_tokens = 120000\n", mTiered, 0.60, "long_context"},
		{"at the threshold no cap", "input_tokens = 100000\noutput_tokens = 10\n", mTiered, 0.80, "default"},
		{"model without the score keeps default", "input_tokens = 120000\n", mCachey, 0.90, "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			est := estimate(t, cat, parseWorkflow(t, "name = \"q\"\n[[node]]\nid = \"n\"\nprompt = \"p\"\n"+tt.node))
			c := candidate(t, est, "n", tt.model)
			assert.InDelta(t, tt.quality, c.Quality, 1e-12)
			assert.Equal(t, tt.source, c.QualitySource)
		})
	}
}

// TestEstimateLongContextTier covers the tier of acme/tiered: above 5000
// prompt tokens every token bills at in 4e-6, out 16e-6 (base 2e-6, 8e-6).
func TestEstimateLongContextTier(t *testing.T) {
	cat := testCatalog(t, "")
	m, ok := cat.Lookup(mTiered)
	require.True(t, ok)

	t.Run("prompt entirely above the threshold", func(t *testing.T) {
		// 6000 x 4e-6 + 100 x 16e-6 = 0.024 + 0.0016 = 0.0256 (base rates
		// would give 0.012 + 0.0008 = 0.0128).
		est := estimate(t, cat, parseWorkflow(t, `name = "t"
[[node]]
id = "n"
prompt = "p"
input_tokens = 6000
output_tokens = { mean = 100, p95 = 100 }
`))
		c := candidate(t, est, "n", mTiered)
		assert.Equal(t, "analytic", c.Cost.MeanMethod)
		assert.InDelta(t, 0.0256, c.Cost.Mean, usdTol)
		assert.InDelta(t, 0.0256, c.Cost.P95, usdTol)
		assert.InDelta(t, catalog.Price(m, catalog.Usage{InputTokens: 6000, OutputTokens: 100}).TotalUSD, c.Cost.Mean, usdTol)
	})

	t.Run("just at the threshold bills base", func(t *testing.T) {
		// 5000 is not above 5000: 5000 x 2e-6 + 100 x 8e-6 = 0.0108.
		est := estimate(t, cat, parseWorkflow(t, `name = "t"
[[node]]
id = "n"
prompt = "p"
input_tokens = 5000
output_tokens = { mean = 100, p95 = 100 }
`))
		c := candidate(t, est, "n", mTiered)
		assert.Equal(t, "analytic", c.Cost.MeanMethod)
		assert.InDelta(t, 0.0108, c.Cost.Mean, usdTol)
	})

	t.Run("history crosses the threshold mid-run", func(t *testing.T) {
		// N = 1 + Binomial(4, 0.5); call k sends 4000 + (k-1) x (200 + 500).
		//   call 1: 4000 -> 4000x2e-6 + 200x8e-6  = 0.0096
		//   call 2: 4700 -> 4700x2e-6 + 0.0016    = 0.0110
		//   call 3: 5400 -> 5400x4e-6 + 200x16e-6 = 0.0248  (tier)
		//   call 4: 6100 -> 0.0244 + 0.0032       = 0.0276
		//   call 5: 6800 -> 0.0272 + 0.0032       = 0.0304
		// Run cost by N: 0.0096, 0.0206, 0.0454, 0.0730, 0.1034 with
		// probabilities 1, 4, 6, 4, 1 (/16):
		//   E = (0.0096 + 4x0.0206 + 6x0.0454 + 4x0.0730 + 0.1034)/16 = 0.7598/16 = 0.0474875
		// P(N <= 2) = 5/16 < 0.5 <= P(N <= 3) = 11/16: P50 = 0.0454;
		// P(N <= 4) = 15/16 < 0.95: P95 = P99 = Max = 0.1034.
		// Billing every call at base rates would give a p95 of
		// 27000x2e-6 + 1000x8e-6 = 0.062.
		const samples = 100_000
		est := estimate(t, cat, parseWorkflow(t, `name = "t"
[[node]]
id = "n"
prompt = "p"
input_tokens = 4000
output_tokens = { mean = 200, p95 = 200 }
repeat = { mean = 3, max = 5, history = true, turn_tokens = 500 }
`), WithSamples(samples))
		c := candidate(t, est, "n", mTiered)
		assert.Equal(t, "monte_carlo", c.Cost.MeanMethod)
		// Var = E[C^2] - E[C]^2 = 0.0028852575 - 0.0474875^2 = 0.000630194,
		// sd = 0.0251; SE = sd/sqrt(1e5) = 7.9e-5. Allow 5 SE.
		assert.InDelta(t, 0.0474875, c.Cost.Mean, 5*0.0251/math.Sqrt(samples))
		assert.InDelta(t, 0.0454, c.Cost.P50, usdTol)
		assert.InDelta(t, 0.1034, c.Cost.P95, usdTol)
		assert.InDelta(t, 0.1034, c.Cost.P99, usdTol)
		assert.InDelta(t, 0.1034, c.Cost.Max, usdTol)

		// The other models have no tier: analytic.
		//   cachey: E[sum prompt] = 3x4000 + 700 x E[N(N-1)]/2,
		//   E[N(N-1)] = Var + E[N]^2 - E[N] = 4x0.25 + 9 - 3 = 7:
		//   12000 + 2450 = 14450 input, 600 output:
		//   14450x1e-6 + 600x2e-6 = 0.01565
		cc := candidate(t, est, "n", mCachey)
		assert.Equal(t, "analytic", cc.Cost.MeanMethod)
		assert.InDelta(t, 0.01565, cc.Cost.Mean, usdTol)

		// A run that uses the tier-crossing candidate is a Monte Carlo mean.
		tot, err := est.Totals([]*Candidate{c})
		require.NoError(t, err)
		assert.Equal(t, "monte_carlo", tot.Cost.MeanMethod)
		assert.InDelta(t, 0.1034, tot.Cost.P95, usdTol)
	})
}

// TestNew checks the options' validation.
func TestNew(t *testing.T) {
	cat := testCatalog(t, "")
	tests := []struct {
		name string
		opts []Option
		ok   bool
	}{
		{"default", nil, true},
		{"one sample", []Option{WithSamples(1)}, true},
		{"zero samples", []Option{WithSamples(0)}, false},
		{"too many samples", []Option{WithSamples(1_000_001)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(cat, tt.opts...)
			if !tt.ok {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "samples")
				return
			}
			require.NoError(t, err)
			assert.Same(t, cat, e.Catalog())
		})
	}
}

// TestEstimateRequiresValidation rejects a workflow that was not validated.
func TestEstimateRequiresValidation(t *testing.T) {
	w := &graph.Workflow{Name: "v", Nodes: []*graph.Node{{ID: "n", Prompt: "p", When: 1}}}
	e, err := New(testCatalog(t, ""))
	require.NoError(t, err)
	_, err = e.Estimate(w)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Validate")
}
