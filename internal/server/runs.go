package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/provider"
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
	// Admit is the calling key's admission check, set by the server.
	// Prepare must call it once the workflow is planned and before it
	// records the run, with the plan's predicted mean cost and the
	// workflow's max_cost_usd, and then run the workflow under the budget
	// it returns (nano-USD, recorded in the ledger as the run's budget; 0
	// = no cap). When it fails (a *QuotaError), Prepare records nothing
	// and returns its error. A key with a daily budget cannot start a run
	// through a service that does not call it.
	Admit func(Admission) (budgetNano int64, err error)
	// Owner is the name of the calling key ("" when the server has no
	// keys). A service that is a RunDirectory records it with the run.
	Owner string
}

// Admission is what Prepare tells the server's admission check about a
// planned run; amounts are nano-USD.
type Admission struct {
	// PredictedMeanNano is the plan's predicted mean cost.
	PredictedMeanNano int64
	// BudgetNano is the workflow's own max_cost_usd; 0 = none.
	BudgetNano int64
}

// NanoUSD converts a USD amount (an estimate or max_cost_usd) to whole
// nano-USD, rounding up; negative and NaN amounts give 0.
func NanoUSD(usd float64) int64 {
	if !(usd > 0) {
		return 0
	}
	return int64(math.Min(math.Ceil(usd*1e9), math.MaxInt64/2))
}

// QuotaError refuses a run that the calling key's daily budget cannot
// cover: the server answers 429 insufficient_quota, as for chat
// completions.
type QuotaError struct {
	Key        string
	NeedNano   int64 // the run's predicted mean cost
	LeftNano   int64 // what the key has left today, less what is held in flight
	BudgetNano int64 // the key's daily budget
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("key %q: this run's predicted mean cost is $%.6f, more than the $%.6f left today (UTC) of the key's daily budget of $%.2f, counting requests and runs in flight; retry tomorrow, make the workflow cheaper, or ask the operator to raise budget_usd_per_day",
		e.Key, float64(e.NeedNano)/1e9, float64(max(e.LeftNano, 0))/1e9, float64(e.BudgetNano)/1e9)
}

