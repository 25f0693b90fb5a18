package estimator

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/graph"
)

// propCatalog has no long-context tier, so every mean is analytic, and
// covers every billing path a text node uses: cache read and write prices,
// cache reads only (writes billed as input), no caching, a per-request fee,
// an exact tokenizer and a token ratio.
const propCatalog = `
[[model]]
id = "acme/cachey"
input_per_mtok = 1.00
output_per_mtok = 2.00
cache_read_per_mtok = 0.10
cache_write_per_mtok = 1.25
ttft_s = 0.5
output_tokens_per_s = 100
[model.quality]
default = 0.9

[[model]]
id = "acme/autocache"
input_per_mtok = 0.40
output_per_mtok = 1.60
cache_read_per_mtok = 0.10
prompt_caching = true
tokenizer = "o200k_base"
ttft_s = 0.3
output_tokens_per_s = 150
[model.quality]
default = 0.8
code = 0.85

[[model]]
id = "acme/perreq"
input_per_mtok = 3.00
output_per_mtok = 15.00
per_request_usd = 0.001
token_ratio = 1.2
[model.quality]
default = 0.95

[[model]]
id = "plain/nocache"
input_per_mtok = 0.50
output_per_mtok = 1.00
ttft_s = 2
output_tokens_per_s = 30
[model.quality]
default = 0.7
`

var propTasks = []string{graph.TaskDefault, graph.TaskClassification, graph.TaskCode, graph.TaskWriting, graph.TaskSummarization}

// specNode is one node of a generated workflow.
type specNode struct {
	deps        []int
	refs        []int // deps referenced in the prompt
	task        string
	inputTokens int     // 0: count the prompt, the input and upstream outputs
	outScale    float64 // multiplier applied to the output hint's numbers
	outMean     float64
	outP95      float64
	outMax      int
	when        float64 // 0 = omitted
	loopMean    float64 // 0 = no loop
	loopMax     int
	history     bool
	turn        int
	prefix      int
}

// spec is a generated workflow.
type spec struct {
	docTokens int
	nodes     []specNode
}

// randomSpec draws a small DAG with random hints, loops and branches.
func randomSpec(r *rand.Rand) spec {
	s := spec{docTokens: 100 + r.IntN(2000)}
	n := 2 + r.IntN(6)
	for k := range n {
		sn := specNode{task: propTasks[r.IntN(len(propTasks))], outScale: 1}
		for j := range k {
			if r.Float64() < 0.4 {
				sn.deps = append(sn.deps, j)
				if r.Float64() < 0.7 {
					sn.refs = append(sn.refs, j)
				}
			}
		}
		if r.Float64() < 0.4 {
			sn.inputTokens = 50 + r.IntN(3000)
		}
		switch r.IntN(5) {
		case 0: // task default
		case 1: // bare mean: p95 = 1.5 x mean
			sn.outMean = float64(5 + r.IntN(400))
		case 2: // mean and p95, up to 5x (beyond the sigma cap at ~3.87x)
			sn.outMean = float64(5 + r.IntN(400))
			sn.outP95 = math.Round(sn.outMean * (1 + 4*r.Float64()))
		case 3: // mean, p95 and max
			sn.outMean = float64(5 + r.IntN(400))
			sn.outP95 = math.Round(sn.outMean * (1 + 2*r.Float64()))
			sn.outMax = int(sn.outP95 * (1 + r.Float64()))
		case 4: // deterministic
			sn.outMean = float64(2 + r.IntN(400))
			sn.outP95 = sn.outMean
		}
		if r.Float64() < 0.4 {
			sn.when = math.Round(100*(0.05+0.9*r.Float64())) / 100
		}
		if r.Float64() < 0.5 {
			sn.loopMax = 1 + r.IntN(10)
			sn.loopMean = math.Round(100*(1+float64(sn.loopMax-1)*r.Float64())) / 100
			sn.history = r.Float64() < 0.6
			if r.Float64() < 0.7 {
				sn.turn = r.IntN(300)
			}
		}
		if r.Float64() < 0.4 {
			limit := s.docTokens // the prompt holds the input
			if sn.inputTokens > 0 {
				limit = sn.inputTokens
			}
			sn.prefix = 1 + r.IntN(limit)
		}
		s.nodes = append(s.nodes, sn)
	}
	return s
}

