package estimator_test

import (
	"fmt"
	"log"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/graph"
)

// Price a two-step workflow on two models, then the run that uses the
// cheapest feasible model for each step.
func ExampleEstimator_Estimate() {
	cat, err := catalog.LoadTOML("models.toml", []byte(`
[[model]]
id = "acme/small"
input_per_mtok = 0.50
output_per_mtok = 1.00
max_output_tokens = 500
ttft_s = 0.5
output_tokens_per_s = 100
[model.quality]
default = 0.80

[[model]]
id = "acme/large"
input_per_mtok = 2.00
output_per_mtok = 8.00
ttft_s = 1.0
output_tokens_per_s = 50
[model.quality]
default = 0.95
`))
	if err != nil {
		log.Fatal(err)
	}
	w, err := graph.Parse("workflow.toml", []byte(`
name = "summarise-then-draft"

[[node]]
id = "summarise"
prompt = "Summarise the report."
input_tokens = 4000
output_tokens = { mean = 300, p95 = 300 }

[[node]]
id = "draft"
depends_on = ["summarise"]
prompt = "Draft a reply from {{node.summarise.output}}"
input_tokens = 600
output_tokens = { mean = 800, p95 = 800 }
repeat = { mean = 2, max = 2 }
`))
	if err != nil {
		log.Fatal(err)
	}
	e, err := estimator.New(cat)
	if err != nil {
		log.Fatal(err)
	}
	est, err := e.Estimate(w)
	if err != nil {
		log.Fatal(err)
	}

	choice := make([]*estimator.Candidate, len(est.Nodes))
	for i, ne := range est.Nodes {
		for k := range ne.Candidates {
			c := &ne.Candidates[k]
			status := "ok"
			if !c.Feasible {
				status = string(c.Reasons[0].Code)
			}
			fmt.Printf("%-9s %-10s $%.6f  %4.0f in  %4.1f s  q=%.2f  %s\n",
				ne.ID, c.Model.ID, c.Cost.Mean, c.InputTokens.Mean, c.LatencyS.Mean, c.Quality, status)
			if c.Feasible && (choice[i] == nil || c.Cost.Mean < choice[i].Cost.Mean) {
				choice[i] = c
			}
		}
	}
	run, err := est.Totals(choice)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("run: $%.6f, %.1f s critical path, success %.3f\n", run.Cost.Mean, run.LatencyS.Mean, run.Success)
	// Output:
	// summarise acme/small $0.002300  4000 in   3.5 s  q=0.80  ok
	// summarise acme/large $0.010400  4000 in   7.0 s  q=0.95  ok
	// draft     acme/small $0.002200   600 in  17.0 s  q=0.80  max_output
	// draft     acme/large $0.015200   600 in  34.0 s  q=0.95  ok
	// run: $0.017500, 37.5 s critical path, success 0.760
}

// Offer a fitted cascade (small first, large for the 25% of calls whose
// answers fall below the confidence threshold) as one more candidate: its
// cost weighs each stage by the share of calls that reach it, and its
// quality is the one measured on held-out outcomes.
func ExampleEstimate_AddCascades() {
	cat, err := catalog.LoadTOML("models.toml", []byte(`
[[model]]
id = "acme/small"
input_per_mtok = 0.50
output_per_mtok = 1.00
[model.quality]
default = 0.80

[[model]]
id = "acme/large"
input_per_mtok = 2.00
output_per_mtok = 8.00
[model.quality]
default = 0.95
`))
	if err != nil {
		log.Fatal(err)
	}
	w, err := graph.Parse("workflow.toml", []byte(`
name = "classify"

[[node]]
id = "label"
task = "classification"
prompt = "Label the ticket."
input_tokens = 1000
output_tokens = { mean = 10, p95 = 10 }
`))
	if err != nil {
		log.Fatal(err)
	}
	e, err := estimator.New(cat)
	if err != nil {
		log.Fatal(err)
	}
	est, err := e.Estimate(w)
	if err != nil {
		log.Fatal(err)
	}
	_, err = est.AddCascades([]estimator.Cascade{{
		Task: "classification", Models: []string{"acme/small", "acme/large"}, Thresholds: []float64{0.8},
		Signal: estimator.SignalLogprob, Reach: []float64{1, 0.25}, Quality: 0.94, Rows: 2000,
	}})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range est.Nodes[0].Candidates {
		fmt.Printf("%-40s $%.6f quality %.2f\n", c.ID(), c.Cost.Mean, c.Quality)
	}
	// Output:
	// acme/small                               $0.000510 quality 0.80
	// acme/large                               $0.002080 quality 0.95
	// cascade:logprob:acme/small@0.8>acme/large $0.001030 quality 0.94
}
