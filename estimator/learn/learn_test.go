package learn

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFitConvergesToTruth(t *testing.T) {
	cat := testCatalog(t)
	cases := []struct {
		name string
		tr   truth
	}{
		{"base", baseTruth},
		{"unreliable slow", func() truth {
			tr := baseTruth
			tr.success, tr.tps, tr.ttft, tr.tokensMedian = 0.35, 40, 1.5, 900
			return tr
		}()},
		{"reliable fast short", func() truth {
			tr := baseTruth
			tr.success, tr.tps, tr.ttft, tr.tokensMedian, tr.tokensSigma = 0.97, 250, 0.2, 120, 0.8
			return tr
		}()},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(42, uint64(i)))
			tr := c.tr
			obs := draw(rng, tr, 6000, now.Add(-14*24*time.Hour), now)
			m := Fit(obs, now, Options{Catalog: cat})
			s, ok := m.Lookup(tr.task, tr.model)
			require.True(t, ok)
			assert.Equal(t, 6000, s.Calls)
			assert.True(t, s.PriorKnown)
			assert.Equal(t, 0.9, s.Prior)

			assert.InDelta(t, tr.success, s.Success, 0.025, "posterior mean")
			assert.Less(t, s.SuccessLow, s.Success)
			assert.Greater(t, s.SuccessHigh, s.Success)
			assert.Less(t, s.SuccessHigh-s.SuccessLow, 0.06, "the interval narrows with evidence")
			assert.InEpsilon(t, tr.tokensP(0.5), s.OutputTokensP50, 0.05)
			assert.InEpsilon(t, tr.tokensP(0.95), s.OutputTokensP95, 0.08)
			assert.InEpsilon(t, tr.ttft+tr.tokensP(0.5)/tr.tps, s.LatencyP50.Seconds(), 0.05)
			assert.InEpsilon(t, tr.ttft+tr.tokensP(0.95)/tr.tps, s.LatencyP95.Seconds(), 0.08)
			assert.InEpsilon(t, tr.meanCostUSD(), s.CostPerCallUSD, 0.03)
			assert.InEpsilon(t, tr.meanCostUSD()/tr.success, s.CostPerSuccessUSD, 0.05)
			assert.InDelta(t, (1-tr.success)*tr.escalate, s.RerouteRate, 0.025)

			blended, srcs := m.Blend(cat)
			bm, ok := blended.Lookup(tr.model)
			require.True(t, ok)
			assert.InDelta(t, tr.success, bm.Quality["code"], 0.025)
			assert.InDelta(t, tr.ttft, bm.TTFTSeconds, 0.12, "ttft")
			assert.InEpsilon(t, tr.tps, bm.OutputTokensPerSecond, 0.06, "tokens per second")
			src := srcs.For(tr.model, FieldTokensPerSecond)
			assert.Equal(t, FromBlend, src.Origin)
			assert.Equal(t, 30.0, src.Catalog)
			assert.InEpsilon(t, tr.tps, src.Observed, 0.06)
			assert.Greater(t, src.Share(), 0.99)
		})
	}
}

func TestPriorDominatesWithLittleEvidence(t *testing.T) {
	cat := testCatalog(t)
	obs := []Observation{{Task: "code", Model: "test/model-a", Time: now, OK: false}}
	s, _ := Fit(obs, now, Options{Catalog: cat}).Lookup("code", "test/model-a")
	// Beta(9 + 0, 1 + 1): mean 9/11.
	assert.InDelta(t, 9.0/11, s.Success, 1e-12)
	assert.Equal(t, 9.0, s.Alpha)
	assert.InDelta(t, 2.0, s.Beta, 1e-12)
	s, _ = Fit(obs, now, Options{Catalog: cat, PriorStrength: 1000}).Lookup("code", "test/model-a")
	assert.InDelta(t, 900.0/1001, s.Success, 1e-12)
	// No catalog: uniform prior Beta(1, 1) -> 1/3.
	s, _ = Fit(obs, now, Options{}).Lookup("code", "test/model-a")
	assert.False(t, s.PriorKnown)
	assert.InDelta(t, 1.0/3, s.Success, 1e-12)
	// Unknown task falls back to the default score.
	obs[0].Task = "writing"
	s, _ = Fit(obs, now, Options{Catalog: cat}).Lookup("writing", "test/model-a")
	assert.Equal(t, 0.6, s.Prior)
}

