package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/executor/provider/providertest"
	"github.com/costwise/costwise/graph"
	"github.com/costwise/costwise/planner"
	"github.com/costwise/costwise/policies"
)

// fakeRuns is a RunService whose runs block until released or cancelled.
// Prepare calls the server's admission check with adm, as a real service
// does between planning and recording (unless skipAdmit).
type fakeRuns struct {
	mu        sync.Mutex
	specs     []RunSpec
	prepErr   error
	release   chan struct{}     // releases any one run
	ended     map[string]string // id -> "done" or "cancelled"
	n         int
	adm       Admission
	skipAdmit bool
	budgets   map[string]int64         // id -> the budget Admit gave it
	own       map[string]chan struct{} // id -> releases that run
	spent     map[string]int64         // id -> what Summary reports
	causes    map[string]error         // id -> context.Cause seen by Execute
	abandoned []string
}

func newFakeRuns() *fakeRuns {
	return &fakeRuns{release: make(chan struct{}), ended: map[string]string{}, budgets: map[string]int64{},
		own: map[string]chan struct{}{}, spent: map[string]int64{}, causes: map[string]error{},
		adm: Admission{PredictedMeanNano: 10_000_000}}
}

func (f *fakeRuns) Prepare(_ context.Context, spec RunSpec) (*PreparedRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.prepErr != nil {
		return nil, f.prepErr
	}
	budget := f.adm.BudgetNano
	if spec.Admit != nil && !f.skipAdmit {
		var err error
		if budget, err = spec.Admit(f.adm); err != nil {
			return nil, err
		}
	}
	f.specs = append(f.specs, spec)
	f.n++
	id := fmt.Sprintf("r_fake_%d", f.n)
	f.budgets[id] = budget
	own := make(chan struct{})
	f.own[id] = own
	return &PreparedRun{ID: id, Execute: func(ctx context.Context) error {
		var how string
		select {
		case <-f.release:
			how = "done"
		case <-own:
			how = "done"
		case <-ctx.Done():
			how = "cancelled"
		}
		f.mu.Lock()
		f.ended[id] = how
		f.causes[id] = context.Cause(ctx)
		f.mu.Unlock()
		return nil
	}, Abandon: func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.abandoned = append(f.abandoned, id)
	}}, nil
}

// finish ends run id, having spent spent.
func (f *fakeRuns) finish(id string, spent int64) {
	f.mu.Lock()
	f.spent[id] = spent
	ch := f.own[id]
	f.mu.Unlock()
	close(ch)
}

func (f *fakeRuns) hasEnded(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.ended[id]
	return ok
}

func (f *fakeRuns) Get(_ context.Context, id string) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if how, ok := f.ended[id]; ok {
		return map[string]string{"run_id": id, "status": how}, nil
	}
	if strings.HasPrefix(id, "r_fake_") {
		return map[string]string{"run_id": id, "status": "running"}, nil
	}
	return nil, ErrRunNotFound
}

// Summary reports a cancelled run as the ledger keeps it: running.
func (f *fakeRuns) Summary(_ context.Context, id string) (RunSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.own[id]; !ok {
		return RunSummary{}, ErrRunNotFound
	}
	st := "running"
	if f.ended[id] == "done" {
		st = "succeeded"
	}
	return RunSummary{Status: st, SpentNano: f.spent[id]}, nil
}

// runsTOML has two keys without rate limits: team-a with a $5 daily
// budget, team-b with none.
var runsTOML = fmt.Sprintf(`
[[server.key]]
name = "team-a"
key_sha256 = %q
budget_usd_per_day = 5.0

[[server.key]]
name = "team-b"
key_sha256 = %q
`, digest(clientKeyA), digest(clientKeyB))

// call makes one request to ts and returns the response and its body.
func call(t testing.TB, ts *httptest.Server, method, path, key, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// startRun posts a run and returns its id (failing unless 202).
func startRun(t testing.TB, ts *httptest.Server, key, body string) string {
	t.Helper()
	resp, b := call(t, ts, http.MethodPost, "/v1/runs", key, body)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(b))
	var acc RunAccepted
	require.NoError(t, json.Unmarshal(b, &acc))
	return acc.RunID
}