// PreparedRun is a run recorded in the ledger and not started yet.
type PreparedRun struct {
	// ID is the ledger's run id.
	ID string
	// Execute runs it to the end. ctx is cancelled when the server shuts
	// down, or with the cause ErrRunCancelled by POST
	// /v1/runs/{id}/cancel; Execute then stops between calls and leaves
	// the run resumable (see SettleOnCancel for the calls in flight).
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

// ErrRunCancelled is the cause of the context a cancelled run's Execute
// sees (context.Cause).
var ErrRunCancelled = errors.New("run cancelled by POST /v1/runs/{id}/cancel")

// RunSummarizer is implemented by a RunService that can tell a run's
// status and spend: GET /v1/runs lists them, and the calling key is
// charged the spend when its run ends. Without it the list shows the
// server's own view of a run (running, ended, cancelled) with no cost, and
// a key is charged the whole budget its run was admitted with.
type RunSummarizer interface {
	// Summary returns what the ledger holds of the run, or an error
	// wrapping ErrRunNotFound.
	Summary(ctx context.Context, id string) (RunSummary, error)
}

// RunDirectory is implemented by a RunService that records each run's
// owner (RunSpec.Owner) where it outlives the process, as the ledger does.
// A key then still reads and lists the runs it started before the server
// restarted, and a cancel of one gets a clear answer instead of 404.
// Without it the server knows only the runs it started itself (the last
// 4,096).
type RunDirectory interface {
	// OwnerOf returns the owner recorded with run id ("" for a run started
	// without one), or an error wrapping ErrRunNotFound.
	OwnerOf(ctx context.Context, id string) (string, error)
	// OwnedRuns returns owner's runs, newest first: at most limit, and
	// whether there are more.
	OwnedRuns(ctx context.Context, owner string, limit int) ([]OwnedRun, bool, error)
}

// OwnedRun is a run as a RunDirectory lists it.
type OwnedRun struct {
	ID string
	// Status is the ledger's: running, succeeded, failed or
	// budget_exhausted.
	Status            string
	Simulated         bool
	SpentNano         int64
	PredictedMeanNano int64
	BudgetNano        int64 // 0: no cap
	Started, Updated  time.Time
	// StopNote says why a run still "running" stopped (cancelled,
	// interrupted by a shutdown); "" otherwise.
	StopNote string
}

// RunSummary is a run's state as its RunSummarizer reports it.
type RunSummary struct {
	// Status is the ledger's: running, succeeded, failed or
	// budget_exhausted.
	Status string
	// SpentNano is what the run's calls cost so far, in nano-USD.
	SpentNano int64
}

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
//
// A key with a daily budget pays for its runs like for its chat
// completions (a simulated run costs it nothing): the run is refused (429
// insufficient_quota) when its predicted mean cost is more than the key
// has left today, counting what requests and runs in flight hold;
// otherwise it holds min(the workflow's max_cost_usd, what the key has
// left) while it runs, and executes under that budget, so that no run
// takes the key past its budget by more than the executor lets one call
// overshoot its reservation. When the run ends (or is cancelled or
// interrupted) the hold is settled: the key is charged what the run spent.
func (s *Server) startRun(w http.ResponseWriter, r *http.Request, k *Key) {
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
	var kb *executor.Budget
	var day time.Time
	if !spec.Simulate {
		if kb, day, err = s.dayBudget(k); err != nil {
			release()
			s.log.Error("key budget", "key", k.Name, "err", err)
			writeError(w, http.StatusInternalServerError, "server_error", "ledger_error", "the gateway could not read this key's spend today: "+err.Error())
			return
		}
	}
	ad := &admission{key: k, kb: kb}
	spec.Admit = ad.admit
	if len(s.cfg.Keys) > 0 {
		spec.Owner = k.Name
	}
	pr, err := s.runs.Prepare(r.Context(), spec)
	if err == nil && kb != nil && !ad.called {
		if pr.Abandon != nil {
			pr.Abandon()
		}
		err = fmt.Errorf("the run service did not check run %s against key %q's daily budget (RunSpec.Admit); the run was recorded but not started", pr.ID, k.Name)
	}
	if err != nil {
		release()
		ad.settle(0)
		var ie *InputError
		var fe *InfeasibleError
		var qe *QuotaError
		switch {
		case errors.As(err, &ie):
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_workflow", ie.Msg)
		case errors.As(err, &fe):
			writeJSONBody(w, http.StatusUnprocessableEntity, fe.Body)
		case errors.As(err, &qe):
			s.m.rejected.WithLabelValues("budget").Inc()
			w.Header().Set("Retry-After", strconv.Itoa(int(day.Add(24*time.Hour).Sub(s.now()).Seconds())+1))
			writeError(w, http.StatusTooManyRequests, "insufficient_quota", "insufficient_quota", qe.Error())
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
		ad.settle(0)
		if pr.Abandon != nil {
			pr.Abandon()
		}
		writeError(w, http.StatusServiceUnavailable, "server_error", "shutting_down",
			fmt.Sprintf("the server is shutting down; run %s was recorded but not started: continue it with `costwise run --resume %s`", pr.ID, pr.ID))
		return
	}
	s.runWG.Add(1)
	s.runMu.Unlock()
	ctx, cancel := context.WithCancelCause(s.runCtx)
	ent := &runEntry{id: pr.ID, key: k.Name, started: s.now().UTC(), simulated: spec.Simulate,
		predictedNano: ad.predictedNano, budgetNano: ad.budgetNano, cancel: cancel}
	s.runTab.add(ent)
	go func() {
		defer s.runWG.Done()
		defer release()
		defer cancel(nil)
		if err := pr.Execute(ctx); err != nil {
			s.log.Error("workflow run", "run", pr.ID, "err", err)
		}
		spent := ad.held
		if sum, ok := s.runs.(RunSummarizer); ok && ad.hold != nil {
			if rs, err := sum.Summary(context.Background(), pr.ID); err == nil {
				spent = rs.SpentNano
			} else {
				s.log.Error("workflow run: reading its spend; the key is charged its whole hold", "run", pr.ID, "err", err)
			}
		}
		ad.settle(spent)
		s.runTab.end(ent, s.now().UTC())
	}()
	w.Header().Set("Location", "/v1/runs/"+pr.ID)
	writeJSONBody(w, http.StatusAccepted, RunAccepted{RunID: pr.ID, Status: "running"})
}

// admission is one POST /v1/runs request's check against its key's
// daily budget, and the money it holds there while the run executes.
type admission struct {
	key *Key
	kb  *executor.Budget // nil: the key has no daily budget, or the run is simulated

	called                    bool
	predictedNano, budgetNano int64
	hold                      *executor.Reservation
	held                      int64
}

// admit is RunSpec.Admit.
func (a *admission) admit(in Admission) (int64, error) {
	if a.called {
		return 0, errors.New("the run service checked one run against the key's budget twice (RunSpec.Admit); call it once")
	}
	a.called, a.predictedNano = true, max(in.PredictedMeanNano, 0)
	budget := max(in.BudgetNano, 0)
	if a.kb != nil {
		left := a.kb.Remaining()
		if left <= 0 || a.predictedNano > left {
			return 0, &QuotaError{Key: a.key.Name, NeedNano: a.predictedNano, LeftNano: left, BudgetNano: a.key.BudgetNanoPerDay}
		}
		if budget == 0 || budget > left {
			budget = left
		}
		res, err := a.kb.Reserve(budget)
		if err != nil { // a request took the money since Remaining
			return 0, &QuotaError{Key: a.key.Name, NeedNano: a.predictedNano, LeftNano: a.kb.Remaining(), BudgetNano: a.key.BudgetNanoPerDay}
		}
		a.hold, a.held = res, budget
	}
	a.budgetNano = budget
	return budget, nil
}

// settle charges the key spent and releases the hold (once; a no-op
// without one).
func (a *admission) settle(spent int64) {
	if a.hold != nil {
		a.hold.Settle(spent)
	}
}

// getRun answers GET /v1/runs/{id}. With keys configured a key sees only
// the runs it started (404 for others'): on this server, or before it
// restarted when the RunService is a RunDirectory; without keys any run in
// the ledger can be read. A run cancelled over HTTP shows status
// "cancelling" until its calls in flight settle, then "cancelled".
func (s *Server) getRun(w http.ResponseWriter, r *http.Request, k *Key) {
	if s.runs == nil {
		writeError(w, http.StatusNotImplemented, "invalid_request_error", "not_implemented", "this server has no workflow runner")
		return
	}
	id := r.PathValue("id")
	ent, ok := s.runFor(w, r, k, id)
	if !ok {
		return
	}
	out, err := s.runs.Get(r.Context(), id)
	if err != nil {
		if errors.Is(err, ErrRunNotFound) {
			writeRunNotFound(w, id)
			return
		}
		s.log.Error("GET /v1/runs/{id}", "run", id, "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "internal_error", err.Error())
		return
	}
	if st := s.runTab.heldStatus(ent); st != "" {
		out = withStatus(out, st)
	}
	writeJSONBody(w, http.StatusOK, out)
}

// runFor finds run id for key k; it answers 404 (or 500) itself and
// returns false when k may not see it. ent is nil for a run this server
// did not start: readable without keys, or by its owner as the
// RunDirectory records it.
func (s *Server) runFor(w http.ResponseWriter, r *http.Request, k *Key, id string) (ent *runEntry, ok bool) {
	ent = s.runTab.get(id)
	if ent != nil && ent.key == k.Name {
		return ent, true
	}
	if ent == nil && len(s.cfg.Keys) == 0 {
		return nil, true
	}
	if dir, isDir := s.runs.(RunDirectory); isDir && ent == nil {
		owner, err := dir.OwnerOf(r.Context(), id)
		switch {
		case err == nil && owner == k.Name:
			return nil, true
		case err != nil && !errors.Is(err, ErrRunNotFound):
			s.log.Error("reading a run's owner", "run", id, "err", err)
			writeError(w, http.StatusInternalServerError, "server_error", "internal_error", err.Error())
			return nil, false
		}
	}
	writeRunNotFound(w, id)
	return nil, false
}

func writeRunNotFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, "invalid_request_error", "run_not_found",
		fmt.Sprintf("no run %q for this key; POST /v1/runs answers with the run_id to poll, GET /v1/runs lists yours", id))
}

// withStatus returns a run's JSON object body with "status" replaced;
// other bodies are returned as they are.
func withStatus(body any, status string) any {
	b, err := json.Marshal(body)
	if err != nil {
		return body
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(b, &obj) != nil || obj == nil {
		return body
	}
	obj["status"], _ = json.Marshal(status)
	return obj
}

// RunListItem is one run in the answer of GET /v1/runs.
type RunListItem struct {
	RunID string `json:"run_id"`
	// Status is the ledger's (running, succeeded, failed,
	// budget_exhausted), or cancelling / cancelled for a run cancelled
	// over HTTP, or ended when the service cannot tell.
	Status    string  `json:"status"`
	Simulated bool    `json:"simulated"`
	CostUSD   float64 `json:"cost_usd"`
	// CostNanoUSD is CostUSD in nano-USD; null when the service cannot
	// tell.
	CostNanoUSD      *int64   `json:"cost_nano_usd"`
	PredictedCostUSD float64  `json:"predicted_cost_usd"`
	BudgetUSD        *float64 `json:"budget_usd"` // null: no cap
	StartedAt        string   `json:"started_at"`
	EndedAt          *string  `json:"ended_at"` // null while running
	// StopNote says why a run the ledger still holds as running stopped
	// (cancelled, interrupted by a shutdown); omitted otherwise.
	StopNote string `json:"stop_note,omitempty"`
}

// RunList is the answer of GET /v1/runs.
type RunList struct {
	Object  string        `json:"object"` // "list"
	Data    []RunListItem `json:"data"`
	HasMore bool          `json:"has_more"`
}

// Limits of GET /v1/runs?limit=.
const (
	DefaultRunListLimit = 20
	MaxRunListLimit     = 100
)

// listRuns answers GET /v1/runs[?limit=N]: the runs the calling key
// started, newest first: on this server, and before it restarted when the
// RunService is a RunDirectory (without keys: every run started on this
// server).
func (s *Server) listRuns(w http.ResponseWriter, r *http.Request, k *Key) {
	if s.runs == nil {
		writeError(w, http.StatusNotImplemented, "invalid_request_error", "not_implemented", "this server has no workflow runner")
		return
	}
	limit := DefaultRunListLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxRunListLimit {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_limit",
				fmt.Sprintf("limit=%q: give a whole number from 1 to %d", truncate(v), MaxRunListLimit))
			return
		}
		limit = n
	}
	if dir, ok := s.runs.(RunDirectory); ok && len(s.cfg.Keys) > 0 {
		s.listOwnedRuns(w, r, dir, k, limit)
		return
	}
	ents, more := s.runTab.list(k.Name, limit)
	sum, _ := s.runs.(RunSummarizer)
	out := RunList{Object: "list", Data: make([]RunListItem, 0, len(ents)), HasMore: more}
	for _, e := range ents {
		it := RunListItem{RunID: e.id, Simulated: e.simulated, PredictedCostUSD: float64(e.predictedNano) / 1e9,
			StartedAt: e.started.Format(time.RFC3339Nano)}
		if e.budgetNano > 0 {
			b := float64(e.budgetNano) / 1e9
			it.BudgetUSD = &b
		}
		status, ended := e.status, e.ended
		if !ended.IsZero() {
			t := ended.Format(time.RFC3339Nano)
			it.EndedAt = &t
		}
		it.Status = status
		if sum != nil {
			rs, err := sum.Summary(r.Context(), e.id)
			if err != nil && !errors.Is(err, ErrRunNotFound) {
				s.log.Error("GET /v1/runs", "run", e.id, "err", err)
				writeError(w, http.StatusInternalServerError, "server_error", "internal_error", err.Error())
				return
			}
			if err == nil {
				it.CostUSD, it.CostNanoUSD = float64(rs.SpentNano)/1e9, &rs.SpentNano
				if status == "" {
					it.Status = rs.Status
				}
			}
		}
		if it.Status == "" {
			it.Status = "running"
			if !ended.IsZero() {
				it.Status = "ended"
			}
		}
		out.Data = append(out.Data, it)
	}
	writeJSONBody(w, http.StatusOK, out)
}