func (s spec) toml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "name = \"gen\"\n\n[inputs.doc]\ntokens = %d\n", s.docTokens)
	for k, n := range s.nodes {
		fmt.Fprintf(&b, "\n[[node]]\nid = \"n%d\"\ntask = %q\n", k, n.task)
		if len(n.deps) > 0 {
			ids := make([]string, len(n.deps))
			for i, d := range n.deps {
				ids[i] = fmt.Sprintf("%q", fmt.Sprintf("n%d", d))
			}
			fmt.Fprintf(&b, "depends_on = [%s]\n", strings.Join(ids, ", "))
		}
		prompt := fmt.Sprintf("Step %d of the job: {{input.doc}}", k)
		for _, r := range n.refs {
			prompt += fmt.Sprintf(" {{node.n%d.output}}", r)
		}
		fmt.Fprintf(&b, "prompt = %q\n", prompt)
		if n.inputTokens > 0 {
			fmt.Fprintf(&b, "input_tokens = %d\n", n.inputTokens)
		}
		switch mean, p95, mx := n.outMean*n.outScale, n.outP95*n.outScale, int(math.Ceil(float64(n.outMax)*n.outScale)); {
		case n.outMean == 0:
		case n.outP95 == 0:
			fmt.Fprintf(&b, "output_tokens = %.3f\n", mean)
		case n.outMax == 0:
			fmt.Fprintf(&b, "output_tokens = { mean = %.3f, p95 = %.3f }\n", mean, p95)
		default:
			fmt.Fprintf(&b, "output_tokens = { mean = %.3f, p95 = %.3f, max = %d }\n", mean, p95, mx)
		}
		if n.when > 0 {
			fmt.Fprintf(&b, "when = %.2f\n", n.when)
		}
		if n.loopMax > 0 {
			fmt.Fprintf(&b, "repeat = { mean = %.2f, max = %d, history = %t, turn_tokens = %d }\n", n.loopMean, n.loopMax, n.history, n.turn)
		}
		if n.prefix > 0 {
			fmt.Fprintf(&b, "cache_prefix_tokens = %d\n", n.prefix)
		}
	}
	return b.String()
}

// clone returns a deep copy of s.
func (s spec) clone() spec {
	c := s
	c.nodes = append([]specNode(nil), s.nodes...)
	return c
}

const propWorkflows = 24

