package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runOK runs the CLI in-process and requires exit code 0.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	require.Equal(t, 0, code, "stderr: %s", stderr.String())
	return stdout.String()
}

// A catalog with round prices so that the expected numbers are easy to check.
const testCatalog = `
[[model]]
id = "acme/small"
input_per_mtok = 1.0
output_per_mtok = 2.0
context_window = 100000
max_output_tokens = 1000
modalities = ["text"]
ttft_s = 0.5
output_tokens_per_s = 100
[model.quality]
default = 0.8

[[model]]
id = "acme/large"
input_per_mtok = 10.0
output_per_mtok = 20.0
context_window = 1000
max_output_tokens = 1000
modalities = ["text"]
ttft_s = 1
output_tokens_per_s = 50
[model.quality]
default = 0.95
`

const testWorkflow = `
name = "two"
[[node]]
id = "a"
prompt = "x"
input_tokens = 500
output_tokens = { mean = 100, p95 = 100 }
[[node]]
id = "b"
depends_on = ["a"]
prompt = "y"
input_tokens = 2000
output_tokens = { mean = 10, p95 = 10 }
`

func TestEstimateJSONContract(t *testing.T) {
	dir := t.TempDir()
	cat := filepath.Join(dir, "cat.toml")
	wf := filepath.Join(dir, "wf.toml")
	require.NoError(t, os.WriteFile(cat, []byte(testCatalog), 0o644))
	require.NoError(t, os.WriteFile(wf, []byte(testWorkflow), 0o644))
	out := runOK(t, "estimate", wf, "--json", "--catalog", cat, "--no-default-catalog", "--samples", "100")

	var got struct {
		Workflow string `json:"workflow"`
		Nodes    []struct {
			ID         string `json:"id"`
			Candidates []struct {
				Model    string `json:"model"`
				Feasible bool   `json:"feasible"`
				Reasons  []struct {
					Code string `json:"code"`
				} `json:"reasons"`
				InputTokens  struct{ Mean float64 } `json:"input_tokens"`
				OutputTokens struct {
					Mean float64  `json:"mean"`
					P95  *float64 `json:"p95"`
				} `json:"output_tokens"`
				Calls   struct{ Mean float64 } `json:"calls"`
				CostUSD struct {
					Mean, P50, P95 float64
				} `json:"cost_usd"`
				LatencyS struct{ Mean float64 } `json:"latency_s"`
				Quality  float64                `json:"quality"`
			} `json:"candidates"`
		} `json:"nodes"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, "two", got.Workflow)
	require.Len(t, got.Nodes, 2)
	a := got.Nodes[0]
	require.Equal(t, "a", a.ID)
	require.Len(t, a.Candidates, 2)
	small := a.Candidates[0]
	assert.Equal(t, "acme/small", small.Model)
	assert.True(t, small.Feasible)
	assert.Equal(t, 500.0, small.InputTokens.Mean)
	assert.InDelta(t, 100, small.OutputTokens.Mean, 1e-9)
	assert.Equal(t, 1.0, small.Calls.Mean)
	// 500 input x $1/M + 100 output x $2/M = $0.0007
	assert.InDelta(t, 0.0007, small.CostUSD.Mean, 1e-12)
	assert.InDelta(t, 0.0007, small.CostUSD.P95, 1e-12)
	// 0.5 s TTFT + 100 tokens / 100 tokens/s
	assert.InDelta(t, 1.5, small.LatencyS.Mean, 1e-12)
	assert.Equal(t, 0.8, small.Quality)

	// Node b's prompt (2000) + output (10) overflows acme/large's 1000-token window.
	large := got.Nodes[1].Candidates[1]
	assert.Equal(t, "acme/large", large.Model)
	assert.False(t, large.Feasible)
	require.Len(t, large.Reasons, 1)
	assert.Equal(t, "context_window", large.Reasons[0].Code)
}

func TestCatalogCommands(t *testing.T) {
	cat := filepath.Join(t.TempDir(), "cat.toml")
	require.NoError(t, os.WriteFile(cat, []byte(testCatalog), 0o644))
	broken := filepath.Join(t.TempDir(), "broken.toml")
	require.NoError(t, os.WriteFile(broken, []byte("[[model]]\nid = \"acme/x\"\ninput_per_mtok = -1\ncolour = 1\n"), 0o644))
	cases := []struct {
		name string
		args []string
		code int
		out  string
		err  string
	}{
		{"models", []string{"models", "--catalog", cat, "--no-default-catalog"}, 0, "acme/large", ""},
		{"models json", []string{"models", "--json", "--provider", "anthropic"}, 0, `"id": "anthropic/`, ""},
		{"models supports", []string{"models", "--supports", "tools,vision", "--provider", "anthropic"}, 0, "tools,json,vision", ""},
		{"models supports nothing", []string{"models", "--supports", "json", "--catalog", cat, "--no-default-catalog"}, 0, "no models match", ""},
		{"models supports unknown", []string{"models", "--supports", "telepathy"}, 2, "", `--supports "telepathy": use tools, json, vision, reasoning, caching`},
		{"cost", []string{"cost", "--model", "acme/small", "--input-tokens", "1000000", "--output-tokens", "500000", "--catalog", cat}, 0, "acme/small: $2.0000", ""},
		{"cost json", []string{"cost", "--model", "acme/small", "--input-tokens", "1000", "--output-tokens", "0", "--json", "--catalog", cat}, 0, `"cost_usd": 0.001`, ""},
		{"cost unknown model", []string{"cost", "--model", "acme/smal", "--input-tokens", "1", "--catalog", cat}, 1, "", `unknown model "acme/smal"; did you mean acme/small?`},
		{"cost negative", []string{"cost", "--model", "acme/small", "--input-tokens", "-1", "--catalog", cat}, 2, "", "--input-tokens must be >= 0"},
		{"cost without model", []string{"cost", "--input-tokens", "1"}, 2, "", "--model is required"},
		{"broken catalog", []string{"models", "--catalog", broken}, 1, "", broken + ":3:"},
		{"empty catalog", []string{"models", "--no-default-catalog"}, 1, "", "the catalog is empty"},
		{"tokens both flags", []string{"tokens", "--model", "a", "--encoding", "o200k_base"}, 2, "", "give exactly one of --model and --encoding"},
		{"tokens bad image", []string{"tokens", "--encoding", "o200k_base", "--image", "big", os.DevNull}, 2, "", "want WIDTHxHEIGHT"},
		{"tokens image", []string{"tokens", "--encoding", "o200k_base", "--image", "1024x1024:high", "--json", os.DevNull}, 0, `"tokens": 765`, ""},
		{"estimate bad samples", []string{"estimate", "x.toml", "--samples", "0"}, 2, "", "--samples must be between"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(c.args, &stdout, &stderr)
			assert.Equal(t, c.code, code, "stderr: %s", stderr.String())
			assert.Contains(t, stdout.String(), c.out)
			assert.Contains(t, stderr.String(), c.err)
		})
	}
}

func TestTokensText(t *testing.T) {
	f := filepath.Join(t.TempDir(), "hello.txt")
	require.NoError(t, os.WriteFile(f, []byte("hello world"), 0o644))
	assert.Equal(t, "2\n", runOK(t, "tokens", "--encoding", "cl100k_base", f))
	assert.Equal(t, "2\n", runOK(t, "tokens", "--model", "openai/gpt-4o", f))
}

func TestEstimateExamples(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "workflow.toml"))
	require.NotEmpty(t, paths)
	for _, p := range paths {
		t.Run(filepath.Base(filepath.Dir(p)), func(t *testing.T) {
			out := runOK(t, "estimate", p, "--samples", "200")
			assert.Contains(t, out, "workflow ")
		})
	}
}