func TestRunEndpoints(t *testing.T) {
	fr := newFakeRuns()
	fr.adm.BudgetNano = 1e8 // each run holds $0.10 of team-a's $5
	e := newEnv(t, providertest.Script{}, providertest.Script{}, serverTOML, func(o *Options) { o.Runs, o.MaxRuns = fr, 2 })
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	do := func(method, path, key, body string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	// Auth: the chat completions keys.
	resp, _ := do(http.MethodPost, "/v1/runs", "", `{"workflow": "x"}`)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = do(http.MethodGet, "/v1/runs/r_fake_1", "wrong-key", "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// Request shapes: a TOML string, a JSON workflow.
	resp, body := do(http.MethodPost, "/v1/runs", clientKeyA, `{"workflow": "name = \"x\"\n", "inputs": {"a": "1"}, "simulate": true}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
	var acc RunAccepted
	require.NoError(t, json.Unmarshal(body, &acc))
	assert.Equal(t, RunAccepted{RunID: "r_fake_1", Status: "running"}, acc)
	assert.Equal(t, "/v1/runs/r_fake_1", resp.Header.Get("Location"))
	resp, body = do(http.MethodPost, "/v1/runs", clientKeyA, `{"workflow": {"name": "y", "node": [{"id": "a", "prompt": "p"}]}}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
	fr.mu.Lock()
	require.Len(t, fr.specs, 2)
	assert.NotNil(t, fr.specs[0].Admit, "the server hands the service its admission check")
	fr.specs[0].Admit = nil
	assert.Equal(t, RunSpec{Name: "request.toml", Source: []byte("name = \"x\"\n"), Inputs: map[string]string{"a": "1"}, Simulate: true, Owner: "team-a"}, fr.specs[0], "the owner is the calling key")
	assert.Equal(t, "request.json (as TOML)", fr.specs[1].Name)
	assert.Contains(t, string(fr.specs[1].Source), "[[node]]")
	assert.Equal(t, map[string]string{}, fr.specs[1].Inputs)
	fr.mu.Unlock()

	// Two runs execute: a third is refused with 429 until one ends.
	resp, body = do(http.MethodPost, "/v1/runs", clientKeyA, `{"workflow": "name = \"z\"\n"}`)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, string(body))
	assert.Equal(t, "too_many_runs", apiError(t, body).Code)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))

	resp, body = do(http.MethodGet, "/v1/runs/r_fake_1", clientKeyA, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{"run_id": "r_fake_1", "status": "running"}`, string(body))
	ended := func() int {
		fr.mu.Lock()
		defer fr.mu.Unlock()
		return len(fr.ended)
	}
	fr.release <- struct{}{} // one of the two runs ends
	require.Eventually(t, func() bool { return ended() == 1 }, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		resp, _ := do(http.MethodPost, "/v1/runs", clientKeyA, `{"workflow": "name = \"z\"\n"}`)
		return resp.StatusCode == http.StatusAccepted
	}, 5*time.Second, 5*time.Millisecond, "the slot is freed when a run ends")
	fr.release <- struct{}{} // free a slot for the cases below
	require.Eventually(t, func() bool { return ended() == 2 }, 5*time.Second, 5*time.Millisecond)

	cases := []struct {
		name     string
		method   string
		path     string
		body     string
		prepErr  error
		wantCode int
		wantMsg  string
	}{
		{name: "unknown run", method: http.MethodGet, path: "/v1/runs/r_nope", wantCode: 404, wantMsg: `no run "r_nope"`},
		{name: "cancel an unknown run", method: http.MethodPost, path: "/v1/runs/r_nope/cancel", wantCode: 404, wantMsg: `no run "r_nope"`},
		{name: "bad limit", method: http.MethodGet, path: "/v1/runs?limit=x", wantCode: 400, wantMsg: `limit="x": give a whole number from 1 to 100`},
		{name: "malformed body", method: http.MethodPost, path: "/v1/runs", body: `{"workflow": `, wantCode: 400, wantMsg: "malformed run request"},
		{name: "unknown field", method: http.MethodPost, path: "/v1/runs", body: `{"workflow": "x", "input": {}}`, wantCode: 400, wantMsg: `unknown field "input"`},
		{name: "no workflow", method: http.MethodPost, path: "/v1/runs", body: `{"inputs": {"a": "b"}}`, wantCode: 400, wantMsg: `"workflow" is required`},
		{name: "workflow of the wrong type", method: http.MethodPost, path: "/v1/runs", body: `{"workflow": 3}`, wantCode: 400, wantMsg: "TOML string or a JSON object"},
		{name: "non-string input", method: http.MethodPost, path: "/v1/runs", body: `{"workflow": "x", "inputs": {"a": 1}}`, wantCode: 400, wantMsg: "inputs"},
		{name: "null in a JSON workflow", method: http.MethodPost, path: "/v1/runs", body: `{"workflow": {"name": null}}`, wantCode: 400, wantMsg: "name is null"},
		{name: "invalid workflow", method: http.MethodPost, path: "/v1/runs", body: `{"workflow": "x"}`,
			prepErr: &InputError{Msg: "request.toml:1:1: bad"}, wantCode: 400, wantMsg: "request.toml:1:1: bad"},
		{name: "infeasible", method: http.MethodPost, path: "/v1/runs", body: `{"workflow": "x"}`,
			prepErr: &InfeasibleError{Body: map[string]any{"feasible": false}}, wantCode: 422},
		{name: "service failure", method: http.MethodPost, path: "/v1/runs", body: `{"workflow": "x"}`,
			prepErr: errors.New("disk on fire"), wantCode: 500, wantMsg: "disk on fire"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fr.mu.Lock()
			fr.prepErr = tc.prepErr
			fr.mu.Unlock()
			resp, body := do(tc.method, tc.path, clientKeyA, tc.body)
			assert.Equal(t, tc.wantCode, resp.StatusCode, string(body))
			if tc.wantCode == 422 {
				assert.JSONEq(t, `{"feasible": false}`, string(body))
			} else {
				assert.Contains(t, apiError(t, body).Message, tc.wantMsg)
			}
		})
	}
	fr.mu.Lock()
	fr.prepErr = nil
	fr.mu.Unlock()

	// Close cancels the runs still executing and refuses new ones.
	require.NoError(t, e.srv.Close(context.Background()))
	fr.mu.Lock()
	var how []string
	for _, id := range []string{"r_fake_1", "r_fake_2", "r_fake_3"} {
		how = append(how, fr.ended[id])
	}
	fr.mu.Unlock()
	assert.ElementsMatch(t, []string{"done", "done", "cancelled"}, how)
	resp, body = do(http.MethodGet, "/v1/runs/r_fake_3", clientKeyA, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotContains(t, string(body), `"running"`)
	resp, body = do(http.MethodPost, "/v1/runs", clientKeyA, `{"workflow": "x"}`)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
}

// TestServeCancelsRunsOnShutdown: Serve gives the runs a context that ends
// with it, and returns only after they have stopped.
func TestServeCancelsRunsOnShutdown(t *testing.T) {
	fr := newFakeRuns()
	e := newEnv(t, providertest.Script{}, providertest.Script{}, "", func(o *Options) { o.Runs = fr })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	resp, err := http.Post("http://"+ln.Addr().String()+"/v1/runs", "application/json", strings.NewReader(`{"workflow": "x"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	fr.mu.Lock()
	defer fr.mu.Unlock()
	assert.Equal(t, map[string]string{"r_fake_1": "cancelled"}, fr.ended)
}

func FuzzParseRunRequest(f *testing.F) {
	for _, s := range []string{
		`{"workflow": "name = \"x\"\n", "inputs": {"a": "b"}, "simulate": true}`,
		`{"workflow": {"name": "x", "node": [{"id": "a"}]}}`,
		`{"workflow": null}`, `{"workflow": 3}`, `{"inputs": {"": "x"}, "workflow": "x"}`, `[]`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := parseRunRequest(data)
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		require.NotEmpty(t, spec.Name)
		require.NotNil(t, spec.Inputs)
		_, empty := spec.Inputs[""]
		require.False(t, empty)
	})
}

// TestRunKeyBudget: runs are charged to the calling key's daily budget,
// alongside its chat completions.
func TestRunKeyBudget(t *testing.T) {
	fr := newFakeRuns()
	e := newEnv(t, providertest.Script{"small": {{Text: "hi"}}}, providertest.Script{}, runsTOML, func(o *Options) { o.Runs, o.MaxRuns = fr, 8 })
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	keyA := &e.srv.cfg.Keys[0]
	kb, _, err := e.srv.dayBudget(keyA)
	require.NoError(t, err)
	require.NotNil(t, kb)
	admit := func(pred, budget float64) {
		fr.mu.Lock()
		fr.adm = Admission{PredictedMeanNano: NanoUSD(pred), BudgetNano: NanoUSD(budget)}
		fr.mu.Unlock()
	}
	budgetOf := func(id string) int64 {
		fr.mu.Lock()
		defer fr.mu.Unlock()
		return fr.budgets[id]
	}
	const wf = `{"workflow": "name = \"x\"\n"}`

	// A run predicted to cost more than the key has left is refused
	// before it is recorded.
	admit(6, 0)
	resp, body := call(t, ts, http.MethodPost, "/v1/runs", clientKeyA, wf)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, string(body))
	ae := apiError(t, body)
	assert.Equal(t, "insufficient_quota", ae.Code)
	assert.Equal(t, "insufficient_quota", ae.Type)
	assert.Contains(t, ae.Message, `key "team-a": this run's predicted mean cost is $6.000000, more than the $5.000000 left today`)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.Empty(t, fr.budgets, "nothing recorded")

	// Admitted: it runs under min(its max_cost_usd, what the key has
	// left), held from the key while it runs.
	admit(1, 2)
	r1 := startRun(t, ts, clientKeyA, wf)
	assert.Equal(t, int64(2e9), budgetOf(r1))
	assert.Equal(t, int64(3e9), kb.Remaining())
	admit(3.5, 0)
	resp, body = call(t, ts, http.MethodPost, "/v1/runs", clientKeyA, wf)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, string(body))
	assert.Contains(t, apiError(t, body).Message, "more than the $3.000000 left today")

	// Without max_cost_usd a run may use all the key has left: the key's
	// chat completions wait, another key's do not.
	admit(0.5, 0)
	r2 := startRun(t, ts, clientKeyA, wf)
	assert.Equal(t, int64(3e9), budgetOf(r2))
	assert.Equal(t, int64(0), kb.Remaining())
	chat := `{"model": "openai/small", "messages": [{"role": "user", "content": "hi"}]}`
	resp, body = call(t, ts, http.MethodPost, "/v1/chat/completions", clientKeyA, chat)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, string(body))
	assert.Equal(t, "insufficient_quota", apiError(t, body).Code)
	resp, body = call(t, ts, http.MethodPost, "/v1/chat/completions", clientKeyB, chat)
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	admit(0, 0)
	resp, body = call(t, ts, http.MethodPost, "/v1/runs", clientKeyA, wf)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "nothing left: even a free-looking run waits")
	assert.Contains(t, apiError(t, body).Message, "$0.000000 left")

	// As runs end, the key is charged what they spent, not what they held.
	fr.finish(r1, 250_000_000)
	require.Eventually(t, func() bool { return kb.Remaining() == 5e9-250_000_000-3e9 }, 5*time.Second, time.Millisecond)
	fr.finish(r2, 1e9)
	require.Eventually(t, func() bool { return kb.Remaining() == 5e9-1_250_000_000 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, int64(1_250_000_000), kb.Spent())

	// Simulated runs spend no money: no check, no hold.
	admit(100, 0)
	r3 := startRun(t, ts, clientKeyA, `{"workflow": "name = \"x\"\n", "simulate": true}`)
	assert.Equal(t, int64(0), budgetOf(r3), "the workflow's own budget (none)")
	assert.Equal(t, int64(5e9-1_250_000_000), kb.Remaining())

	// Keys without a budget run under the workflow's.
	admit(100, 7)
	r4 := startRun(t, ts, clientKeyB, wf)
	assert.Equal(t, int64(7e9), budgetOf(r4))

	// A service that skips the check cannot start a run for a key with a
	// budget: the recorded run is abandoned.
	fr.mu.Lock()
	fr.skipAdmit = true
	fr.mu.Unlock()
	admit(0.1, 0)
	resp, body = call(t, ts, http.MethodPost, "/v1/runs", clientKeyA, wf)
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	assert.Contains(t, apiError(t, body).Message, `did not check run r_fake_5 against key "team-a"'s daily budget`)
	fr.mu.Lock()
	assert.Equal(t, []string{"r_fake_5"}, fr.abandoned)
	fr.mu.Unlock()
	startRun(t, ts, clientKeyB, wf) // no budget to check
	assert.Equal(t, int64(5e9-1_250_000_000), kb.Remaining())
}

