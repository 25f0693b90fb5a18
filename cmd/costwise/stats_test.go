package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/executor/ledger"
)

// runCLI runs the command in-process and returns its exit code and output.
func runCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// statsLedger writes a ledger with real (not simulated) runs of the
// classify node (task classification): gpt-4.1-nano fails validation half
// the time and escalates to gpt-4.1-mini, which succeeds. In the window
// before the last day nano succeeded every time: a success drift. A
// simulated run must not be counted.
func statsLedger(t *testing.T) (path string, lastRun string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "ledger.db")
	l, err := ledger.Open(path)
	require.NoError(t, err)
	defer l.Close()
	now := time.Now().UTC()
	for i := range 60 {
		ended := now.Add(-time.Duration(i) * 40 * time.Minute) // 0..40h ago
		id, err := l.CreateRun(ledger.NewRun{WorkflowName: "triage", Nodes: []ledger.PlannedNode{{ID: "classify", Task: "classification"}}})
		require.NoError(t, err)
		require.NoError(t, l.StartNode(id, "classify"))
		recent := ended.After(now.Add(-24 * time.Hour))
		nanoOK := !recent || i%2 == 0
		outcome := ledger.OutcomeInvalid
		if nanoOK {
			outcome = ledger.OutcomeOK
		}
		_, err = l.RecordAttempt(ledger.Attempt{RunID: id, NodeID: "classify", Model: "openai/gpt-4.1-nano", Provider: "openai",
			Outcome: outcome, Usage: ledger.Usage{InputTokens: 800, OutputTokens: 12}, UsageReported: true, CostNano: 100_000,
			StartedAt: ended.Add(-600 * time.Millisecond), EndedAt: ended})
		require.NoError(t, err)
		if !nanoOK {
			_, err = l.RecordAttempt(ledger.Attempt{RunID: id, NodeID: "classify", Model: "openai/gpt-4.1-mini", Provider: "openai",
				Outcome: ledger.OutcomeOK, Usage: ledger.Usage{InputTokens: 800, OutputTokens: 10}, UsageReported: true, CostNano: 400_000,
				StartedAt: ended, EndedAt: ended.Add(900 * time.Millisecond)})
			require.NoError(t, err)
		}
		// A rate-limited call says nothing about the model: left out.
		_, err = l.RecordAttempt(ledger.Attempt{RunID: id, NodeID: "classify", Model: "openai/gpt-4.1-nano", Provider: "openai",
			Outcome: ledger.OutcomeRateLimited, StartedAt: ended, EndedAt: ended, Iteration: 1})
		require.NoError(t, err)
		lastRun = id
	}
	sim, err := l.CreateRun(ledger.NewRun{WorkflowName: "triage", Simulated: true, Nodes: []ledger.PlannedNode{{ID: "classify", Task: "classification"}}})
	require.NoError(t, err)
	_, err = l.RecordAttempt(ledger.Attempt{RunID: sim, NodeID: "classify", Model: "openai/gpt-4o", Outcome: ledger.OutcomeOK})
	require.NoError(t, err)
	return path, lastRun
}

