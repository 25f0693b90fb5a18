package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/graph"
	"github.com/costwise/costwise/internal/server"
	"github.com/costwise/costwise/planner"
)

// cliRuns answers POST /v1/runs and GET /v1/runs/{id} with the pipeline of
// `costwise run` (estimator.DefaultSamples runs, seed 1, 10 s search,
// re-planning after each node, 4 nodes at once) and its JSON contract.
type cliRuns struct {
	cat      *catalog.Catalog
	cascades []estimator.Cascade // offered to every workflow (--cascades)
	clients  executor.Clients    // the configured providers; nil allows simulated runs only
	led      *ledger.Ledger

	mu     sync.Mutex
	errors map[string]string // run id -> why it stopped, for runs this process executed
}

const serveRunSeed = 1

// pipeline is the planning pipeline of served runs.
func (c *cliRuns) pipeline() *pipeline {
	return &pipeline{cat: c.cat, samples: estimator.DefaultSamples, seed: serveRunSeed, cascades: c.cascades}
}

func (c *cliRuns) Prepare(ctx context.Context, rs server.RunSpec) (*server.PreparedRun, error) {
	w, err := graph.Parse(rs.Name, rs.Source)
	if err != nil {
		return nil, inputError(err)
	}
	if _, err := executor.CompileRules(w); err != nil {
		return nil, inputError(err)
	}
	inputs, err := requestInputs(w, rs.Inputs, rs.Simulate)
	if err != nil {
		return nil, err
	}
	p := c.pipeline()
	pl, err := p.plan(ctx, w, planner.Options{Timeout: 10 * time.Second, Alternatives: -1})
	if err != nil {
		return nil, serverError(err)
	}
	plan := pl.plan
	if !plan.Feasible {
		return nil, &server.InfeasibleError{Body: planJSON(plan)}
	}
	clients := c.clients
	if rs.Simulate {
		clients = executor.NewSimulator(c.cat, serveRunSeed)
	} else if clients == nil {
		return nil, &server.InputError{Msg: "this server has no provider configured; send \"simulate\": true, or add [providers.*] to its config"}
	}
	// The calling key's budget check: it may refuse the run, or cap it at
	// what the key has left today.
	budget := server.NanoUSD(w.Budget.MaxCostUSD)
	if rs.Admit != nil {
		if budget, err = rs.Admit(server.Admission{PredictedMeanNano: server.NanoUSD(plan.Totals.Cost.Mean), BudgetNano: budget}); err != nil {
			return nil, err
		}
	}
	spec := executor.Spec{Plan: plan, BudgetNan: budget, Inputs: inputs}
	spec.RunID, err = createLedgerRun(c.led, w, rs.Name, rs.Source, plan, inputs, rs.Simulate, budget, rs.Owner)
	if err != nil {
		return nil, err
	}
	opts := executor.Options{Concurrency: 4, Simulated: rs.Simulate, Seed: serveRunSeed,
		Replan: p.replan(pl, planner.Options{Timeout: 2 * time.Second}), Cascades: p.cascades}
	// A cancel over HTTP lets the calls in flight settle.
	x := executor.New(c.cat, server.SettleOnCancel(clients), executor.LedgerRecorder{L: c.led}, opts)
	return &server.PreparedRun{ID: spec.RunID, Execute: func(ctx context.Context) error {
		res, err := x.Run(ctx, spec)
		if err != nil {
			c.setError(spec.RunID, err.Error())
			return err
		}
		c.setError(spec.RunID, res.Error)
		if ctx.Err() != nil && res.Status != executor.StatusSucceeded {
			// Cancelled or interrupted by shutdown: the run stays
			// "running" in the ledger, resumable with `costwise run
			// --resume`, with a note saying why it stopped.
			why := "interrupted by the server's shutdown"
			if errors.Is(context.Cause(ctx), server.ErrRunCancelled) {
				why = "cancelled over HTTP (POST /v1/runs/" + spec.RunID + "/cancel)"
			}
			return c.led.NoteStop(spec.RunID, why+"; continue it with costwise run --resume "+spec.RunID)
		}
		return c.led.FinishRun(spec.RunID, ledger.RunStatus(res.Status))
	}}, nil
}

