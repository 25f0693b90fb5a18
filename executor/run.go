package executor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/estimator/tokens"
	"github.com/costwise/costwise/executor/provider"
	"github.com/costwise/costwise/graph"
	"github.com/costwise/costwise/planner"
)

// Run statuses.
const (
	StatusSucceeded       = "succeeded"
	StatusFailed          = "failed"
	StatusBudgetExhausted = "budget_exhausted"
	StatusRunning         = "running"
)

// Node statuses.
const (
	NodeSucceeded = "succeeded"
	NodeFailed    = "failed"
	NodeSkipped   = "skipped"
)

// Attempt outcomes.
const (
	OutcomeOK            = "ok"
	OutcomeError         = "error"
	OutcomeInvalid       = "invalid"
	OutcomeTimeout       = "timeout"
	OutcomeRateLimited   = "rate_limited"
	OutcomeContextLength = "context_length"
	OutcomeAuth          = "auth"
	OutcomeBudget        = "budget"
)

// Clients hands out a provider's client; *provider.Config implements it, and
// so does the simulated provider.
type Clients interface {
	Client(name string) (provider.Client, error)
}

// Options tune a run.
type Options struct {
	Concurrency int           // nodes in flight at once (default 4)
	MaxRetries  int           // retries of a transient failure on one model (default 3)
	BackoffBase time.Duration // first retry delay (default 500 ms), doubled each retry, with jitter
	BackoffMax  time.Duration // cap on one delay (default 30 s)
	Seed        uint64        // jitter seed
	Simulated   bool          // the clients are the simulated provider: marked everywhere
	// OnEvent, when set, receives progress events (node started, attempt
	// ended, node finished); it is called from several goroutines.
	OnEvent func(Event)
	// Replan, when set, is called after each node succeeds with the outputs
	// of the nodes done so far and the budget left (nano-USD, -1 when
	// unlimited); it returns new ladders by node id (online re-planning).
	// Nodes that have not started yet take their new ladder.
	Replan func(ctx context.Context, done map[string]string, remainingNano int64) (map[string][]string, error)
	// Cascades are the fitted cascades Replan may put on a ladder; those of
	// the plan itself are known without it.
	Cascades []estimator.Cascade
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	retryDefaults(&o.MaxRetries, &o.BackoffBase, &o.BackoffMax)
	return o
}

// retryDefaults fills the retry settings that Options and RouterOptions
// share: 3 retries (a negative count means none), a 500 ms first delay,
// 30 s at most.
func retryDefaults(maxRetries *int, base, maxDelay *time.Duration) {
	if *maxRetries < 0 {
		*maxRetries = 0
	} else if *maxRetries == 0 {
		*maxRetries = 3
	}
	if *base <= 0 {
		*base = 500 * time.Millisecond
	}
	if *maxDelay <= 0 {
		*maxDelay = 30 * time.Second
	}
}

// Event is a progress report.
type Event struct {
	Node    string
	Kind    string // "start", "attempt", "done"
	Attempt *Attempt
	Status  string
}

// Attempt is one provider call.
type Attempt struct {
	Node          string
	Iteration     int
	Model         string
	Provider      string
	Outcome       string
	Reason        string
	MayHaveBilled bool
	Usage         catalog.Usage
	UsageReported bool
	CostNano      int64
	Latency       time.Duration
	Started       time.Time
	// Purpose is "" for an answer, PurposeSelfCheck for a cascade's check.
	Purpose string
	// Confidence is the cascade signal judged on this answer (0..1); nil
	// when none was.
	Confidence *float64
}

// PurposeSelfCheck marks a cascade's self-check call.
const PurposeSelfCheck = "self_check"

// NodeResult is a node's outcome in a run.
type NodeResult struct {
	ID            string
	Status        string
	Model         string // the model whose output was kept
	Output        string
	CostNano      int64
	PredictedUSD  float64
	Attempts      []Attempt
	Escalations   int  // rungs climbed
	Resumed       bool // completed in an earlier session of the run
	ReplannedFrom string

	final    *Attempt // the accepted attempt, recorded with the node's result
	finalSeq int64
}