func TestHalfLifeForgetsAnOldRegime(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	old, recent := baseTruth, baseTruth
	old.success, old.tokensMedian = 0.9, 1000
	recent.success, recent.tokensMedian = 0.3, 200
	obs := append(draw(rng, old, 3000, now.Add(-90*24*time.Hour), now.Add(-60*24*time.Hour)),
		draw(rng, recent, 300, now.Add(-3*24*time.Hour), now)...)
	cat := testCatalog(t)

	cases := []struct {
		name        string
		halfLife    time.Duration
		wantSuccess float64
		wantTokens  float64
		delta       float64
	}{
		{"short half-life follows the new regime", 2 * 24 * time.Hour, 0.3, 200, 0.06},
		{"default half-life follows the new regime", 0, 0.3, 200, 0.06},
		{"no decay averages both", -1, (3000*0.9 + 300*0.3) / 3300, 1000, 0.03},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := Fit(obs, now, Options{Catalog: cat, HalfLife: c.halfLife})
			s, ok := m.Lookup("code", baseTruth.model)
			require.True(t, ok)
			assert.Equal(t, 3300, s.Calls)
			assert.InDelta(t, c.wantSuccess, s.Success, c.delta)
			assert.InEpsilon(t, c.wantTokens, s.OutputTokensP50, 0.1)
		})
	}
	// The weight halves every half-life.
	o := Options{HalfLife: time.Hour}
	assert.InDelta(t, 0.25, o.weight(now.Add(-2*time.Hour), now), 1e-12)
	assert.Equal(t, 1.0, o.weight(now.Add(time.Hour), now), "future observations weigh 1")
}

func TestFeedbackCountsAsFractionalSuccess(t *testing.T) {
	var obs []Observation
	for i := range 100 {
		o := Observation{Task: "writing", Model: "m", Time: now, OK: true}
		if i%2 == 0 {
			o.Feedback = ptr(0.4) // accepted by validation, but the user rated it 0.4
		}
		obs = append(obs, o)
	}
	obs = append(obs, Observation{Task: "writing", Model: "m", Time: now, Feedback: ptr(math.NaN())}, // NaN: ignored, OK false
		Observation{Task: "writing", Model: "m", Time: now, Feedback: ptr(7)}) // clamped to 1
	s, _ := Fit(obs, now, Options{}).Lookup("writing", "m")
	assert.Equal(t, 52, s.FeedbackCalls)
	assert.InDelta(t, 50*0.4+50+0+1, s.Successes, 1e-9)
	assert.InDelta(t, 71.0/102, s.Observed, 1e-9)
}

func TestFitEdgeCases(t *testing.T) {
	t.Run("empty", func(t *testing.T) {
		m := Fit(nil, now, Options{})
		assert.Empty(t, m.Stats())
		_, ok := m.Lookup("code", "x")
		assert.False(t, ok)
	})
	t.Run("no success", func(t *testing.T) {
		s, _ := Fit([]Observation{{Task: "code", Model: "m", Time: now, CostNano: 5e6}}, now, Options{}).Lookup("code", "m")
		assert.True(t, math.IsInf(s.CostPerSuccessUSD, 1))
		assert.InDelta(t, 0.005, s.CostPerCallUSD, 1e-12)
		assert.Zero(t, s.Answered)
		assert.Zero(t, s.LatencyP50)
	})
	t.Run("no model is ignored, keys sorted", func(t *testing.T) {
		m := Fit([]Observation{{Task: "b", Model: "y"}, {Task: "a", Model: "z"}, {Task: "a", Model: "x"}, {Task: "a"}}, now, Options{})
		var got []string
		for _, s := range m.Stats() {
			got = append(got, s.Task+"/"+s.Model)
		}
		assert.Equal(t, []string{"a/x", "a/z", "b/y"}, got)
	})
	t.Run("negative prior strength means observations only", func(t *testing.T) {
		s, _ := Fit([]Observation{{Task: "code", Model: "test/model-a", OK: true, Time: now}}, now,
			Options{Catalog: testCatalog(t), PriorStrength: -1}).Lookup("code", "test/model-a")
		assert.InDelta(t, 1, s.Success, 1e-6)
	})
}

