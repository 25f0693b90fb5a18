package cascade

import (
	"math"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smallestAbove returns the smallest value of xs strictly above t.
func smallestAbove(xs []float64, t float64) float64 {
	best := math.Inf(1)
	for _, x := range xs {
		if x > t && x < best {
			best = x
		}
	}
	return best
}

func TestFitFindsTheThreshold(t *testing.T) {
	cases := []struct {
		name string
		t    float64
		n    int
		seed uint64
	}{
		{"t=0.3", 0.3, 2000, 1},
		{"t=0.62", 0.62, 5000, 2},
		{"t=0.9", 0.9, 3000, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			all := genTable(c.n, c.seed, []genModel{
				thresholdModel("small", 0.001, c.t),
				noisyModel("medium", 0.006, 0.8, 0, true),
				perfectModel("large", 0.03),
			})
			train, test, err := Split(all.Len(), 0.3, c.seed)
			require.NoError(t, err)
			tr, te := all.Subset(train), all.Subset(test)
			rep, err := Run(tr, te, Options{TargetQuality: 1})
			require.NoError(t, err)
			fit := rep.Fit
			require.True(t, fit.Feasible)
			assert.Equal(t, []string{"small", "large"}, fit.Policy.Models)
			require.Len(t, fit.Policy.Thresholds, 1)
			// The cheapest threshold that accepts no wrong answer on the
			// training rows is the smallest training confidence above t.
			assert.Equal(t, smallestAbove(tr.Conf[0], c.t), fit.Policy.Thresholds[0])
			assert.InDelta(t, c.t, fit.Policy.Thresholds[0], 0.01)
			assert.Equal(t, BindsQuality, fit.Binds)
			assert.Equal(t, 1.0, fit.Train.Quality)

			// The reported held-out numbers are those of a direct computation.
			thr := fit.Policy.Thresholds[0]
			var q, cost float64
			for r := range te.Len() {
				cost += te.Cost[0][r]
				if te.Conf[0][r] >= thr {
					q += te.Perf[0][r]
				} else {
					cost += te.Cost[2][r]
					q += te.Perf[2][r]
				}
			}
			n := float64(te.Len())
			assert.InDelta(t, q/n, rep.Cascade.Quality, 1e-12)
			assert.InDelta(t, cost/n, rep.Cascade.CostUSD, 1e-12)
			// The cascade pays the small model always and the large one on a
			// share of about t of the queries.
			assert.InDelta(t, 0.001+c.t*0.03, rep.Cascade.CostUSD, 0.003)
			assert.InDelta(t, 1-cost/n/rep.Strongest.Test.CostUSD, rep.SavingVsStrongest, 1e-12)
			assert.Equal(t, "large", rep.Strongest.Model)
		})
	}
}

func TestFitThreeModelCascade(t *testing.T) {
	all := genTable(20000, 11, []genModel{
		thresholdModel("small", 0.001, 0.5),
		thresholdModel("medium", 0.005, 0.3),
		perfectModel("large", 0.05),
	})
	fit, err := Fit(all, Options{TargetQuality: 1})
	require.NoError(t, err)
	require.Equal(t, []string{"small", "medium", "large"}, fit.Policy.Models)
	// Grid thresholds: the smallest quantile above each true threshold.
	assert.Greater(t, fit.Policy.Thresholds[0], 0.5)
	assert.InDelta(t, 0.5, fit.Policy.Thresholds[0], 0.02)
	assert.Greater(t, fit.Policy.Thresholds[1], 0.3)
	assert.InDelta(t, 0.3, fit.Policy.Thresholds[1], 0.02)
	assert.Equal(t, 1.0, fit.Train.Quality)
	q, c := naiveMetrics(all, fit.Policy)
	assert.InDelta(t, q, fit.Train.Quality, 1e-12)
	assert.InDelta(t, c, fit.Train.CostUSD, 1e-12)
	// Limited to two models, it must settle for medium -> large (0.005 +
	// 0.3 x 0.05 per query beats small -> large at 0.001 + 0.5 x 0.05).
	fit2, err := Fit(all, Options{TargetQuality: 1, MaxLength: 2})
	require.NoError(t, err)
	assert.Equal(t, []string{"medium", "large"}, fit2.Policy.Models)
	assert.Less(t, fit.Train.CostUSD, fit2.Train.CostUSD)
}