// Result is a whole run's outcome.
type Result struct {
	RunID        string
	Status       string
	Error        string // why the run failed or stopped
	CostNano     int64
	PredictedUSD estimator.Dist
	Nodes        []*NodeResult // topological order
	Simulated    bool
}

// Recorder persists a run as it happens (the ledger). Every method must be
// durable when it returns. A call is announced (BeginAttempt) before it is
// sent, so that a crash during the call leaves a trace that a resume can
// charge; the attempt that completes a node is recorded together with the
// node's result (FinishNode with final set), so that a crash can never leave
// a paid, accepted answer without its node marked done.
type Recorder interface {
	StartNode(runID, nodeID string) error
	BeginAttempt(runID string, a *Attempt, estimateNano int64) (seq int64, err error)
	RecordAttempt(runID string, seq int64, a *Attempt) error
	FinishNode(runID string, n *NodeResult, final *Attempt, finalSeq int64) error
}

// Executor runs planned workflows.
type Executor struct {
	cat     *catalog.Catalog
	clients Clients
	rec     Recorder
	opts    Options
}

// New returns an executor. rec may be nil (nothing is persisted).
func New(cat *catalog.Catalog, clients Clients, rec Recorder, opts Options) *Executor {
	return &Executor{cat: cat, clients: clients, rec: rec, opts: opts.withDefaults()}
}

// Spec is what one run needs.
type Spec struct {
	RunID     string
	Plan      *planner.Result
	Inputs    map[string]string
	BudgetNan int64             // max_cost in nano-USD (0 = none)
	Spent     int64             // already spent (a resumed run)
	Done      map[string]string // node id -> output of nodes completed earlier (resume)
}

// fatalError stops the whole run (auth, invalid request).
type fatalError struct{ msg string }

func (e *fatalError) Error() string { return e.msg }