func TestBlendLeavesInputAloneAndReportsSources(t *testing.T) {
	cat := testCatalog(t)
	obs := []Observation{
		{Task: "code", Model: "test/model-a", Time: now, OK: true, OutputTokens: 100, Latency: 3 * time.Second},
		{Task: "code", Model: "test/model-a", Time: now, OK: false},
		{Task: "math", Model: "test/model-b", Time: now, OK: true, OutputTokens: 100, Latency: 2 * time.Second},
		{Task: "", Model: "test/model-b", Time: now, OK: false},                // no task: latency only
		{Task: "code", Model: "test/unknown", Time: now, OK: true, Latency: 1}, // not in the catalog
	}
	blended, srcs := Fit(obs, now, Options{}).Blend(cat)

	orig, _ := cat.Lookup("test/model-a")
	assert.Equal(t, 0.9, orig.Quality["code"], "input catalog unchanged")
	assert.Equal(t, 2.0, orig.TTFTSeconds)

	a, _ := blended.Lookup("test/model-a")
	// Blend uses cat's 0.9 as prior with the default strength 10: (9+1)/(10+2).
	assert.InDelta(t, 10.0/12, a.Quality["code"], 1e-12)
	assert.Equal(t, 0.6, a.Quality["default"], "unobserved task kept")
	assert.Contains(t, a.QualitySource["code"], "blend of catalog 0.9 (weight 10) and 2 calls")
	b, _ := blended.Lookup("test/model-b")
	// No catalog score: uniform prior, (1+1)/(2+1).
	assert.InDelta(t, 2.0/3, b.Quality["math"], 1e-12)
	assert.NotContains(t, b.Quality, "")
	c, _ := blended.Lookup("test/model-c")
	assert.Equal(t, 0.3, c.TTFTSeconds, "unobserved model kept")
	_, ok := blended.Lookup("test/unknown")
	assert.False(t, ok)

	var fields []string
	for _, s := range srcs {
		fields = append(fields, s.Model+" "+s.Field+" "+string(s.Origin))
	}
	assert.Equal(t, []string{
		"test/model-a output_tokens_per_s blend",
		"test/model-a quality.code blend",
		"test/model-a ttft_s blend",
		"test/model-b output_tokens_per_s observed",
		"test/model-b quality.math observed",
		"test/model-b ttft_s observed",
	}, fields)
	assert.Equal(t, FromCatalog, srcs.For("test/model-c", FieldTTFT).Origin)
	assert.Equal(t, "catalog", srcs.For("test/model-c", FieldTTFT).String())
	q := srcs.For("test/model-a", "quality.code")
	assert.Equal(t, 2, q.N)
	assert.InDelta(t, 2.0/12, q.Share(), 1e-12)
	// One call length only: the latency line keeps the catalog's intercept
	// (pseudo-point at 0 tokens) and moves the speed.
	assert.InDelta(t, 2.0, a.TTFTSeconds, 1e-9)
	assert.Greater(t, a.OutputTokensPerSecond, 30.0)
	assert.Zero(t, srcs.For("test/model-a", FieldTTFT).Observed, "not identifiable from one call length")
}

