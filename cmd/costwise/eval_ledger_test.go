package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/planner/cascade"
)

const (
	ledNano = "openai/gpt-5-nano"
	ledGPT5 = "openai/gpt-5"
	ledO3   = "openai/o3"
)

// ledgerFixture writes a ledger through the ledger API. Each of the n
// "explored" runs has a classify node (task classification) answered by
// nano, whose answer is right (accepted) exactly when its recorded
// confidence is above 0.5 and rejected otherwise, and by gpt-5, always
// accepted. Besides: onlyNano runs answered by nano alone, 10 of the
// explored runs also asked o3, a summarise node (task summary) on
// every explored run, and a simulated run that must not count.
func ledgerFixture(t *testing.T, n, onlyNano int, seed uint64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := ledger.Open(path)
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Close()) }()
	rng := rand.New(rand.NewPCG(seed, 9))
	rec := func(run, node, model string, outcome ledger.Outcome, cost int64, conf *float64) {
		_, err := l.RecordAttempt(ledger.Attempt{RunID: run, NodeID: node, Model: model, Provider: "openai", Outcome: outcome,
			CostNano: cost, LatencyMS: 100, UsageReported: true, Confidence: conf, Usage: ledger.Usage{InputTokens: 50, OutputTokens: 5}})
		require.NoError(t, err)
	}
	newRun := func(id string, simulated bool) {
		_, err := l.CreateRun(ledger.NewRun{ID: id, WorkflowName: "wf", WorkflowFile: "wf.toml", WorkflowHash: ledger.HashWorkflow([]byte("wf")),
			Simulated: simulated, Nodes: []ledger.PlannedNode{{ID: "classify", Task: "classification"}, {ID: "summarise", Task: "summary"}}})
		require.NoError(t, err)
		require.NoError(t, l.StartNode(id, "classify"))
		require.NoError(t, l.StartNode(id, "summarise"))
	}
	nano := func(run string) {
		c := rng.Float64()
		outcome := ledger.OutcomeInvalid
		if c > 0.5 {
			outcome = ledger.OutcomeOK
		}
		rec(run, "classify", ledNano, outcome, 1000, &c)
	}
	for i := range n {
		id := fmt.Sprintf("run%04d", i)
		newRun(id, false)
		nano(id)
		if i < 10 {
			rec(id, "classify", ledO3, ledger.OutcomeOK, 8000, nil)
		}
		rec(id, "classify", ledGPT5, ledger.OutcomeOK, 20000, nil)
		rec(id, "summarise", ledGPT5, ledger.OutcomeOK, 30000, nil)
	}
	for i := range onlyNano {
		id := fmt.Sprintf("solo%04d", i)
		newRun(id, false)
		nano(id)
	}
	newRun("sim", true)
	rec("sim", "classify", ledNano, ledger.OutcomeOK, 1, nil)
	rec("sim", "classify", ledGPT5, ledger.OutcomeOK, 1, nil)
	return path
}

type ledgerDoc struct {
	TrainRows int `json:"train_rows"`
	TestRows  int `json:"test_rows"`
	Cascade   struct {
		Models     []string  `json:"models"`
		Thresholds []float64 `json:"thresholds"`
		Quality    float64   `json:"quality"`
	} `json:"cascade"`
	Strongest struct {
		Model   string  `json:"model"`
		CostUSD float64 `json:"cost_usd"`
	} `json:"strongest"`
	Ledger *struct {
		Path          string   `json:"path"`
		Task          string   `json:"task"`
		Answers       int      `json:"answers"`
		Queries       int      `json:"queries"`
		Rows          int      `json:"rows"`
		Models        []string `json:"models"`
		DroppedModels []string `json:"dropped_models"`
		NoConfidence  []string `json:"no_confidence"`
	} `json:"ledger"`
}

func TestEvalLedger(t *testing.T) {
	led := ledgerFixture(t, 600, 50, 1)
	code, stdout, stderr := runEval("--ledger", led, "--task", "classification", "--target-quality", "1", "--json")
	require.Equal(t, 0, code, stderr)
	var doc ledgerDoc
	require.NoError(t, json.Unmarshal([]byte(stdout), &doc))
	require.NotNil(t, doc.Ledger)
	assert.Equal(t, "classification", doc.Ledger.Task)
	assert.Equal(t, 650, doc.Ledger.Queries, "the simulated run and the summarise nodes are left out")
	assert.Equal(t, 650+600+10, doc.Ledger.Answers)
	assert.Equal(t, 600, doc.Ledger.Rows, "the 50 nano-only queries are not complete cases")
	assert.Equal(t, []string{ledNano, ledGPT5}, doc.Ledger.Models)
	assert.Equal(t, []string{ledO3 + " (10 of 650 queries)"}, doc.Ledger.DroppedModels)
	assert.Equal(t, []string{ledGPT5}, doc.Ledger.NoConfidence)
	assert.Equal(t, 600, doc.TrainRows+doc.TestRows)
	// Nano is right exactly above confidence 0.5: the fit finds it.
	assert.Equal(t, []string{ledNano, ledGPT5}, doc.Cascade.Models)
	require.Len(t, doc.Cascade.Thresholds, 1)
	assert.InDelta(t, 0.5, doc.Cascade.Thresholds[0], 0.03)
	assert.Equal(t, 1.0, doc.Cascade.Quality)
	assert.Equal(t, ledGPT5, doc.Strongest.Model)
	assert.InDelta(t, 20000e-9, doc.Strongest.CostUSD, 1e-15, "cost is the ledger's nano-USD in USD")
	assert.Contains(t, stderr, "kept 600 queries answered by all of "+ledNano+", "+ledGPT5+" (complete cases), dropped 50")
	assert.Contains(t, stderr, "dropped models (too few queries in common): "+ledO3+" (10 of 650 queries)")

	// The text report, and the cascade saved straight from the ledger (its
	// models are catalog IDs already).
	out := filepath.Join(t.TempDir(), "c.toml")
	code, stdout, stderr = runEval("--ledger", led, "--task", "classification", "--target-quality", "1", "--save-cascade", out, "--signal", "logprob")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "held-out rows (--split 0.3, --seed 1)")
	cs, err := cascade.LoadSpecs(out)
	require.NoError(t, err)
	assert.Equal(t, "classification", cs[0].Task)
	assert.Contains(t, cs[0].Source, "ledger "+led+" (task classification), held-out split 0.3 (seed 1), 180 of 600 rows")

	// Without --task the summarise nodes count too: gpt-5 alone answered
	// them, so they are not complete cases either.
	code, stdout, stderr = runEval("--ledger", led, "--json", "--target-quality", "1")
	require.Equal(t, 0, code, stderr)
	doc = ledgerDoc{}
	require.NoError(t, json.Unmarshal([]byte(stdout), &doc))
	assert.Equal(t, 1250, doc.Ledger.Queries)
	assert.Equal(t, 600, doc.Ledger.Rows)
}

