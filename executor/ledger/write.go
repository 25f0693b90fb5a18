package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Writes take no context on purpose: the ledger must record a call that
// was paid for even when the executor's context has just been cancelled
// (Ctrl-C, deadline, budget stop). Each write is one short local
// transaction bounded by busy_timeout.

// write runs fn in one BEGIN IMMEDIATE transaction on the single writer
// connection and commits it; any error rolls everything back.
func (l *Ledger) write(op string, fn func(ctx context.Context, tx *sql.Tx) error) (err error) {
	ctx := context.Background()
	tx, err := l.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ledger: %s: begin: %w", op, err)
	}
	if err := fn(ctx, tx); err != nil {
		_ = tx.Rollback()
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNodeSucceeded) ||
			errors.Is(err, ErrWorkflowChanged) || errors.Is(err, ErrRunSucceeded) {
			return err // already names the run and node
		}
		return fmt.Errorf("ledger: %s: %w", op, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ledger: %s: commit: %w", op, err)
	}
	return nil
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func jsonOrEmpty(field string, b json.RawMessage) (string, error) {
	if len(strings.TrimSpace(string(b))) == 0 {
		return "{}", nil
	}
	if !json.Valid(b) {
		return "", invalid("run.%s is not valid JSON", field)
	}
	return string(b), nil
}

// CreateRun records a new run as running, with its planned nodes as
// pending, in one transaction, and returns its id (r.ID, or a new NewRunID
// when r.ID is empty).
func (l *Ledger) CreateRun(r NewRun) (string, error) {
	inputs, plan, err := r.check()
	if err != nil {
		return "", err
	}
	now := l.now()
	generated := r.ID == ""
	for try := 0; ; try++ {
		id := r.ID
		if generated {
			id = NewRunID(now)
		}
		err := l.write("create run "+id, func(ctx context.Context, tx *sql.Tx) error {
			return createRun(ctx, tx, r, id, inputs, plan, now)
		})
		switch {
		case err == nil:
			return id, nil
		case errors.Is(err, errRunExists) && generated && try < 5:
			continue
		case errors.Is(err, errRunExists):
			return "", fmt.Errorf("%w: run id %q is already in the ledger", ErrInvalid, id)
		default:
			return "", err
		}
	}
}

// check validates a new run and returns its inputs and plan as stored.
func (r NewRun) check() (inputs, plan string, err error) {
	if r.WorkflowName == "" {
		return "", "", invalid("run.workflow_name is empty")
	}
	if r.BudgetMaxNano < 0 {
		return "", "", invalid("run.budget_max_nano is %d; use 0 for no budget", r.BudgetMaxNano)
	}
	if inputs, err = jsonOrEmpty("inputs", r.Inputs); err != nil {
		return "", "", err
	}
	if plan, err = jsonOrEmpty("plan", r.Plan); err != nil {
		return "", "", err
	}
	seen := make(map[string]bool, len(r.Nodes))
	for i, n := range r.Nodes {
		if n.ID == "" {
			return "", "", invalid("run.nodes[%d] has an empty id", i)
		}
		if seen[n.ID] {
			return "", "", invalid("run.nodes[%d]: node %q listed twice", i, n.ID)
		}
		seen[n.ID] = true
	}
	return inputs, plan, nil
}

