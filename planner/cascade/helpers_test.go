package cascade

import (
	"math/rand/v2"
)

// genModel describes one generated model: its cost per query, and its
// answer and confidence per row drawn from a hidden per-row uniform u.
type genModel struct {
	name string
	cost float64
	// right reports whether the model answers row correctly given its
	// confidence conf and a uniform draw u.
	right func(conf, u float64) bool
	conf  bool // has a confidence column
}

// genTable builds a table of n rows: every model with a confidence column
// gets a uniform confidence; performance is 1 when right says so, else 0.
// Costs jitter by +-10% around the model's cost.
func genTable(n int, seed uint64, models []genModel) *Table {
	rng := rand.New(rand.NewPCG(seed, 7))
	M := len(models)
	t := &Table{Perf: make([][]float64, M), Cost: make([][]float64, M), Conf: make([][]float64, M)}
	for m, g := range models {
		t.Models = append(t.Models, g.name)
		t.Perf[m], t.Cost[m] = make([]float64, n), make([]float64, n)
		if g.conf {
			t.Conf[m] = make([]float64, n)
		}
	}
	for r := range n {
		t.Origin = append(t.Origin, Origin{File: "gen", Row: r + 1, Line: r + 2})
		for m, g := range models {
			c := rng.Float64()
			if g.conf {
				t.Conf[m][r] = c
			}
			if g.right(c, rng.Float64()) {
				t.Perf[m][r] = 1
			}
			t.Cost[m][r] = g.cost * (0.9 + 0.2*rng.Float64())
		}
	}
	return t
}

// thresholdModel is right exactly when its confidence is above t.
func thresholdModel(name string, cost, t float64) genModel {
	return genModel{name: name, cost: cost, conf: true, right: func(c, _ float64) bool { return c > t }}
}

// noisyModel is right with probability base + slope*(conf - 0.5): its
// confidence is informative but imperfect.
func noisyModel(name string, cost, base, slope float64, conf bool) genModel {
	return genModel{name: name, cost: cost, conf: conf, right: func(c, u float64) bool { return u < base+slope*(c-0.5) }}
}

// perfectModel is always right.
func perfectModel(name string, cost float64) genModel {
	return genModel{name: name, cost: cost, right: func(float64, float64) bool { return true }}
}

// naiveMetrics replays a policy row by row, independently of Evaluate.
func naiveMetrics(t *Table, p Policy) (q, c float64) {
	idx := make([]int, len(p.Models))
	for k, name := range p.Models {
		idx[k], _ = t.Model(name)
	}
	for r := range t.Len() {
		for k, m := range idx {
			c += t.Cost[m][r]
			if k == len(idx)-1 || t.Conf[m][r] >= p.Thresholds[k] {
				q += t.Perf[m][r]
				break
			}
		}
	}
	n := float64(t.Len())
	return q / n, c / n
}

// baselineTwoModel fits the plain two-model cascade by grid search: every
// pair (cheaper first on training cost) and thresholds 0, 0.005, ..., 1,
// each evaluated row by row. It returns the cheapest policy meeting target
// and false when none does.
func baselineTwoModel(t *Table, target float64) (Policy, float64, bool) {
	M := len(t.Models)
	cost := make([]float64, M)
	for m := range M {
		for r := range t.Len() {
			cost[m] += t.Cost[m][r]
		}
	}
	best, bestC, found := Policy{}, 0.0, false
	for a := range M {
		if t.Conf[a] == nil {
			continue
		}
		for b := range M {
			if b == a || cost[b] < cost[a] {
				continue
			}
			for k := 0; k <= 200; k++ {
				p := Policy{Models: []string{t.Models[a], t.Models[b]}, Thresholds: []float64{float64(k) / 200}}
				q, c := naiveMetrics(t, p)
				if q >= target-feasTol && (!found || c < bestC) {
					best, bestC, found = p, c, true
				}
			}
		}
	}
	return best, bestC, found
}
