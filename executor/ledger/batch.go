package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CompletedRun is a run written in one piece after it ended: a routed
// request, whose records an asynchronous recorder holds in memory until the
// request has been answered. [Ledger.RecordRuns] writes several of them per
// transaction.
type CompletedRun struct {
	// Run is the run as CreateRun takes it. Run.ID is required: make it
	// with NewRunID when the run starts.
	Run NewRun
	// Status is how the run ended: succeeded, failed or budget_exhausted.
	Status RunStatus
	// CreatedAt is when the run started; zero means when it is written.
	CreatedAt time.Time
	// Nodes are the nodes that ran. One listed in Run.Nodes is written
	// with its outcome in its planned place; one that is not is added
	// after the planned ones, as StartNode adds it. Planned nodes missing
	// here stay pending.
	Nodes []CompletedNode
}

// CompletedNode is one node of a CompletedRun.
type CompletedNode struct {
	ID string
	// StartedAt is when the node started; zero means its first attempt's
	// start, or when it is written.
	StartedAt time.Time
	// FinishedAt is when the node ended; zero means when it is written.
	FinishedAt time.Time
	// Attempts are the node's calls in the order they began (the accepted
	// one, if any, last). RunID and NodeID are filled in from the run and
	// the node. Seq must be 0: the run's calls are numbered 1, 2, ... in
	// the order of Nodes and their Attempts. Zero timestamps and latency
	// are filled in as RecordAttempt fills them.
	Attempts []Attempt
	// Result is how the node ended: succeeded, failed or skipped.
	Result NodeResult
	// ReplanNote, when set, marks the node replanned (see MarkReplanned).
	ReplanNote string
}

// RecordRuns writes completed runs, all in one transaction: one BEGIN
// IMMEDIATE ... COMMIT, so one fsync under SyncFull however many runs
// there are, which is what lets a busy gateway record every request
// without one commit per write.
//
// Each run is all or nothing: it is checked first (the same rules as
// CreateRun, RecordAttempt and FinishNode, plus a final status and an id)
// and a run that is refused — invalid, or an id already in the ledger — is
// left out entirely and reported in errs[i] while the others are written.
// Should a run fail in the database for another reason, the batch is
// rolled back and written again with each run in its own savepoint, so
// that only that run is left out. The batch as a whole is atomic too:
// after a crash either every run it wrote is in the ledger or none is. err
// is non-nil when the transaction itself failed (begin, prepare, commit);
// then nothing was written and errs is nil.
//
// The rows are those the step-by-step methods would have written for the
// same run: planned nodes pending unless they ran, the run's spent equal to
// the sum of its attempts (the same trigger adds them), last_seq the number
// of attempts, updated_at the time of writing.
func (l *Ledger) RecordRuns(runs []CompletedRun) (errs []error, err error) {
	now := l.now()
	errs = make([]error, len(runs))
	ok := 0
	for i := range runs {
		if errs[i] = runs[i].validate(now); errs[i] == nil {
			ok++
		}
	}
	if ok == 0 {
		return errs, nil
	}
	op := fmt.Sprintf("record %d runs", ok)
	dbErrs := make([]error, len(runs))
	err = l.write(op, func(ctx context.Context, tx *sql.Tx) error {
		return writeRuns(ctx, tx, runs, errs, dbErrs, now, false)
	})
	var failed *runFailed
	if errors.As(err, &failed) {
		clear(dbErrs)
		err = l.write(op, func(ctx context.Context, tx *sql.Tx) error {
			return writeRuns(ctx, tx, runs, errs, dbErrs, now, true)
		})
	}
	if err != nil {
		return nil, err
	}
	for i, e := range dbErrs {
		if e != nil {
			errs[i] = e
		}
	}
	return errs, nil
}

// runFailed is a run that failed in the database (other than by its id
// being taken) during a batch written without savepoints.
type runFailed struct{ err error }

func (e *runFailed) Error() string { return e.err.Error() }
func (e *runFailed) Unwrap() error { return e.err }