// noSummary hides fakeRuns' Summary: the server cannot learn a run's spend.
type noSummary struct{ RunService }

// TestRunChargedWholeHoldWithoutSummary: a service that cannot report a
// run's spend gets its key charged the whole budget the run held.
func TestRunChargedWholeHoldWithoutSummary(t *testing.T) {
	fr := newFakeRuns()
	fr.adm = Admission{PredictedMeanNano: 1e8, BudgetNano: 2e9}
	e := newEnv(t, providertest.Script{}, providertest.Script{}, runsTOML, func(o *Options) { o.Runs = noSummary{fr} })
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	kb, _, err := e.srv.dayBudget(&e.srv.cfg.Keys[0])
	require.NoError(t, err)
	id := startRun(t, ts, clientKeyA, `{"workflow": "x"}`)
	fr.finish(id, 1)
	require.Eventually(t, func() bool { return kb.Spent() == 2e9 }, 5*time.Second, time.Millisecond)
	resp, body := call(t, ts, http.MethodGet, "/v1/runs", clientKeyA, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var list RunList
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list.Data, 1)
	assert.Equal(t, "ended", list.Data[0].Status)
	assert.Nil(t, list.Data[0].CostNanoUSD)
}

// TestRunListAndCancel: GET /v1/runs lists the key's own runs, newest
// first; POST /v1/runs/{id}/cancel stops one; other keys' runs are 404.
func TestRunListAndCancel(t *testing.T) {
	fr := newFakeRuns()
	fr.adm = Admission{PredictedMeanNano: 12_500_000, BudgetNano: 2e9}
	e := newEnv(t, providertest.Script{}, providertest.Script{}, runsTOML, func(o *Options) { o.Runs, o.MaxRuns = fr, 8 })
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	const wf = `{"workflow": "x"}`
	r1 := startRun(t, ts, clientKeyA, wf)
	r2 := startRun(t, ts, clientKeyA, wf)
	r3 := startRun(t, ts, clientKeyB, wf)
	r4 := startRun(t, ts, clientKeyA, `{"workflow": "x", "simulate": true}`)
	fr.mu.Lock()
	fr.spent[r2] = 123
	fr.mu.Unlock()

	list := func(key, query string) RunList {
		t.Helper()
		resp, body := call(t, ts, http.MethodGet, "/v1/runs"+query, key, "")
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		var l RunList
		require.NoError(t, json.Unmarshal(body, &l))
		assert.Equal(t, "list", l.Object)
		return l
	}
	ids := func(l RunList) []string {
		var out []string
		for _, it := range l.Data {
			out = append(out, it.RunID)
		}
		return out
	}
	la := list(clientKeyA, "")
	assert.Equal(t, []string{r4, r2, r1}, ids(la))
	assert.False(t, la.HasMore)
	it := la.Data[1]
	assert.Equal(t, "running", it.Status)
	require.NotNil(t, it.CostNanoUSD)
	assert.Equal(t, int64(123), *it.CostNanoUSD)
	assert.InDelta(t, 123e-9, it.CostUSD, 1e-15)
	assert.InDelta(t, 0.0125, it.PredictedCostUSD, 1e-12)
	require.NotNil(t, it.BudgetUSD)
	assert.InDelta(t, 2.0, *it.BudgetUSD, 1e-12)
	_, err := time.Parse(time.RFC3339Nano, it.StartedAt)
	require.NoError(t, err)
	assert.Nil(t, it.EndedAt)
	assert.True(t, la.Data[0].Simulated)
	assert.False(t, it.Simulated)

	lim := list(clientKeyA, "?limit=2")
	assert.Equal(t, []string{r4, r2}, ids(lim))
	assert.True(t, lim.HasMore)
	assert.Equal(t, []string{r3}, ids(list(clientKeyB, "")))
	for _, q := range []string{"?limit=0", "?limit=101", "?limit=-1", "?limit=2.5"} {
		resp, body := call(t, ts, http.MethodGet, "/v1/runs"+q, clientKeyA, "")
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, q)
		assert.Equal(t, "invalid_limit", apiError(t, body).Code, q)
	}

	// Another key's run does not exist for this key.
	for _, req := range [][2]string{{http.MethodGet, "/v1/runs/" + r3}, {http.MethodPost, "/v1/runs/" + r3 + "/cancel"}} {
		resp, body := call(t, ts, req[0], req[1], clientKeyA, "")
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, req)
		assert.Equal(t, "run_not_found", apiError(t, body).Code)
	}
	assert.False(t, fr.hasEnded(r3))

	// Cancel: the run's context ends with ErrRunCancelled, then the run
	// reads "cancelled" (the ledger keeps it running, resumable).
	resp, body := call(t, ts, http.MethodPost, "/v1/runs/"+r1+"/cancel", clientKeyA, "")
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
	var rc RunCancelled
	require.NoError(t, json.Unmarshal(body, &rc))
	assert.Equal(t, r1, rc.RunID)
	assert.Equal(t, "cancelling", rc.Status)
	assert.Contains(t, rc.Resume, "costwise run --resume "+r1)
	require.Eventually(t, func() bool { return fr.hasEnded(r1) }, 5*time.Second, time.Millisecond)
	fr.mu.Lock()
	assert.ErrorIs(t, fr.causes[r1], ErrRunCancelled)
	fr.mu.Unlock()
	require.Eventually(t, func() bool {
		_, body := call(t, ts, http.MethodGet, "/v1/runs/"+r1, clientKeyA, "")
		return strings.Contains(string(body), `"status":"cancelled"`)
	}, 5*time.Second, time.Millisecond)
	resp, body = call(t, ts, http.MethodPost, "/v1/runs/"+r1+"/cancel", clientKeyA, "")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "cancelling again is harmless")
	assert.Contains(t, string(body), `"status":"cancelled"`)
	it = list(clientKeyA, "").Data[2]
	assert.Equal(t, "cancelled", it.Status)
	assert.NotNil(t, it.EndedAt)

	// A run that ended cannot be cancelled.
	fr.finish(r2, 5)
	require.Eventually(t, func() bool { return list(clientKeyA, "").Data[1].EndedAt != nil }, 5*time.Second, time.Millisecond)
	assert.Equal(t, "succeeded", list(clientKeyA, "").Data[1].Status)
	resp, body = call(t, ts, http.MethodPost, "/v1/runs/"+r2+"/cancel", clientKeyA, "")
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	ae := apiError(t, body)
	assert.Equal(t, "run_ended", ae.Code)
	assert.Contains(t, ae.Message, "already ended with status succeeded")
}