// listOwnedRuns answers GET /v1/runs from the RunDirectory: the key's runs
// as recorded, with the status of a cancel in progress on this server.
func (s *Server) listOwnedRuns(w http.ResponseWriter, r *http.Request, dir RunDirectory, k *Key, limit int) {
	runs, more, err := dir.OwnedRuns(r.Context(), k.Name, limit)
	if err != nil {
		s.log.Error("GET /v1/runs", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "internal_error", err.Error())
		return
	}
	out := RunList{Object: "list", Data: make([]RunListItem, 0, len(runs)), HasMore: more}
	for _, run := range runs {
		spent := run.SpentNano
		it := RunListItem{RunID: run.ID, Status: run.Status, Simulated: run.Simulated,
			CostUSD: float64(spent) / 1e9, CostNanoUSD: &spent, PredictedCostUSD: float64(run.PredictedMeanNano) / 1e9,
			StartedAt: run.Started.UTC().Format(time.RFC3339Nano), StopNote: run.StopNote}
		if run.BudgetNano > 0 {
			b := float64(run.BudgetNano) / 1e9
			it.BudgetUSD = &b
		}
		if run.Status != "running" {
			t := run.Updated.UTC().Format(time.RFC3339Nano)
			it.EndedAt = &t
		}
		if e, ok := s.runTab.snapshot(run.ID); ok && e.key == k.Name {
			if e.status != "" {
				it.Status = e.status
			}
			if it.EndedAt == nil && !e.ended.IsZero() {
				t := e.ended.Format(time.RFC3339Nano)
				it.EndedAt = &t
			}
		}
		out.Data = append(out.Data, it)
	}
	writeJSONBody(w, http.StatusOK, out)
}