func TestBetaFunctions(t *testing.T) {
	cases := []struct {
		x, a, b, want float64
	}{
		{0.3, 1, 1, 0.3},
		{0.3, 1, 3, 1 - math.Pow(0.7, 3)},
		{0.8, 4, 1, math.Pow(0.8, 4)},
		{0.5, 7, 7, 0.5},
		{0.25, 2, 2, 3*0.0625 - 2*0.015625}, // 3x^2 - 2x^3
		{0.999, 0.5, 0.5, 2 / math.Pi * math.Asin(math.Sqrt(0.999))},
	}
	for _, c := range cases {
		assert.InDelta(t, c.want, regIncBeta(c.x, c.a, c.b), 1e-10, "I_%g(%g,%g)", c.x, c.a, c.b)
		assert.InDelta(t, c.x, betaQuantile(c.want, c.a, c.b), 1e-8, "quantile of I_%g(%g,%g)", c.x, c.a, c.b)
	}
	// Large counts: close to the normal approximation.
	a, b := 700.0, 300.0
	sd := math.Sqrt(a * b / ((a + b) * (a + b) * (a + b + 1)))
	assert.InDelta(t, 0.7+1.6448536*sd, betaQuantile(0.95, a, b), 5e-4)
}

func TestQuantile(t *testing.T) {
	cases := []struct {
		name string
		xs   []weighted
		p    float64
		want float64
	}{
		{"empty", nil, 0.5, 0},
		{"weightless", []weighted{{5, 0}}, 0.5, 0},
		{"median of equal weights", []weighted{{3, 1}, {1, 1}, {2, 1}}, 0.5, 2},
		{"p95", []weighted{{1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}, {6, 1}, {7, 1}, {8, 1}, {9, 1}, {10, 1}}, 0.95, 10},
		{"heavy weight wins", []weighted{{1, 1}, {100, 10}, {2, 1}}, 0.5, 100},
		{"p0 is the minimum", []weighted{{4, 1}, {2, 1}}, 0, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, quantile(c.xs, c.p))
		})
	}
}

func TestFitLine(t *testing.T) {
	pts := []latPoint{{1, 0, 0.5}, {1, 100, 1.5}, {1, 200, 2.5}}
	a, b := fitLine(pts, 0)
	assert.InDelta(t, 0.5, a, 1e-12)
	assert.InDelta(t, 0.01, b, 1e-12)
	// Negative slope: fallback slope, intercept from the mean.
	a, b = fitLine([]latPoint{{1, 0, 2}, {1, 100, 1}}, 0.005)
	assert.InDelta(t, 0.005, b, 1e-12)
	assert.InDelta(t, 1.5-0.25, a, 1e-12)
	// Negative intercept: refit through the origin.
	a, b = fitLine([]latPoint{{1, 100, 0.5}, {1, 200, 2}}, 0)
	assert.Zero(t, a)
	assert.InDelta(t, (50+400)/(10000+40000.0), b, 1e-12)
}

// An answer a cascade set aside is no evidence about success: a model
// whose every judged answer succeeded keeps a perfect observed rate, while
// the set-aside calls still count for cost.
func TestUnjudgedObservations(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	var obs []Observation
	for i := range 40 {
		o := Observation{Task: "classification", Model: "a/cheap", Time: now, OK: true, CostNano: 1000, OutputTokens: 3}
		if i%4 == 0 {
			o.OK, o.Unjudged, o.Escalated = false, true, true
		}
		obs = append(obs, o)
	}
	m := Fit(obs, now, Options{})
	s, ok := m.Lookup("classification", "a/cheap")
	require.True(t, ok)
	assert.InDelta(t, 40, s.Weight, 1e-9)
	assert.InDelta(t, 30, s.JudgedWeight, 1e-9)
	assert.InDelta(t, 1.0, s.Observed, 1e-12)
	assert.InDelta(t, 1000e-9, s.CostPerCallUSD, 1e-15)
	assert.Zero(t, s.RerouteRate, "a planned escalation is not a re-route")

	// Counted as failures instead, the same calls would look 75% good.
	for i := range obs {
		obs[i].Unjudged = false
	}
	s2, _ := Fit(obs, now, Options{}).Lookup("classification", "a/cheap")
	assert.InDelta(t, 0.75, s2.Observed, 1e-12)
	assert.InDelta(t, 0.25, s2.RerouteRate, 1e-12)
}