// TestPropertyMonteCarloMatchesAnalytic: on random workflows without tier
// crossings, the Monte Carlo mean of every candidate's cost (the draws that
// Totals adds up), of calls and of dynamic prompt tokens converges to the
// analytic mean. With S samples the sample mean has standard error sd/sqrt(S);
// a difference above 5 standard errors has probability below 6e-7 per check
// (a few hundred checks here), so a failure means the two disagree.
func TestPropertyMonteCarloMatchesAnalytic(t *testing.T) {
	samples := 50_000
	if testing.Short() {
		samples = 10_000
	}
	cat, err := catalog.LoadTOML("prop.toml", []byte(propCatalog))
	require.NoError(t, err)
	for seed := range uint64(propWorkflows) {
		sp := randomSpec(rand.New(rand.NewPCG(seed, 7)))
		src := sp.toml()
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			w := parseWorkflow(t, src)
			est := estimate(t, cat, w, WithSamples(samples), WithSeed(seed+100))
			near := func(what string, want float64, xs []float64) {
				t.Helper()
				got, se := meanSE(xs)
				tol := 5*se + 1e-9*math.Abs(want) + 1e-15
				assert.InDelta(t, want, got, tol, "%s: analytic %g, Monte Carlo %g ± %g\n%s", what, want, got, se, src)
			}
			for i, ne := range est.Nodes {
				d := est.draws[i]
				calls := make([]float64, samples)
				dyn := make([]float64, samples)
				for s := range samples {
					calls[s] = float64(d.calls[s])
					dyn[s] = d.sumDyn[s]
				}
				near(ne.ID+" calls", ne.Calls.Mean, calls)
				requireOrdered(t, ne.ID+" calls", ne.Calls)
				assert.LessOrEqual(t, ne.OutputTokens.P50, ne.OutputTokens.P95, ne.ID)
				assert.LessOrEqual(t, ne.OutputTokens.P95, ne.OutputTokens.P99, ne.ID)
				require.Len(t, ne.Candidates, 4)
				for k := range ne.Candidates {
					c := &ne.Candidates[k]
					what := ne.ID + " " + c.Model.ID
					require.Equal(t, "analytic", c.Cost.MeanMethod, what)
					near(what+" cost", c.Cost.Mean, mcCost(est, i, c))
					if ne.When > 0 {
						// E[sum of dynamic tokens] = when x E[N] x (mean per call - static).
						eN := ne.Calls.Mean / ne.When
						near(what+" dynamic tokens", ne.When*eN*(c.InputTokens.Mean-c.static.prompt()), dyn)
					}
					requireOrdered(t, what+" cost", c.Cost.Dist)
					requireOrdered(t, what+" input", c.InputTokens)
					assert.GreaterOrEqual(t, c.Cost.P50, 0.0)
				}
			}
		})
	}
}

// TestPropertyMonotone: raising a node's input_tokens, the input's size or a
// node's output hint never lowers any candidate's mean cost or latency.
func TestPropertyMonotone(t *testing.T) {
	cat, err := catalog.LoadTOML("prop.toml", []byte(propCatalog))
	require.NoError(t, err)
	e, err := New(cat, WithSamples(200))
	require.NoError(t, err)
	run := func(t *testing.T, sp spec) *Estimate {
		est, err := e.Estimate(parseWorkflow(t, sp.toml()))
		require.NoError(t, err)
		return est
	}
	for seed := range uint64(propWorkflows) {
		r := rand.New(rand.NewPCG(seed, 11))
		sp := randomSpec(r)
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			base := run(t, sp)
			type variant struct {
				name string
				sp   spec
			}
			var vs []variant
			bigger := sp.clone()
			bigger.docTokens += 1 + r.IntN(1000)
			vs = append(vs, variant{"input doc", bigger})
			for k, n := range sp.nodes {
				if n.inputTokens > 0 {
					v := sp.clone()
					v.nodes[k].inputTokens += 1 + r.IntN(500)
					vs = append(vs, variant{fmt.Sprintf("n%d input_tokens", k), v})
				}
				if n.outMean > 0 {
					v := sp.clone()
					v.nodes[k].outScale = 1 + 2*r.Float64()
					vs = append(vs, variant{fmt.Sprintf("n%d output_tokens x%.2f", k, v.nodes[k].outScale), v})
				}
			}
			for _, v := range vs {
				t.Run(v.name, func(t *testing.T) {
					up := run(t, v.sp)
					for i := range base.Nodes {
						for k := range base.Nodes[i].Candidates {
							old, nw := &base.Nodes[i].Candidates[k], &up.Nodes[i].Candidates[k]
							require.Equal(t, old.Model.ID, nw.Model.ID)
							what := base.Nodes[i].ID + " " + old.Model.ID
							assert.GreaterOrEqual(t, nw.Cost.Mean, old.Cost.Mean*(1-1e-12), "%s cost\nbefore:\n%s\nafter:\n%s", what, sp.toml(), v.sp.toml())
							assert.GreaterOrEqual(t, nw.LatencyS.Mean, old.LatencyS.Mean*(1-1e-12), "%s latency", what)
							assert.GreaterOrEqual(t, nw.InputTokens.Mean, old.InputTokens.Mean*(1-1e-12), "%s input", what)
						}
					}
				})
			}
		})
	}
}

