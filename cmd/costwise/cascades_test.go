package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/executor/ledger"
)

// A fitted cascade offered with --cascades wins the classification node of
// the support-triage example (cheaper than its single model at a measured
// quality above it), and plan, the HTTP-free JSON contract, describe it.
func TestPlanWithCascades(t *testing.T) {
	const wf = "../../examples/support-triage/workflow.toml"
	code, out, errOut := runCLI("plan", wf, "--json", "--cascades", "testdata/cascades.toml")
	require.Equal(t, 0, code, errOut)
	var plan struct {
		Assignments []struct {
			Node    string   `json:"node"`
			Model   string   `json:"model"`
			Ladder  []string `json:"ladder"`
			Quality float64  `json:"quality"`
			Cascade *struct {
				Models     []string  `json:"models"`
				Thresholds []float64 `json:"thresholds"`
				Signal     string    `json:"signal"`
				Reach      []float64 `json:"reach"`
			} `json:"cascade"`
		} `json:"assignments"`
		Totals struct {
			CostUSD struct{ Mean float64 } `json:"cost_usd"`
		} `json:"totals"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &plan))
	a := plan.Assignments[0]
	require.Equal(t, "classify", a.Node)
	assert.Equal(t, "cascade:logprob:openai/gpt-5-nano@0.8>openai/gpt-5.4", a.Model)
	require.NotNil(t, a.Cascade)
	assert.Equal(t, []string{"openai/gpt-5-nano", "openai/gpt-5.4"}, a.Cascade.Models)
	assert.Equal(t, []float64{1, 0.3}, a.Cascade.Reach)
	assert.Equal(t, 0.94, a.Quality)
	for _, other := range plan.Assignments[1:] {
		assert.Nil(t, other.Cascade, "only classification nodes may use it: %s", other.Node)
	}

	// Without the cascades the plan costs more.
	code, out, errOut = runCLI("plan", wf, "--json")
	require.Equal(t, 0, code, errOut)
	var plain struct {
		Totals struct {
			CostUSD struct{ Mean float64 } `json:"cost_usd"`
		} `json:"totals"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &plain))
	assert.Less(t, plan.Totals.CostUSD.Mean, plain.Totals.CostUSD.Mean)
}

func TestCascadesFileErrors(t *testing.T) {
	const wf = "../../examples/support-triage/workflow.toml"
	cases := []struct {
		name, file string
		want       []string
	}{
		{"a model not in the catalog", `[[cascade]]
models = ["openai/gpt-5-nan", "openai/gpt-5.4"]
thresholds = [0.8]
signal = "logprob"
quality = 0.9
reach = [1.0, 0.3]
`, []string{`model "openai/gpt-5-nan" is not in the catalog`, `did you mean "openai/gpt-5-nano"?`}},
		{"an unknown key", `[[cascade]]
models = ["openai/gpt-5-nano", "openai/gpt-5.4"]
thresholds = [0.8]
signal = "logprob"
quality = 0.9
reach = [1.0, 0.3]
treshold = 1
`, []string{"cascades.toml:7:1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTemp(t, "cascades.toml", tc.file)
			code, _, errOut := runCLI("plan", wf, "--cascades", path)
			assert.Equal(t, 1, code)
			for _, w := range tc.want {
				assert.Contains(t, errOut, w)
			}
			assert.NotContains(t, errOut, "goroutine")
		})
	}
}

func TestPlanTableExplainsCascades(t *testing.T) {
	code, out, errOut := runCLI("preview", "../../examples/support-triage/workflow.toml", "--cascades", "testdata/cascades.toml")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "classify: openai/gpt-5-nano (100% of calls, logprob >= 0.8) -> openai/gpt-5.4 (30% of calls)")
	assert.Contains(t, out, "measured quality 0.9400 on 1000 rows (test fixture)")
}

func TestCascadeThatFitsNoNodeIsNoted(t *testing.T) {
	code, _, errOut := runCLI("plan", "../../examples/code-review/workflow.toml", "--cascades", "testdata/cascades.toml")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "(task classification) fits no node of ../../examples/code-review/workflow.toml")
}

// A simulated run with a planned cascade: every answer of the cascade's
// stages carries its confidence, and `runs show --json` (read back from the
// ledger) agrees with `run --json` on escalations and confidences.
func TestRunWithCascadeJSON(t *testing.T) {
	led := filepath.Join(t.TempDir(), "ledger.db")
	code, out, errOut := runCLI("run", "../../examples/learning-loop/workflow.toml", "--cascades", "../../examples/learning-loop/cascades.toml",
		"--simulate", "--ledger", led, "--json", "--input", "ticket=My invoice is wrong", "--no-replan")
	require.Equal(t, 0, code, errOut)
	var run runOut
	require.NoError(t, json.Unmarshal([]byte(out), &run))
	label := run.Nodes[0]
	require.Equal(t, "label", label.ID)
	require.NotEmpty(t, label.Attempts)
	for _, a := range label.Attempts[:len(label.Attempts)-1] {
		require.NotNil(t, a.Confidence, "a stage that may hand on is judged: %+v", a)
	}

	code, out, errOut = runCLI("runs", "show", run.RunID, "--ledger", led, "--json")
	require.Equal(t, 0, code, errOut)
	var rec ledger.RunRecord
	require.NoError(t, json.Unmarshal([]byte(out), &rec))
	// The server's GET /v1/runs/{id} shape, read back from the ledger.
	shown := ledgerRunJSON(&rec, "")
	assert.Equal(t, label.Escalations, shown.Nodes[0].Escalations)
	require.Len(t, shown.Nodes[0].Attempts, len(label.Attempts))
	for k, a := range shown.Nodes[0].Attempts {
		if label.Attempts[k].Confidence == nil {
			assert.Nil(t, a.Confidence)
		} else {
			require.NotNil(t, a.Confidence)
			assert.InDelta(t, *label.Attempts[k].Confidence, *a.Confidence, 1e-12)
		}
	}
}