// ledgerRuns is a RunService on the real executor and ledger, as the
// command line's: it plans, asks the server's admission check, records
// the run with the budget it got, and executes it through SettleOnCancel.
type ledgerRuns struct {
	cat     *catalog.Catalog
	clients executor.Clients
	l       *ledger.Ledger
}

func (s *ledgerRuns) Prepare(ctx context.Context, rs RunSpec) (*PreparedRun, error) {
	w, err := graph.Parse(rs.Name, rs.Source)
	if err != nil {
		return nil, &InputError{Msg: err.Error()}
	}
	e, err := estimator.New(s.cat, estimator.WithSamples(200), estimator.WithSeed(1))
	if err != nil {
		return nil, err
	}
	est, err := e.Estimate(w)
	if err != nil {
		return nil, &InputError{Msg: err.Error()}
	}
	set, err := policies.Compile(w)
	if err != nil {
		return nil, &InputError{Msg: err.Error()}
	}
	plan, err := planner.New(set, planner.Options{Timeout: 5 * time.Second, Alternatives: -1}).Plan(ctx, est)
	if err != nil {
		return nil, err
	}
	if !plan.Feasible {
		return nil, &InfeasibleError{Body: map[string]any{"feasible": false}}
	}
	budget := NanoUSD(w.Budget.MaxCostUSD)
	if rs.Admit != nil {
		if budget, err = rs.Admit(Admission{PredictedMeanNano: NanoUSD(plan.Totals.Cost.Mean), BudgetNano: budget}); err != nil {
			return nil, err
		}
	}
	var nodes []ledger.PlannedNode
	for _, a := range plan.Assignments {
		nodes = append(nodes, ledger.PlannedNode{ID: a.Node, PredictedCostUSD: a.Candidate.Cost.Mean})
	}
	id, err := s.l.CreateRun(ledger.NewRun{WorkflowName: w.Name, WorkflowFile: rs.Name, WorkflowHash: ledger.HashWorkflow(rs.Source),
		Inputs: []byte("{}"), Plan: []byte("{}"), PredictedMeanUSD: plan.Totals.Cost.Mean, BudgetMaxNano: budget, Nodes: nodes})
	if err != nil {
		return nil, err
	}
	x := executor.New(s.cat, SettleOnCancel(s.clients), executor.LedgerRecorder{L: s.l}, executor.Options{Concurrency: 1, MaxRetries: -1})
	return &PreparedRun{ID: id, Execute: func(ctx context.Context) error {
		res, err := x.Run(ctx, executor.Spec{RunID: id, Plan: plan, BudgetNan: budget, Inputs: rs.Inputs})
		if err != nil || ctx.Err() != nil {
			return err // stopped: the run stays running in the ledger, resumable
		}
		return s.l.FinishRun(id, ledger.RunStatus(res.Status))
	}}, nil
}

