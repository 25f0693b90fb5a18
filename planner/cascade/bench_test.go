package cascade

import (
	"fmt"
	"testing"
)

// benchModels is a RouterBench-like pool: eleven models from $0.0001 to
// $0.03 per query, all but the strongest with an informative confidence.
func benchModels() []genModel {
	var ms []genModel
	for i := range 10 {
		ms = append(ms, noisyModel(fmt.Sprintf("m%02d", i), 0.0001*float64(i+1)*float64(i+1), 0.4+0.045*float64(i), 0.6-0.04*float64(i), true))
	}
	return append(ms, noisyModel("strong", 0.03, 0.92, 0.05, false))
}

func BenchmarkFit(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		tab := genTable(n, 1, benchModels())
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			fit, err := Fit(tab, Options{})
			if err != nil || !fit.Feasible {
				b.Fatalf("fit: %v feasible=%v", err, fit.Feasible)
			}
			b.ResetTimer()
			for b.Loop() {
				_, _ = Fit(tab, Options{})
			}
			b.ReportMetric(float64(fit.Candidates), "candidates")
		})
	}
}

func BenchmarkCompare(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		tab := genTable(n, 1, benchModels())
		a, s := Single("m03"), Policy{Models: []string{"m01", "strong"}, Thresholds: []float64{0.6}}
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			if _, err := Compare(tab, a, s, DefaultResamples, 1); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				_, _ = Compare(tab, a, s, DefaultResamples, 1)
			}
		})
	}
}
