package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// runEnv runs the built command with extra environment variables.
func runEnv(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, stdout.String(), stderr.String()
}

// field walks a decoded JSON document along a dotted path.
func field(t *testing.T, doc any, path string) any {
	t.Helper()
	cur := doc
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		require.True(t, ok, "%s: %q is not an object in %v", path, k, cur)
		v, ok := m[k]
		require.True(t, ok, "the JSON has no key %s", path)
		cur = v
	}
	return cur
}

// TestRunSimulatedJSON runs every example with --simulate --json: exit 0,
// the documented JSON contract, every output marked SIMULATED, and the run
// listed by `costwise runs` and shown by `costwise runs show`.
func TestRunSimulatedJSON(t *testing.T) {
	for _, ex := range []string{"support-triage", "code-review", "content-moderation", "report-analysis", "research-agent"} {
		t.Run(ex, func(t *testing.T) {
			led := filepath.Join(t.TempDir(), "ledger.db")
			wf := filepath.Join("..", "..", "examples", ex, "workflow.toml")
			code, stdout, stderr := runBinary(t, "run", wf, "--simulate", "--json", "--ledger", led)
			require.Equal(t, 0, code, "stderr:\n%s", stderr)
			assert.Contains(t, stderr, "SIMULATED")

			var doc map[string]any
			require.NoError(t, json.Unmarshal([]byte(stdout), &doc), stdout)
			id, _ := field(t, doc, "run_id").(string)
			require.Regexp(t, `^r_\d{8}T\d{6}Z_[0-9a-f]+$`, id)
			assert.Equal(t, "succeeded", field(t, doc, "status"))
			assert.Equal(t, true, field(t, doc, "simulated"))
			cost := field(t, doc, "cost_usd").(float64)
			assert.Positive(t, cost)
			assert.Equal(t, math.Round(cost*1e9), field(t, doc, "cost_nano_usd").(float64))
			for _, k := range []string{"mean", "p50", "p95", "p99", "max"} {
				assert.Positive(t, field(t, doc, "predicted_cost_usd."+k).(float64), k)
			}
			nodes := field(t, doc, "nodes").([]any)
			require.NotEmpty(t, nodes)
			var sum float64
			for _, raw := range nodes {
				n := raw.(map[string]any)
				for _, k := range []string{"id", "status", "model", "output", "cost_usd", "predicted_cost_usd", "escalations", "resumed", "attempts"} {
					assert.Contains(t, n, k, "node key %s", k)
				}
				if n["status"] == "succeeded" {
					assert.True(t, strings.HasPrefix(n["output"].(string), "[SIMULATED]"), "node %s output %q", n["id"], n["output"])
				} else {
					assert.Empty(t, n["output"])
				}
				for _, ra := range n["attempts"].([]any) {
					a := ra.(map[string]any)
					for _, k := range []string{"model", "iteration", "outcome", "reason", "usage", "usage_reported", "may_have_billed", "cost_usd", "latency_s"} {
						assert.Contains(t, a, k, "attempt key %s", k)
					}
					assert.Contains(t, []any{"ok", "invalid"}, a["outcome"])
					for _, k := range []string{"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"} {
						assert.Contains(t, a["usage"], k)
					}
					sum += a["cost_usd"].(float64)
				}
			}
			assert.InDelta(t, cost, sum, 1e-9, "the run costs the sum of its attempts")

			code, stdout, stderr = runBinary(t, "runs", "--ledger", led)
			require.Equal(t, 0, code, stderr)
			assert.Regexp(t, regexp.MustCompile(regexp.QuoteMeta(id)+`\s+`+regexp.QuoteMeta(ex)+`\s+succeeded \(simulated\)`), stdout)

			code, stdout, stderr = runBinary(t, "runs", "show", id, "--ledger", led)
			require.Equal(t, 0, code, stderr)
			assert.Contains(t, stdout, "run "+id+" (SIMULATED): succeeded, workflow "+ex)
			assert.Contains(t, stdout, fmt.Sprintf("nano-USD %.0f", cost*1e9))
			for _, raw := range nodes {
				assert.Contains(t, stdout, raw.(map[string]any)["id"].(string))
			}

			code, _, stderr = runBinary(t, "run", wf, "--simulate", "--ledger", led, "--resume", id)
			assert.Equal(t, 1, code)
			assert.Contains(t, stderr, "nothing left to do")
		})
	}
}