func TestStatsJSON(t *testing.T) {
	path, _ := statsLedger(t)
	code, stdout, stderr := runCLI("stats", "--ledger", path, "--json")
	require.Equal(t, 0, code, stderr)

	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &raw))
	assert.Equal(t, []string{"drift", "half_life_s", "now", "observations", "stats", "window_s"}, sortedKeys(raw))
	stats := raw["stats"].([]any)
	require.Len(t, stats, 2, "nano and mini on classification; the simulated gpt-4o run is not counted")
	assert.Equal(t, []string{"answered", "calls", "cost_per_call_usd", "feedback_calls", "first", "last", "latency_p50_s",
		"latency_p95_s", "model", "observed_success", "output_tokens_p50", "output_tokens_p95", "prior_quality", "prior_weight",
		"reroute_rate", "success", "success_high", "success_low", "task", "usd_per_success", "weight"}, sortedKeys(stats[0].(map[string]any)))

	var out learnedOut
	require.NoError(t, json.Unmarshal([]byte(stdout), &out))
	assert.Equal(t, 60+18, out.Observations, "60 nano calls, 18 escalations to mini; rate-limited calls dropped")
	assert.Equal(t, 604800.0, out.HalfLifeS)
	assert.Equal(t, 86400.0, out.WindowS)
	mini, nano := out.Stats[0], out.Stats[1]
	assert.Equal(t, "openai/gpt-4.1-mini", mini.Model)
	assert.Equal(t, "classification", nano.Task)
	assert.Equal(t, 60, nano.Calls)
	assert.Equal(t, 18, mini.Calls)
	assert.Greater(t, mini.Success, nano.Success)
	assert.InDelta(t, 0.6, nano.LatencyP50S, 1e-9)
	assert.InDelta(t, 0.9, mini.LatencyP50S, 1e-9)
	assert.Equal(t, 12.0, nano.OutputTokensP50)
	require.NotNil(t, nano.PriorQuality, "prior from the default catalog")
	assert.Greater(t, nano.RerouteRate, 0.1)
	assert.Zero(t, mini.RerouteRate)
	require.NotNil(t, mini.USDPerSuccess)
	assert.InDelta(t, 0.0004, *mini.USDPerSuccess, 1e-12)
	assert.InDelta(t, 0.0001, nano.CostPerCallUSD, 1e-12)

	require.Len(t, out.Drift, 1, "nano's success fell from 100% to 50%")
	d := out.Drift[0]
	assert.Equal(t, "success", d.Metric)
	assert.Equal(t, "openai/gpt-4.1-nano", d.Model)
	assert.InDelta(t, 1.0, d.Previous, 1e-9)
	assert.InDelta(t, 0.5, d.Current, 0.01)
	require.NotNil(t, d.Z)
	assert.Less(t, *d.Z, -3.29)
}

func TestStatsText(t *testing.T) {
	path, _ := statsLedger(t)
	code, stdout, stderr := runCLI("stats", "--ledger", path)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "78 calls, half-life 168h0m0s")
	assert.Regexp(t, `TASK\s+MODEL\s+CALLS\s+SUCCESS \(90% CI\)\s+CATALOG\s+TOKENS P50/P95\s+LATENCY P50/P95\s+USD/SUCCESS\s+REROUTE`, stdout)
	assert.Regexp(t, `classification\s+openai/gpt-4\.1-mini\s+18\s+0\.\d\d \(0\.\d\d-\d\.\d\d\)\s+0\.\d\d\s+10/10\s+0\.9s/0\.9s\s+\$0\.00040000\s+0%`, stdout)
	assert.Contains(t, stdout, "drift (last 24h0m0s vs the 24h0m0s before):\n  classification on openai/gpt-4.1-nano: success 100% -> ")

	code, stdout, _ = runCLI("stats", "--ledger", path, "--model", "openai/*-mini", "--window", "1h")
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "18 calls (model openai/*-mini)")
	assert.NotContains(t, stdout, "gpt-4.1-nano")
	assert.Contains(t, stdout, "no drift")

	code, stdout, _ = runCLI("stats", "--ledger", path, "--task", "code")
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "no calls recorded in ")
	assert.Contains(t, stdout, "(task code)")
}

func TestStatsEmptyLedger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "ledger.db")
	code, stdout, _ := runCLI("stats", "--ledger", path, "--json")
	require.Equal(t, 0, code)
	var out learnedOut
	require.NoError(t, json.Unmarshal([]byte(stdout), &out))
	assert.NotNil(t, out.Stats, "[] not null")
	assert.NotNil(t, out.Drift)
	assert.Contains(t, stdout, `"stats": []`)
}

