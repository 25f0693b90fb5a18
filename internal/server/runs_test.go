package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/executor/provider/providertest"
)

// fakeRuns is a RunService whose runs block until released or cancelled.
type fakeRuns struct {
	mu      sync.Mutex
	specs   []RunSpec
	prepErr error
	release chan struct{}
	ended   map[string]string // id -> "done" or "cancelled"
	n       int
}

func (f *fakeRuns) Prepare(_ context.Context, spec RunSpec) (*PreparedRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.prepErr != nil {
		return nil, f.prepErr
	}
	f.specs = append(f.specs, spec)
	f.n++
	id := "r_fake_" + string(rune('0'+f.n))
	return &PreparedRun{ID: id, Execute: func(ctx context.Context) error {
		var how string
		select {
		case <-f.release:
			how = "done"
		case <-ctx.Done():
			how = "cancelled"
		}
		f.mu.Lock()
		f.ended[id] = how
		f.mu.Unlock()
		return nil
	}}, nil
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

func TestRunEndpoints(t *testing.T) {
	fr := &fakeRuns{release: make(chan struct{}), ended: map[string]string{}}
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
	assert.Equal(t, RunSpec{Name: "request.toml", Source: []byte("name = \"x\"\n"), Inputs: map[string]string{"a": "1"}, Simulate: true}, fr.specs[0])
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
	fr := &fakeRuns{release: make(chan struct{}), ended: map[string]string{}}
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
