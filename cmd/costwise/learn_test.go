package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/executor/ledger"
)

// Observed failures of a model on a task lower its quality in estimate when
// --learn-from names the ledger, and quality_note says so.
func TestEstimateLearnsFromLedger(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "ledger.db")
	l, err := ledger.Open(dbPath)
	require.NoError(t, err)
	now := time.Now()
	for r := range 40 {
		id, err := l.CreateRun(ledger.NewRun{WorkflowName: "w", WorkflowFile: "w.toml", WorkflowHash: "h",
			Nodes: []ledger.PlannedNode{{ID: "classify", Task: "classification"}}})
		require.NoError(t, err)
		require.NoError(t, l.StartNode(id, "classify"))
		outcome, status := ledger.OutcomeOK, ledger.NodeSucceeded
		if r%2 == 0 { // half the answers fail validation
			outcome, status = ledger.OutcomeInvalid, ledger.NodeFailed
		}
		_, err = l.RecordFinalAttempt(ledger.Attempt{RunID: id, NodeID: "classify", Model: "openai/gpt-5-mini", Provider: "openai",
			Outcome: outcome, Usage: ledger.Usage{InputTokens: 100, OutputTokens: 5}, UsageReported: true, CostNano: 35000,
			LatencyMS: 900, StartedAt: now.Add(-time.Hour), EndedAt: now.Add(-time.Hour + 900*time.Millisecond)},
			ledger.NodeResult{Status: status, FinalModel: "openai/gpt-5-mini", Output: "billing"})
		require.NoError(t, err)
		require.NoError(t, l.FinishRun(id, ledger.RunStatus(status)))
	}
	require.NoError(t, l.Close())

	wf := writeTemp(t, "wf.toml", "name = \"w\"\n[[node]]\nid = \"classify\"\ntask = \"classification\"\nprompt = \"Classify: x\"\nmodels = [\"openai/gpt-5-mini\"]\noutput_tokens = 5\n")
	quality := func(args ...string) (float64, string) {
		out := runOK(t, append([]string{"estimate", wf, "--json", "--samples", "50"}, args...)...)
		var e estimateOut
		require.NoError(t, json.Unmarshal([]byte(out), &e))
		c := e.Nodes[0].Candidates[0]
		return c.Quality, c.QualityNote
	}
	base, baseNote := quality()
	learned, note := quality("--learn-from", dbPath)
	assert.Less(t, learned, base, "half the observed answers failed")
	assert.NotContains(t, baseNote, "calls")
	assert.True(t, strings.HasPrefix(note, "blend of catalog"), note)
}
