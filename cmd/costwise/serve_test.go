package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/executor/provider"
	"github.com/costwise/costwise/executor/provider/providertest"
	"github.com/costwise/costwise/internal/server"
)

func TestServeRefusesPublicAddressWithoutKeys(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "costwise.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("[providers.openai]\napi_key_env = \"CW_SERVE_TEST_KEY\"\n"), 0o600))
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--addr", "0.0.0.0:0", "--config", cfg, "--ledger", filepath.Join(t.TempDir(), "l.db")}, &out, &errb)
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errb.String(), "refusing to listen on 0.0.0.0:0 without API keys")
}

func TestServeBadConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "costwise.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("[[server.key]]\nname = \"a\"\nkey_sha256 = \"nothex\"\n"), 0o600))
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--config", cfg}, &out, &errb)
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errb.String(), "costwise.toml:3:1: server.key[0].key_sha256: is not 64 hex digits")
}

// TestServeWorkflowsMatchCLI: the HTTP planning endpoints give the JSON
// the commands print.
func TestServeWorkflowsMatchCLI(t *testing.T) {
	path := filepath.Join("..", "..", "examples", "support-triage", "workflow.toml")
	src, err := os.ReadFile(path)
	require.NoError(t, err)
	cat, err := catalog.Default()
	require.NoError(t, err)
	svc := &cliWorkflows{cat: cat}

	var cli bytes.Buffer
	require.Equal(t, 0, run([]string{"estimate", "--json", path}, &cli, &bytes.Buffer{}))
	status, body, err := svc.Workflow(context.Background(), server.KindEstimate, path, src)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	var viaHTTP bytes.Buffer
	require.NoError(t, writeJSON(&viaHTTP, body))
	assert.JSONEq(t, cli.String(), viaHTTP.String())

	for _, tc := range []struct {
		kind server.WorkflowKind
		args []string
	}{
		{server.KindPlan, []string{"plan", "--json", path}},
		{server.KindPreview, []string{"preview", "--format", "json", path}},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			var cli bytes.Buffer
			require.Equal(t, 0, run(tc.args, &cli, &bytes.Buffer{}))
			status, body, err := svc.Workflow(context.Background(), tc.kind, path, src)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, status)
			var viaHTTP bytes.Buffer
			require.NoError(t, writeJSON(&viaHTTP, body))
			var a, b map[string]any
			require.NoError(t, json.Unmarshal(cli.Bytes(), &a))
			require.NoError(t, json.Unmarshal(viaHTTP.Bytes(), &b))
			delete(a, "stats") // search time and node counts vary run to run
			delete(b, "stats")
			assert.Equal(t, a, b)
		})
	}

	_, _, err = svc.Workflow(context.Background(), server.KindPlan, "request.toml", []byte("[workflow]\nname = 3\n"))
	var ie *server.InputError
	require.ErrorAs(t, err, &ie)
	assert.Contains(t, ie.Msg, `request.toml:1:1: workflow: unknown key "workflow"`)
}

// runsEnv is a gateway whose /v1/runs are answered by cliRuns over a fresh
// ledger; clients are the providers (nil: simulated runs only).
func runsEnv(t *testing.T, clients executor.Clients) (*httptest.Server, *ledger.Ledger, *catalog.Catalog) {
	t.Helper()
	cat, err := catalog.LoadTOML("cat.toml", []byte(cliCatalog))
	require.NoError(t, err)
	l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"))
	require.NoError(t, err)
	chat := clients
	if chat == nil {
		chat = executor.NewSimulator(cat, 1)
	}
	srv, err := server.New(server.Options{Catalog: cat, Clients: chat, Runs: &cliRuns{cat: cat, clients: clients, led: l}})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		require.NoError(t, srv.Close(context.Background()))
		require.NoError(t, l.Close())
	})
	return ts, l, cat
}