func (c *cliRuns) setError(id, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.errors == nil {
		c.errors = map[string]string{}
	}
	c.errors[id] = msg
}

// Summary is the run's ledger status and spend (server.RunSummarizer):
// GET /v1/runs lists them, and a key is charged the spend of its runs.
func (c *cliRuns) Summary(_ context.Context, id string) (server.RunSummary, error) {
	rec, err := c.led.Run(id)
	if err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			return server.RunSummary{}, fmt.Errorf("%w: %v", server.ErrRunNotFound, err)
		}
		return server.RunSummary{}, err
	}
	return server.RunSummary{Status: string(rec.Status), SpentNano: rec.SpentNano}, nil
}

// OwnerOf is the gateway key recorded with the run (server.RunDirectory).
func (c *cliRuns) OwnerOf(_ context.Context, id string) (string, error) {
	rec, err := c.led.Run(id)
	if err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			return "", fmt.Errorf("%w: %v", server.ErrRunNotFound, err)
		}
		return "", err
	}
	return rec.Owner, nil
}

// OwnedRuns lists the runs a gateway key started, from the ledger
// (server.RunDirectory).
func (c *cliRuns) OwnedRuns(_ context.Context, owner string, limit int) ([]server.OwnedRun, bool, error) {
	runs, more, err := c.led.RunsOwnedBy(owner, limit, executor.RouterWorkflowPrefix)
	if err != nil {
		return nil, false, err
	}
	out := make([]server.OwnedRun, len(runs))
	for i, r := range runs {
		out[i] = server.OwnedRun{ID: r.ID, Status: string(r.Status), Simulated: r.Simulated, SpentNano: r.SpentNano,
			PredictedMeanNano: server.NanoUSD(r.PredictedMeanUSD), BudgetNano: r.BudgetMaxNano,
			Started: r.CreatedAt, Updated: r.UpdatedAt, StopNote: r.StopNote}
	}
	return out, more, nil
}

func (c *cliRuns) Get(_ context.Context, id string) (any, error) {
	rec, err := c.led.Run(id)
	if err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			return nil, fmt.Errorf("%w: %v", server.ErrRunNotFound, err)
		}
		return nil, err
	}
	c.mu.Lock()
	msg := c.errors[id]
	c.mu.Unlock()
	return ledgerRunJSON(rec, msg), nil
}

// createLedgerRun records a new run of w, planned as plan, in the ledger
// (as `costwise run` does) and returns its id. src is the workflow text
// whose hash a resume checks; budgetNano the run's budget (0 = none);
// owner the gateway key that started it ("" for none).
func createLedgerRun(l *ledger.Ledger, w *graph.Workflow, file string, src []byte, plan *planner.Result, inputs map[string]string, simulate bool, budgetNano int64, owner string) (string, error) {
	inputsJSON, err := json.Marshal(inputs)
	if err != nil {
		return "", err
	}
	planJSON, err := json.Marshal(ladders(plan))
	if err != nil {
		return "", err
	}
	var nodes []ledger.PlannedNode
	for _, a := range plan.Assignments {
		nodes = append(nodes, ledger.PlannedNode{ID: a.Node, Task: w.Nodes[a.Index].Task, PredictedCostUSD: a.Candidate.Cost.Mean})
	}
	return l.CreateRun(ledger.NewRun{WorkflowName: w.Name, WorkflowFile: file, WorkflowHash: ledger.HashWorkflow(src),
		Inputs: inputsJSON, Plan: planJSON, PredictedMeanUSD: plan.Totals.Cost.Mean, PredictedP95USD: plan.Totals.Cost.P95,
		BudgetMaxNano: budgetNano, Simulated: simulate, Nodes: nodes, Owner: owner})
}

