package learn

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkFit fits n observations spread over 10 models and 5 tasks.
func BenchmarkFit(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		rng := rand.New(rand.NewPCG(1, 2))
		obs := draw(rng, baseTruth, n, now.Add(-30*24*time.Hour), now)
		for i := range obs {
			obs[i].Model = fmt.Sprintf("m%d", i%10)
			obs[i].Task = fmt.Sprintf("t%d", (i/10)%5)
		}
		if got := len(Fit(obs, now, Options{}).Stats()); got != 50 {
			b.Fatalf("fit gave %d groups, want 50", got)
		}
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for b.Loop() {
				Fit(obs, now, Options{})
			}
		})
	}
}