func (s *ledgerRuns) Get(_ context.Context, id string) (any, error) {
	rec, err := s.l.Run(id)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("%w: %v", ErrRunNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"run_id": id, "status": rec.Status, "cost_nano_usd": rec.SpentNano}, nil
}

func (s *ledgerRuns) Summary(_ context.Context, id string) (RunSummary, error) {
	rec, err := s.l.Run(id)
	if errors.Is(err, ledger.ErrNotFound) {
		return RunSummary{}, fmt.Errorf("%w: %v", ErrRunNotFound, err)
	}
	if err != nil {
		return RunSummary{}, err
	}
	return RunSummary{Status: string(rec.Status), SpentNano: rec.SpentNano}, nil
}

// threeSteps is a chain of three nodes that may each write 4000 tokens.
const threeSteps = `{"workflow": "name = \"steps\"\n[[node]]\nid = \"a\"\nprompt = \"Say a.\"\noutput_tokens = { mean = 5, p95 = 10, max = 4000 }\n[[node]]\nid = \"b\"\ndepends_on = [\"a\"]\nprompt = \"Say b after {{node.a.output}}.\"\noutput_tokens = { mean = 5, p95 = 10, max = 4000 }\n[[node]]\nid = \"c\"\ndepends_on = [\"b\"]\nprompt = \"Say c after {{node.b.output}}.\"\noutput_tokens = { mean = 5, p95 = 10, max = 4000 }\n"}`

