package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Reads run on the read-only pool; a read that needs several queries runs
// them in one read transaction, so it sees one committed state.

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func fromNullNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromNanos(n.Int64)
}

// readTx runs fn in a read-only transaction.
func (l *Ledger) readTx(op string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	ctx := context.Background()
	tx, err := l.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("ledger: %s: %w", op, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(ctx, tx); err != nil {
		if errors.Is(err, ErrNotFound) {
			return err
		}
		return fmt.Errorf("ledger: %s: %w", op, err)
	}
	return nil
}

const runColumns = `id, workflow_name, workflow_file, workflow_hash, inputs_json, plan_json,
	predicted_mean_usd, predicted_p95_usd, budget_max_nano, status, spent_nano, simulated, created_at, updated_at, stop_note, owner`

func scanRun(row interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var inputs, plan, status string
	var created, updated int64
	err := row.Scan(&r.ID, &r.WorkflowName, &r.WorkflowFile, &r.WorkflowHash, &inputs, &plan,
		&r.PredictedMeanUSD, &r.PredictedP95USD, &r.BudgetMaxNano, &status, &r.SpentNano, &r.Simulated, &created, &updated, &r.StopNote, &r.Owner)
	r.Inputs, r.Plan, r.Status = []byte(inputs), []byte(plan), RunStatus(status)
	r.CreatedAt, r.UpdatedAt = fromNanos(created), fromNanos(updated)
	return r, err
}

// Run returns everything recorded about one run: the run, its nodes (plan
// order) with their attempts (in seq order), and calls still in flight.
// An unknown id gives ErrNotFound.
func (l *Ledger) Run(id string) (*RunRecord, error) {
	var rec RunRecord
	err := l.readTx(fmt.Sprintf("read run %q", id), func(ctx context.Context, tx *sql.Tx) error {
		var err error
		rec.Run, err = scanRun(tx.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return runNotFound(id)
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `
			SELECT node_id, status, final_model, output, predicted_cost_usd, started_at, finished_at, replanned, replan_note, task
			FROM nodes WHERE run_id = ? ORDER BY ord`, id)
		if err != nil {
			return err
		}
		index := map[string]int{}
		for rows.Next() {
			n := Node{RunID: id}
			var status string
			var started, finished sql.NullInt64
			if err := rows.Scan(&n.NodeID, &status, &n.FinalModel, &n.Output, &n.PredictedCostUSD,
				&started, &finished, &n.Replanned, &n.ReplanNote, &n.Task); err != nil {
				rows.Close()
				return err
			}
			n.Status, n.StartedAt, n.FinishedAt = NodeStatus(status), fromNullNanos(started), fromNullNanos(finished)
			index[n.NodeID] = len(rec.Nodes)
			rec.Nodes = append(rec.Nodes, NodeRecord{Node: n})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		attempts, err := scanAttempts(ctx, tx, id)
		if err != nil {
			return err
		}
		for _, a := range attempts {
			i := index[a.NodeID] // the foreign key guarantees the node exists
			rec.Nodes[i].Attempts = append(rec.Nodes[i].Attempts, a)
		}
		rec.InFlight, err = scanInFlight(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

func scanAttempts(ctx context.Context, tx *sql.Tx, runID string) ([]Attempt, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT node_id, seq, iteration, model, provider, outcome, reason, may_have_billed,
			input_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, output_tokens,
			reasoning_tokens, audio_in_tokens, audio_out_tokens, images,
			usage_reported, cost_nano, latency_ms, started_at, ended_at, purpose, confidence
		FROM attempts WHERE run_id = ? ORDER BY seq`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		a := Attempt{RunID: runID}
		u := &a.Usage
		var outcome, purpose string
		var started, ended int64
		var conf sql.NullFloat64
		if err := rows.Scan(&a.NodeID, &a.Seq, &a.Iteration, &a.Model, &a.Provider, &outcome, &a.Reason, &a.MayHaveBilled,
			&u.InputTokens, &u.CacheReadTokens, &u.CacheWrite5mTokens, &u.CacheWrite1hTokens, &u.OutputTokens,
			&u.ReasoningTokens, &u.AudioInputTokens, &u.AudioOutputTokens, &u.Images,
			&a.UsageReported, &a.CostNano, &a.LatencyMS, &started, &ended, &purpose, &conf); err != nil {
			return nil, err
		}
		a.Outcome, a.StartedAt, a.EndedAt, a.Purpose = Outcome(outcome), fromNanos(started), fromNanos(ended), Purpose(purpose)
		if conf.Valid {
			v := conf.Float64
			a.Confidence = &v
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func scanInFlight(ctx context.Context, tx *sql.Tx, runID string) ([]InFlightCall, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT node_id, seq, iteration, model, provider, estimate_nano, started_at
		FROM calls_in_flight WHERE run_id = ? ORDER BY seq`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []InFlightCall
	for rows.Next() {
		c := InFlightCall{CallStart: CallStart{RunID: runID}}
		var started int64
		if err := rows.Scan(&c.NodeID, &c.Seq, &c.Iteration, &c.Model, &c.Provider, &c.EstimateNano, &started); err != nil {
			return nil, err
		}
		c.StartedAt = fromNanos(started)
		out = append(out, c)
	}
	return out, rows.Err()
}

// escalationSQL marks each answer attempt (of the runs in picked; a
// cascade's self-check calls are left out) with escalated = 1 when it did
// not end ok and the next answer attempt of the same node and iteration
// used a different model, and planned = 1 when that escalation was a
// cascade's (an answer set aside with a confidence below its threshold).
const escalationSQL = `
	SELECT run_id, node_id, model,
		CASE WHEN outcome <> 'ok' AND next_model IS NOT NULL AND next_model <> model THEN 1 ELSE 0 END AS escalated,
		CASE WHEN outcome = 'invalid' AND confidence IS NOT NULL AND next_model IS NOT NULL AND next_model <> model THEN 1 ELSE 0 END AS planned
	FROM (
		SELECT run_id, node_id, model, outcome, confidence,
			LEAD(model) OVER (PARTITION BY run_id, node_id, iteration ORDER BY seq) AS next_model
		FROM attempts WHERE run_id IN (SELECT id FROM picked) AND purpose = 'answer'
	)`

// Runs lists the newest limit runs (all when limit <= 0), newest first,
// with node counts by status, attempt counts and escalations.
func (l *Ledger) Runs(limit int) ([]RunSummary, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	var out []RunSummary
	err := l.readTx("list runs", func(ctx context.Context, tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			WITH picked AS (
				SELECT id FROM runs ORDER BY created_at DESC, id DESC LIMIT ?
			), esc AS (`+escalationSQL+`
			), ac AS (
				SELECT run_id, COUNT(*) AS attempts, SUM(escalated) AS escalations FROM esc GROUP BY run_id
			), nc AS (
				SELECT run_id, COUNT(*) AS total,
					SUM(status = 'pending') AS pending, SUM(status = 'running') AS running,
					SUM(status = 'succeeded') AS succeeded, SUM(status = 'failed') AS failed,
					SUM(status = 'skipped') AS skipped
				FROM nodes WHERE run_id IN (SELECT id FROM picked) GROUP BY run_id
			)
			SELECT r.id, r.workflow_name, r.status, r.simulated, r.spent_nano, r.budget_max_nano,
				r.predicted_mean_usd, r.predicted_p95_usd,
				COALESCE(nc.total, 0), COALESCE(nc.pending, 0), COALESCE(nc.running, 0),
				COALESCE(nc.succeeded, 0), COALESCE(nc.failed, 0), COALESCE(nc.skipped, 0),
				COALESCE(ac.attempts, 0), COALESCE(ac.escalations, 0), r.created_at, r.updated_at, r.stop_note
			FROM runs r JOIN picked p ON p.id = r.id
			LEFT JOIN nc ON nc.run_id = r.id LEFT JOIN ac ON ac.run_id = r.id
			ORDER BY r.created_at DESC, r.id DESC`, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s RunSummary
			var status string
			var created, updated int64
			n := &s.Nodes
			if err := rows.Scan(&s.ID, &s.WorkflowName, &status, &s.Simulated, &s.SpentNano, &s.BudgetMaxNano,
				&s.PredictedMeanUSD, &s.PredictedP95USD,
				&n.Total, &n.Pending, &n.Running, &n.Succeeded, &n.Failed, &n.Skipped,
				&s.Attempts, &s.Escalations, &created, &updated, &s.StopNote); err != nil {
				return err
			}
			s.Status, s.CreatedAt, s.UpdatedAt = RunStatus(status), fromNanos(created), fromNanos(updated)
			out = append(out, s)
		}
		return rows.Err()
	})
	return out, err
}

// SpentSince sums what the runs created at or after since whose workflow
// name starts with prefix have spent, in nano-USD, in one indexed query
// (the gateway reads its day's spend with it at start and each UTC day).
// Simulated runs are left out: they spent nothing real.
func (l *Ledger) SpentSince(prefix string, since time.Time) (int64, error) {
	var sum int64
	err := l.readTx("sum the spend since "+since.UTC().Format(time.RFC3339), func(ctx context.Context, tx *sql.Tx) error {
		// prefix <= name < prefix+U+10FFFF: a range the index can serve.
		return tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(spent_nano), 0) FROM runs
			WHERE created_at >= ? AND workflow_name >= ? AND workflow_name < ? AND simulated = 0`,
			nanos(since), prefix, prefix+"\U0010FFFF").Scan(&sum)
	})
	return sum, err
}

// SpentBy sums what the runs recorded with NewRun.Owner owner and created
// at or after since have spent, in nano-USD (the gateway's read-back of a
// key's day, after a restart). Simulated runs are left out.
func (l *Ledger) SpentBy(owner string, since time.Time) (int64, error) {
	var sum int64
	err := l.readTx("sum the spend of "+owner, func(ctx context.Context, tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(spent_nano), 0) FROM runs WHERE owner = ? AND created_at >= ? AND simulated = 0`,
			owner, nanos(since)).Scan(&sum)
	})
	return sum, err
}

// RunsOwnedBy returns the runs recorded with NewRun.Owner owner, newest
// first: at most limit of them (all when limit <= 0), and whether there
// are more; runs whose workflow name starts with except (when set) are
// left out. An empty owner matches no run.
func (l *Ledger) RunsOwnedBy(owner string, limit int, except string) (runs []Run, more bool, err error) {
	if owner == "" {
		return nil, false, nil
	}
	n := -1 // SQLite: no limit
	if limit > 0 {
		n = limit + 1
	}
	err = l.readTx("list the runs of "+owner, func(ctx context.Context, tx *sql.Tx) error {
		hi := except + "\U0010FFFF"
		if except == "" {
			hi = ""
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+runColumns+` FROM runs WHERE owner = ?
			AND NOT (workflow_name >= ? AND workflow_name < ?)
			ORDER BY created_at DESC, id DESC LIMIT ?`, owner, except, hi, n)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRun(rows)
			if err != nil {
				return err
			}
			runs = append(runs, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, false, err
	}
	if limit > 0 && len(runs) > limit {
		runs, more = runs[:limit], true
	}
	return runs, more, nil
}

// CompletedNodes maps each node of the run that succeeded to its output:
// on resume these are not run again. Every other node (pending, running,
// failed, skipped) is to be (re)evaluated. An unknown run gives
// ErrNotFound.
func (l *Ledger) CompletedNodes(runID string) (map[string]string, error) {
	out := map[string]string{}
	err := l.readTx(fmt.Sprintf("completed nodes of run %q", runID), func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE id = ?`, runID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return runNotFound(runID)
		}
		rows, err := tx.QueryContext(ctx, `SELECT node_id, output FROM nodes WHERE run_id = ? AND status = 'succeeded'`, runID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, output string
			if err := rows.Scan(&id, &output); err != nil {
				return err
			}
			out[id] = output
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RerouteRates reports, for each workflow, node and model, how many calls
// the newest lastNRuns non-simulated runs made (all runs when lastNRuns <=
// 0) and the share that escalated: did not end ok and were followed, in the
// same node and loop iteration, by an attempt on a different model. Rows
// are sorted by workflow, node and model.
func (l *Ledger) RerouteRates(lastNRuns int) ([]Reroute, error) {
	if lastNRuns <= 0 {
		lastNRuns = -1
	}
	var out []Reroute
	err := l.readTx("reroute rates", func(ctx context.Context, tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			WITH picked AS (
				SELECT id FROM runs WHERE simulated = 0 ORDER BY created_at DESC, id DESC LIMIT ?
			), esc AS (`+escalationSQL+`)
			SELECT r.workflow_name, e.node_id, e.model, COUNT(*), SUM(e.escalated), SUM(e.planned)
			FROM esc e JOIN runs r ON r.id = e.run_id
			GROUP BY r.workflow_name, e.node_id, e.model
			ORDER BY r.workflow_name, e.node_id, e.model`, lastNRuns)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r Reroute
			if err := rows.Scan(&r.WorkflowName, &r.NodeID, &r.Model, &r.Calls, &r.Escalated, &r.Planned); err != nil {
				return err
			}
			if r.Calls > 0 {
				r.Rate = float64(r.Escalated-r.Planned) / float64(r.Calls)
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
}

// CostPerCompletedRun is what one successful run of the workflow has
// really cost: the spend of all its non-simulated runs (failed, budget
// exhausted and unfinished ones included, since that money is gone too)
// divided by the number that succeeded. A workflow with no runs gives a
// zero RunCost, not an error.
func (l *Ledger) CostPerCompletedRun(workflow string) (RunCost, error) {
	rc := RunCost{WorkflowName: workflow}
	err := l.readTx(fmt.Sprintf("cost per completed run of %q", workflow), func(ctx context.Context, tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `
			SELECT COUNT(*), COALESCE(SUM(status = 'succeeded'), 0), COALESCE(SUM(spent_nano), 0)
			FROM runs WHERE workflow_name = ? AND simulated = 0`, workflow).Scan(&rc.Runs, &rc.Succeeded, &rc.SpentNano)
	})
	if err != nil {
		return RunCost{}, err
	}
	if rc.Succeeded > 0 {
		s := int64(rc.Succeeded)
		rc.PerCompletedNano = (rc.SpentNano + s/2) / s
	}
	return rc, nil
}