// Ledger rows join outcome tables on the models both have.
func TestEvalLedgerWithOutcomes(t *testing.T) {
	led := ledgerFixture(t, 300, 0, 2)
	csv := evalTable(t, "out.csv", 500, 3)
	code, stdout, stderr := runEval("--outcomes", csv, "--ledger", led, "--task", "classification", "--json", "--target-quality", "1",
		"--map", "cheap="+ledNano, "--map", "strong="+ledGPT5)
	require.Equal(t, 0, code, stderr)
	var doc ledgerDoc
	require.NoError(t, json.Unmarshal([]byte(stdout), &doc))
	assert.Equal(t, 800, doc.TrainRows+doc.TestRows)
	assert.Equal(t, []string{ledNano, ledGPT5}, doc.Cascade.Models)
	assert.Contains(t, stderr, "joined with the ledger on "+ledNano+", "+ledGPT5+"; dropped the models that only one side has: mid")

	// Without --map the names differ: nothing in common.
	code, _, stderr = runEval("--outcomes", csv, "--ledger", led, "--task", "classification")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "the tables have no model in common")
	assert.Contains(t, stderr, "map their model names to the same IDs")
}

func TestEvalLedgerErrors(t *testing.T) {
	led := ledgerFixture(t, 20, 0, 1)
	csv := evalTable(t, "out.csv", 100, 1)
	missing := filepath.Join(t.TempDir(), "nope.db")
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"missing file", []string{"--ledger", missing}, 1, "--ledger " + missing + ": no such file"},
		{"unknown task", []string{"--ledger", led, "--task", "poetry"}, 1, `no answers recorded for real (not simulated) runs of task "poetry"`},
		{"with train and test", []string{"--ledger", led, "--train", csv, "--test", csv}, 2, "--ledger is split at random like --outcomes"},
		{"map without tables", []string{"--ledger", led, "--map", "a=b/c"}, 2, "the ledger's models are catalog IDs already"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runEval(c.args...)
			assert.Equal(t, c.code, code, stderr)
			assert.Contains(t, stderr, c.stderr)
		})
	}
	assert.NoFileExists(t, missing, "a missing ledger is not created")
}

func TestHistoryRecords(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	cases := []struct {
		name     string
		row      ledger.HistoryRow
		perf     float64
		conf     float64
		hasConf  bool
		costUSD  float64
		queryHas string
	}{
		{"accepted", ledger.HistoryRow{RunID: "r", NodeID: "n", Outcome: ledger.OutcomeOK, CostNano: 1500}, 1, 0, false, 1.5e-6, "r node n #0"},
		{"accepted with feedback", ledger.HistoryRow{RunID: "r", NodeID: "n", Outcome: ledger.OutcomeOK, Answer: true, Feedback: f(0.3)}, 0.3, 0, false, 0, "r"},
		{"feedback judges the kept answer only", ledger.HistoryRow{RunID: "r", NodeID: "n", Outcome: ledger.OutcomeOK, Answer: false, Feedback: f(0.3)}, 1, 0, false, 0, "r"},
		{"rejected by a cascade", ledger.HistoryRow{RunID: "r", NodeID: "n", Iteration: 2, Outcome: ledger.OutcomeInvalid, Confidence: f(0.4)}, 0, 0.4, true, 0, "#2"},
		{"rejected by validation", ledger.HistoryRow{RunID: "r", NodeID: "n", Outcome: ledger.OutcomeInvalid}, 0, 0, true, 0, "r"},
		{"accepted with confidence", ledger.HistoryRow{RunID: "r", NodeID: "n", Outcome: ledger.OutcomeOK, Confidence: f(0.9)}, 1, 0.9, true, 0, "r"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.row.Model, c.row.Task = "m", "qa"
			recs := historyRecords([]ledger.HistoryRow{c.row})
			require.Len(t, recs, 1)
			r := recs[0]
			assert.Equal(t, c.perf, r.Perf)
			assert.Equal(t, c.hasConf, r.HasConf)
			assert.Equal(t, c.conf, r.Conf)
			assert.InDelta(t, c.costUSD, r.CostUSD, 1e-18)
			assert.Contains(t, r.Query, c.queryHas)
			assert.Equal(t, "qa", r.Group)
		})
	}
	// Run and node IDs that could run together stay distinct queries.
	a := historyRecords([]ledger.HistoryRow{{RunID: "a b", NodeID: "c"}, {RunID: "a", NodeID: "b c"}})
	assert.NotEqual(t, a[0].Query, a[1].Query)
	assert.False(t, strings.Contains(a[0].Query, "\x00"))
}
