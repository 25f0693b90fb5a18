package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestPlanJSONMatchesEstimate(t *testing.T) {
	cat := writeTemp(t, "cat.toml", testCatalog)
	wf := writeTemp(t, "wf.toml", testWorkflow+"\n[budget]\nmin_success = 0.5\n")
	out := runOK(t, "plan", wf, "--json", "--catalog", cat, "--no-default-catalog", "--samples", "100")
	var plan struct {
		Feasible    bool    `json:"feasible"`
		Optimal     bool    `json:"optimal"`
		Gap         float64 `json:"gap"`
		Assignments []struct {
			Node    string `json:"node"`
			Model   string `json:"model"`
			CostUSD struct {
				Mean float64 `json:"mean"`
			} `json:"cost_usd"`
			LatencyS struct {
				Mean float64 `json:"mean"`
			} `json:"latency_s"`
			Quality float64  `json:"quality"`
			Ladder  []string `json:"ladder"`
		} `json:"assignments"`
		Totals struct {
			CostUSD struct {
				Mean, P50, P95 float64
			} `json:"cost_usd"`
			Success float64 `json:"success"`
		} `json:"totals"`
		Stats struct {
			Explored  *int64   `json:"explored"`
			ElapsedMS *float64 `json:"elapsed_ms"`
		} `json:"stats"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &plan))
	assert.True(t, plan.Feasible)
	assert.True(t, plan.Optimal)
	assert.Equal(t, 0.0, plan.Gap)
	require.Len(t, plan.Assignments, 2)
	assert.NotNil(t, plan.Stats.Explored)
	assert.NotNil(t, plan.Stats.ElapsedMS)

	// The numbers in assignments are exactly those of estimate for that node x model.
	est := runOK(t, "estimate", wf, "--json", "--catalog", cat, "--no-default-catalog", "--samples", "100")
	var e estimateOut
	require.NoError(t, json.Unmarshal([]byte(est), &e))
	sum := 0.0
	for k, a := range plan.Assignments {
		var found bool
		for _, c := range e.Nodes[k].Candidates {
			if c.Model == a.Model {
				found = true
				assert.Equal(t, c.CostUSD.Mean, a.CostUSD.Mean)
				assert.Equal(t, c.LatencyS.Mean, a.LatencyS.Mean)
				assert.Equal(t, c.Quality, a.Quality)
			}
		}
		assert.True(t, found, "%s not in estimate", a.Model)
		sum += a.CostUSD.Mean
		assert.Equal(t, a.Model, a.Ladder[0])
	}
	assert.InDelta(t, sum, plan.Totals.CostUSD.Mean, 1e-15)
}

func TestInfeasibleExitsThree(t *testing.T) {
	cat := writeTemp(t, "cat.toml", testCatalog)
	wf := writeTemp(t, "wf.toml", testWorkflow+"\n[budget]\nmin_success = 0.99\n")
	for _, args := range [][]string{
		{"plan", wf, "--catalog", cat, "--no-default-catalog"},
		{"preview", wf, "--catalog", cat, "--no-default-catalog"},
		{"plan", wf, "--json", "--catalog", cat, "--no-default-catalog"},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr)
			assert.Equal(t, 3, code)
			if args[2] == "--json" {
				assert.Contains(t, stdout.String(), `"feasible": false`)
				assert.Contains(t, stdout.String(), "budget.min_success 0.99 cannot be met")
			} else {
				assert.Contains(t, stderr.String(), "no plan satisfies the constraints")
				assert.Contains(t, stderr.String(), "budget.min_success 0.99 cannot be met: the best success any plan reaches is 0.76")
				assert.Contains(t, stderr.String(), "closest (all but budget.min_success)")
			}
		})
	}
}

func TestPreviewFormats(t *testing.T) {
	ex := filepath.Join("..", "..", "examples", "support-triage", "workflow.toml")
	cases := []struct {
		format string
		want   []string
	}{
		{"table", []string{"plan preview", "run cost: mean $", "budget:", "max_cost_usd", "naive: every node on", "FALLBACK LADDER"}},
		{"markdown", []string{"# support-triage: plan preview", "| # | node |", "Naive plan"}},
		{"json", []string{`"assignments"`, `"baseline"`, `"saving_usd"`}},
		{"dot", []string{"digraph", "fillcolor=\"#ff"}},
		{"mermaid", []string{"flowchart LR", "style n0 fill:#ff"}},
	}
	for _, c := range cases {
		t.Run(c.format, func(t *testing.T) {
			out := runOK(t, "preview", ex, "--format", c.format, "--samples", "300")
			for _, w := range c.want {
				assert.Contains(t, out, w)
			}
		})
	}
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, run([]string{"preview", ex, "--format", "pdf"}, &stdout, &stderr))
}

func TestPreviewExamples(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "workflow.toml"))
	for _, p := range paths {
		t.Run(filepath.Base(filepath.Dir(p)), func(t *testing.T) {
			out := runOK(t, "preview", p, "--samples", "300")
			assert.Contains(t, out, "proven optimal")
		})
	}
}
