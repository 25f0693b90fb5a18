package planner

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// benchProblem generates a workflow shaped like real LLM pipelines: a layered
// DAG with fan-out and fan-in, and for every step k candidates drawn from one
// synthetic model catalog whose prices span ~60x. Dearer models are more
// reliable and usually slower; every step scales price by its token volume,
// latency by its output length and error rate by its difficulty. The
// constraints come from a reference plan that takes, at every step, the
// fastest candidate of at least median quality: MinSuccess and MaxLatency
// equal its success and latency and MaxCost its cost. The instance is thus
// feasible by construction, and the optimum must trade quality against
// latency along critical paths (TestSolveBenchInstancesAreValid checks that
// both bounds change the optimum).
func benchProblem(n, k int, seed uint64) *Problem {
	rng := rand.New(rand.NewPCG(seed, uint64(n)<<20|uint64(k)))
	type model struct{ price, err, speed float64 }
	models := make([]model, k)
	for j := range models {
		rel := math.Exp(rng.Float64() * math.Log(60)) // price relative to the cheapest
		models[j] = model{
			price: rel,
			err:   0.15 / math.Sqrt(rel) * (0.7 + 0.6*rng.Float64()),
			speed: math.Pow(rel, 0.35) * (0.6 + rng.Float64()),
		}
	}
	p := &Problem{Cands: make([][]Candidate, n), Preds: make([][]int, n), Order: make([]int, n)}
	width := max(2, int(math.Sqrt(float64(n))))
	var prev, cur []int
	for v := 0; v < n; {
		w := min(1+rng.IntN(width), n-v)
		cur = cur[:0]
		for i := 0; i < w; i, v = i+1, v+1 {
			cur = append(cur, v)
			if len(prev) > 0 { // fan-in from 1..3 nodes of the previous layer
				for f := 1 + rng.IntN(3); f > 0; f-- {
					u := prev[rng.IntN(len(prev))]
					if !contains(p.Preds[v], u) {
						p.Preds[v] = append(p.Preds[v], u)
					}
				}
			}
		}
		prev = append(prev[:0], cur...)
	}
	for v := range p.Order {
		p.Order[v] = v
		tokens := 0.0005 + 0.01*rng.Float64()
		outLen := 0.5 + 4*rng.Float64()
		difficulty := 0.2 + 0.8*rng.Float64()
		for _, m := range models {
			p.Cands[v] = append(p.Cands[v], Candidate{
				Cost:    tokens * m.price * (0.9 + 0.2*rng.Float64()),
				Latency: outLen * m.speed * (0.9 + 0.2*rng.Float64()),
				Quality: 1 - math.Min(0.9, difficulty*m.err*(0.8+0.4*rng.Float64())),
			})
		}
	}
	ref := make([]int, n)
	for v, cs := range p.Cands {
		ref[v] = fastGood(cs)
	}
	p.MaxCost, p.MaxLatency, p.MinSuccess = evaluate(p, p.Order, ref)
	return p
}

func contains(s []int, x int) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// fastGood picks the fastest candidate whose quality is at least the median.
func fastGood(cs []Candidate) int {
	qs := make([]float64, len(cs))
	for i, c := range cs {
		qs[i] = c.Quality
	}
	slices.Sort(qs)
	median := qs[len(qs)/2]
	best := -1
	for j, c := range cs {
		if c.Quality >= median && (best < 0 || c.Latency < cs[best].Latency) {
			best = j
		}
	}
	return best
}

// BenchmarkSolve sweeps workflow size n and candidates per step k. Each run
// has a 2 s deadline; the reported metrics say whether optimality was proven
// and what gap remained.
func BenchmarkSolve(b *testing.B) {
	for _, n := range []int{10, 50, 200, 1000} {
		for _, k := range []int{10, 50, 200} {
			b.Run(fmt.Sprintf("n=%d/k=%d", n, k), func(b *testing.B) {
				p := benchProblem(n, k, 1)
				if _, err := newInstance(p); err != nil {
					b.Fatal(err)
				}
				var last Solution
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					s, err := Solve(ctx, p, Limits{})
					cancel()
					if err != nil || !s.Feasible {
						b.Fatalf("err %v status %s", err, s.Status)
					}
					last = s
				}
				b.StopTimer()
				if !satisfies(p, last.Choice, true) {
					b.Fatal("plan violates constraints")
				}
				optimal := 0.0
				if last.Optimal {
					optimal = 1
				}
				b.ReportMetric(optimal, "optimal")
				b.ReportMetric(last.Gap*100, "gap%")
				b.ReportMetric(float64(last.Explored), "explored")
			})
		}
	}
}