// TestRunsThroughExecutor: with the real executor, a run cannot take the
// key past its budget (it runs under what the key has left and stops when
// the next call's reservation does not fit), the key is charged what the
// ledger says the run spent, and a cancel lets the call in flight settle
// while no new call starts.
func TestRunsThroughExecutor(t *testing.T) {
	// Each call on openai/small reserves about $0.0024 (4000 output
	// tokens) and, as the upstream reports, costs $0.0018015.
	usage := catalog.Usage{InputTokens: 10, OutputTokens: 3000}
	cfg := strings.Replace(runsTOML, "budget_usd_per_day = 5.0", "budget_usd_per_day = 0.004", 1)
	e := newEnv(t, providertest.Script{"small": {{Text: "fine", Usage: &usage}}}, providertest.Script{}, cfg, func(o *Options) {
		o.Runs = &ledgerRuns{cat: o.Catalog, clients: o.Clients}
	})
	srv := e.srv
	srv.runs.(*ledgerRuns).l = e.l
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	kb, _, err := srv.dayBudget(&srv.cfg.Keys[0])
	require.NoError(t, err)
	callCost := e.price(t, "openai/small", usage).NanoUSD()
	require.Equal(t, int64(1_801_500), callCost)

	waitEnd := func(id string) *ledger.RunRecord {
		t.Helper()
		var rec *ledger.RunRecord
		require.Eventually(t, func() bool {
			var err error
			rec, err = e.l.Run(id)
			require.NoError(t, err)
			return rec.Status != ledger.RunRunning
		}, 10*time.Second, 5*time.Millisecond)
		require.Eventually(t, func() bool { ent, _ := srv.runTab.snapshot(id); return !ent.ended.IsZero() }, 5*time.Second, time.Millisecond)
		return rec
	}

	r1 := startRun(t, ts, clientKeyA, threeSteps)
	rec := waitEnd(r1)
	assert.Equal(t, ledger.RunBudgetExhausted, rec.Status, "b's reservation did not fit in what the key had left")
	assert.Equal(t, int64(4_000_000), rec.BudgetMaxNano, "the run's budget: all the key had left")
	assert.Equal(t, callCost, rec.SpentNano)
	require.Eventually(t, func() bool { return kb.Spent() == callCost }, 5*time.Second, time.Millisecond, "the key is charged the ledger's spend")
	assert.LessOrEqual(t, kb.Spent(), srv.cfg.Keys[0].BudgetNanoPerDay)
	assert.Len(t, e.oa.Calls(), 1)

	// The next run gets what is left, too little for even one call.
	r2 := startRun(t, ts, clientKeyA, threeSteps)
	rec = waitEnd(r2)
	assert.Equal(t, ledger.RunBudgetExhausted, rec.Status)
	assert.Equal(t, int64(4_000_000)-callCost, rec.BudgetMaxNano)
	assert.Zero(t, rec.SpentNano)
	assert.Len(t, e.oa.Calls(), 1, "no call was sent")
	assert.Equal(t, callCost, kb.Spent())

	// Cancel with a call in flight (team-b has no budget): the call ends
	// and is recorded with what it cost, b and c never start, and the
	// run stays resumable.
	e.oa.Push("small", providertest.Reply{Text: "slow one", Usage: &usage, Delay: 300 * time.Millisecond})
	before := len(e.oa.Calls())
	r3 := startRun(t, ts, clientKeyB, threeSteps)
	require.Eventually(t, func() bool { return len(e.oa.Calls()) == before+1 }, 5*time.Second, time.Millisecond, "a is in flight")
	resp, body := call(t, ts, http.MethodPost, "/v1/runs/"+r3+"/cancel", clientKeyB, "")
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
	require.Eventually(t, func() bool {
		_, body := call(t, ts, http.MethodGet, "/v1/runs/"+r3, clientKeyB, "")
		return strings.Contains(string(body), `"status":"cancelled"`)
	}, 10*time.Second, 5*time.Millisecond)
	rec, err = e.l.Run(r3)
	require.NoError(t, err)
	assert.Equal(t, ledger.RunRunning, rec.Status, "the ledger has no cancelled status: the run stays resumable")
	assert.Equal(t, callCost, rec.SpentNano, "the call in flight settled at its price")
	require.Len(t, rec.Nodes, 3)
	for _, n := range rec.Nodes {
		switch n.NodeID {
		case "a":
			assert.Equal(t, ledger.NodeSucceeded, n.Status)
			require.Len(t, n.Attempts, 1)
			assert.Equal(t, ledger.OutcomeOK, n.Attempts[0].Outcome)
			assert.Equal(t, "slow one", n.Output)
		default:
			assert.NotEqual(t, ledger.NodeSucceeded, n.Status, n.NodeID)
			assert.Empty(t, n.Attempts, n.NodeID)
		}
	}
	assert.Len(t, e.oa.Calls(), before+1, "no call started after the cancel")
	done, err := e.l.CompletedNodes(r3)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "slow one"}, done, "a resume would not pay for a again")
}