// createRun inserts run r as id (errRunExists when the id is taken).
func createRun(ctx context.Context, tx *sql.Tx, r NewRun, id, inputs, plan string, now time.Time) error {
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE id = ?`, id).Scan(&exists); err != nil {
		return err
	}
	if exists > 0 {
		return errRunExists
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO runs (id, workflow_name, workflow_file, workflow_hash, inputs_json, plan_json,
			predicted_mean_usd, predicted_p95_usd, budget_max_nano, status, simulated, created_at, updated_at, owner)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)`,
		id, r.WorkflowName, r.WorkflowFile, r.WorkflowHash, inputs, plan,
		r.PredictedMeanUSD, r.PredictedP95USD, r.BudgetMaxNano, r.Simulated, nanos(now), nanos(now), r.Owner); err != nil {
		return err
	}
	stmt, err := tx.PrepareContext(ctx, `
		INSERT INTO nodes (run_id, node_id, ord, status, predicted_cost_usd, task) VALUES (?, ?, ?, 'pending', ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for i, n := range r.Nodes {
		if _, err := stmt.ExecContext(ctx, id, n.ID, i, n.PredictedCostUSD, n.Task); err != nil {
			return fmt.Errorf("node %q: %w", n.ID, err)
		}
	}
	return nil
}

var errRunExists = errors.New("run id exists")

// touch bumps the run's updated_at and reports ErrNotFound for an unknown
// run.
func (l *Ledger) touch(ctx context.Context, tx *sql.Tx, runID string, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE runs SET updated_at = ? WHERE id = ?`, nanos(now), runID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return runNotFound(runID)
	}
	return nil
}

func nodeNotFound(runID, nodeID string) error {
	return fmt.Errorf("%w: run %q has no node %q (start it with StartNode)", ErrNotFound, runID, nodeID)
}

// StartNode marks a node running, inserting it if the plan did not list it,
// and sets its start time (clearing any finish time of an earlier failed
// try). It refuses a node that already succeeded with ErrNodeSucceeded.
func (l *Ledger) StartNode(runID, nodeID string) error {
	if nodeID == "" {
		return invalid("empty node id")
	}
	return l.write(fmt.Sprintf("start node %q of run %q", nodeID, runID), func(ctx context.Context, tx *sql.Tx) error {
		return l.startNode(ctx, tx, runID, nodeID, l.now())
	})
}

