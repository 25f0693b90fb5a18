package estimator

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestOneTokenOutputIsSampled: a fixed output of one token (a yes/no
// classifier: output_tokens = { mean = 1, p95 = 1 }) has mu = ln 1 = 0 and
// sigma = 0, which outputDist.sample and quantile read as "no output": the
// Monte Carlo draws bill 0 output tokens while the analytic mean bills 1,
// and downstream nodes see an empty upstream output.
//
// With cachey: 100 x 1e-6 + 1 x 2e-6 = 0.000102 in every run.
func TestOneTokenOutputIsSampled(t *testing.T) {
	est := estimate(t, testCatalog(t, ""), parseWorkflow(t, `name = "one"
[[node]]
id = "yesno"
task = "classification"
prompt = "p"
input_tokens = 100
output_tokens = { mean = 1, p95 = 1 }

[[node]]
id = "next"
depends_on = ["yesno"]
prompt = "{{node.yesno.output}}"
output_tokens = { mean = 10, p95 = 10 }
`), WithSamples(100))
	ne := est.Nodes[0]
	assert.InDelta(t, 1, ne.OutputTokens.Mean, 1e-12)
	assert.InDelta(t, 1, ne.OutputTokens.P50, 1e-12, "P50 of a fixed 1-token output")
	assert.InDelta(t, 1, ne.OutputTokens.P95, 1e-12, "P95 of a fixed 1-token output")
	c := candidate(t, est, "yesno", mCachey)
	assert.InDelta(t, 0.000102, c.Cost.Mean, usdTol)
	assert.InDelta(t, 0.000102, c.Cost.P50, usdTol, "every run bills the output token")
	assert.InDelta(t, 0.000102, c.Cost.Max, usdTol)
	// next sends 6 framing tokens + yesno's 1 token in every run.
	n := candidate(t, est, "next", mCachey)
	assert.InDelta(t, 7, n.InputTokens.Mean, tokTol)
	assert.InDelta(t, 7, n.InputTokens.Max, tokTol, "the sampled prompt holds the upstream token")
}

// TestLongLoopCallsMatchMean: with more than 64 binomial trials the loop
// count is drawn by a rounded, clamped normal approximation. When
// repeat.mean is near 1 or near repeat.max the clamp biases the draws, so the
// Monte Carlo runs no longer have E[N] = repeat.mean: e.g. mean 1.5, max 1000
// draws 1.583 calls on average. Analytic means stay right; percentiles and
// Totals drift from them.
func TestLongLoopCallsMatchMean(t *testing.T) {
	const samples = 20_000
	cat := testCatalog(t, "")
	tests := []struct {
		mean float64
		max  int
	}{
		{1.5, 64}, // 63 trials: exact binomial
		{1.5, 1000},
		{2, 200},
		{99.5, 100},
		{50, 99}, // np = 49: the approximation is fine
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("mean%g_max%d", tt.mean, tt.max), func(t *testing.T) {
			est := estimate(t, cat, parseWorkflow(t, fmt.Sprintf(`name = "loop"
[[node]]
id = "n"
prompt = "p"
input_tokens = 10
output_tokens = { mean = 10, p95 = 10 }
repeat = { mean = %g, max = %d }
`, tt.mean, tt.max)), WithSamples(samples))
			calls := make([]float64, samples)
			for s := range calls {
				calls[s] = float64(est.draws[0].calls[s])
			}
			got, se := meanSE(calls)
			assert.InDelta(t, tt.mean, got, 5*se+1e-9, "sampled calls %.4f ± %.4f, repeat.mean %g", got, se, tt.mean)
			assert.Equal(t, tt.mean, est.Nodes[0].Calls.Mean)
		})
	}
}