// Run executes the plan: nodes in topological order, independent nodes
// concurrently, each through its fallback ladder.
func (x *Executor) Run(ctx context.Context, spec Spec) (*Result, error) {
	w := spec.Plan.Workflow
	rules, err := CompileRules(w)
	if err != nil {
		return nil, err
	}
	res := &Result{RunID: spec.RunID, Status: StatusRunning, PredictedUSD: spec.Plan.Totals.Cost.Dist, Simulated: x.opts.Simulated}
	budget := NewBudget(spec.BudgetNan, spec.Spent)
	st := &runState{x: x, spec: spec, rules: rules, budget: budget, outputs: map[string]string{}, results: make([]*NodeResult, len(w.Nodes)),
		rng: rand.New(rand.NewPCG(x.opts.Seed, 99)), started: map[int]bool{}, ladders: map[int][]string{},
		cascades: cascadeIndex(spec, x.opts.Cascades)}
	for id, out := range spec.Done {
		st.outputs[id] = out
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st.cancel = cancel

	// Schedule: a node starts when all its predecessors have finished.
	remaining := make([]int, len(w.Nodes))
	for i := range w.Nodes {
		remaining[i] = len(w.Preds(i))
	}
	ready := make(chan int, len(w.Nodes))
	for _, i := range w.Order() {
		if remaining[i] == 0 {
			ready <- i
		}
	}
	sem := make(chan struct{}, x.opts.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	finished := 0
	for finished < len(w.Nodes) {
		i := <-ready
		finished++
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			st.runNode(ctx, i)
			mu.Lock()
			for _, s := range w.Succs(i) {
				remaining[s]--
				if remaining[s] == 0 {
					ready <- s
				}
			}
			mu.Unlock()
		}(i)
	}
	wg.Wait()

	res.CostNano = budget.Spent()
	for _, i := range w.Order() {
		res.Nodes = append(res.Nodes, st.results[i])
	}
	switch {
	case st.fatal != "":
		res.Status, res.Error = StatusFailed, st.fatal
	case st.exhausted != "":
		res.Status, res.Error = StatusBudgetExhausted, st.exhausted
	case st.failed != "":
		res.Status, res.Error = StatusFailed, st.failed
	case st.interrupted != "":
		res.Status, res.Error = StatusFailed, st.interrupted
	default:
		res.Status = StatusSucceeded
	}
	return res, nil
}

type runState struct {
	x       *Executor
	spec    Spec
	rules   *Rules
	budget  *Budget
	cancel  context.CancelFunc
	mu      sync.Mutex
	outputs map[string]string
	results []*NodeResult
	rng     *rand.Rand
	started map[int]bool
	ladders map[int][]string // re-planned ladders
	// cascades resolves the cascade IDs of ladders.
	cascades map[string]*estimator.Cascade

	fatal, exhausted, failed string // first reason of each kind
	interrupted              string // the caller's context ended with nodes left to run

	// stopped halts the run without cancelling calls in flight: they finish
	// and settle (and are recorded with what the provider billed), while no
	// new node starts and no new call is reserved.
	stopped atomic.Bool
}

// errStopped ends a node's work because the run is stopping.
var errStopped = errors.New("the run is stopping")

// halt stops the run from starting new work.
func (st *runState) halt() { st.stopped.Store(true) }

func (st *runState) setOnce(field *string, msg string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if *field == "" {
		*field = msg
	}
}

func (st *runState) event(e Event) {
	if st.x.opts.OnEvent != nil {
		st.x.opts.OnEvent(e)
	}
}

// runNode runs node i through its ladder and stores its result.
func (st *runState) runNode(ctx context.Context, i int) {
	w := st.spec.Plan.Workflow
	n := w.Nodes[i]
	nr := &NodeResult{ID: n.ID}
	st.mu.Lock()
	st.results[i] = nr
	st.started[i] = true
	if l, ok := st.ladders[i]; ok {
		nr.ReplannedFrom = assignmentOf(st.spec.Plan, i).Ladder[0]
		nr.ReplannedFrom += " -> " + l[0]
	}
	st.mu.Unlock()
	if a := assignmentOf(st.spec.Plan, i); a != nil {
		nr.PredictedUSD = a.Candidate.Cost.Mean
	}
	if out, ok := st.spec.Done[n.ID]; ok {
		nr.Status, nr.Output, nr.Resumed = NodeSucceeded, out, true
		st.event(Event{Node: n.ID, Kind: "done", Status: "resumed"})
		return
	}
	interrupted := false // the caller's context ended before the node started
	defer func() {
		if st.x.rec != nil && !nr.Resumed && !interrupted {
			if err := st.x.rec.FinishNode(st.spec.RunID, nr, nr.final, nr.finalSeq); err != nil {
				st.setOnce(&st.fatal, "ledger: "+err.Error())
				st.halt()
			}
		}
		st.event(Event{Node: n.ID, Kind: "done", Status: nr.Status})
	}()
	if ctx.Err() != nil {
		// Not run, and left pending in the ledger: a resume runs it.
		nr.Status, interrupted = NodeSkipped, true
		st.setOnce(&st.interrupted, fmt.Sprintf("interrupted before node %q started: %v", n.ID, context.Cause(ctx)))
		return
	}
	if st.stopped.Load() {
		nr.Status = NodeSkipped
		return
	}
	st.mu.Lock()
	outputs := make(map[string]string, len(st.outputs))
	for k, v := range st.outputs {
		outputs[k] = v
	}
	st.mu.Unlock()
	// A failed upstream node fails this one too: its prompt would be empty.
	for _, p := range w.Preds(i) {
		if r := st.results[p]; r != nil && r.Status == NodeFailed {
			nr.Status = NodeSkipped
			return
		}
	}
	if ok, err := st.rules.runs(n.ID, st.spec.Inputs, outputs); err != nil || !ok {
		nr.Status = NodeSkipped
		if err != nil {
			st.setOnce(&st.failed, fmt.Sprintf("node %q: run_if: %v", n.ID, err))
			nr.Status = NodeFailed
		}
		return
	}
	st.event(Event{Node: n.ID, Kind: "start"})
	if st.x.rec != nil {
		if err := st.x.rec.StartNode(st.spec.RunID, n.ID); err != nil {
			nr.Status = NodeFailed
			st.setOnce(&st.fatal, "ledger: "+err.Error())
			st.halt()
			return
		}
	}
	system := render(n.System, st.spec.Inputs, outputs)
	prompt := render(n.Prompt, st.spec.Inputs, outputs)
	out, err := st.loop(ctx, i, nr, system, prompt)
	if err != nil {
		nr.Status = NodeFailed
		var be *ErrBudgetExhausted
		var fe *fatalError
		switch {
		case errors.As(err, &be):
			st.setOnce(&st.exhausted, fmt.Sprintf("node %q: %v", n.ID, err))
			st.halt()
		case errors.As(err, &fe):
			st.setOnce(&st.fatal, fmt.Sprintf("node %q: %v", n.ID, err))
			st.halt()
		case errors.Is(err, errStopped):
			// The run is stopping for another node's reason.
		default:
			st.setOnce(&st.failed, fmt.Sprintf("node %q: %v", n.ID, err))
		}
		return
	}
	nr.Status, nr.Output = NodeSucceeded, out
	st.mu.Lock()
	st.outputs[n.ID] = out
	st.mu.Unlock()
	st.replan(ctx)
}

// replan asks for new ladders for the nodes that have not started.
func (st *runState) replan(ctx context.Context) {
	if st.x.opts.Replan == nil || ctx.Err() != nil {
		return
	}
	w := st.spec.Plan.Workflow
	st.mu.Lock()
	done := make(map[string]string, len(st.outputs))
	for k, v := range st.outputs {
		done[k] = v
	}
	pending := 0
	for i := range w.Nodes {
		if !st.started[i] {
			pending++
		}
	}
	st.mu.Unlock()
	if pending == 0 {
		return
	}
	ladders, err := st.x.opts.Replan(ctx, done, st.budget.Remaining())
	if err != nil || ladders == nil {
		return // keep the current plan: re-planning is an optimisation
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for i, n := range w.Nodes {
		l, ok := ladders[n.ID]
		if !ok || st.started[i] || len(l) == 0 {
			continue
		}
		if cur := st.ladderLocked(i); len(cur) > 0 && cur[0] != l[0] {
			st.ladders[i] = l
		}
	}
}

// ladderOf is node i's current ladder: re-planned, or the plan's.
func (st *runState) ladderOf(i int) []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.ladderLocked(i)
}

func (st *runState) ladderLocked(i int) []string {
	if l, ok := st.ladders[i]; ok {
		return l
	}
	if a := assignmentOf(st.spec.Plan, i); a != nil {
		return a.Ladder
	}
	return nil
}

func assignmentOf(p *planner.Result, i int) *planner.Assignment {
	for k := range p.Assignments {
		if p.Assignments[k].Index == i {
			return &p.Assignments[k]
		}
	}
	return nil
}

// loop runs the node's iterations: one call, or a repeat loop that resends
// the history and stops when repeat.until holds or at repeat.max (without
// until, after round(repeat.mean) iterations).
func (st *runState) loop(ctx context.Context, i int, nr *NodeResult, system, prompt string) (string, error) {
	n := st.spec.Plan.Workflow.Nodes[i]
	iters := 1
	if n.Repeat.Max > 1 {
		iters = n.Repeat.Max
		if st.rules.until[n.ID] == nil || st.x.opts.Simulated {
			iters = max(1, int(math.Round(n.Repeat.Mean)))
		}
	}
	var last string
	conversation := prompt    // as one text: what is counted, checked and simulated
	var turns []provider.Turn // with history, what is sent: the conversation's messages
	for k := 1; k <= iters; k++ {
		out, err := st.ladder(ctx, i, nr, k, system, conversation, turns, iters == 1)
		if err != nil {
			return "", err
		}
		last = out
		if u := st.rules.until[n.ID]; u != nil && !st.x.opts.Simulated {
			if ok, _ := u.Check(out, k); ok {
				break
			}
		}
		if n.Repeat.History {
			conversation += "\n\n[assistant]\n" + out + "\n\n[user]\nContinue."
			if turns == nil {
				turns = []provider.Turn{{Role: provider.TurnUser, Text: prompt}}
			}
			turns = append(turns, provider.Turn{Role: provider.TurnAssistant, Text: out}, provider.Turn{Role: provider.TurnUser, Text: "Continue."})
		}
	}
	return last, nil
}

// ladder makes one iteration's call, climbing the node's fallback ladder.
// final says that an accepted answer completes the node.
func (st *runState) ladder(ctx context.Context, i int, nr *NodeResult, iteration int, system, prompt string, turns []provider.Turn, final bool) (string, error) {
	n := st.spec.Plan.Workflow.Nodes[i]
	ladder := st.ladderOf(i)
	if len(ladder) == 0 {
		return "", fmt.Errorf("the plan has no model for this node")
	}
	// Simulated outputs cannot satisfy a validate rule: the simulator fails
	// calls by quality instead.
	var check func(string) (bool, string)
	v, schema := st.rules.validate[n.ID], st.rules.schema[n.ID]
	if (v != nil || schema != nil) && !st.x.opts.Simulated {
		check = func(out string) (bool, string) {
			if schema != nil {
				if why := schema.mismatch(out); why != "" {
					return false, why
				}
			}
			if v == nil {
				return true, ""
			}
			ok, err := v.Check(out, iteration)
			switch {
			case err != nil:
				return false, "validate rule failed: " + err.Error()
			case !ok:
				return false, fmt.Sprintf("validate rule %s is false", v)
			}
			return true, ""
		}
	}
	rungs, err := st.rungs(ladder)
	if err != nil {
		return "", &fatalError{msg: err.Error()}
	}
	var lastErr error
	var tooLongFor int64 // context window that proved too small
	for rung, rg := range rungs {
		m, ok := st.x.cat.Lookup(rg.model)
		if !ok {
			lastErr = fmt.Errorf("model %s is not in the catalog", rg.model)
			continue
		}
		if tooLongFor > 0 && m.ContextWindow > 0 && m.ContextWindow <= tooLongFor {
			continue // a context-length error moves to the first rung with a larger window
		}
		if rung > 0 {
			nr.Escalations++
		}
		out, err := st.callWithRetries(ctx, i, nr, iteration, m, system, prompt, turns, check, final, rg.gate)
		if err == nil {
			nr.Model = m.ID
			return out, nil
		}
		lastErr = err
		var be *ErrBudgetExhausted
		var fe *fatalError
		if errors.As(err, &be) || errors.As(err, &fe) || errors.Is(err, errStopped) || ctx.Err() != nil {
			return "", err
		}
		if errors.Is(err, provider.ErrContextLength) {
			tooLongFor = max(m.ContextWindow, 1)
		}
	}
	return "", fmt.Errorf("every model of the ladder failed; last: %w", lastErr)
}

// errInvalidOutput is an answer that a validate rule rejected.
var errInvalidOutput = errors.New("invalid output")

// callWithRetries calls one model, retrying transient failures with
// exponential backoff and jitter (honouring Retry-After). An answer is
// checked before its attempt is recorded; an accepted final answer is kept
// in nr for FinishNode instead of being recorded alone.
//
// A cascade stage's answer must also pass its gate: a confidence below the
// threshold (or no signal) rejects it like an invalid output, so the ladder
// moves on to the next stage.
func (st *runState) callWithRetries(ctx context.Context, i int, nr *NodeResult, iteration int, m *catalog.Model, system, prompt string,
	turns []provider.Turn, check func(string) (bool, string), final bool, g *gate) (string, error) {
	n := st.spec.Plan.Workflow.Nodes[i]
	client, err := st.x.clients.Client(m.Provider)
	if err != nil {
		return "", &fatalError{msg: fmt.Sprintf("provider %q for model %s: %v", m.Provider, m.ID, err)}
	}
	// The prompt is counted once: retries send the same text.
	reserve, maxOut, err := st.reservation(i, m, system, prompt)
	if err != nil {
		return "", err
	}
	for try := 0; ; try++ {
		if st.stopped.Load() {
			return "", errStopped
		}
		res, err := st.budget.Reserve(reserve)
		if err != nil {
			at := Attempt{Node: n.ID, Iteration: iteration, Model: m.ID, Provider: m.Provider, Outcome: OutcomeBudget, Reason: err.Error(), Started: time.Now()}
			if rerr := st.record(nr, 0, &at); rerr != nil {
				return "", rerr
			}
			return "", err
		}
		start := time.Now()
		at := Attempt{Node: n.ID, Iteration: iteration, Model: m.ID, Provider: m.Provider, Started: start}
		var seq int64
		if st.x.rec != nil {
			if seq, err = st.x.rec.BeginAttempt(st.spec.RunID, &at, reserve); err != nil {
				res.Settle(0)
				return "", &fatalError{msg: "ledger: " + err.Error()}
			}
		}
		callCtx := ctx
		if st.x.opts.Simulated {
			h := st.simHint(i, m)
			h.gate = g
			callCtx = withSimHint(ctx, h)
		}
		preq := provider.Request{Model: apiName(m), System: system, Prompt: prompt, Turns: turns, MaxTokens: maxOut,
			CacheFirstTurn: cachesPrefix(n),
			JSON:           slices.Contains(n.Requires, graph.RequireJSON), LogProbs: g != nil && g.signal == estimator.SignalLogprob}
		if s := st.rules.schema[n.ID]; s != nil {
			preq.JSONSchema = s.spec
		}
		resp, callErr := client.Call(callCtx, preq)
		at.Latency = time.Since(start)
		if resp.Latency > 0 {
			at.Latency = resp.Latency
		}
		simInvalid := errors.Is(callErr, errSimulatedInvalid)
		if callErr == nil || simInvalid {
			at.Outcome, at.Usage, at.UsageReported, at.MayHaveBilled = OutcomeOK, resp.Usage, resp.UsageReported, true
			c := catalog.Price(m, resp.Usage)
			at.CostNano = c.NanoUSD()
			if !resp.UsageReported {
				at.Reason = "provider returned no usage: tokens counted locally, cost estimated"
			}
			if !c.Complete() {
				at.Reason = strings.TrimSpace(at.Reason + " unpriced components: " + unknownList(c))
			}
			switch {
			case simInvalid:
				at.Outcome, at.Reason, callErr = OutcomeInvalid, callErr.Error(), errInvalidOutput
			case check != nil:
				if ok, why := check(resp.Text); !ok {
					at.Outcome, at.Reason, callErr = OutcomeInvalid, why, fmt.Errorf("%w: %s", errInvalidOutput, why)
				}
			}
		} else {
			at.Outcome, at.Reason = classify(callErr)
			at.MayHaveBilled = mayHaveBilled(callErr)
		}
		res.Settle(at.CostNano)
		if callErr == nil && g != nil {
			conf, how := st.judge(ctx, i, nr, iteration, m, system, prompt, resp, g)
			at.Confidence = confidencePtr(conf)
			if math.IsNaN(conf) || conf < g.threshold {
				why := fmt.Sprintf("cascade %s: confidence %.3g (%s) below threshold %.3g; escalating", g.cascade, conf, how, g.threshold)
				if math.IsNaN(conf) {
					why = fmt.Sprintf("cascade %s: no confidence (%s); escalating", g.cascade, how)
				}
				at.Outcome, at.Reason = OutcomeInvalid, strings.TrimSpace(at.Reason+" "+why)
				callErr = fmt.Errorf("%w: %s", errInvalidOutput, at.Reason)
			}
		}
		if callErr == nil && final && st.x.rec != nil {
			st.keepFinal(nr, seq, at)
			return resp.Text, nil
		}
		if err := st.record(nr, seq, &at); err != nil {
			return "", err
		}
		if callErr == nil {
			return resp.Text, nil
		}
		switch {
		case errors.Is(callErr, errInvalidOutput):
			return "", callErr // escalate at once: the answer was paid for but is unusable
		case errors.Is(callErr, provider.ErrAuth), errors.Is(callErr, provider.ErrInvalidRequest):
			return "", &fatalError{msg: fmt.Sprintf("%s (%s): %s", m.Provider, m.ID, fixFor(callErr))}
		case errors.Is(callErr, provider.ErrContextLength):
			return "", callErr
		case !provider.Retryable(callErr) || try >= st.x.opts.MaxRetries:
			return "", callErr
		}
		if err := st.sleep(ctx, try, provider.RetryAfter(callErr)); err != nil {
			return "", err
		}
	}
}

// keepFinal holds the accepted attempt that completes the node.
func (st *runState) keepFinal(nr *NodeResult, seq int64, a Attempt) {
	st.mu.Lock()
	nr.Attempts = append(nr.Attempts, a)
	nr.CostNano += a.CostNano
	kept := a
	nr.final, nr.finalSeq = &kept, seq
	st.mu.Unlock()
	st.event(Event{Node: a.Node, Kind: "attempt", Attempt: &a})
}

func (st *runState) record(nr *NodeResult, seq int64, a *Attempt) error {
	st.mu.Lock()
	nr.Attempts = append(nr.Attempts, *a)
	nr.CostNano += a.CostNano
	st.mu.Unlock()
	st.event(Event{Node: a.Node, Kind: "attempt", Attempt: a})
	if st.x.rec == nil {
		return nil
	}
	if err := st.x.rec.RecordAttempt(st.spec.RunID, seq, a); err != nil {
		return &fatalError{msg: "ledger: " + err.Error()}
	}
	return nil
}

// sleep waits before retry try+1: base x 2^try with full jitter, at least
// the provider's Retry-After, at most BackoffMax.
func (st *runState) sleep(ctx context.Context, try int, retryAfter time.Duration) error {
	d := st.x.opts.BackoffBase << try
	st.mu.Lock()
	d = time.Duration(float64(d) * (0.5 + st.rng.Float64()/2))
	st.mu.Unlock()
	d = max(d, retryAfter)
	d = min(d, st.x.opts.BackoffMax)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// simHint tells the simulator what the estimator expects of node i on m.
func (st *runState) simHint(i int, m *catalog.Model) simHint {
	ne := &st.spec.Plan.Estimate.Nodes[i]
	h := simHint{outMean: ne.OutputTokens.Mean, outP95: ne.OutputTokens.P95, node: ne.ID}
	if c, ok := st.spec.Plan.Estimate.Candidate(i, m.ID); ok {
		h.quality = c.Quality
	}
	return h
}

// reservation is what one call may cost at most, and the output cap that
// makes it so: the prompt counted locally (exact for OpenAI tokenizers, the
// provider's ratio plus its uncertainty band otherwise, plus framing) and
// the node's max output, or twice its p95 when it gives no max, capped by
// the model's own limit. The call is sent with that cap as max_tokens, so a
// provider that honours it cannot bill more than the reservation by more
// than the input estimate's error.
func (st *runState) reservation(i int, m *catalog.Model, system, prompt string) (int64, int, error) {
	n := st.spec.Plan.Workflow.Nodes[i]
	out := math.Ceil(2 * st.spec.Plan.Estimate.Nodes[i].OutputTokens.P95)
	if n.OutputTokens.Max > 0 {
		out = float64(n.OutputTokens.Max)
	}
	// A cached prefix is written at the cache-write price, above the
	// input price: reserve the whole prompt at it.
	return reserveFor(m, system+"\n"+prompt, out, cachesPrefix(n))
}

// cachesPrefix reports whether a node's calls ask the provider to cache
// their prefix (provider.Request.CacheFirstTurn): a loop that resends its
// history and declares a cacheable prefix, whose later iterations then read
// the system prompt and first message from the cache. A single call would
// only pay the cache write: its first message holds the run's own inputs,
// which no other run resends.
func cachesPrefix(n *graph.Node) bool {
	return n.CachePrefixTokens > 0 && n.Repeat.History && n.Repeat.Max > 1
}

// reserveFor is the most a call of m sending text and writing at most out
// tokens (capped by the model's limit) may cost, and that output cap. With
// cacheWrite the prompt is priced at the cache-write rate when the model
// has one above its input rate (a call that writes the cache).
func reserveFor(m *catalog.Model, text string, out float64, cacheWrite bool) (int64, int, error) {
	var in int
	if m.Tokenizer != "" {
		c, err := tokens.Count(tokens.Encoding(m.Tokenizer), text)
		if err != nil {
			return 0, 0, err
		}
		in = c
	} else {
		rule := tokens.RuleForProvider(m.Provider)
		if m.TokenRatio > 0 {
			rule.Ratio = m.TokenRatio
		}
		c, err := tokens.CountText(rule, text)
		if err != nil {
			return 0, 0, err
		}
		in = c.High()
	}
	if m.MaxOutputTokens > 0 {
		out = math.Min(out, float64(m.MaxOutputTokens))
	}
	out = math.Max(out, 1)
	u := catalog.Usage{InputTokens: int64(in) + chatFraming, OutputTokens: int64(out)}
	if cw := m.CacheWritePerMTok; cacheWrite && cw.Known && cw.Value > m.InputPerMTok.Value {
		u.CacheWriteTokens, u.InputTokens = u.InputTokens, 0
	}
	c := catalog.Price(m, u)
	return c.NanoUSD(), int(out), nil
}

func apiName(m *catalog.Model) string {
	if m.APIName != "" {
		return m.APIName
	}
	_, name, _ := strings.Cut(m.ID, "/")
	return name
}

func unknownList(c catalog.Cost) string {
	parts := make([]string, len(c.Unknown))
	for i, u := range c.Unknown {
		parts[i] = string(u.Component)
	}
	return strings.Join(parts, ", ")
}

// classify maps a provider error to an attempt outcome and reason.
func classify(err error) (string, string) {
	msg := err.Error()
	switch {
	case errors.Is(err, provider.ErrRateLimited):
		return OutcomeRateLimited, msg
	case errors.Is(err, provider.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimeout, msg
	case errors.Is(err, provider.ErrContextLength):
		return OutcomeContextLength, msg
	case errors.Is(err, provider.ErrAuth):
		return OutcomeAuth, msg
	}
	return OutcomeError, msg
}

func mayHaveBilled(err error) bool {
	var pe *provider.Error
	if errors.As(err, &pe) {
		return pe.MayHaveBilled
	}
	return true // unknown failure: assume the worst
}

// fixFor says what to do about a fatal provider error.
func fixFor(err error) string {
	switch {
	case errors.Is(err, provider.ErrAuth):
		return err.Error() + "; check the API key variable named in the provider's api_key_env"
	case errors.Is(err, provider.ErrInvalidRequest):
		return err.Error() + "; the request was rejected as invalid: check the model's upstream name and the node's settings"
	}
	return err.Error()
}

// chatFraming is OpenAI's framing of a system and a user message plus the
// reply priming (3 + 3 + 3 tokens), added to every reservation.
const chatFraming = 9