func (l *Ledger) startNode(ctx context.Context, tx *sql.Tx, runID, nodeID string, now time.Time) error {
	if err := l.touch(ctx, tx, runID, now); err != nil {
		return err
	}
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM nodes WHERE run_id = ? AND node_id = ?`, runID, nodeID).Scan(&status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, `
			INSERT INTO nodes (run_id, node_id, ord, status, started_at)
			VALUES (?, ?, (SELECT COALESCE(MAX(ord), -1) + 1 FROM nodes WHERE run_id = ?), 'running', ?)`,
			runID, nodeID, runID, nanos(now))
		return err
	case err != nil:
		return err
	case NodeStatus(status) == NodeSucceeded:
		return fmt.Errorf("%w: node %q of run %q; use its recorded output (CompletedNodes)", ErrNodeSucceeded, nodeID, runID)
	}
	_, err = tx.ExecContext(ctx, `
		UPDATE nodes SET status = 'running', started_at = ?, finished_at = NULL WHERE run_id = ? AND node_id = ?`,
		nanos(now), runID, nodeID)
	return err
}

// BeginAttempt records that a provider call is about to be sent and
// returns its sequence number, to be put in Attempt.Seq when the call is
// recorded. The in-flight row is what lets ResumeRun account for a call
// that may have been billed when the process died before RecordAttempt.
// Calling it is optional: RecordAttempt with Seq 0 works without it.
func (l *Ledger) BeginAttempt(c CallStart) (int64, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	var seq int64
	err := l.write(fmt.Sprintf("begin attempt of node %q of run %q", c.NodeID, c.RunID), func(ctx context.Context, tx *sql.Tx) error {
		var err error
		seq, err = beginAttempt(ctx, tx, c, l.now())
		return err
	})
	return seq, err
}

func (c CallStart) check() error {
	if c.Model == "" {
		return invalid("call.model is empty")
	}
	if c.Iteration < 0 || c.EstimateNano < 0 {
		return invalid("call.iteration (%d) and call.estimate_nano (%d) cannot be negative", c.Iteration, c.EstimateNano)
	}
	return nil
}

func beginAttempt(ctx context.Context, tx *sql.Tx, c CallStart, now time.Time) (int64, error) {
	if c.StartedAt.IsZero() {
		c.StartedAt = now
	}
	seq, err := nextSeq(ctx, tx, c.RunID, now)
	if err != nil {
		return 0, err
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO calls_in_flight (run_id, node_id, seq, iteration, model, provider, estimate_nano, started_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.RunID, c.NodeID, seq, c.Iteration, c.Model, c.Provider, c.EstimateNano, nanos(c.StartedAt))
	if isFKError(err) {
		return 0, nodeNotFound(c.RunID, c.NodeID)
	}
	return seq, err
}

// nextSeq allocates the run's next attempt number (and bumps updated_at).
func nextSeq(ctx context.Context, tx *sql.Tx, runID string, now time.Time) (int64, error) {
	var seq int64
	err := tx.QueryRowContext(ctx, `
		UPDATE runs SET last_seq = last_seq + 1, updated_at = ? WHERE id = ? RETURNING last_seq`,
		nanos(now), runID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, runNotFound(runID)
	}
	return seq, err
}

func isFKError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}

// purpose is a.Purpose with "" read as PurposeAnswer.
func (a *Attempt) purpose() Purpose {
	if a.Purpose == "" {
		return PurposeAnswer
	}
	return a.Purpose
}

func (a *Attempt) validate() error {
	switch {
	case a.purpose() != PurposeAnswer && a.purpose() != PurposeSelfCheck:
		return invalid("attempt.purpose %q is not one of answer, self_check", a.Purpose)
	case a.Confidence != nil && !(*a.Confidence >= 0 && *a.Confidence <= 1):
		return invalid("attempt.confidence is %v; it must be within [0, 1]", *a.Confidence)
	case a.Model == "":
		return invalid("attempt.model is empty")
	case !a.Outcome.valid():
		return invalid("attempt.outcome %q is not one of ok, error, invalid, timeout, rate_limited, context_length, auth, budget, interrupted", a.Outcome)
	case a.CostNano < 0:
		return invalid("attempt.cost_nano is %d; costs cannot be negative", a.CostNano)
	case a.Iteration < 0:
		return invalid("attempt.iteration is %d; it cannot be negative", a.Iteration)
	case a.Seq < 0:
		return invalid("attempt.seq is %d; use 0 to have one assigned", a.Seq)
	case a.LatencyMS < 0:
		return invalid("attempt.latency_ms is %d; it cannot be negative", a.LatencyMS)
	case !a.StartedAt.IsZero() && !a.EndedAt.IsZero() && a.EndedAt.Before(a.StartedAt):
		return invalid("attempt ended (%s) before it started (%s)", a.EndedAt.Format(time.RFC3339Nano), a.StartedAt.Format(time.RFC3339Nano))
	}
	if err := a.Usage.validate(); err != nil {
		return invalid("attempt.%v", err)
	}
	return nil
}

// RecordAttempt writes one finished provider call and adds its cost to the
// run's spent, in one transaction, and returns the attempt's sequence
// number with the run's new spent. With Seq from BeginAttempt it also
// clears that in-flight call (and takes its start time if StartedAt is
// zero); with Seq 0 the next number is assigned. It does not check run or
// node status: a call that was paid for is always recorded, even if it
// finishes after the run was marked finished.
func (l *Ledger) RecordAttempt(a Attempt) (Receipt, error) {
	if err := a.validate(); err != nil {
		return Receipt{}, err
	}
	var rc Receipt
	err := l.write(fmt.Sprintf("record attempt of node %q of run %q", a.NodeID, a.RunID), func(ctx context.Context, tx *sql.Tx) error {
		var err error
		rc, err = l.recordAttempt(ctx, tx, a)
		return err
	})
	return rc, err
}

// RecordFinalAttempt is RecordAttempt followed by FinishNode in the same
// transaction, for the call whose answer ends the node: after a crash
// either both are in the ledger or neither is, so a paid answer is never
// recorded without the output that resume needs.
func (l *Ledger) RecordFinalAttempt(a Attempt, res NodeResult) (Receipt, error) {
	if err := a.validate(); err != nil {
		return Receipt{}, err
	}
	if err := res.validate(); err != nil {
		return Receipt{}, err
	}
	var rc Receipt
	err := l.write(fmt.Sprintf("record final attempt of node %q of run %q", a.NodeID, a.RunID), func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if rc, err = l.recordAttempt(ctx, tx, a); err != nil {
			return err
		}
		return l.finishNode(ctx, tx, a.RunID, a.NodeID, res)
	})
	return rc, err
}

func (l *Ledger) recordAttempt(ctx context.Context, tx *sql.Tx, a Attempt) (Receipt, error) {
	now := l.now()
	if a.Seq == 0 {
		seq, err := nextSeq(ctx, tx, a.RunID, now)
		if err != nil {
			return Receipt{}, err
		}
		a.Seq = seq
	} else {
		var node string
		var started int64
		err := tx.QueryRowContext(ctx, `
			DELETE FROM calls_in_flight WHERE run_id = ? AND seq = ? RETURNING node_id, started_at`,
			a.RunID, a.Seq).Scan(&node, &started)
		if errors.Is(err, sql.ErrNoRows) {
			return Receipt{}, invalid("run %q has no call in flight with seq %d (already recorded, or not from BeginAttempt)", a.RunID, a.Seq)
		}
		if err != nil {
			return Receipt{}, err
		}
		if node != a.NodeID {
			return Receipt{}, invalid("seq %d of run %q began on node %q, not %q", a.Seq, a.RunID, node, a.NodeID)
		}
		if a.StartedAt.IsZero() {
			a.StartedAt = time.Unix(0, started)
		}
		if err := l.touch(ctx, tx, a.RunID, now); err != nil {
			return Receipt{}, err
		}
	}
	if a.EndedAt.IsZero() {
		a.EndedAt = now
	}
	if a.StartedAt.IsZero() {
		a.StartedAt = a.EndedAt
	}
	if a.EndedAt.Before(a.StartedAt) {
		return Receipt{}, invalid("attempt ended (%s) before it started (%s)", a.EndedAt.Format(time.RFC3339Nano), a.StartedAt.Format(time.RFC3339Nano))
	}
	if a.LatencyMS == 0 {
		a.LatencyMS = a.EndedAt.Sub(a.StartedAt).Milliseconds()
	}
	u := a.Usage
	_, err := tx.ExecContext(ctx, `
		INSERT INTO attempts (run_id, node_id, seq, iteration, model, provider, outcome, reason, may_have_billed,
			input_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, output_tokens,
			reasoning_tokens, audio_in_tokens, audio_out_tokens, images,
			usage_reported, cost_nano, latency_ms, started_at, ended_at, purpose, confidence)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.RunID, a.NodeID, a.Seq, a.Iteration, a.Model, a.Provider, string(a.Outcome), a.Reason, a.MayHaveBilled,
		u.InputTokens, u.CacheReadTokens, u.CacheWrite5mTokens, u.CacheWrite1hTokens, u.OutputTokens,
		u.ReasoningTokens, u.AudioInputTokens, u.AudioOutputTokens, u.Images,
		a.UsageReported, a.CostNano, a.LatencyMS, nanos(a.StartedAt), nanos(a.EndedAt), string(a.purpose()), a.Confidence)
	if isFKError(err) {
		return Receipt{}, nodeNotFound(a.RunID, a.NodeID)
	}
	if err != nil {
		return Receipt{}, err
	}
	rc := Receipt{Seq: a.Seq}
	err = tx.QueryRowContext(ctx, `SELECT spent_nano FROM runs WHERE id = ?`, a.RunID).Scan(&rc.RunSpentNano)
	return rc, err
}

