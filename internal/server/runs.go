package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// DefaultMaxRuns is how many workflow runs a server executes at once when
// Options.MaxRuns is 0; POST /v1/runs answers 429 beyond it.
const DefaultMaxRuns = 4

// RunRequest is the body of POST /v1/runs:
//
//	{"workflow": "<TOML text>" | {<JSON workflow, same keys as the TOML>},
//	 "inputs": {"name": "value", ...},
//	 "simulate": false}
//
// workflow is required. inputs maps every input the workflow declares to
// its text (strings only; no @file). simulate runs on the built-in
// SIMULATED provider (no keys, no network, missing inputs filled from the
// declared examples).
type RunRequest struct {
	Workflow json.RawMessage   `json:"workflow"`
	Inputs   map[string]string `json:"inputs"`
	Simulate bool              `json:"simulate"`
}

// RunSpec is a validated run request as the RunService sees it: the
// workflow as TOML text (a JSON workflow converted with JSONToTOML) and
// the name used in its messages.
type RunSpec struct {
	Name     string
	Source   []byte
	Inputs   map[string]string
	Simulate bool
}

// PreparedRun is a run recorded in the ledger and not started yet.
type PreparedRun struct {
	// ID is the ledger's run id.
	ID string
	// Execute runs it to the end. ctx is cancelled when the server shuts
	// down; Execute then stops between calls and leaves the run resumable.
	Execute func(ctx context.Context) error
	// Abandon, when set, is called instead of Execute when the run is
	// recorded but cannot be started (the server is at its run limit).
	Abandon func()
}

// RunService validates, plans, records and executes workflow runs for POST
// /v1/runs, and reads them back for GET /v1/runs/{id}.
type RunService interface {
	// Prepare checks the workflow and inputs (an *InputError for a bad
	// workflow or missing inputs: 400), plans it (an *InfeasibleError when
	// no plan satisfies it: 422) and creates the run in the ledger.
	Prepare(ctx context.Context, spec RunSpec) (*PreparedRun, error)
	// Get returns the run's JSON body, or an error wrapping ErrRunNotFound.
	Get(ctx context.Context, id string) (any, error)
}

// ErrRunNotFound is the RunService's error for an unknown run id (404).
var ErrRunNotFound = errors.New("run not found")

// InfeasibleError is a workflow no plan satisfies: the server answers 422
// with Body (the plan JSON, as POST /v1/plan gives it).
type InfeasibleError struct{ Body any }

func (e *InfeasibleError) Error() string { return "no plan satisfies the workflow's constraints" }

// RunAccepted is the 202 answer of POST /v1/runs.
type RunAccepted struct {
	RunID  string `json:"run_id"`
	Status string `json:"status"` // "running"
}

// runSlot takes one of the server's run slots; false when all are busy.
func (s *Server) runSlot() bool {
	select {
	case s.runSem <- struct{}{}:
		return true
	default:
		return false
	}
}

// startRun answers POST /v1/runs.
func (s *Server) startRun(w http.ResponseWriter, r *http.Request, _ *Key) {
	if s.runs == nil {
		writeError(w, http.StatusNotImplemented, "invalid_request_error", "not_implemented", "this server has no workflow runner")
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	spec, err := parseRunRequest(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_run", err.Error())
		return
	}
	s.runMu.Lock()
	closed := s.runsClosed
	s.runMu.Unlock()
	if closed {
		writeError(w, http.StatusServiceUnavailable, "server_error", "shutting_down", "the server is shutting down; start the run elsewhere")
		return
	}
	if !s.runSlot() {
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusTooManyRequests, "requests", "too_many_runs",
			fmt.Sprintf("this server already executes %d workflow runs, its limit; poll them with GET /v1/runs/{id} and retry later", cap(s.runSem)))
		return
	}
	release := func() { <-s.runSem }
	pr, err := s.runs.Prepare(r.Context(), spec)
	if err != nil {
		release()
		var ie *InputError
		var fe *InfeasibleError
		switch {
		case errors.As(err, &ie):
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_workflow", ie.Msg)
		case errors.As(err, &fe):
			writeJSONBody(w, http.StatusUnprocessableEntity, fe.Body)
		default:
			s.log.Error("POST /v1/runs", "err", err)
			writeError(w, http.StatusInternalServerError, "server_error", "internal_error", err.Error())
		}
		return
	}
	s.runMu.Lock()
	if s.runsClosed { // shutdown began while the run was planned
		s.runMu.Unlock()
		release()
		if pr.Abandon != nil {
			pr.Abandon()
		}
		writeError(w, http.StatusServiceUnavailable, "server_error", "shutting_down",
			fmt.Sprintf("the server is shutting down; run %s was recorded but not started: continue it with `costwise run --resume %s`", pr.ID, pr.ID))
		return
	}
	s.runWG.Add(1)
	s.runMu.Unlock()
	go func() {
		defer s.runWG.Done()
		defer release()
		if err := pr.Execute(s.runCtx); err != nil {
			s.log.Error("workflow run", "run", pr.ID, "err", err)
		}
	}()
	w.Header().Set("Location", "/v1/runs/"+pr.ID)
	writeJSONBody(w, http.StatusAccepted, RunAccepted{RunID: pr.ID, Status: "running"})
}