// TestPropertySeeds: the same seed gives the same estimate; another seed
// gives other percentiles but the same (analytic) means.
func TestPropertySeeds(t *testing.T) {
	cat, err := catalog.LoadTOML("prop.toml", []byte(propCatalog))
	require.NoError(t, err)
	for seed := range uint64(propWorkflows) {
		sp := randomSpec(rand.New(rand.NewPCG(seed, 13)))
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			w := parseWorkflow(t, sp.toml())
			a := estimate(t, cat, w, WithSeed(42))
			b := estimate(t, cat, w, WithSeed(42))
			c := estimate(t, cat, w, WithSeed(43))
			assert.Equal(t, a.Nodes, b.Nodes)
			assert.Equal(t, a.draws, b.draws)

			differs := false
			for i := range a.Nodes {
				assert.Equal(t, a.Nodes[i].Calls.Mean, c.Nodes[i].Calls.Mean)
				for k := range a.Nodes[i].Candidates {
					x, y := &a.Nodes[i].Candidates[k], &c.Nodes[i].Candidates[k]
					assert.Equal(t, x.Cost.Mean, y.Cost.Mean, "%s %s", a.Nodes[i].ID, x.Model.ID)
					assert.Equal(t, x.InputTokens.Mean, y.InputTokens.Mean)
					assert.Equal(t, x.LatencyS.Mean, y.LatencyS.Mean)
					assert.Equal(t, x.Quality, y.Quality)
					if x.Cost.P50 != y.Cost.P50 || x.Cost.P95 != y.Cost.P95 || x.Cost.P99 != y.Cost.P99 {
						differs = true
					}
				}
			}
			// Every generated workflow has a random node: some sampled
			// number must change with the seed.
			choice := cheapest(a)
			ta, err := a.Totals(choice)
			require.NoError(t, err)
			tc, err := c.Totals(cheapest(c))
			require.NoError(t, err)
			assert.InDelta(t, ta.Cost.Mean, tc.Cost.Mean, 1e-15)
			if stochastic(sp) {
				assert.True(t, differs || ta.Cost.P95 != tc.Cost.P95, "seed 42 and 43 gave the same percentiles")
			}
		})
	}
}

// stochastic reports whether some node's cost is random: a branch, a loop
// that varies, or an output that is not fixed.
func stochastic(sp spec) bool {
	for _, n := range sp.nodes {
		if n.when > 0 && n.when < 1 || n.loopMax > 1 && n.loopMean < float64(n.loopMax) || n.outMean == 0 || n.outP95 != n.outMean {
			return true
		}
	}
	return false
}

// cheapest picks each node's cheapest candidate.
func cheapest(est *Estimate) []*Candidate {
	choice := make([]*Candidate, len(est.Nodes))
	for i := range est.Nodes {
		for k := range est.Nodes[i].Candidates {
			c := &est.Nodes[i].Candidates[k]
			if choice[i] == nil || c.Cost.Mean < choice[i].Cost.Mean {
				choice[i] = c
			}
		}
	}
	return choice
}

// TestConcurrentEstimates: one Estimator used from several goroutines gives
// every caller the same estimate (run with -race).
func TestConcurrentEstimates(t *testing.T) {
	cat, err := catalog.LoadTOML("prop.toml", []byte(propCatalog))
	require.NoError(t, err)
	e, err := New(cat, WithSamples(500))
	require.NoError(t, err)
	w := parseWorkflow(t, randomSpec(rand.New(rand.NewPCG(3, 3))).toml())
	want, err := e.Estimate(w)
	require.NoError(t, err)
	var wg sync.WaitGroup
	got := make([]*Estimate, 4)
	for g := range got {
		wg.Go(func() {
			est, err := e.Estimate(w)
			if err == nil {
				got[g] = est
			}
		})
	}
	wg.Wait()
	for _, est := range got {
		require.NotNil(t, est)
		assert.Equal(t, want.Nodes, est.Nodes)
	}
}