func postRun(t *testing.T, ts *httptest.Server, body any) (*http.Response, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post(ts.URL+"/v1/runs", "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, out
}

// pollRun polls GET location until the run is no longer running.
func pollRun(t *testing.T, ts *httptest.Server, location string) runOut {
	t.Helper()
	var out runOut
	require.Eventually(t, func() bool {
		resp, err := http.Get(ts.URL + location)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		out = runOut{}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return out.Status != "running"
	}, 30*time.Second, 10*time.Millisecond)
	return out
}

// TestServeRunSimulated posts a simulated run (inputs filled from the
// examples) and polls it to completion: the JSON of `costwise run --json`,
// with the ledger's spend.
func TestServeRunSimulated(t *testing.T) {
	ts, l, _ := runsEnv(t, nil)
	resp, body := postRun(t, ts, map[string]any{"workflow": cliWorkflow, "simulate": true})
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
	var acc server.RunAccepted
	require.NoError(t, json.Unmarshal(body, &acc))
	assert.Equal(t, "running", acc.Status)
	assert.Equal(t, "/v1/runs/"+acc.RunID, resp.Header.Get("Location"))

	out := pollRun(t, ts, resp.Header.Get("Location"))
	assert.Equal(t, "succeeded", out.Status)
	assert.Equal(t, acc.RunID, out.RunID)
	assert.True(t, out.Simulated)
	require.Len(t, out.Nodes, 2)
	var sum int64
	for _, n := range out.Nodes {
		assert.Equal(t, "succeeded", n.Status)
		assert.Contains(t, n.Output, "SIMULATED")
		require.NotEmpty(t, n.Attempts)
		assert.Equal(t, "ok", n.Attempts[len(n.Attempts)-1].Outcome)
		assert.Positive(t, n.PredictedUSD)
		for _, a := range n.Attempts {
			sum += int64(math.Round(a.CostUSD * 1e9))
		}
	}
	rec, err := l.Run(acc.RunID)
	require.NoError(t, err)
	assert.Equal(t, rec.SpentNano, out.CostNanoUSD)
	assert.Equal(t, sum, out.CostNanoUSD)
	assert.Positive(t, out.PredictedCostUSD.Mean)
	require.NotNil(t, out.PredictedCostUSD.P95)
	assert.GreaterOrEqual(t, *out.PredictedCostUSD.P95, out.PredictedCostUSD.Mean)
}

// TestServeRunAgainstFakeProvider runs a workflow through the real provider
// clients against a fake OpenAI server: the run's cost is the server's
// reported usage priced by the catalog.
func TestServeRunAgainstFakeProvider(t *testing.T) {
	const keyEnv, key = "CW_SERVE_RUN_KEY", "sk-serve-run-test-0123456789abcdef"
	t.Setenv(keyEnv, key)
	up := providertest.NewOpenAIServer(providertest.Script{"cheap": {{Text: "BAD"}, {Text: "tea"}}, "strong": {{Text: "matcha"}}})
	defer up.Close()
	pcfg, err := provider.ParseConfig("costwise.toml", []byte(fmt.Sprintf("[providers.openai]\napi_key_env = %q\nbase_url = %q\ntimeout_s = 10\n", keyEnv, up.BaseURL())))
	require.NoError(t, err)
	defer pcfg.Close()
	ts, l, cat := runsEnv(t, pcfg)

	resp, body := postRun(t, ts, map[string]any{"workflow": cliWorkflow, "inputs": map[string]string{"topic": "tea"}})
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
	out := pollRun(t, ts, resp.Header.Get("Location"))
	require.Equal(t, "succeeded", out.Status, "%+v", out)
	assert.False(t, out.Simulated)
	require.Len(t, out.Nodes, 2)
	var draft []string
	for _, a := range out.Nodes[0].Attempts {
		draft = append(draft, a.Outcome)
	}
	assert.Equal(t, []string{"invalid", "ok"}, draft, "the rejected answer is retried")

	var want int64
	for _, c := range up.Calls() {
		require.True(t, c.UsageReported)
		m, ok := cat.Lookup("openai/" + c.Model)
		require.True(t, ok)
		want += catalog.Price(m, c.Usage).NanoUSD()
	}
	require.Positive(t, want)
	assert.Equal(t, want, out.CostNanoUSD)
	rec, err := l.Run(out.RunID)
	require.NoError(t, err)
	assert.Equal(t, want, rec.SpentNano)
	assert.Equal(t, "Polish: "+out.Nodes[0].Output, up.Calls()[len(up.Calls())-1].Prompt)
	assert.NotContains(t, string(body), key)
}

func TestServeRunRefusals(t *testing.T) {
	ts, l, _ := runsEnv(t, nil)
	cases := []struct {
		name     string
		body     any
		wantCode int
		wantMsg  []string
	}{
		{name: "bad workflow", body: map[string]any{"workflow": "[workflow]\nname = 3\n", "simulate": true},
			wantCode: 400, wantMsg: []string{`request.toml:1:1: workflow: unknown key "workflow"`}},
		{name: "missing inputs", body: map[string]any{"workflow": cliWorkflow},
			wantCode: 400, wantMsg: []string{"missing inputs: topic", `"inputs"`}},
		{name: "undeclared input", body: map[string]any{"workflow": cliWorkflow, "inputs": map[string]string{"topic": "x", "tone": "warm"}, "simulate": true},
			wantCode: 400, wantMsg: []string{"declares no input tone"}},
		{name: "real run without providers", body: map[string]any{"workflow": cliWorkflow, "inputs": map[string]string{"topic": "x"}},
			wantCode: 400, wantMsg: []string{"no provider configured", "simulate"}},
		{name: "infeasible budget", body: map[string]any{"workflow": cliWorkflow + "\n[budget]\nmax_cost_usd = 0.000000001\n", "simulate": true},
			wantCode: 422},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := postRun(t, ts, tc.body)
			require.Equal(t, tc.wantCode, resp.StatusCode, string(body))
			if tc.wantCode == 422 {
				var plan map[string]any
				require.NoError(t, json.Unmarshal(body, &plan))
				assert.Equal(t, false, plan["feasible"], string(body))
				return
			}
			var eb server.ErrorBody
			require.NoError(t, json.Unmarshal(body, &eb), string(body))
			for _, m := range tc.wantMsg {
				assert.Contains(t, eb.Error.Message, m)
			}
		})
	}
	runs, err := l.Runs(10)
	require.NoError(t, err)
	assert.Empty(t, runs, "a refused run is not recorded")

	resp, err := http.Get(ts.URL + "/v1/runs/r_20261127T000000Z_nope")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	var eb server.ErrorBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&eb))
	assert.Equal(t, "run_not_found", eb.Error.Code)
}