// The fit is at least as cheap on the training rows as a plain two-model
// cascade fitted by grid search, at the same target.
func TestFitBeatsTwoModelGridBaseline(t *testing.T) {
	cases := []struct {
		name   string
		models []genModel
		target float64
	}{
		{"threshold", []genModel{thresholdModel("a", 0.001, 0.4), perfectModel("b", 0.02)}, 0},
		{"noisy three", []genModel{
			noisyModel("a", 0.0005, 0.55, 0.8, true),
			noisyModel("b", 0.004, 0.75, 0.4, true),
			noisyModel("c", 0.03, 0.92, 0.1, false),
		}, 0},
		{"noisy five, target 0.8", []genModel{
			noisyModel("a", 0.0002, 0.4, 0.9, true),
			noisyModel("b", 0.001, 0.6, 0.6, true),
			noisyModel("c", 0.002, 0.55, 0.2, true), // dominated by b
			noisyModel("d", 0.01, 0.8, 0.3, true),
			noisyModel("e", 0.05, 0.9, 0.1, true),
		}, 0.8},
		{"no confidence", []genModel{noisyModel("a", 0.001, 0.6, 0, false), noisyModel("b", 0.01, 0.9, 0, false)}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := genTable(3000, 5, c.models)
			fit, err := Fit(tab, Options{TargetQuality: c.target})
			require.NoError(t, err)
			require.True(t, fit.Feasible)
			bp, bc, ok := baselineTwoModel(tab, fit.Target)
			if ok {
				assert.LessOrEqual(t, fit.Train.CostUSD, bc+1e-15, "baseline %v is cheaper than the fit %v", bp, fit.Policy)
			}
			q, cost := naiveMetrics(tab, fit.Policy)
			assert.InDelta(t, q, fit.Train.Quality, 1e-12)
			assert.InDelta(t, cost, fit.Train.CostUSD, 1e-12)
			assert.GreaterOrEqual(t, fit.Train.Quality, fit.Target-1e-9)
			// Pruning dominated models changes nothing on these tables.
			ex, err := Fit(tab, Options{TargetQuality: c.target, Exhaustive: true})
			require.NoError(t, err)
			assert.InDelta(t, ex.Train.CostUSD, fit.Train.CostUSD, 1e-15)
		})
	}
}

func TestFitDefaultTargetAndBinding(t *testing.T) {
	tab := genTable(4000, 9, []genModel{
		noisyModel("a", 0.001, 0.6, 0.8, true),
		noisyModel("b", 0.02, 0.9, 0, false),
	})
	cases := []struct {
		name     string
		opt      Options
		binds    string
		feasible bool
	}{
		{"default", Options{}, BindsQuality, true},
		{"low target", Options{TargetQuality: 0.1}, BindsNone, true},
		{"unreachable", Options{TargetQuality: 1}, BindsInfeasible, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fit, err := Fit(tab, c.opt)
			require.NoError(t, err)
			assert.Equal(t, c.binds, fit.Binds)
			assert.Equal(t, c.feasible, fit.Feasible)
			assert.Equal(t, "b", fit.Strongest)
			if c.opt.TargetQuality == 0 {
				b, _ := Evaluate(tab, Single("b"))
				assert.True(t, fit.TargetDefault)
				assert.InDelta(t, b.Quality-DefaultTargetSlack, fit.Target, 1e-12)
			}
			if c.feasible {
				assert.InDelta(t, fit.Train.Quality-fit.Target, fit.Slack, 1e-12)
				assert.GreaterOrEqual(t, fit.Slack, -1e-9)
			} else {
				assert.Contains(t, fit.Note, "lower the target")
			}
		})
	}
}

func TestFitWithoutConfidenceFallsBackToSingle(t *testing.T) {
	tab := genTable(1000, 4, []genModel{
		noisyModel("a", 0.001, 0.5, 0, false),
		noisyModel("b", 0.004, 0.85, 0, false),
		noisyModel("c", 0.02, 0.9, 0, false),
	})
	fit, err := Fit(tab, Options{TargetQuality: 0.8})
	require.NoError(t, err)
	assert.Equal(t, "single", fit.Policy.Kind())
	assert.Equal(t, []string{"b"}, fit.Policy.Models)
	assert.Equal(t, "b", fit.BestSingle)
	assert.Contains(t, fit.Note, "no M|confidence column")
}

func TestFitOptionsErrors(t *testing.T) {
	tab := genTable(10, 1, []genModel{perfectModel("a", 1)})
	for _, opt := range []Options{{TargetQuality: 1.5}, {TargetQuality: -0.1}, {MaxLength: 4}, {Quantiles: -1}} {
		_, err := Fit(tab, opt)
		assert.Error(t, err, "%+v", opt)
	}
	_, err := Fit(&Table{}, Options{})
	assert.Error(t, err)
}

// The fit never reads the test rows: poisoning every value of the test
// split leaves the fitted policy and its training numbers unchanged.
func TestFitNeverSeesTestRows(t *testing.T) {
	models := []genModel{
		noisyModel("a", 0.001, 0.5, 0.9, true),
		noisyModel("b", 0.005, 0.7, 0.5, true),
		noisyModel("c", 0.03, 0.9, 0.1, true),
	}
	for _, seed := range []uint64{1, 2, 3} {
		t.Run("seed", func(t *testing.T) {
			all := genTable(3000, seed, models)
			before, err := RunSplit(all, 0.3, seed, Options{})
			require.NoError(t, err)
			_, test, err := Split(all.Len(), 0.3, seed)
			require.NoError(t, err)
			for _, r := range test {
				for m := range all.Models {
					all.Perf[m][r] = float64(r%2) * 0.5
					all.Cost[m][r] = 1e6
					all.Conf[m][r] = -1
				}
			}
			after, err := RunSplit(all, 0.3, seed, Options{})
			require.NoError(t, err)
			assert.Equal(t, before.Fit, after.Fit)
			assert.Equal(t, before.Strongest.Model, after.Strongest.Model)
			assert.Equal(t, before.BestSingle.Model, after.BestSingle.Model)
			// The poison did reach the held-out numbers.
			assert.Greater(t, after.Cascade.CostUSD, 1e5)
			assert.NotEqual(t, before.Oracle, after.Oracle)
		})
	}
}