// RunCancelled is the answer of POST /v1/runs/{id}/cancel.
type RunCancelled struct {
	RunID string `json:"run_id"`
	// Status is "cancelling" while calls in flight settle, then
	// "cancelled".
	Status string `json:"status"`
	// Resume is how to continue the run later.
	Resume string `json:"resume"`
}

// cancelRun answers POST /v1/runs/{id}/cancel: the run starts no new call,
// the calls in flight settle (when the service wraps its clients with
// SettleOnCancel) and are recorded, and the run stops, resumable. 202 while
// calls are settling, 200 once stopped, 409 for a run that already ended,
// 404 for an unknown run or another key's.
func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request, k *Key) {
	if s.runs == nil {
		writeError(w, http.StatusNotImplemented, "invalid_request_error", "not_implemented", "this server has no workflow runner")
		return
	}
	id := r.PathValue("id")
	ent, ok := s.runFor(w, r, k, id)
	if !ok {
		return
	}
	if ent == nil { // started before this server restarted, or not by it
		msg := fmt.Sprintf("run %q is not executing on this server", id)
		if sum, isSum := s.runs.(RunSummarizer); isSum {
			if rs, err := sum.Summary(r.Context(), id); err == nil {
				msg += "; its status in the ledger is " + rs.Status
			}
		}
		writeError(w, http.StatusConflict, "invalid_request_error", "run_not_executing",
			msg+fmt.Sprintf("; there is nothing to cancel (a run left running by a stopped server continues with costwise run --resume %s)", id))
		return
	}
	status, ok := s.runTab.cancel(ent)
	if !ok {
		msg := fmt.Sprintf("run %q has already ended", id)
		if sum, isSum := s.runs.(RunSummarizer); isSum {
			if rs, err := sum.Summary(r.Context(), id); err == nil {
				msg += " with status " + rs.Status
			}
		}
		writeError(w, http.StatusConflict, "invalid_request_error", "run_ended", msg+"; there is nothing to cancel")
		return
	}
	code := http.StatusAccepted
	if status == "cancelled" {
		code = http.StatusOK
	}
	w.Header().Set("Location", "/v1/runs/"+id)
	writeJSONBody(w, code, RunCancelled{RunID: id, Status: status,
		Resume: fmt.Sprintf("costwise run --resume %s (on the same workflow text); nodes that succeeded are not paid for again", id)})
}