func TestStatsAndFeedbackExitCodes(t *testing.T) {
	path, run := statsLedger(t)
	blocker := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	badLedger := filepath.Join(blocker, "ledger.db")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"stats extra argument", []string{"stats", "x", "--ledger", path}, 2, "takes no arguments"},
		{"stats zero half-life", []string{"stats", "--ledger", path, "--half-life", "0s"}, 2, "--half-life must be positive"},
		{"stats negative window", []string{"stats", "--ledger", path, "--window", "-1h"}, 2, "--window must be positive"},
		{"stats bad duration", []string{"stats", "--ledger", path, "--window", "soon"}, 2, "invalid argument"},
		{"stats bad glob", []string{"stats", "--ledger", path, "--model", "[a"}, 2, "not a valid glob"},
		{"stats unusable ledger", []string{"stats", "--ledger", badLedger}, 1, "creating the directory"},
		{"feedback no score", []string{"feedback", run, "classify", "--ledger", path}, 2, "exactly one of --score 0..1, --ok or --bad"},
		{"feedback two scores", []string{"feedback", run, "classify", "--ok", "--score", "0.5", "--ledger", path}, 2, "exactly one"},
		{"feedback out of range", []string{"feedback", run, "classify", "--score", "1.5", "--ledger", path}, 2, "from 0 (bad) to 1 (good), got 1.5"},
		{"feedback not a number", []string{"feedback", run, "classify", "--score", "high", "--ledger", path}, 2, "invalid argument"},
		{"feedback ok=false", []string{"feedback", run, "classify", "--ok=false", "--ledger", path}, 2, "means nothing"},
		{"feedback one argument", []string{"feedback", run, "--ok", "--ledger", path}, 2, "takes a run id and a node id"},
		{"feedback unknown run", []string{"feedback", "r_nope", "classify", "--ok", "--ledger", path}, 1, `no run "r_nope"`},
		{"feedback unknown node", []string{"feedback", run, "answer", "--ok", "--ledger", path}, 1, `has no node "answer"`},
		{"feedback unusable ledger", []string{"feedback", run, "classify", "--ok", "--ledger", badLedger}, 1, "creating the directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCLI(c.args...)
			assert.Equal(t, c.code, code, stderr)
			assert.Contains(t, stderr, c.want)
		})
	}
}

func TestFeedbackRoundTripThroughStats(t *testing.T) {
	path, _ := statsLedger(t)
	l, err := ledger.Open(path)
	require.NoError(t, err)
	rows, err := l.Observations(time.Time{})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	// Mark every answer of gpt-4.1-mini wrong.
	var runs []string
	for _, r := range rows {
		if r.Model == "openai/gpt-4.1-mini" && r.Answer {
			runs = append(runs, r.RunID)
		}
	}
	require.Len(t, runs, 18)

	before := statsFor(t, path, "openai/gpt-4.1-mini")
	for i, id := range runs {
		args := []string{"feedback", id, "classify", "--bad", "--ledger", path}
		if i == 0 {
			args = []string{"feedback", id, "classify", "--score", "0.25", "--note", "half right", "--ledger", path}
		}
		code, stdout, stderr := runCLI(args...)
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, stdout, fmt.Sprintf("for node classify of run %s (feedback #%d)", id, i+1))
	}
	after := statsFor(t, path, "openai/gpt-4.1-mini")
	assert.Equal(t, 18, after.FeedbackCalls)
	assert.Zero(t, before.FeedbackCalls)
	assert.InDelta(t, 1, before.ObservedSuccess, 1e-9)
	assert.Less(t, after.ObservedSuccess, 0.05, "feedback replaces the validated outcome")
	assert.Less(t, after.Success, before.Success)

	l, err = ledger.Open(path)
	require.NoError(t, err)
	defer l.Close()
	fb, err := l.FeedbackOf(runs[0])
	require.NoError(t, err)
	require.Len(t, fb, 1)
	assert.Equal(t, 0.25, fb[0].Score)
	assert.Equal(t, "half right", fb[0].Note)
}

func statsFor(t *testing.T, path, model string) learnedRow {
	t.Helper()
	code, stdout, stderr := runCLI("stats", "--ledger", path, "--model", model, "--json")
	require.Equal(t, 0, code, stderr)
	var out learnedOut
	require.NoError(t, json.Unmarshal([]byte(stdout), &out))
	require.Len(t, out.Stats, 1)
	return out.Stats[0]
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestObservationsFromRowsCascadeRejections(t *testing.T) {
	conf := 0.4
	rows := []ledger.ObservationRow{
		{Task: "classification", Model: "m", Outcome: ledger.OutcomeInvalid, Confidence: &conf}, // set aside by a cascade
		{Task: "classification", Model: "m", Outcome: ledger.OutcomeInvalid},                    // failed validation
		{Task: "classification", Model: "m", Outcome: ledger.OutcomeOK, Confidence: &conf},
	}
	obs := observationsFromRows(rows, "", "")
	require.Len(t, obs, 3)
	assert.True(t, obs[0].Unjudged)
	assert.False(t, obs[1].Unjudged)
	assert.False(t, obs[2].Unjudged)
	assert.True(t, obs[2].OK)
}
