package estimator

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/estimator/tokens"
	"github.com/costwise/costwise/graph"
)

// benchWorkflow generates an n-node workflow: prompts with their own text,
// a text input and a sized input, upstream references, agent loops with
// history, branches, images and capability requirements.
func benchWorkflow(n int) string {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	var b strings.Builder
	fmt.Fprintf(&b, "name = \"bench-%d\"\n\n[inputs.ticket]\nexample = %q\n\n[inputs.doc]\ntokens = 5000\n",
		n, strings.Repeat("My invoice was charged twice this month and support has not answered. ", 8))
	tasks := graph.TaskKinds
	for k := range n {
		fmt.Fprintf(&b, "\n[[node]]\nid = \"n%d\"\ntask = %q\n", k, tasks[r.IntN(len(tasks))])
		prompt := fmt.Sprintf("Step %d: read the ticket {{input.ticket}} and decide what to do next, citing sources.", k)
		if r.IntN(3) == 0 {
			prompt += " Background: {{input.doc}}"
		}
		var deps []string
		for j := max(0, k-10); j < k; j++ {
			if r.IntN(4) == 0 && len(deps) < 3 {
				deps = append(deps, fmt.Sprintf("%q", fmt.Sprintf("n%d", j)))
				prompt += fmt.Sprintf(" Earlier result %d: {{node.n%d.output}}", j, j)
			}
		}
		if len(deps) > 0 {
			fmt.Fprintf(&b, "depends_on = [%s]\n", strings.Join(deps, ", "))
		}
		fmt.Fprintf(&b, "system = \"You are step %d of a support pipeline.\"\nprompt = %q\n", k, prompt)
		fmt.Fprintf(&b, "output_tokens = { mean = %d, p95 = %d }\n", 50+r.IntN(500), 600+r.IntN(600))
		switch r.IntN(5) {
		case 0:
			fmt.Fprintf(&b, "repeat = { mean = %.1f, max = %d, history = true, turn_tokens = %d }\n", 1+3*r.Float64(), 6, r.IntN(400))
		case 1:
			fmt.Fprintf(&b, "when = %.2f\n", 0.2+0.6*r.Float64())
		}
		if r.IntN(8) == 0 {
			b.WriteString("cache_prefix_tokens = 40\n")
		}
		if r.IntN(6) == 0 {
			b.WriteString("requires = [\"tools\"]\n")
		}
		if r.IntN(10) == 0 {
			b.WriteString("[[node.attachment]]\nkind = \"image\"\nwidth = 1024\nheight = 768\n")
		}
	}
	return b.String()
}

// BenchmarkEstimate prices generated workflows against the full default
// catalog with the default 2,000 Monte Carlo samples.
func BenchmarkEstimate(b *testing.B) {
	if err := tokens.Preload(); err != nil {
		b.Fatal(err)
	}
	cat, err := catalog.Default()
	if err != nil {
		b.Fatal(err)
	}
	e, err := New(cat)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{10, 50, 200} {
		w, err := graph.Parse(fmt.Sprintf("bench-%d.toml", n), []byte(benchWorkflow(n)))
		if err != nil {
			b.Fatal(err)
		}
		// Validity: the estimate prices every node on every model, and a
		// run of first candidates adds up.
		est, err := e.Estimate(w)
		if err != nil {
			b.Fatal(err)
		}
		choice := make([]*Candidate, n)
		for i, ne := range est.Nodes {
			if len(ne.Candidates) != cat.Len() {
				b.Fatalf("node %s: %d candidates for %d models", ne.ID, len(ne.Candidates), cat.Len())
			}
			choice[i] = &est.Nodes[i].Candidates[0]
		}
		if tot, err := est.Totals(choice); err != nil || !(tot.Cost.Mean > 0) {
			b.Fatalf("totals: %+v, %v", tot, err)
		}
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := e.Estimate(w); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cat.Len()), "models")
		})
	}
}
