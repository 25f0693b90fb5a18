package estimator

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
)

// TestTotalsHandComputed adds up the hand-computed numbers of
// TestEstimateHandComputed (testdata/hand.toml: extract -> agent, review ->
// final).
func TestTotalsHandComputed(t *testing.T) {
	est := estimate(t, testCatalog(t, ""), parseWorkflow(t, string(readTestdata(t, "hand.toml"))))
	tests := []struct {
		name     string
		models   [4]string // extract, agent, review, final
		cost     float64
		latency  float64
		critical []int
		success  float64
	}{
		{
			// 0.002575 + 0.004028 + 0.0012 + 0.001306 = 0.009109
			// paths: 1.5 + 7.5 + 3.5 = 12.5 (agent) vs 1.5 + 5.25 + 3.5 = 10.25
			// 0.95 x 0.9 x 0.9 x 0.9 = 0.69255
			"all cachey", [4]string{mCachey, mCachey, mCachey, mCachey},
			0.009109, 12.5, []int{0, 1, 3}, 0.69255,
		},
		{
			// 0.002575 + 0.004028 + 0.0044 + 0.001306 = 0.012309
			// paths: 1.5 + 7.5 + 3.5 = 12.5 vs 1.5 + 10.5 + 3.5 = 15.5 (review)
			// 0.95 x 0.9 x 0.8 x 0.9 = 0.6156
			"slow review", [4]string{mCachey, mCachey, mTiered, mCachey},
			0.012309, 15.5, []int{0, 2, 3}, 0.6156,
		},
		{
			// 0.0048 + 0.012936 + 0.0044 + 0.003812 = 0.025948
			// 3 + max(15, 10.5) + 7 = 25; 0.8^4 = 0.4096
			"all tiered", [4]string{mTiered, mTiered, mTiered, mTiered},
			0.025948, 25, []int{0, 1, 3}, 0.4096,
		},
		{
			// Totals does not judge feasibility: nocache is summed like any other.
			// 0.0011 + 0.002634 + 0.0006 + 0.000653 = 0.004987
			// 3 + 15 + 7 = 25; 0.7^4 = 0.2401
			"all nocache", [4]string{mNoCache, mNoCache, mNoCache, mNoCache},
			0.004987, 25, []int{0, 1, 3}, 0.2401,
		},
	}
	ids := []string{"extract", "agent", "review", "final"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			choice := make([]*Candidate, 4)
			for k, id := range ids {
				choice[k] = candidate(t, est, id, tt.models[k])
			}
			tot, err := est.Totals(choice)
			require.NoError(t, err)
			assert.InDelta(t, tt.cost, tot.Cost.Mean, usdTol)
			assert.Equal(t, "analytic", tot.Cost.MeanMethod)
			assert.InDelta(t, tt.latency, tot.LatencyS.Mean, secTol)
			assert.Equal(t, tt.critical, tot.Critical)
			assert.InDelta(t, tt.success, tot.Success, 1e-12)
			requireOrdered(t, "run cost", tot.Cost.Dist)
			assertJointPercentiles(t, est, choice, tot)
		})
	}
}

// assertJointPercentiles recomputes the run's cost in every Monte Carlo run
// from the nodes' draws and checks Totals' percentiles against it.
func assertJointPercentiles(t *testing.T, est *Estimate, choice []*Candidate, tot Totals) {
	t.Helper()
	sum := make([]float64, est.Samples)
	for i, c := range choice {
		for s, v := range mcCost(est, i, c) {
			sum[s] += v
		}
	}
	slices.Sort(sum)
	at := func(p float64) float64 { return sum[int(math.Ceil(p*float64(len(sum))))-1] }
	assert.InDelta(t, at(0.50), tot.Cost.P50, 1e-15, "P50")
	assert.InDelta(t, at(0.95), tot.Cost.P95, 1e-15, "P95")
	assert.InDelta(t, at(0.99), tot.Cost.P99, 1e-15, "P99")
	assert.InDelta(t, sum[len(sum)-1], tot.Cost.Max, 1e-15, "Max")
}

// TestTotalsCorrelatedBranch: a branch and the node that reads its output
// are drawn together, so a run costs either both or neither.
//
// a (when 0.5): 100 x 1e-6 + 1000 x 2e-6 = 0.0021 when it runs.
// b: 6 framing tokens + a's 1000 when a ran: (1006 x 1e-6 + 10 x 2e-6) = 0.001026,
// else 6e-6 + 20e-6 = 0.000026.
// Run: 0.003126 or 0.000026 (never 0.002126 or 0.001026, which independent
// draws would give). Mean: 0.5 x 0.0021 + (506e-6 + 20e-6) = 0.001576.
func TestTotalsCorrelatedBranch(t *testing.T) {
	est := estimate(t, testCatalog(t, ""), parseWorkflow(t, `name = "corr"
[[node]]
id = "a"
prompt = "p"
input_tokens = 100
output_tokens = { mean = 1000, p95 = 1000 }
when = 0.5

[[node]]
id = "b"
depends_on = ["a"]
prompt = "{{node.a.output}}"
output_tokens = { mean = 10, p95 = 10 }
`))
	tot, err := est.Totals([]*Candidate{candidate(t, est, "a", mCachey), candidate(t, est, "b", mCachey)})
	require.NoError(t, err)
	assert.InDelta(t, 0.001576, tot.Cost.Mean, usdTol)
	for _, q := range []float64{tot.Cost.P50, tot.Cost.P95, tot.Cost.P99, tot.Cost.Max} {
		if math.Abs(q-0.003126) > usdTol {
			assert.InDelta(t, 0.000026, q, usdTol, "a percentile of the run is neither outcome: %+v", tot.Cost)
		}
	}
	assert.InDelta(t, 0.003126, tot.Cost.Max, usdTol)
}