func TestSplit(t *testing.T) {
	cases := []struct {
		n     int
		frac  float64
		seed  uint64
		wantN int
	}{
		{10, 0.3, 1, 3},
		{1000, 0.3, 42, 300},
		{2, 0.9, 7, 1},
		{3, 0.01, 7, 1},
	}
	for _, c := range cases {
		t.Run("", func(t *testing.T) {
			tr, te, err := Split(c.n, c.frac, c.seed)
			require.NoError(t, err)
			assert.Len(t, te, c.wantN)
			assert.Len(t, tr, c.n-c.wantN)
			assert.True(t, sort.IntsAreSorted(tr) && sort.IntsAreSorted(te))
			seen := map[int]bool{}
			for _, r := range append(append([]int{}, tr...), te...) {
				assert.False(t, seen[r], "row %d twice", r)
				seen[r] = true
			}
			assert.Len(t, seen, c.n)
			tr2, te2, _ := Split(c.n, c.frac, c.seed)
			assert.Equal(t, tr, tr2)
			assert.Equal(t, te, te2)
		})
	}
	_, a, _ := Split(1000, 0.3, 1)
	_, b, _ := Split(1000, 0.3, 2)
	assert.NotEqual(t, a, b, "different seeds give different splits")
	for _, bad := range []struct {
		n    int
		frac float64
	}{{1, 0.3}, {10, 0}, {10, 1}, {10, math.NaN()}} {
		_, _, err := Split(bad.n, bad.frac, 1)
		assert.Error(t, err)
	}
}

func TestEvaluateAndOracle(t *testing.T) {
	src := "a,a|total_cost,a|confidence,b,b|total_cost,b|latency_ms,a|latency_ms\n" +
		"1,0.1,0.9,1,1,100,10\n" + // a accepts (0.9 >= 0.5), right
		"0,0.1,0.2,1,1,100,10\n" + // a escalates, b right
		"1,0.1,0.4,0,1,100,10\n" + // a escalates although right; b wrong
		"0,0.1,0.7,0,1,100,10\n" // a accepts, wrong
	tab, err := ReadOutcomes("t.csv", stringsReader(src))
	require.NoError(t, err)
	cases := []struct {
		name    string
		p       Policy
		q, c    float64
		lat     float64
		answers []float64
	}{
		{"a", Single("a"), 0.5, 0.1, 10, []float64{1}},
		{"b", Single("b"), 0.5, 1, 100, []float64{1}},
		{"a->b", Policy{Models: []string{"a", "b"}, Thresholds: []float64{0.5}}, 0.5, 0.6, 60, []float64{0.5, 0.5}},
		{"a->b accept all", Policy{Models: []string{"a", "b"}, Thresholds: []float64{0}}, 0.5, 0.1, 10, []float64{1, 0}},
		{"a->b accept none", Policy{Models: []string{"a", "b"}, Thresholds: []float64{math.Inf(1)}}, 0.5, 1.1, 110, []float64{0, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Evaluate(tab, c.p)
			require.NoError(t, err)
			assert.InDelta(t, c.q, m.Quality, 1e-12)
			assert.InDelta(t, c.c, m.CostUSD, 1e-12)
			assert.InDelta(t, c.lat, m.LatencyMS, 1e-9)
			assert.Equal(t, c.answers, m.Answered)
			q, cost, err := PerQuery(tab, c.p)
			require.NoError(t, err)
			assert.Len(t, q, 4)
			assert.Len(t, cost, 4)
		})
	}
	o := Oracle(tab)
	// Rows: a (0.1), b (1), a (0.1), both wrong -> cheapest a (0.1).
	assert.InDelta(t, 0.75, o.Quality, 1e-12)
	assert.InDelta(t, (0.1+1+0.1+0.1)/4, o.CostUSD, 1e-12)

	for _, bad := range []Policy{
		{},
		{Models: []string{"a", "b"}},
		{Models: []string{"zz"}},
		{Models: []string{"b", "a"}, Thresholds: []float64{0.5}}, // b has no confidence
		{Models: []string{"a", "b"}, Thresholds: []float64{math.NaN()}},
	} {
		_, err := Evaluate(tab, bad)
		assert.Error(t, err, "%+v", bad)
	}
}