// maxRunEntries bounds the runs a server remembers; the oldest ended ones
// are forgotten first (their owner then gets 404 for them).
const maxRunEntries = 4096

// runEntry is a run started on this server: who owns it and how far it
// got.
type runEntry struct {
	id, key        string
	started, ended time.Time // ended: zero while Execute runs
	simulated      bool
	predictedNano  int64
	budgetNano     int64
	// status is "" (ask the service), "cancelling" or "cancelled".
	status string
	cancel context.CancelCauseFunc
}

// runTable is the runs a server started, oldest first. The zero value is
// ready to use.
type runTable struct {
	mu   sync.Mutex
	byID map[string]*runEntry
	all  []*runEntry
}

func (t *runTable) add(e *runEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID == nil {
		t.byID = map[string]*runEntry{}
	}
	t.byID[e.id] = e
	t.all = append(t.all, e)
	if len(t.all) <= maxRunEntries {
		return
	}
	keep := t.all[:0]
	drop := len(t.all) - maxRunEntries
	for _, x := range t.all {
		if drop > 0 && !x.ended.IsZero() {
			delete(t.byID, x.id)
			drop--
			continue
		}
		keep = append(keep, x)
	}
	clear(t.all[len(keep):])
	t.all = keep
}

func (t *runTable) get(id string) *runEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byID[id]
}

