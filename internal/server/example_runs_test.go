package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/internal/server"
)

// echoRuns is a toy RunService: a run "succeeds" with its workflow's
// length. The command line's service plans, records and executes instead.
type echoRuns struct {
	mu     sync.Mutex
	status map[string]string
}

func (e *echoRuns) Prepare(_ context.Context, spec server.RunSpec) (*server.PreparedRun, error) {
	id := fmt.Sprintf("r_%d", len(spec.Source))
	e.mu.Lock()
	e.status[id] = "running"
	e.mu.Unlock()
	return &server.PreparedRun{ID: id, Execute: func(context.Context) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.status[id] = "succeeded"
		return nil
	}}, nil
}

func (e *echoRuns) Get(_ context.Context, id string) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, ok := e.status[id]
	if !ok {
		return nil, server.ErrRunNotFound
	}
	return map[string]string{"run_id": id, "status": st}, nil
}

// ExampleRunService starts a workflow run with POST /v1/runs and polls
// GET /v1/runs/{id} until it is no longer running.
func ExampleRunService() {
	cat, _ := catalog.LoadTOML("catalog.toml", []byte("[[model]]\nid = \"openai/small\"\nprovider = \"openai\"\ninput_per_mtok = 0.15\noutput_per_mtok = 0.6\nmodalities = [\"text\"]\n"))
	srv, err := server.New(server.Options{Catalog: cat, Clients: executor.NewSimulator(cat, 1), Runs: &echoRuns{status: map[string]string{}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer srv.Close(context.Background())

	resp, err := http.Post(ts.URL+"/v1/runs", "application/json",
		strings.NewReader(`{"workflow": "name = \"hello\"\n", "inputs": {"topic": "tea"}, "simulate": true}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Location"))
	for {
		r, err := http.Get(ts.URL + resp.Header.Get("Location"))
		if err != nil {
			fmt.Println(err)
			return
		}
		var run struct{ Status string }
		_ = json.NewDecoder(r.Body).Decode(&run)
		r.Body.Close()
		if run.Status != "running" {
			fmt.Println(run.Status)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Output:
	// 202 /v1/runs/r_15
	// succeeded
}
