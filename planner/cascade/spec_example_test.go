package cascade_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/planner/cascade"
)

// Fit a cascade on training rows, measure it on held-out rows and write it
// as a spec for the planner (costwise eval --save-cascade does this).
func ExampleNewSpec() {
	train, _ := cascade.ReadOutcomes("train.csv", strings.NewReader(`nano,nano|total_cost,nano|confidence,gpt5,gpt5|total_cost
1,0.0001,0.9,1,0.002
0,0.0001,0.3,1,0.002
1,0.0001,0.8,1,0.002
0,0.0001,0.4,1,0.002
`))
	test, _ := cascade.ReadOutcomes("test.csv", strings.NewReader(`nano,nano|total_cost,nano|confidence,gpt5,gpt5|total_cost
1,0.0001,0.95,1,0.002
1,0.0001,0.85,1,0.002
0,0.0001,0.2,1,0.002
1,0.0001,0.7,0,0.002
`))
	fit, err := cascade.Fit(train, cascade.Options{TargetQuality: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	held, err := cascade.Evaluate(test, fit.Policy)
	if err != nil {
		fmt.Println(err)
		return
	}
	spec, err := cascade.NewSpec(fit.Policy, held, cascade.SpecOptions{
		Task: "classification", Signal: estimator.SignalLogprob, Source: "test.csv",
		Rename: map[string]string{"nano": "openai/gpt-5-nano", "gpt5": "openai/gpt-5"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := cascade.WriteSpecs(os.Stdout, []estimator.Cascade{spec}); err != nil {
		fmt.Println(err)
	}
	// Output:
	// # Fitted cascades: give this file to --cascades. Quality and reach were measured
	// # on held-out rows (see source); keep signal the same as the M|confidence data.
	//
	// [[cascade]]
	// task = "classification"
	// models = ["openai/gpt-5-nano", "openai/gpt-5"]
	// thresholds = [0.8]
	// signal = "logprob"
	// quality = 0.75
	// reach = [1.0, 0.5]
	// rows = 4
	// source = "test.csv"
}

// Read a spec file; a typo is reported at its line and column.
func ExampleParseSpecs() {
	_, err := cascade.ParseSpecs("cascades.toml", []byte(`[[cascade]]
models = ["openai/gpt-5-nano", "openai/gpt-5"]
threshold = [0.72]
signal = "logprob"
quality = 0.91
reach = [1.0, 0.34]
`))
	fmt.Println(err)
	// Output:
	// cascades.toml:1:1: cascade 1: thresholds: missing; add thresholds = [0.72] (one per model but the last)
	// cascades.toml:3:1: cascade[0].threshold: unknown key "threshold" in a [[cascade]] table; did you mean "thresholds"?
}

// A log of calls holds only the models called on each query: FromRecords
// keeps the models and queries that form complete rows.
func ExampleFromRecords() {
	recs := []cascade.Record{
		{Query: "q1", Model: "nano", Perf: 0, CostUSD: 0.0001, Conf: 0.3, HasConf: true},
		{Query: "q1", Model: "gpt5", Perf: 1, CostUSD: 0.002},
		{Query: "q2", Model: "nano", Perf: 1, CostUSD: 0.0001, Conf: 0.9, HasConf: true},
		{Query: "q3", Model: "nano", Perf: 0, CostUSD: 0.0001, Conf: 0.2, HasConf: true},
		{Query: "q3", Model: "gpt5", Perf: 1, CostUSD: 0.002},
	}
	t, cov, err := cascade.FromRecords("ledger.db", recs)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t.Models, t.Len(), "of", cov.Queries, "queries; no confidence:", cov.NoConfidence)
	// Output: [nano gpt5] 2 of 3 queries; no confidence: [gpt5]
}
