package ledger_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/costwise/costwise/executor/ledger"
)

// The ledger's history as outcomes: a cascade's cheap stage answered with
// low confidence and was rejected, the strong model's answer was kept.
func ExampleLedger_History() {
	dir, err := os.MkdirTemp("", "ledger-history")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := ledger.Open(filepath.Join(dir, "ledger.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	id, err := l.CreateRun(ledger.NewRun{ID: "r1", WorkflowName: "triage", WorkflowFile: "triage.toml",
		WorkflowHash: ledger.HashWorkflow([]byte("x")), Nodes: []ledger.PlannedNode{{ID: "classify", Task: "classification"}}})
	if err != nil {
		log.Fatal(err)
	}
	if err := l.StartNode(id, "classify"); err != nil {
		log.Fatal(err)
	}
	conf := 0.41
	for _, a := range []ledger.Attempt{
		{Model: "openai/gpt-5-nano", Outcome: ledger.OutcomeInvalid, CostNano: 90_000, LatencyMS: 300, Confidence: &conf,
			Reason: "cascade: confidence 0.41 below threshold 0.72; escalating"},
		{Model: "openai/gpt-5", Outcome: ledger.OutcomeOK, CostNano: 1_800_000, LatencyMS: 2100},
	} {
		a.RunID, a.NodeID, a.Provider, a.UsageReported = id, "classify", "openai", true
		if _, err := l.RecordAttempt(a); err != nil {
			log.Fatal(err)
		}
	}
	rows, err := l.History(ledger.HistoryFilter{Task: "classification"})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range rows {
		c := "-"
		if r.Confidence != nil {
			c = fmt.Sprint(*r.Confidence)
		}
		fmt.Printf("%s %s #%d %s: %s, confidence %s, kept %v, $%.6f\n", r.RunID, r.NodeID, r.Iteration, r.Model, r.Outcome, c, r.Answer, float64(r.CostNano)/1e9)
	}
	// Output:
	// r1 classify #0 openai/gpt-5-nano: invalid, confidence 0.41, kept false, $0.000090
	// r1 classify #0 openai/gpt-5: ok, confidence -, kept true, $0.001800
}