// requestInputs checks a run request's inputs against the workflow's
// declarations: an undeclared name, or (unless simulated) a missing one,
// is an *server.InputError naming them.
func requestInputs(w *graph.Workflow, given map[string]string, simulate bool) (map[string]string, error) {
	in := make(map[string]string, len(given))
	var unknown, missing []string
	for name, v := range given {
		if w.Input(name) == nil {
			unknown = append(unknown, name)
			continue
		}
		in[name] = v
	}
	for _, decl := range w.Inputs {
		if _, ok := in[decl.Name]; ok {
			continue
		}
		if simulate {
			in[decl.Name] = simulatedInput(decl)
		} else {
			missing = append(missing, decl.Name)
		}
	}
	sort.Strings(unknown)
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("inputs: the workflow declares no input %s; remove them or declare them under [inputs]", strings.Join(unknown, ", ")))
	}
	if len(missing) > 0 {
		msgs = append(msgs, fmt.Sprintf("missing inputs: %s; give each in \"inputs\": {\"NAME\": \"VALUE\"} (or send \"simulate\": true)", strings.Join(missing, ", ")))
	}
	if len(msgs) > 0 {
		return nil, &server.InputError{Msg: strings.Join(msgs, "\n")}
	}
	return in, nil
}

// nextAnswer is the first answer attempt after attempts[i] (self-checks
// skipped), or nil.
func nextAnswer(attempts []ledger.Attempt, i int) *ledger.Attempt {
	for j := i + 1; j < len(attempts); j++ {
		if attempts[j].Purpose != ledger.PurposeSelfCheck {
			return &attempts[j]
		}
	}
	return nil
}

// ledgerRunJSON is a recorded run in the JSON contract of `costwise run
// --json`, read back from the ledger. The ledger keeps the predicted mean
// and p95 only, so predicted_cost_usd has no p50/p99/max; errMsg is the
// executor's reason for a run this process executed ("" otherwise).
func ledgerRunJSON(rec *ledger.RunRecord, errMsg string) runOut {
	out := runOut{RunID: rec.ID, Status: string(rec.Status), Error: errMsg, Simulated: rec.Simulated,
		CostUSD: float64(rec.SpentNano) / 1e9, CostNanoUSD: rec.SpentNano,
		PredictedCostUSD: distOut{Mean: rec.PredictedMeanUSD, P95: ptr(rec.PredictedP95USD)}, Nodes: []runNode{}}
	for _, n := range rec.Nodes {
		rn := runNode{ID: n.NodeID, Status: string(n.Status), Model: n.FinalModel, Output: n.Output,
			PredictedUSD: n.PredictedCostUSD, Replanned: n.ReplanNote, Attempts: []runAttempt{}}
		var spent int64
		for i, a := range n.Attempts {
			spent += a.CostNano
			if next := nextAnswer(n.Attempts, i); a.Purpose != ledger.PurposeSelfCheck && a.Outcome != ledger.OutcomeOK &&
				next != nil && next.Iteration == a.Iteration && next.Model != a.Model {
				rn.Escalations++
			}
			purpose := ""
			if a.Purpose == ledger.PurposeSelfCheck {
				purpose = string(a.Purpose)
			}
			u := a.Usage
			lat := time.Duration(a.LatencyMS) * time.Millisecond
			if a.LatencyMS == 0 {
				lat = a.EndedAt.Sub(a.StartedAt)
			}
			rn.Attempts = append(rn.Attempts, runAttempt{Model: a.Model, Iteration: a.Iteration, Outcome: string(a.Outcome), Reason: a.Reason,
				Usage: map[string]any{"input_tokens": u.InputTokens, "cache_read_tokens": u.CacheReadTokens, "cache_write_tokens": u.CacheWrite5mTokens,
					"cache_write_1h_tokens": u.CacheWrite1hTokens, "output_tokens": u.OutputTokens, "reasoning_tokens": u.ReasoningTokens,
					"audio_input_tokens": u.AudioInputTokens, "audio_output_tokens": u.AudioOutputTokens},
				UsageReported: a.UsageReported, MayHaveBilled: a.MayHaveBilled, CostUSD: float64(a.CostNano) / 1e9, LatencyS: lat.Seconds(),
				Purpose: purpose, Confidence: a.Confidence})
		}
		rn.CostUSD = float64(spent) / 1e9
		out.Nodes = append(out.Nodes, rn)
	}
	return out
}