// TestServeRunInterruptedByShutdownResumes: a run cut short by shutdown
// stays "running" in the ledger, and `costwise run --resume` finishes it
// without paying again for the node that completed.
func TestServeRunInterruptedByShutdownResumes(t *testing.T) {
	const keyEnv, key = "CW_SERVE_RESUME_KEY", "sk-serve-resume-0123456789abcdef"
	t.Setenv(keyEnv, key)
	up := providertest.NewOpenAIServer(providertest.Script{"cheap": {{Text: "tea"}, {Hang: true}}, "strong": {{Hang: true}}})
	defer up.Close()
	cfgText := fmt.Sprintf("[providers.openai]\napi_key_env = %q\nbase_url = %q\ntimeout_s = 30\n", keyEnv, up.BaseURL())
	pcfg, err := provider.ParseConfig("costwise.toml", []byte(cfgText))
	require.NoError(t, err)
	defer pcfg.Close()
	cat, err := catalog.LoadTOML("cat.toml", []byte(cliCatalog))
	require.NoError(t, err)
	dir := t.TempDir()
	ledPath := filepath.Join(dir, "ledger.db")
	l, err := ledger.Open(ledPath)
	require.NoError(t, err)
	srv, err := server.New(server.Options{Catalog: cat, Clients: pcfg, Runs: &cliRuns{cat: cat, clients: pcfg, led: l}})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	resp, body := postRun(t, ts, map[string]any{"workflow": cliWorkflow, "inputs": map[string]string{"topic": "tea"}})
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
	var acc server.RunAccepted
	require.NoError(t, json.Unmarshal(body, &acc))
	require.Eventually(t, func() bool { return len(up.Calls()) == 2 }, 10*time.Second, 5*time.Millisecond, "polish is in flight")
	require.NoError(t, srv.Close(context.Background()))
	rec, err := l.Run(acc.RunID)
	require.NoError(t, err)
	assert.Equal(t, ledger.RunRunning, rec.Status, "an interrupted run is left resumable")
	assert.Contains(t, rec.StopNote, "interrupted by the server's shutdown; continue it with costwise run --resume "+acc.RunID)
	require.Len(t, rec.Nodes, 2)
	assert.Equal(t, ledger.NodeSucceeded, rec.Nodes[0].Status)
	require.NoError(t, l.Close())

	up.Push("cheap", providertest.Reply{Text: "matcha"})
	wf := filepath.Join(dir, "workflow.toml")
	require.NoError(t, os.WriteFile(wf, []byte(cliWorkflow), 0o644))
	catFile := filepath.Join(dir, "cat.toml")
	require.NoError(t, os.WriteFile(catFile, []byte(cliCatalog), 0o644))
	code, stdout, stderr := runEnv(t, []string{keyEnv + "=" + key}, "run", wf, "--resume", acc.RunID, "--catalog", catFile, "--no-default-catalog",
		"--config", writeFile(t, "costwise.toml", cfgText), "--ledger", ledPath, "--json", "--no-replan")
	require.Equal(t, 0, code, "stderr:\n%s", stderr)
	var out runOut
	require.NoError(t, json.Unmarshal([]byte(stdout), &out), stdout)
	assert.Equal(t, "succeeded", out.Status)
	assert.True(t, out.Nodes[0].Resumed)
	assert.Equal(t, "matcha", out.Nodes[1].Output)
	assert.Len(t, up.Calls(), 3, "draft is not called again")
}

