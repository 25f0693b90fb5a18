package estimator

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The shared-ratio shortcut must give exactly the percentiles of pricing
// every run and sorting.
func TestQuantCacheMatchesFullPricing(t *testing.T) {
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 7))
		n := 200 + r.IntN(300)
		d := &nodeDraws{calls: make([]int32, n), sumDyn: make([]float64, n), sumOut: make([]float64, n)}
		constDyn := seed%3 == 0
		for s := range n {
			if r.Float64() < 0.3 {
				continue
			}
			d.calls[s] = 2
			d.sumDyn[s] = 500
			if !constDyn {
				d.sumDyn[s] = 1000 * r.Float64()
			}
			d.sumOut[s] = 300 * r.Float64()
			d.running++
			d.runDyn = d.sumDyn[s]
		}
		d.constCalls, d.constDyn = true, constDyn
		tc := &tierCoef{in: 1e-6 * (1 + r.Float64()), out: 4e-6}
		perCall, once := 0.001*r.Float64(), 0.0001
		qc := newQuantCache(n)
		got := qc.linear(d, tc.in/tc.out, tc.out, runCalls(d)*perCall+once)
		want := linearQuantiles(d, tc, perCall, once, make([]float64, n))
		for _, pair := range [][2]float64{{got.P50, want.P50}, {got.P95, want.P95}, {got.P99, want.P99}, {got.Max, want.Max}} {
			assert.InDelta(t, pair[1], pair[0], 1e-15*math.Max(1, pair[1]), "seed %d", seed)
		}
	}
}

func TestQuantilesNearestRank(t *testing.T) {
	for seed := range uint64(30) {
		r := rand.New(rand.NewPCG(seed, 1))
		buf := make([]float64, 1+r.IntN(3000))
		for i := range buf {
			buf[i] = math.Floor(10 * r.Float64()) // many ties
		}
		sorted := slices.Clone(buf)
		slices.Sort(sorted)
		q := quantiles(buf)
		rk := percentileRanks(len(sorted))
		assert.Equal(t, sorted[rk[0]], q.P50)
		assert.Equal(t, sorted[rk[1]], q.P95)
		assert.Equal(t, sorted[rk[2]], q.P99)
		assert.Equal(t, sorted[len(sorted)-1], q.Max)
	}
}