func (r NodeResult) validate() error {
	if !r.Status.final() {
		return invalid("node result status %q: use succeeded, failed or skipped", r.Status)
	}
	return nil
}

// FinishNode records how a node ended: its status (succeeded, failed or
// skipped), final model and output, and its finish time.
func (l *Ledger) FinishNode(runID, nodeID string, res NodeResult) error {
	if err := res.validate(); err != nil {
		return err
	}
	return l.write(fmt.Sprintf("finish node %q of run %q", nodeID, runID), func(ctx context.Context, tx *sql.Tx) error {
		return l.finishNode(ctx, tx, runID, nodeID, res)
	})
}

func (l *Ledger) finishNode(ctx context.Context, tx *sql.Tx, runID, nodeID string, res NodeResult) error {
	now := l.now()
	if err := l.touch(ctx, tx, runID, now); err != nil {
		return err
	}
	r, err := tx.ExecContext(ctx, `
		UPDATE nodes SET status = ?, final_model = ?, output = ?, finished_at = ?,
			started_at = COALESCE(started_at, ?)
		WHERE run_id = ? AND node_id = ?`,
		string(res.Status), res.FinalModel, res.Output, nanos(now), nanos(now), runID, nodeID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return nodeNotFound(runID, nodeID)
	}
	return nil
}