// TestServeRunCancelNotesTheStop: POST /v1/runs/{id}/cancel lets the call
// in flight finish, and the ledger keeps the run resumable with a note.
func TestServeRunCancelNotesTheStop(t *testing.T) {
	const keyEnv, key = "CW_SERVE_CANCEL_KEY", "sk-serve-cancel-0123456789abcdef"
	t.Setenv(keyEnv, key)
	up := providertest.NewOpenAIServer(providertest.Script{"cheap": {{Text: "tea"}, {Text: "Tea.", Delay: 300 * time.Millisecond}, {Text: "unused"}}})
	defer up.Close()
	cfgText := fmt.Sprintf("[providers.openai]\napi_key_env = %q\nbase_url = %q\ntimeout_s = 30\n", keyEnv, up.BaseURL())
	pcfg, err := provider.ParseConfig("costwise.toml", []byte(cfgText))
	require.NoError(t, err)
	defer pcfg.Close()
	cat, err := catalog.LoadTOML("cat.toml", []byte(cliCatalog))
	require.NoError(t, err)
	l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"))
	require.NoError(t, err)
	defer l.Close()
	srv, err := server.New(server.Options{Catalog: cat, Clients: pcfg, Runs: &cliRuns{cat: cat, clients: pcfg, led: l}})
	require.NoError(t, err)
	defer srv.Close(context.Background())
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	// A third node, after polish, never starts.
	wf := cliWorkflow + "\n[[node]]\nid = \"sign\"\ndepends_on = [\"polish\"]\nprompt = \"Sign: {{node.polish.output}}\"\noutput_tokens = 5\n"
	resp, body := postRun(t, ts, map[string]any{"workflow": wf, "inputs": map[string]string{"topic": "tea"}})
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
	var acc server.RunAccepted
	require.NoError(t, json.Unmarshal(body, &acc))
	require.Eventually(t, func() bool { return len(up.Calls()) == 2 }, 10*time.Second, 5*time.Millisecond, "polish is in flight")
	cresp, err := http.Post(ts.URL+"/v1/runs/"+acc.RunID+"/cancel", "application/json", nil)
	require.NoError(t, err)
	cresp.Body.Close()
	require.Contains(t, []int{http.StatusAccepted, http.StatusOK}, cresp.StatusCode)
	var rec *ledger.RunRecord
	require.Eventually(t, func() bool {
		rec, err = l.Run(acc.RunID)
		return err == nil && rec.StopNote != ""
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, ledger.RunRunning, rec.Status, "a cancelled run stays resumable")
	assert.Contains(t, rec.StopNote, "cancelled over HTTP")
	assert.Equal(t, ledger.NodeSucceeded, rec.Nodes[1].Status, "the call in flight finished and was kept")
	assert.NotEqual(t, ledger.NodeSucceeded, rec.Nodes[2].Status, "no new node started")
	assert.Len(t, up.Calls(), 2)
}

// TestServeRunsOutliveRestart: a key still reads and lists the runs it
// started after the server restarts (the ledger records their owner),
// another key still gets 404, and a cancel says the run is not executing
// here.
func TestServeRunsOutliveRestart(t *testing.T) {
	const keyA, keyB = "sk-team-a-0123456789abcdef", "sk-team-b-0123456789abcdef"
	hexOf := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	scfg, err := server.ParseConfig("costwise.toml", []byte(fmt.Sprintf(
		"[[server.key]]\nname = \"team-a\"\nkey_sha256 = %q\n\n[[server.key]]\nname = \"team-b\"\nkey_sha256 = %q\n",
		hexOf(keyA), hexOf(keyB))))
	require.NoError(t, err)
	cat, err := catalog.LoadTOML("cat.toml", []byte(cliCatalog))
	require.NoError(t, err)
	ledPath := filepath.Join(t.TempDir(), "ledger.db")
	start := func() (*httptest.Server, func()) {
		l, err := ledger.Open(ledPath)
		require.NoError(t, err)
		srv, err := server.New(server.Options{Catalog: cat, Clients: executor.NewSimulator(cat, 1), Config: scfg,
			Runs: &cliRuns{cat: cat, led: l}})
		require.NoError(t, err)
		ts := httptest.NewServer(srv.Handler())
		return ts, func() {
			ts.Close()
			require.NoError(t, srv.Close(context.Background()))
			require.NoError(t, l.Close())
		}
	}
	call := func(ts *httptest.Server, method, path, key string, body []byte) (int, []byte) {
		req, err := http.NewRequest(method, ts.URL+path, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, out
	}

	ts, stop := start()
	b, err := json.Marshal(map[string]any{"workflow": cliWorkflow, "simulate": true})
	require.NoError(t, err)
	code, body := call(ts, http.MethodPost, "/v1/runs", keyA, b)
	require.Equal(t, http.StatusAccepted, code, string(body))
	var acc server.RunAccepted
	require.NoError(t, json.Unmarshal(body, &acc))
	require.Eventually(t, func() bool {
		code, body := call(ts, http.MethodGet, "/v1/runs/"+acc.RunID, keyA, nil)
		require.Equal(t, http.StatusOK, code, string(body))
		return !bytes.Contains(body, []byte(`"status":"running"`))
	}, 30*time.Second, 10*time.Millisecond)
	stop()

	ts, stop = start() // a new process on the same ledger
	defer stop()
	code, body = call(ts, http.MethodGet, "/v1/runs/"+acc.RunID, keyA, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var got runOut
	require.NoError(t, json.Unmarshal(body, &got))
	assert.Equal(t, "succeeded", got.Status)

	code, body = call(ts, http.MethodGet, "/v1/runs/"+acc.RunID, keyB, nil)
	assert.Equal(t, http.StatusNotFound, code, "another key's run: %s", body)

	for _, tc := range []struct {
		key  string
		want []string
	}{{keyA, []string{acc.RunID}}, {keyB, nil}} {
		code, body = call(ts, http.MethodGet, "/v1/runs", tc.key, nil)
		require.Equal(t, http.StatusOK, code, string(body))
		var list server.RunList
		require.NoError(t, json.Unmarshal(body, &list))
		var ids []string
		for _, it := range list.Data {
			ids = append(ids, it.RunID)
			assert.Equal(t, "succeeded", it.Status)
			assert.True(t, it.Simulated)
			assert.NotNil(t, it.EndedAt)
			require.NotNil(t, it.CostNanoUSD)
		}
		assert.Equal(t, tc.want, ids)
	}

	code, body = call(ts, http.MethodPost, "/v1/runs/"+acc.RunID+"/cancel", keyA, nil)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, string(body), `"code":"run_not_executing"`)
	assert.Contains(t, string(body), "its status in the ledger is succeeded")
	code, _ = call(ts, http.MethodPost, "/v1/runs/"+acc.RunID+"/cancel", keyB, nil)
	assert.Equal(t, http.StatusNotFound, code)
}
