package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/executor/ledger"
)

// TestSpend: spend sums real runs by workflow (gateway routes as
// router:ROUTE), counts escalated calls in the cost, and prices only the
// kept answers on the baseline; simulated runs are left out.
func TestSpend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := ledger.Open(path)
	require.NoError(t, err)
	now := time.Now()
	call := func(model string, outcome ledger.Outcome, in, out, cache, cost int64) ledger.Attempt {
		return ledger.Attempt{Model: model, Provider: "openai", Outcome: outcome, CostNano: cost, UsageReported: true,
			Usage: ledger.Usage{InputTokens: in, OutputTokens: out, CacheReadTokens: cache}, StartedAt: now, EndedAt: now}
	}
	run := func(id, wf string, simulated bool, attempts ...ledger.Attempt) ledger.CompletedRun {
		return ledger.CompletedRun{Run: ledger.NewRun{ID: id, WorkflowName: wf, Simulated: simulated}, Status: ledger.RunSucceeded,
			CreatedAt: now, Nodes: []ledger.CompletedNode{{ID: "call", StartedAt: now, FinishedAt: now,
				Result: ledger.NodeResult{Status: ledger.NodeSucceeded, FinalModel: attempts[len(attempts)-1].Model}, Attempts: attempts}}}
	}
	errs, err := l.RecordRuns([]ledger.CompletedRun{
		// 1,000 in + 100 out on cheap ($1/M, $2/M): $0.0012.
		run("r_1", "router:chat", false, call("openai/cheap", ledger.OutcomeOK, 1000, 100, 0, 1_200_000)),
		// An escalation: cheap's invalid answer is paid, strong's is kept.
		run("r_2", "router:chat", false, call("openai/cheap", ledger.OutcomeInvalid, 500, 100, 500, 1_200_000),
			call("openai/strong", ledger.OutcomeOK, 1000, 100, 0, 7_000_000)),
		run("r_3", "support", false, call("openai/cheap", ledger.OutcomeOK, 2000, 0, 0, 2_000_000)),
		run("r_sim", "router:chat", true, call("openai/strong", ledger.OutcomeOK, 1e6, 1e6, 0, 25e6)),
	})
	require.NoError(t, err)
	for _, e := range errs {
		require.NoError(t, e)
	}
	require.NoError(t, l.Close())
	cat := writeFile(t, "cat.toml", cliCatalog)

	code, stdout, stderr := runCLI("spend", "--ledger", path, "--catalog", cat, "--no-default-catalog", "--json")
	require.Equal(t, 0, code, stderr)
	var out spendOut
	require.NoError(t, json.Unmarshal([]byte(stdout), &out))
	assert.Equal(t, "openai/strong", out.Baseline, "the highest-quality priced model")
	require.Len(t, out.Rows, 2)
	chat, support := out.Rows[0], out.Rows[1]
	assert.Equal(t, "router:chat", chat.Group)
	assert.Equal(t, 2, chat.Runs, "the simulated run is left out")
	assert.Equal(t, 3, chat.Calls)
	assert.Equal(t, int64(9_400_000), chat.CostNanoUSD, "escalated calls are paid too")
	// Two kept answers of 1,000 in + 100 out on strong ($5/M, $20/M): $0.007 each.
	assert.InDelta(t, 0.014, chat.BaselineUSD, 1e-12)
	assert.InDelta(t, 0.0046, chat.SavedUSD, 1e-12)
	assert.InDelta(t, 100*0.0046/0.014, chat.SavedPercent, 1e-9)
	assert.Equal(t, int64(500), chat.CacheRead)
	assert.Equal(t, "support", support.Group)
	assert.InDelta(t, 0.01, support.BaselineUSD, 1e-12)
	assert.Equal(t, 3, out.Total.Runs)
	assert.Equal(t, int64(11_400_000), out.Total.CostNanoUSD)
	assert.InDelta(t, 0.024-0.0114, out.Total.SavedUSD, 1e-12)

	code, stdout, _ = runCLI("spend", "--ledger", path, "--catalog", cat, "--no-default-catalog", "--baseline", "openai/cheap")
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "ON openai/cheap")
	assert.Contains(t, stdout, "router:chat")

	code, _, stderr = runCLI("spend", "--ledger", path, "--catalog", cat, "--no-default-catalog", "--baseline", "openai/nope")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "--baseline openai/nope is not in the catalog")
	code, _, stderr = runCLI("spend", "--ledger", path, "--since", "-1h")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--since must be positive")
}
