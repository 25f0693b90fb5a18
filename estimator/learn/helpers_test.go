package learn

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// truth are the parameters a simulated stream is drawn from.
type truth struct {
	task, model  string
	success      float64 // P(OK)
	tokensMedian float64 // output tokens are lognormal with this median
	tokensSigma  float64 // ... and this log-space sigma
	ttft         float64 // seconds
	tps          float64 // output tokens per second
	noise        float64 // latency noise sd, seconds
	inputTokens  int64
	inPerTok     float64 // USD per input token
	outPerTok    float64 // USD per output token
	escalate     float64 // P(escalated | failed)
}

func (tr truth) tokensP(p float64) float64 {
	return tr.tokensMedian * math.Exp(tr.tokensSigma*normQuantile(p))
}

// meanCostUSD is E[cost of a call].
func (tr truth) meanCostUSD() float64 {
	meanOut := tr.tokensMedian * math.Exp(tr.tokensSigma*tr.tokensSigma/2)
	return float64(tr.inputTokens)*tr.inPerTok + meanOut*tr.outPerTok
}

// normQuantile for the few p the tests use.
func normQuantile(p float64) float64 {
	switch p {
	case 0.5:
		return 0
	case 0.95:
		return 1.6448536269514722
	}
	panic("normQuantile: add p")
}

var baseTruth = truth{task: "code", model: "test/model-a", success: 0.72, tokensMedian: 400, tokensSigma: 0.5,
	ttft: 0.6, tps: 90, noise: 0.05, inputTokens: 1000, inPerTok: 0.4e-6, outPerTok: 1.6e-6, escalate: 0.5}

// draw makes n observations of tr at times spread uniformly over
// (from, to].
func draw(rng *rand.Rand, tr truth, n int, from, to time.Time) []Observation {
	out := make([]Observation, n)
	span := to.Sub(from)
	for i := range out {
		ok := rng.Float64() < tr.success
		tokens := int64(math.Round(tr.tokensMedian * math.Exp(tr.tokensSigma*rng.NormFloat64())))
		lat := tr.ttft + float64(tokens)/tr.tps + tr.noise*rng.NormFloat64()
		lat = math.Max(lat, 0.01)
		cost := float64(tr.inputTokens)*tr.inPerTok + float64(tokens)*tr.outPerTok
		out[i] = Observation{
			Task: tr.task, Model: tr.model,
			Time:         to.Add(-time.Duration(rng.Float64() * float64(span))),
			OK:           ok,
			Escalated:    !ok && rng.Float64() < tr.escalate,
			InputTokens:  tr.inputTokens,
			OutputTokens: tokens,
			Latency:      time.Duration(lat * float64(time.Second)),
			CostNano:     int64(math.Round(cost * 1e9)),
		}
	}
	return out
}

// testCatalog has model-a with deliberately wrong numbers, model-b without
// quality or latency, and model-c that is never observed.
func testCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.LoadTOML("test.toml", []byte(`
[[model]]
id = "test/model-a"
provider = "test"
input_per_mtok = 0.4
output_per_mtok = 1.6
ttft_s = 2.0
output_tokens_per_s = 30
[model.quality]
default = 0.6
code = 0.9
[model.quality_source]
code = "benchmark X"

[[model]]
id = "test/model-b"
provider = "test"
input_per_mtok = 1
output_per_mtok = 2

[[model]]
id = "test/model-c"
provider = "test"
input_per_mtok = 1
output_per_mtok = 2
ttft_s = 0.3
output_tokens_per_s = 200
[model.quality]
default = 0.8
`))
	require.NoError(t, err)
	return cat
}

func ptr(v float64) *float64 { return &v }