// FinishRun sets the run's final status: succeeded, failed or
// budget_exhausted.
func (l *Ledger) FinishRun(runID string, status RunStatus) error {
	if !status.valid() || status == RunRunning {
		return invalid("run status %q: use succeeded, failed or budget_exhausted", status)
	}
	return l.write(fmt.Sprintf("finish run %q", runID), func(ctx context.Context, tx *sql.Tx) error {
		return l.finishRun(ctx, tx, runID, status)
	})
}

func (l *Ledger) finishRun(ctx context.Context, tx *sql.Tx, runID string, status RunStatus) error {
	if err := l.touch(ctx, tx, runID, l.now()); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, stop_note = '' WHERE id = ?`, string(status), runID)
	return err
}

// CreateRunWithCall is CreateRun of r (whose ID must be set), StartNode of
// c.NodeID and BeginAttempt of c in one transaction, and returns the
// call's seq: a request that does nothing billable before its first
// provider call becomes durable, in flight, with one commit instead of
// three. c.RunID is taken from r.
func (l *Ledger) CreateRunWithCall(r NewRun, c CallStart) (int64, error) {
	if r.ID == "" {
		return 0, invalid("run.id is empty; CreateRunWithCall needs the run's id (NewRunID)")
	}
	if c.NodeID == "" {
		return 0, invalid("empty node id")
	}
	inputs, plan, err := r.check()
	if err != nil {
		return 0, err
	}
	c.RunID = r.ID
	if err := c.check(); err != nil {
		return 0, err
	}
	var seq int64
	err = l.write(fmt.Sprintf("create run %s with a call of node %q", r.ID, c.NodeID), func(ctx context.Context, tx *sql.Tx) error {
		now := l.now()
		if err := createRun(ctx, tx, r, r.ID, inputs, plan, now); err != nil {
			return err
		}
		if err := l.startNode(ctx, tx, r.ID, c.NodeID, now); err != nil {
			return err
		}
		var err error
		seq, err = beginAttempt(ctx, tx, c, now)
		return err
	})
	if errors.Is(err, errRunExists) {
		return 0, fmt.Errorf("%w: run id %q is already in the ledger", ErrInvalid, r.ID)
	}
	return seq, err
}

// FinishRunWithNode ends a run and one of its nodes in one transaction:
// RecordFinalAttempt of final with res (FinishNode with res when final is
// nil), then FinishRun with status. A request answered by its last call
// is then in the ledger whole with one commit instead of two.
func (l *Ledger) FinishRunWithNode(runID, nodeID string, final *Attempt, res NodeResult, status RunStatus) error {
	if !status.valid() || status == RunRunning {
		return invalid("run status %q: use succeeded, failed or budget_exhausted", status)
	}
	if err := res.validate(); err != nil {
		return err
	}
	if final != nil {
		if err := final.validate(); err != nil {
			return err
		}
		if final.RunID != runID || final.NodeID != nodeID {
			return invalid("the final attempt is of node %q of run %q, not %q of %q", final.NodeID, final.RunID, nodeID, runID)
		}
	}
	return l.write(fmt.Sprintf("finish node %q and run %q", nodeID, runID), func(ctx context.Context, tx *sql.Tx) error {
		if final != nil {
			if _, err := l.recordAttempt(ctx, tx, *final); err != nil {
				return err
			}
		}
		if err := l.finishNode(ctx, tx, runID, nodeID, res); err != nil {
			return err
		}
		return l.finishRun(ctx, tx, runID, status)
	})
}

// NoteStop records why a run that is not finished stopped (cancelled over
// HTTP, interrupted by a shutdown): it stays running, so ResumeRun can
// continue it, and Run and Runs show the note until it is resumed or
// finished. It fails with ErrInvalid when the run is not running.
func (l *Ledger) NoteStop(runID, note string) error {
	return l.write(fmt.Sprintf("note why run %q stopped", runID), func(ctx context.Context, tx *sql.Tx) error {
		if err := l.touch(ctx, tx, runID, l.now()); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, `UPDATE runs SET stop_note = ? WHERE id = ? AND status = 'running'`, note, runID)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return invalid("run %q is not running; only a running run can be noted as stopped", runID)
		}
		return nil
	})
}

// MarkReplanned flags a node whose model ladder was changed during the run
// and stores why (note replaces any earlier note).
func (l *Ledger) MarkReplanned(runID, nodeID, note string) error {
	return l.write(fmt.Sprintf("mark node %q of run %q replanned", nodeID, runID), func(ctx context.Context, tx *sql.Tx) error {
		if err := l.touch(ctx, tx, runID, l.now()); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, `UPDATE nodes SET replanned = 1, replan_note = ? WHERE run_id = ? AND node_id = ?`,
			note, runID, nodeID)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return nodeNotFound(runID, nodeID)
		}
		return nil
	})
}

// ResumeRun prepares a run for resuming, in one transaction: it checks that
// workflowHash (HashWorkflow of the current file) is the one the run
// started with (else ErrWorkflowChanged) and that the run has not
// succeeded (else ErrRunSucceeded); turns every call still in flight into
// an "interrupted" attempt charged at its estimate, with may_have_billed
// and usage_reported=false; and sets the run running again. It returns the
// run as it now stands: nodes that succeeded keep their output (see
// CompletedNodes); every other node is to be run again.
func (l *Ledger) ResumeRun(runID, workflowHash string) (*RunRecord, error) {
	err := l.write(fmt.Sprintf("resume run %q", runID), func(ctx context.Context, tx *sql.Tx) error {
		var hash, status string
		err := tx.QueryRowContext(ctx, `SELECT workflow_hash, status FROM runs WHERE id = ?`, runID).Scan(&hash, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return runNotFound(runID)
		}
		if err != nil {
			return err
		}
		if hash != workflowHash {
			return fmt.Errorf("%w: run %q was started from a workflow with sha256 %s, the file now has %s; start a new run instead",
				ErrWorkflowChanged, runID, hash, workflowHash)
		}
		if RunStatus(status) == RunSucceeded {
			return fmt.Errorf("%w: run %q has nothing left to do", ErrRunSucceeded, runID)
		}
		now := l.now()
		_, err = tx.ExecContext(ctx, `
			INSERT INTO attempts (run_id, node_id, seq, iteration, model, provider, outcome, reason, may_have_billed,
				input_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, output_tokens,
				reasoning_tokens, audio_in_tokens, audio_out_tokens, images,
				usage_reported, cost_nano, latency_ms, started_at, ended_at)
			SELECT run_id, node_id, seq, iteration, model, provider, 'interrupted',
				'the process stopped while the call was in flight; charged at its estimate', 1,
				0, 0, 0, 0, 0, 0, 0, 0, 0, 0, estimate_nano, 0, started_at, MAX(started_at, ?)
			FROM calls_in_flight WHERE run_id = ? ORDER BY seq`, nanos(now), runID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM calls_in_flight WHERE run_id = ?`, runID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE runs SET status = 'running', stop_note = '', updated_at = ? WHERE id = ?`, nanos(now), runID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return l.Run(runID)
}