// TestTotalsLongestPath checks the critical path on a hand-made DAG: a
// diamond a -> {b, c} -> d and a separate chain e -> f. Latencies with
// cachey (0.5 s + out/100, fixed outputs): a 1, b 3, c 5, d 2, e 4,
// f 2 calls x 2.5 = 5; with tiered (1 s + out/50): c 1 + 450/50 = 10.
func TestTotalsLongestPath(t *testing.T) {
	est := estimate(t, testCatalog(t, ""), parseWorkflow(t, `name = "paths"
[[node]]
id = "a"
prompt = "p"
input_tokens = 10
output_tokens = { mean = 50, p95 = 50 }
[[node]]
id = "b"
depends_on = ["a"]
prompt = "p"
input_tokens = 10
output_tokens = { mean = 250, p95 = 250 }
[[node]]
id = "c"
depends_on = ["a"]
prompt = "p"
input_tokens = 10
output_tokens = { mean = 450, p95 = 450 }
[[node]]
id = "d"
depends_on = ["b", "c"]
prompt = "p"
input_tokens = 10
output_tokens = { mean = 150, p95 = 150 }
[[node]]
id = "e"
prompt = "p"
input_tokens = 10
output_tokens = { mean = 350, p95 = 350 }
[[node]]
id = "f"
depends_on = ["e"]
prompt = "p"
input_tokens = 10
output_tokens = { mean = 200, p95 = 200 }
repeat = { mean = 2, max = 2 }
`))
	tests := []struct {
		name     string
		cModel   string
		latency  float64
		critical []string
	}{
		// a-c-d = 1 + 5 + 2 = 8 < e-f = 4 + 5 = 9
		{"separate chain", mCachey, 9, []string{"e", "f"}},
		// a-c-d = 1 + 10 + 2 = 13 > 9
		{"slow branch", mTiered, 13, []string{"a", "c", "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var choice []*Candidate
			for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
				m := mCachey
				if id == "c" {
					m = tt.cModel
				}
				choice = append(choice, candidate(t, est, id, m))
			}
			tot, err := est.Totals(choice)
			require.NoError(t, err)
			assert.InDelta(t, tt.latency, tot.LatencyS.Mean, secTol)
			var path []string
			for _, i := range tot.Critical {
				path = append(path, est.Nodes[i].ID)
			}
			assert.Equal(t, tt.critical, path)
		})
	}
}

// TestTotalsErrors rejects a choice of the wrong length or with a gap.
func TestTotalsErrors(t *testing.T) {
	est := estimate(t, testCatalog(t, ""), parseWorkflow(t, string(readTestdata(t, "hand.toml"))))
	c := candidate(t, est, "extract", mCachey)
	tests := []struct {
		name   string
		choice []*Candidate
		msg    string
	}{
		{"too few", []*Candidate{c}, "1 choices for 4 nodes"},
		{"nil", []*Candidate{c, nil, c, c}, `node "agent" has no model`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := est.Totals(tt.choice)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
}

// TestPropertyTotals: on random workflows and random choices, the run's
// mean is the sum of the chosen means, its latency the longest path
// (computed here from depends_on), its success the product of qualities, and
// its percentiles those of the sample-wise sums.
func TestPropertyTotals(t *testing.T) {
	cat, err := catalog.LoadTOML("prop.toml", []byte(propCatalog))
	require.NoError(t, err)
	for seed := range uint64(propWorkflows) {
		r := rand.New(rand.NewPCG(seed, 17))
		sp := randomSpec(r)
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			est := estimate(t, cat, parseWorkflow(t, sp.toml()), WithSamples(1000), WithSeed(seed))
			for range 3 {
				choice := make([]*Candidate, len(est.Nodes))
				wantCost, wantSuccess := 0.0, 1.0
				finish := make([]float64, len(sp.nodes))
				wantLat := 0.0
				for i := range est.Nodes {
					choice[i] = &est.Nodes[i].Candidates[r.IntN(len(est.Nodes[i].Candidates))]
					wantCost += choice[i].Cost.Mean
					wantSuccess *= choice[i].Quality
				}
				// Nodes are generated in topological order: depends only on earlier ones.
				for k, n := range sp.nodes {
					start := 0.0
					for _, d := range n.deps {
						start = max(start, finish[d])
					}
					finish[k] = start + choice[k].LatencyS.Mean
					wantLat = max(wantLat, finish[k])
				}
				tot, err := est.Totals(choice)
				require.NoError(t, err)
				assert.InDelta(t, wantCost, tot.Cost.Mean, 1e-15)
				assert.InDelta(t, wantLat, tot.LatencyS.Mean, 1e-9)
				assert.InDelta(t, wantSuccess, tot.Success, 1e-15)
				requireOrdered(t, "run cost", tot.Cost.Dist)
				assertJointPercentiles(t, est, choice, tot)

				// The critical path is a chain of dependencies whose latencies
				// add up to the run's latency.
				require.NotEmpty(t, tot.Critical)
				sum := 0.0
				for j, i := range tot.Critical {
					sum += choice[i].LatencyS.Mean
					if j > 0 {
						assert.Contains(t, sp.nodes[i].deps, tot.Critical[j-1])
					}
				}
				assert.Empty(t, sp.nodes[tot.Critical[0]].deps, "the path starts at a source")
				assert.InDelta(t, tot.LatencyS.Mean, sum, 1e-9)
			}
		})
	}
}
