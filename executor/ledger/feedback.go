package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"
)

// Feedback is one explicit judgement of a node's output: one row of the
// feedback table. A node may be judged several times; the latest counts.
type Feedback struct {
	ID     int64 // assigned by the ledger, increasing
	RunID  string
	NodeID string
	// Score is how good the output was, from 0 (useless) to 1 (fully right).
	Score     float64
	Note      string
	CreatedAt time.Time
}

// AddFeedback records a score in [0, 1] for a node's output; it is
// AddFeedbackNote with no note.
func (l *Ledger) AddFeedback(runID, nodeID string, score float64) error {
	_, err := l.AddFeedbackNote(runID, nodeID, score, "")
	return err
}

// AddFeedbackNote records a score in [0, 1] for the output of one node of
// a run, with a free-text note, and returns the feedback's id. A score
// outside [0, 1] (or NaN) is ErrInvalid; an unknown run or node is
// ErrNotFound. Feedback does not change the run or its spend.
func (l *Ledger) AddFeedbackNote(runID, nodeID string, score float64, note string) (int64, error) {
	if math.IsNaN(score) || score < 0 || score > 1 {
		return 0, invalid("feedback score %v for node %q of run %q: use a number from 0 (bad) to 1 (good)", score, nodeID, runID)
	}
	var id int64
	err := l.write(fmt.Sprintf("add feedback on node %q of run %q", nodeID, runID), func(ctx context.Context, tx *sql.Tx) error {
		var runs, nodes int
		if err := tx.QueryRowContext(ctx, `
			SELECT (SELECT COUNT(*) FROM runs WHERE id = ?), (SELECT COUNT(*) FROM nodes WHERE run_id = ? AND node_id = ?)`,
			runID, runID, nodeID).Scan(&runs, &nodes); err != nil {
			return err
		}
		if runs == 0 {
			return runNotFound(runID)
		}
		if nodes == 0 {
			return fmt.Errorf("%w: run %q has no node %q (`costwise runs show %s` lists its nodes)", ErrNotFound, runID, nodeID, runID)
		}
		return tx.QueryRowContext(ctx, `
			INSERT INTO feedback (run_id, node_id, score, note, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			runID, nodeID, score, note, nanos(l.now())).Scan(&id)
	})
	return id, err
}

// FeedbackOf returns every feedback given to the run's nodes, oldest
// first. An unknown run is ErrNotFound.
func (l *Ledger) FeedbackOf(runID string) ([]Feedback, error) {
	var out []Feedback
	err := l.readTx(fmt.Sprintf("read feedback of run %q", runID), func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE id = ?`, runID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return runNotFound(runID)
		}
		rows, err := tx.QueryContext(ctx, `
			SELECT id, node_id, score, note, created_at FROM feedback WHERE run_id = ? ORDER BY created_at, id`, runID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			f := Feedback{RunID: runID}
			var created int64
			if err := rows.Scan(&f.ID, &f.NodeID, &f.Score, &f.Note, &created); err != nil {
				return err
			}
			f.CreatedAt = fromNanos(created)
			out = append(out, f)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