// end marks e's Execute returned at now.
func (t *runTable) end(e *runEntry, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.ended = now
	if e.status == "cancelling" {
		e.status = "cancelled"
	}
}

// cancel cancels e unless it has ended; it returns its status.
func (t *runTable) cancel(e *runEntry) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case e.status != "":
		return e.status, true
	case !e.ended.IsZero():
		return "", false
	}
	e.status = "cancelling"
	e.cancel(ErrRunCancelled)
	return e.status, true
}

// snapshot returns a copy of run id's entry, read under the table's lock.
func (t *runTable) snapshot(id string) (runEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.byID[id]
	if !ok {
		return runEntry{}, false
	}
	return *e, true
}

// heldStatus is the status the server overrides the service's with ("" for
// none). e may be nil.
func (t *runTable) heldStatus(e *runEntry) string {
	if e == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return e.status
}

// list returns copies of key's newest limit runs, newest first, and
// whether it has more ("anonymous" without keys sees all).
func (t *runTable) list(key string, limit int) ([]runEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []runEntry
	for i := len(t.all) - 1; i >= 0; i-- {
		if e := t.all[i]; e.key == key {
			if len(out) == limit {
				return out, true
			}
			out = append(out, *e)
		}
	}
	return out, false
}

// SettleOnCancel wraps a run's clients so that cancelling the run over
// HTTP lets its calls in flight finish: a call that began before the
// cancel runs to its end (or its own timeout) and is recorded with what
// the provider billed, while a call that begins after it fails at once
// without being sent. A shutdown (or any other cancel of the run's
// context) still abandons the calls in flight. RunServices pass the
// clients of the executor they build in Prepare through it.
func SettleOnCancel(c executor.Clients) executor.Clients { return settlingClients{c} }

type settlingClients struct{ executor.Clients }

func (s settlingClients) Client(name string) (provider.Client, error) {
	c, err := s.Clients.Client(name)
	if err != nil {
		return nil, err
	}
	return settlingClient{c}, nil
}

type settlingClient struct{ provider.Client }

func (c settlingClient) Call(ctx context.Context, req provider.Request) (provider.Response, error) {
	if ctx.Err() != nil {
		return c.Client.Call(ctx, req) // not sent: the client reports the context's error
	}
	callCtx, stop := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stop(nil)
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithDeadline(callCtx, d)
		defer cancel()
	}
	unhook := context.AfterFunc(ctx, func() {
		if cause := context.Cause(ctx); !errors.Is(cause, ErrRunCancelled) {
			stop(cause)
		}
	})
	defer unhook()
	return c.Client.Call(callCtx, req)
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