// getRun answers GET /v1/runs/{id}.
func (s *Server) getRun(w http.ResponseWriter, r *http.Request, _ *Key) {
	if s.runs == nil {
		writeError(w, http.StatusNotImplemented, "invalid_request_error", "not_implemented", "this server has no workflow runner")
		return
	}
	id := r.PathValue("id")
	out, err := s.runs.Get(r.Context(), id)
	if err != nil {
		if errors.Is(err, ErrRunNotFound) {
			writeError(w, http.StatusNotFound, "invalid_request_error", "run_not_found",
				fmt.Sprintf("no run %q; POST /v1/runs answers with the run_id to poll", id))
			return
		}
		s.log.Error("GET /v1/runs/{id}", "run", id, "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "internal_error", err.Error())
		return
	}
	writeJSONBody(w, http.StatusOK, out)
}

// parseRunRequest decodes and checks a POST /v1/runs body.
func parseRunRequest(body []byte) (RunSpec, error) {
	var req RunRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return RunSpec{}, fmt.Errorf("malformed run request: %v; send {\"workflow\": TOML text or JSON workflow, \"inputs\": {\"name\": \"value\"}, \"simulate\": false}", err)
	}
	raw := strings.TrimSpace(string(req.Workflow))
	spec := RunSpec{Inputs: req.Inputs, Simulate: req.Simulate}
	if spec.Inputs == nil {
		spec.Inputs = map[string]string{}
	}
	switch {
	case raw == "" || raw == "null":
		return RunSpec{}, errors.New(`run request: "workflow" is required: the workflow as a TOML string, or as a JSON object with the same keys`)
	case raw[0] == '"':
		var src string
		if err := json.Unmarshal(req.Workflow, &src); err != nil {
			return RunSpec{}, fmt.Errorf("run request: workflow: %v", err)
		}
		spec.Name, spec.Source = "request.toml", []byte(src)
	case raw[0] == '{':
		src, err := JSONToTOML(req.Workflow)
		if err != nil {
			return RunSpec{}, err
		}
		spec.Name, spec.Source = "request.json (as TOML)", src
	default:
		return RunSpec{}, errors.New(`run request: "workflow" must be a TOML string or a JSON object`)
	}
	if _, empty := spec.Inputs[""]; empty {
		return RunSpec{}, errors.New("run request: inputs has an empty name; use the names the workflow declares under [inputs]")
	}
	return spec, nil
}

// closeRuns refuses new runs, cancels the running ones and waits for them
// (at most until ctx is done).
func (s *Server) closeRuns(ctx context.Context) error {
	s.runMu.Lock()
	s.runsClosed = true
	s.runMu.Unlock()
	s.runCancel()
	done := make(chan struct{})
	go func() { s.runWG.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("workflow runs still stopping after the shutdown timeout: %w", ctx.Err())
	}
}

// Close stops the background workflow runs (as Serve does on shutdown) and
// waits for them until ctx is done, then writes every queued ledger record
// of the chat endpoint and stops its recorder. Use it when serving Handler
// yourself, before closing the ledger.
func (s *Server) Close(ctx context.Context) error {
	err := s.closeRuns(ctx)
	if lerr := s.closeLedger(ctx); lerr != nil && err == nil {
		err = fmt.Errorf("server: flushing the ledger: %w", lerr)
	}
	return err
}