// TestRunRefusesBadInvocations: what `costwise run` says before it spends.
func TestRunRefusesBadInvocations(t *testing.T) {
	wf := filepath.Join("..", "..", "examples", "support-triage", "workflow.toml")
	inputs := []string{"--input", "ticket=My invoice is wrong", "--input", "customer=plan: pro", "--input", "playbook=be kind"}
	const goodConfig = "[providers.openai]\napi_key_env = \"CW_CLI_UNSET_KEY\"\n"
	cases := []struct {
		name       string
		args       []string
		config     string // written to a file passed with --config
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{name: "missing inputs without --simulate", args: []string{"run", wf}, config: goodConfig,
			wantCode: 1, wantStderr: []string{"missing inputs: customer, playbook, ticket", "--input NAME=VALUE"}},
		{name: "one missing input", args: []string{"run", wf, "--input", "ticket=x", "--input", "customer=y"}, config: goodConfig,
			wantCode: 1, wantStderr: []string{"missing inputs: playbook;"}},
		{name: "undeclared input", args: append([]string{"run", wf, "--input", "tone=warm"}, inputs...), config: goodConfig,
			wantCode: 1, wantStderr: []string{`the workflow declares no input "tone"`}},
		{name: "no provider config", args: append([]string{"run", wf, "--config", "does-not-exist.toml"}, inputs...),
			wantCode: 1, wantStderr: []string{"does-not-exist.toml does not exist", "--simulate"}},
		{name: "dry run prints the preview", args: []string{"run", wf, "--dry-run"},
			wantCode: 0, wantStdout: []string{"support-triage: plan preview", "nothing has run", "classify", "review", "FALLBACK LADDER"}},
		{name: "config with an unknown key", args: append([]string{"run", wf}, inputs...),
			config:   "[providers.openai]\napi_key_env = \"OPENAI_API_KEY\"\ntimeout = 5\n",
			wantCode: 1, wantStderr: []string{`config.toml:3:1: providers.openai.timeout: unknown key "timeout"; allowed keys are`}},
		{name: "config with a key value instead of a variable name", args: append([]string{"run", wf}, inputs...),
			config:   "[providers.openai]\napi_key_env = \"sk-proj-abc123-secret\"\n",
			wantCode: 1, wantStderr: []string{"config.toml:2:1: providers.openai.api_key_env: entry 1 is not an environment variable name"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			led := filepath.Join(t.TempDir(), "ledger.db")
			args := append(append([]string{}, tc.args...), "--ledger", led)
			if tc.config != "" {
				args = append(args, "--config", writeFile(t, "config.toml", tc.config))
			}
			code, stdout, stderr := runBinary(t, args...)
			assert.Equal(t, tc.wantCode, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			for _, s := range tc.wantStdout {
				assert.Contains(t, stdout, s)
			}
			for _, s := range tc.wantStderr {
				assert.Contains(t, stderr, s)
			}
			assert.NotContains(t, stderr, "sk-proj-abc123-secret", "a key pasted into the config is never echoed")
			assert.NotContains(t, stderr, "panic")
			// Refused before anything was recorded: no run is left "running".
			code, stdout, _ = runBinary(t, "runs", "--ledger", led)
			require.Equal(t, 0, code)
			assert.Contains(t, stdout, "no runs recorded yet")
		})
	}
}

const cliCatalog = `
[[model]]
id = "openai/cheap"
provider = "openai"
input_per_mtok = 1.0
output_per_mtok = 2.0
context_window = 100000
modalities = ["text"]
ttft_s = 0.5
output_tokens_per_s = 100
[model.quality]
default = 0.80

[[model]]
id = "openai/strong"
provider = "openai"
input_per_mtok = 5.0
output_per_mtok = 20.0
context_window = 100000
modalities = ["text"]
ttft_s = 0.5
output_tokens_per_s = 100
[model.quality]
default = 0.95
`

const cliWorkflow = `
name = "cli"

[inputs.topic]
example = "tea"

[[node]]
id = "draft"
prompt = "One word about {{input.topic}}."
output_tokens = { mean = 5, p95 = 10, max = 20 }
validate = 'trim(output) != "BAD"'

[[node]]
id = "polish"
depends_on = ["draft"]
prompt = "Polish: {{node.draft.output}}"
output_tokens = { mean = 5, p95 = 10, max = 20 }
`

// TestRunAgainstFakeProvider runs `costwise run --json` for real against a
// fake OpenAI server: the JSON cost is the server's usage priced by the
// catalog, the escalation after a rejected answer is visible, `runs show
// --json` agrees; a rejected key fails the run naming the provider and not
// the key.
func TestRunAgainstFakeProvider(t *testing.T) {
	const keyEnv, key = "CW_CLI_TEST_KEY", "sk-cli-test-0123456789abcdefghij"
	cat, err := catalog.LoadTOML("cat.toml", []byte(cliCatalog))
	require.NoError(t, err)
	cases := []struct {
		name      string
		script    providertest.Script
		rejectKey bool
		wantCode  int
		wantDraft []string // outcomes of draft's attempts
	}{
		{name: "success", script: providertest.Script{"cheap": {{Text: "tea"}}, "strong": {{Text: "matcha"}}},
			wantCode: 0, wantDraft: []string{"ok"}},
		{name: "invalid answer escalates", script: providertest.Script{"cheap": {{Text: "BAD"}, {Text: "tea"}}, "strong": {{Text: "matcha"}}},
			wantCode: 0, wantDraft: []string{"invalid", "ok"}},
		{name: "rejected key", script: providertest.Script{"cheap": {{Text: "tea"}}}, rejectKey: true,
			wantCode: 1, wantDraft: []string{"auth"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := providertest.NewOpenAIServer(tc.script)
			defer srv.Close()
			if tc.rejectKey {
				srv.AcceptKeys("sk-another-key-000000000000000000")
			}
			dir := t.TempDir()
			wf := filepath.Join(dir, "workflow.toml")
			require.NoError(t, os.WriteFile(wf, []byte(cliWorkflow), 0o644))
			catFile := filepath.Join(dir, "cat.toml")
			require.NoError(t, os.WriteFile(catFile, []byte(cliCatalog), 0o644))
			cfg := writeFile(t, "costwise.toml", fmt.Sprintf("[providers.openai]\napi_key_env = %q\nbase_url = %q\ntimeout_s = 10\n", keyEnv, srv.BaseURL()))
			led := filepath.Join(dir, "ledger.db")

			code, stdout, stderr := runEnv(t, []string{keyEnv + "=" + key}, "run", wf, "--catalog", catFile, "--no-default-catalog",
				"--config", cfg, "--ledger", led, "--json", "--input", "topic=tea", "--no-replan")
			require.Equal(t, tc.wantCode, code, "stderr:\n%s", stderr)
			assert.NotContains(t, stdout+stderr, key)

			var out runOut
			require.NoError(t, json.Unmarshal([]byte(stdout), &out), stdout)
			require.NotEmpty(t, out.Nodes)
			var draft []string
			for _, a := range out.Nodes[0].Attempts {
				draft = append(draft, a.Outcome)
			}
			assert.Equal(t, tc.wantDraft, draft)
			assert.False(t, out.Simulated)

			// The run costs the server's usage, priced by the catalog.
			var want int64
			for _, c := range srv.Calls() {
				if c.UsageReported {
					m, ok := cat.Lookup("openai/" + c.Model)
					require.True(t, ok)
					want += catalog.Price(m, c.Usage).NanoUSD()
				}
			}
			assert.Equal(t, want, out.CostNanoUSD)

			code, showOut, stderr := runBinary(t, "runs", "show", out.RunID, "--json", "--ledger", led)
			require.Equal(t, 0, code, stderr)
			var rec struct {
				Status    string
				SpentNano int64
				Nodes     []struct {
					NodeID   string
					Attempts []struct{ CostNano int64 }
				}
			}
			require.NoError(t, json.Unmarshal([]byte(showOut), &rec), showOut)
			assert.Equal(t, out.Status, rec.Status)
			assert.Equal(t, want, rec.SpentNano)
			if tc.rejectKey {
				assert.Equal(t, "failed", out.Status)
				assert.Contains(t, out.Error, "openai")
				assert.Contains(t, out.Error, "api_key_env", "the message says what to fix")
				assert.Len(t, srv.Calls(), 1)
			} else {
				assert.Equal(t, "succeeded", out.Status)
				assert.Equal(t, "Polish: "+out.Nodes[0].Output, srv.Calls()[len(srv.Calls())-1].Prompt)
			}
		})
	}
}
