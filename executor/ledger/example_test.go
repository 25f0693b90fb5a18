package ledger_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/costwise/costwise/executor/ledger"
)

// A node's first model returns an unusable answer, the executor escalates
// to a bigger model, and the run's spend is the exact sum of both calls.
func Example() {
	dir, err := os.MkdirTemp("", "ledger-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	l, err := ledger.Open(filepath.Join(dir, "ledger.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	workflow := []byte("[workflow]\nname = \"triage\"\n")
	id, err := l.CreateRun(ledger.NewRun{
		ID:           "r_20261127T041200Z_ab12cd",
		WorkflowName: "triage", WorkflowFile: "triage.toml", WorkflowHash: ledger.HashWorkflow(workflow),
		PredictedMeanUSD: 0.002, PredictedP95USD: 0.004,
		Nodes: []ledger.PlannedNode{{ID: "classify", PredictedCostUSD: 0.002}},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := l.StartNode(id, "classify"); err != nil {
		log.Fatal(err)
	}

	// First call: announced, then recorded with its outcome.
	seq, err := l.BeginAttempt(ledger.CallStart{RunID: id, NodeID: "classify", Model: "gpt-5-nano", Provider: "openai", EstimateNano: 150_000})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := l.RecordAttempt(ledger.Attempt{RunID: id, NodeID: "classify", Seq: seq, Model: "gpt-5-nano", Provider: "openai",
		Outcome: ledger.OutcomeInvalid, Reason: "label not in the allowed set", MayHaveBilled: true,
		Usage: ledger.Usage{InputTokens: 900, OutputTokens: 40}, UsageReported: true, CostNano: 61_000}); err != nil {
		log.Fatal(err)
	}
	// Escalation: the answer that ends the node is recorded with the node's output.
	rc, err := l.RecordFinalAttempt(ledger.Attempt{RunID: id, NodeID: "classify", Model: "gpt-5-mini", Provider: "openai",
		Outcome: ledger.OutcomeOK, Usage: ledger.Usage{InputTokens: 900, OutputTokens: 12}, UsageReported: true, CostNano: 249_000},
		ledger.NodeResult{Status: ledger.NodeSucceeded, FinalModel: "gpt-5-mini", Output: "billing"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("attempt %d, run spent %d nano-USD\n", rc.Seq, rc.RunSpentNano)
	if err := l.FinishRun(id, ledger.RunSucceeded); err != nil {
		log.Fatal(err)
	}

	runs, err := l.Runs(10)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range runs {
		fmt.Printf("%s %s %s spent=$%.6f attempts=%d escalations=%d nodes ok=%d/%d\n", r.ID, r.WorkflowName, r.Status,
			float64(r.SpentNano)/1e9, r.Attempts, r.Escalations, r.Nodes.Succeeded, r.Nodes.Total)
	}
	rates, err := l.RerouteRates(100)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range rates {
		fmt.Printf("%s/%s on %s: %d calls, %.0f%% escalated\n", r.WorkflowName, r.NodeID, r.Model, r.Calls, 100*r.Rate)
	}
	done, err := l.CompletedNodes(id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("resume would reuse:", done)
	_, err = l.Run("r_unknown")
	fmt.Println(err)
	// Output:
	// attempt 2, run spent 310000 nano-USD
	// r_20261127T041200Z_ab12cd triage succeeded spent=$0.000310 attempts=2 escalations=1 nodes ok=1/1
	// triage/classify on gpt-5-mini: 1 calls, 0% escalated
	// triage/classify on gpt-5-nano: 1 calls, 100% escalated
	// resume would reuse: map[classify:billing]
	// ledger: not found: no run "r_unknown" in the ledger (`costwise runs` lists the recorded runs)
}
