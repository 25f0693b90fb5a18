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

// waitRuns is a toy RunService whose runs wait until they are cancelled.
type waitRuns struct {
	mu     sync.Mutex
	n      int
	status map[string]string
}

func (s *waitRuns) Prepare(_ context.Context, spec server.RunSpec) (*server.PreparedRun, error) {
	if spec.Admit != nil { // the key's budget check; this toy costs nothing
		if _, err := spec.Admit(server.Admission{}); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	id := fmt.Sprintf("r_%d", s.n)
	s.status[id] = "running"
	return &server.PreparedRun{ID: id, Execute: func(ctx context.Context) error {
		<-ctx.Done() // a real service stops between calls
		return nil
	}}, nil
}

func (s *waitRuns) Get(_ context.Context, id string) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.status[id]
	if !ok {
		return nil, server.ErrRunNotFound
	}
	return map[string]string{"run_id": id, "status": st}, nil
}

func (s *waitRuns) Summary(_ context.Context, id string) (server.RunSummary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return server.RunSummary{Status: s.status[id]}, nil
}

// ExampleRunSummarizer lists the runs started on a server (GET /v1/runs,
// newest first) and cancels one (POST /v1/runs/{id}/cancel), which then
// reads "cancelled".
func ExampleRunSummarizer() {
	cat, _ := catalog.LoadTOML("catalog.toml", []byte("[[model]]\nid = \"openai/small\"\nprovider = \"openai\"\ninput_per_mtok = 0.15\noutput_per_mtok = 0.6\nmodalities = [\"text\"]\n"))
	srv, err := server.New(server.Options{Catalog: cat, Clients: executor.NewSimulator(cat, 1), Runs: &waitRuns{status: map[string]string{}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer srv.Close(context.Background())

	for range 2 {
		resp, err := http.Post(ts.URL+"/v1/runs", "application/json", strings.NewReader(`{"workflow": "name = \"wait\"\n"}`))
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
	}
	var list server.RunList
	resp, err := http.Get(ts.URL + "/v1/runs?limit=10")
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	for _, r := range list.Data {
		fmt.Println(r.RunID, r.Status)
	}

	resp, err = http.Post(ts.URL+"/v1/runs/r_1/cancel", "application/json", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	var c server.RunCancelled
	_ = json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, c.RunID, c.Status)
	for {
		r, err := http.Get(ts.URL + "/v1/runs/r_1")
		if err != nil {
			fmt.Println(err)
			return
		}
		var run struct{ Status string }
		_ = json.NewDecoder(r.Body).Decode(&run)
		r.Body.Close()
		if run.Status != "cancelling" {
			fmt.Println(run.Status)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Output:
	// r_2 running
	// r_1 running
	// 202 r_1 cancelling
	// cancelled
}
