package learn

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const day = 24 * time.Hour

// twoWindows draws n calls of before in (now-2d, now-1d] and n of after in
// (now-1d, now].
func twoWindows(rng *rand.Rand, before, after truth, n int) []Observation {
	return append(draw(rng, before, n, now.Add(-2*day), now.Add(-day)), draw(rng, after, n, now.Add(-day), now)...)
}

func TestDriftFiresOnShiftAndStaysQuietWhenStationary(t *testing.T) {
	shift := func(f func(*truth)) truth { tr := baseTruth; f(&tr); return tr }
	cases := []struct {
		name  string
		after truth
		want  []Metric
	}{
		{"stationary", baseTruth, nil},
		{"success drops", shift(func(tr *truth) { tr.success = 0.55 }), []Metric{MetricSuccess}},
		{"success rises", shift(func(tr *truth) { tr.success = 0.88 }), []Metric{MetricSuccess}},
		{"provider slows down", shift(func(tr *truth) { tr.tps, tr.ttft = 55, 1.0 }), []Metric{MetricLatencyP50}},
		{"price goes up", shift(func(tr *truth) { tr.inPerTok, tr.outPerTok = 0.6e-6, 2.4e-6 }), []Metric{MetricCostPerCall}},
		// Longer answers take longer and cost more too.
		{"answers get longer", shift(func(tr *truth) { tr.tokensMedian = 700 }),
			[]Metric{MetricCostPerCall, MetricLatencyP50, MetricOutputTokens}},
	}
	// Each comparison of a stationary metric is a false alarm with
	// probability about 0.001 for success (z > 3.29) and far less for the
	// medians at 1000 calls a window, so over 6 x 50 streams at most a
	// couple of unexpected alerts are allowed, and none on the stationary
	// streams; every real shift must be caught in every stream.
	const seeds = 50
	unexpected := 0
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for seed := range seeds {
				rng := rand.New(rand.NewPCG(uint64(seed), uint64(ci)))
				obs := twoWindows(rng, baseTruth, c.after, 1000)
				alerts := Drift(obs, day, Thresholds{End: now})
				got := map[Metric]bool{}
				for _, a := range alerts {
					got[a.Metric] = true
					assert.Equal(t, "code", a.Task)
					assert.Equal(t, 1000, a.PreviousCalls)
					assert.NotEmpty(t, a.Message)
					if !slices.Contains(c.want, a.Metric) {
						unexpected++
						t.Logf("seed %d: unexpected alert %s", seed, a.Message)
					}
				}
				for _, m := range c.want {
					assert.True(t, got[m], "seed %d: no %s alert: %v", seed, m, alerts)
				}
				if c.want == nil {
					assert.Empty(t, alerts, "seed %d: stationary stream alerted", seed)
				}
			}
		})
	}
	assert.LessOrEqual(t, unexpected, 2, "false alarms over %d streams", seeds*len(cases))
}

func TestDriftQuietOnSmallStationaryWindows(t *testing.T) {
	// Few calls per window make medians noisy (the tokens' log-sigma is
	// 0.5); the significance test keeps the defaults quiet anyway: four
	// tests at p < 0.001 (latency, tokens and cost move together here)
	// allow at most a stray alert or two in 200 streams.
	alarms := 0
	for seed := range 200 {
		rng := rand.New(rand.NewPCG(uint64(seed), 99))
		obs := twoWindows(rng, baseTruth, baseTruth, 25)
		if a := Drift(obs, day, Thresholds{End: now}); len(a) > 0 {
			alarms++
			t.Logf("seed %d: %s", seed, a[0].Message)
		}
	}
	assert.LessOrEqual(t, alarms, 2, "streams with a false alarm, of 200")
}

func TestDriftDetails(t *testing.T) {
	mk := func(n int, ok int, at time.Time) []Observation {
		var out []Observation
		for i := range n {
			out = append(out, Observation{Task: "t", Model: "m", Time: at.Add(-time.Duration(i) * 500 * time.Millisecond), OK: i < ok,
				OutputTokens: 100, Latency: time.Second, CostNano: 1000})
		}
		return out
	}
	t.Run("z statistic", func(t *testing.T) {
		obs := append(mk(100, 90, now.Add(-day-time.Hour)), mk(100, 70, now)...)
		alerts := Drift(obs, day, Thresholds{})
		require.Len(t, alerts, 1)
		a := alerts[0]
		// pooled p = 0.8, se = sqrt(0.8*0.2*(2/100)) = 0.0566; z = -0.2/0.0566.
		assert.InDelta(t, -0.2/math.Sqrt(0.8*0.2*0.02), a.Z, 1e-9)
		assert.InDelta(t, -0.2, a.Change, 1e-9)
		assert.Equal(t, "t on m: success 90% -> 70% (z = -3.5, 100 vs 100 calls)", a.Message)
	})
	t.Run("constant price change", func(t *testing.T) {
		before, after := mk(30, 30, now.Add(-day-time.Hour)), mk(30, 30, now)
		for i := range after {
			after[i].CostNano = 1300
		}
		alerts := Drift(append(before, after...), day, Thresholds{})
		require.Len(t, alerts, 1)
		assert.Equal(t, MetricCostPerCall, alerts[0].Metric)
		assert.InDelta(t, 0.3, alerts[0].Change, 1e-9)
		assert.True(t, math.IsInf(alerts[0].Z, 1))
		assert.Equal(t, "t on m: cost_per_call_p50 $1e-06 -> $1.3e-06 (+30%, limit 20%)", alerts[0].Message)
	})
	t.Run("too few calls", func(t *testing.T) {
		obs := append(mk(19, 19, now.Add(-day-time.Hour)), mk(100, 0, now)...)
		assert.Empty(t, Drift(obs, day, Thresholds{}))
		assert.Len(t, Drift(obs, day, Thresholds{MinCalls: 10}), 1)
	})
	t.Run("significant but tiny change is ignored", func(t *testing.T) {
		obs := append(mk(100000, 99000, now.Add(-day-time.Hour)), mk(100000, 98500, now)...)
		assert.Empty(t, Drift(obs, day, Thresholds{}))
		assert.Len(t, Drift(obs, day, Thresholds{SuccessDelta: 0.001}), 1)
	})
	t.Run("calls outside both windows are ignored", func(t *testing.T) {
		obs := append(mk(100, 100, now.Add(-3*day)), mk(100, 0, now)...)
		assert.Empty(t, Drift(obs, day, Thresholds{}))
	})
	t.Run("no window", func(t *testing.T) {
		assert.Empty(t, Drift(mk(10, 1, now), 0, Thresholds{}))
		assert.Empty(t, Drift(nil, day, Thresholds{}))
	})
}