// TestKeyBudgetOutlivesRestart: a key's day of spend is read back from the
// ledger when a new server process starts, so a restart does not give the
// key its daily budget again.
func TestKeyBudgetOutlivesRestart(t *testing.T) {
	usage := catalog.Usage{InputTokens: 1000, OutputTokens: 200}
	var opts Options
	e := newEnv(t, providertest.Script{}, providertest.Script{"mid": {{Text: "Leaves fall.", Usage: &usage}}}, serverTOML,
		func(o *Options) { opts = *o })
	ts := httptest.NewServer(e.srv.Handler())
	resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA, chatBody("cheap-chat", "Write a haiku.", ""))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	ts.Close()
	require.NoError(t, e.srv.Close(context.Background())) // the first process stops; its ledger stays
	want := e.price(t, "anthropic/mid", usage).NanoUSD()
	runs, err := e.l.Runs(0)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	rec, err := e.l.Run(runs[0].ID)
	require.NoError(t, err)
	assert.Equal(t, "team-a", rec.Owner, "the request is recorded as the key's")

	opts.Registry = prometheus.NewRegistry()
	srv, err := New(opts) // a new process on the same ledger
	require.NoError(t, err)
	defer func() { _ = srv.Close(context.Background()) }()
	kb, _, err := srv.dayBudget(&srv.cfg.Keys[0])
	require.NoError(t, err)
	assert.Equal(t, want, kb.Spent(), "the key's day starts from what the ledger says it spent")
	kb, _, err = srv.dayBudget(&srv.cfg.Keys[1])
	require.NoError(t, err)
	assert.Nil(t, kb, "team-b has no daily budget")
}