// writeRuns writes the runs that passed validation (refused[i] == nil).
// A run whose id is taken is reported in dbErrs. Any other failure of a
// run aborts the transaction with a *runFailed, unless isolated: then each
// run is written in its own savepoint and its failure, rolled back to it,
// goes to dbErrs.
func writeRuns(ctx context.Context, tx *sql.Tx, runs []CompletedRun, refused, dbErrs []error, now time.Time, isolated bool) error {
	st, err := prepareBatch(ctx, tx, isolated)
	if err != nil {
		return err
	}
	defer st.close()
	for i := range runs {
		if refused[i] != nil {
			continue
		}
		if isolated {
			if _, err := st.save.ExecContext(ctx); err != nil {
				return err
			}
		}
		werr := st.writeRun(ctx, &runs[i], now)
		switch {
		case werr == nil:
		case errors.Is(werr, errRunTaken):
			dbErrs[i] = fmt.Errorf("%w: run id %q is already in the ledger", ErrInvalid, runs[i].Run.ID)
			werr = nil
		case !isolated:
			return &runFailed{werr}
		default:
			if _, err := st.rollback.ExecContext(ctx); err != nil {
				return err
			}
			dbErrs[i] = werr
		}
		if isolated {
			if _, err := st.release.ExecContext(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// errRunTaken: the run's id is already in the ledger; nothing of it was
// written.
var errRunTaken = errors.New("run id taken")

// validate checks a completed run before anything is written, with now
// the time of writing (for the attempts' default times).
func (r *CompletedRun) validate(now time.Time) error {
	nr := &r.Run
	where := func(format string, a ...any) error {
		return invalid("run %q: %s", nr.ID, fmt.Sprintf(format, a...))
	}
	switch {
	case nr.ID == "":
		return invalid("run.id is empty; a completed run needs the id it was given when it started (NewRunID)")
	case nr.WorkflowName == "":
		return where("run.workflow_name is empty")
	case nr.BudgetMaxNano < 0:
		return where("run.budget_max_nano is %d; use 0 for no budget", nr.BudgetMaxNano)
	case !r.Status.valid() || r.Status == RunRunning:
		return where("status %q: use succeeded, failed or budget_exhausted", r.Status)
	}
	for _, f := range []struct {
		name string
		raw  []byte
	}{{"inputs", nr.Inputs}, {"plan", nr.Plan}} {
		if _, err := jsonOrEmpty(f.name, f.raw); err != nil {
			return where("%v", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		}
	}
	seen := make(map[string]bool, len(nr.Nodes)+len(r.Nodes))
	for i, n := range nr.Nodes {
		if n.ID == "" {
			return where("run.nodes[%d] has an empty id", i)
		}
		if seen[n.ID] {
			return where("run.nodes[%d]: node %q listed twice", i, n.ID)
		}
		seen[n.ID] = true
	}
	done := make(map[string]bool, len(r.Nodes))
	for i := range r.Nodes {
		n := &r.Nodes[i]
		if n.ID == "" {
			return where("nodes[%d] has an empty id", i)
		}
		if done[n.ID] {
			return where("nodes[%d]: node %q listed twice", i, n.ID)
		}
		done[n.ID] = true
		if err := n.Result.validate(); err != nil {
			return where("node %q: %v", n.ID, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		}
		if !n.StartedAt.IsZero() && !n.FinishedAt.IsZero() && n.FinishedAt.Before(n.StartedAt) {
			return where("node %q finished (%s) before it started (%s)", n.ID,
				n.FinishedAt.Format(time.RFC3339Nano), n.StartedAt.Format(time.RFC3339Nano))
		}
		for j := range n.Attempts {
			a := &n.Attempts[j]
			if a.Seq != 0 {
				return where("node %q attempts[%d].seq is %d; leave it 0, a batch numbers the run's calls in the order given", n.ID, j, a.Seq)
			}
			if err := a.validate(); err != nil {
				return where("node %q attempts[%d]: %v", n.ID, j, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
			}
			if start, end := attemptTimes(a, now); end.Before(start) {
				return where("node %q attempts[%d] ended (%s) before it started (%s)", n.ID, j,
					end.Format(time.RFC3339Nano), start.Format(time.RFC3339Nano))
			}
		}
	}
	return nil
}

// batchStmts are the statements of one RecordRuns transaction, prepared
// once for all its runs.
type batchStmts struct {
	save, rollback, release *sql.Stmt
	run, node, attempt      *sql.Stmt
}

// Savepoints cost: SQLite then copies every page a statement changes to a
// statement journal (a temporary file), so the batch is first written
// without them.
func prepareBatch(ctx context.Context, tx *sql.Tx, savepoints bool) (*batchStmts, error) {
	st := &batchStmts{}
	type stmt struct {
		dst **sql.Stmt
		sql string
	}
	var list []stmt
	if savepoints {
		list = append(list, stmt{&st.save, `SAVEPOINT record_run`}, stmt{&st.rollback, `ROLLBACK TO record_run`},
			stmt{&st.release, `RELEASE record_run`})
	}
	for _, p := range append(list, []stmt{
		{&st.run, `
			INSERT INTO runs (id, workflow_name, workflow_file, workflow_hash, inputs_json, plan_json,
				predicted_mean_usd, predicted_p95_usd, budget_max_nano, status, simulated, last_seq, created_at, updated_at, owner)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`},
		{&st.node, `
			INSERT INTO nodes (run_id, node_id, ord, status, final_model, output, predicted_cost_usd,
				started_at, finished_at, replanned, replan_note, task)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.attempt, `
			INSERT INTO attempts (run_id, node_id, seq, iteration, model, provider, outcome, reason, may_have_billed,
				input_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, output_tokens,
				reasoning_tokens, audio_in_tokens, audio_out_tokens, images,
				usage_reported, cost_nano, latency_ms, started_at, ended_at, purpose, confidence)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
	}...) {
		s, err := tx.PrepareContext(ctx, p.sql)
		if err != nil {
			st.close()
			return nil, err
		}
		*p.dst = s
	}
	return st, nil
}

func (st *batchStmts) close() {
	for _, s := range []*sql.Stmt{st.save, st.rollback, st.release, st.run, st.node, st.attempt} {
		if s != nil {
			_ = s.Close()
		}
	}
}

// writeRun inserts one validated run, its nodes and its attempts.
func (st *batchStmts) writeRun(ctx context.Context, r *CompletedRun, now time.Time) error {
	nr := &r.Run
	inputs, _ := jsonOrEmpty("inputs", nr.Inputs) // validated
	plan, _ := jsonOrEmpty("plan", nr.Plan)
	created := r.CreatedAt
	if created.IsZero() {
		created = now
	}
	calls := 0
	for i := range r.Nodes {
		calls += len(r.Nodes[i].Attempts)
	}
	res, err := st.run.ExecContext(ctx, nr.ID, nr.WorkflowName, nr.WorkflowFile, nr.WorkflowHash, inputs, plan,
		nr.PredictedMeanUSD, nr.PredictedP95USD, nr.BudgetMaxNano, string(r.Status), nr.Simulated, calls,
		nanos(created), nanos(now), nr.Owner)
	if err != nil {
		return fmt.Errorf("ledger: record run %q: %w", nr.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errRunTaken
	}
	byID := make(map[string]*CompletedNode, len(r.Nodes))
	for i := range r.Nodes {
		byID[r.Nodes[i].ID] = &r.Nodes[i]
	}
	// Nodes first, in plan order then the unplanned ones, so the attempts'
	// foreign keys hold; then the attempts, numbered in the order given.
	ord := 0
	for _, p := range nr.Nodes {
		if err := st.writeNode(ctx, nr.ID, ord, p, byID[p.ID], now); err != nil {
			return err
		}
		delete(byID, p.ID)
		ord++
	}
	for i := range r.Nodes {
		n := &r.Nodes[i]
		if _, extra := byID[n.ID]; !extra {
			continue
		}
		if err := st.writeNode(ctx, nr.ID, ord, PlannedNode{ID: n.ID}, n, now); err != nil {
			return err
		}
		ord++
	}
	var seq int64
	for i := range r.Nodes {
		n := &r.Nodes[i]
		for j := range n.Attempts {
			seq++
			if err := st.writeAttempt(ctx, nr.ID, n.ID, seq, n.Attempts[j], now); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeNode inserts a planned node as pending (n nil) or a node that ran.
func (st *batchStmts) writeNode(ctx context.Context, runID string, ord int, p PlannedNode, n *CompletedNode, now time.Time) error {
	var err error
	if n == nil {
		_, err = st.node.ExecContext(ctx, runID, p.ID, ord, string(NodePending), "", "", p.PredictedCostUSD,
			nil, nil, false, "", p.Task)
	} else {
		started, finished := n.StartedAt, n.FinishedAt
		if started.IsZero() && len(n.Attempts) > 0 {
			started = n.Attempts[0].StartedAt
		}
		if finished.IsZero() {
			finished = now
		}
		if started.IsZero() || started.After(finished) {
			started = finished
		}
		_, err = st.node.ExecContext(ctx, runID, n.ID, ord, string(n.Result.Status), n.Result.FinalModel, n.Result.Output,
			p.PredictedCostUSD, nanos(started), nanos(finished), n.ReplanNote != "", n.ReplanNote, p.Task)
	}
	if err != nil {
		return fmt.Errorf("ledger: record node %q of run %q: %w", p.ID, runID, err)
	}
	return nil
}

// attemptTimes are a's start and end with recordAttempt's defaults: the
// end is now when unset, the start the end.
func attemptTimes(a *Attempt, now time.Time) (start, end time.Time) {
	start, end = a.StartedAt, a.EndedAt
	if end.IsZero() {
		end = now
	}
	if start.IsZero() {
		start = end
	}
	return start, end
}

// writeAttempt inserts one attempt, filling its defaults as recordAttempt
// does.
func (st *batchStmts) writeAttempt(ctx context.Context, runID, nodeID string, seq int64, a Attempt, now time.Time) error {
	a.StartedAt, a.EndedAt = attemptTimes(&a, now) // validated: not ended before started
	if a.LatencyMS == 0 {
		a.LatencyMS = a.EndedAt.Sub(a.StartedAt).Milliseconds()
	}
	u := a.Usage
	_, err := st.attempt.ExecContext(ctx, runID, nodeID, seq, a.Iteration, a.Model, a.Provider, string(a.Outcome), a.Reason,
		a.MayHaveBilled, u.InputTokens, u.CacheReadTokens, u.CacheWrite5mTokens, u.CacheWrite1hTokens, u.OutputTokens,
		u.ReasoningTokens, u.AudioInputTokens, u.AudioOutputTokens, u.Images,
		a.UsageReported, a.CostNano, a.LatencyMS, nanos(a.StartedAt), nanos(a.EndedAt), string(a.purpose()), a.Confidence)
	if err != nil {
		return fmt.Errorf("ledger: record attempt %d of node %q of run %q: %w", seq, nodeID, runID, err)
	}
	return nil
}
