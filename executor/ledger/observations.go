package ledger

import (
	"context"
	"database/sql"
	"time"
)

// ObservationRow is one finished provider call with what learning from
// it needs: the node's task kind, whether the node escalated after it,
// and the node's latest feedback.
type ObservationRow struct {
	RunID        string
	WorkflowName string
	NodeID       string
	// Task is the node's task kind; "" when the plan did not give one
	// (and for nodes recorded before schema version 2).
	Task      string
	Seq       int64
	Iteration int
	Model     string
	Provider  string
	Outcome   Outcome
	// Escalated: the call did not end ok and the next call of the same
	// node and iteration used a different model (as in RerouteRates).
	Escalated bool
	// Answer: this is the node's last call that ended ok, i.e. the one
	// whose output the node kept; feedback on the node judges this call.
	Answer        bool
	Usage         Usage
	UsageReported bool
	CostNano      int64
	LatencyMS     int64
	StartedAt     time.Time
	EndedAt       time.Time
	// Feedback is the node's latest feedback score (nil when it has none),
	// given at FeedbackAt. It is the same on every call of the node; it
	// judges the Answer call.
	Feedback   *float64
	FeedbackAt time.Time
	// Confidence is the cascade signal judged on this answer (nil: none);
	// an invalid answer with a confidence was set aside by a cascade's
	// threshold, not shown wrong.
	Confidence *float64
}

// Observations returns one row per finished call of the non-simulated
// runs that ended at or after since (the zero time: all), oldest first
// (by end time, then run and seq). Calls that were interrupted by a crash
// (outcome interrupted) are left out: nothing is known of them but their
// estimated cost, and so are a cascade's self-check calls (they answer
// nothing). Escalation and the answer call are judged over the whole node,
// including calls before since.
func (l *Ledger) Observations(since time.Time) ([]ObservationRow, error) {
	sinceN := int64(-1 << 63)
	if !since.IsZero() {
		sinceN = nanos(since)
	}
	var out []ObservationRow
	err := l.readTx("read observations", func(ctx context.Context, tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			WITH picked AS (
				SELECT DISTINCT a.run_id AS id FROM attempts a JOIN runs r ON r.id = a.run_id
				WHERE a.ended_at >= ? AND r.simulated = 0
			), a AS (
				SELECT a.*,
					LEAD(a.model) OVER (PARTITION BY a.run_id, a.node_id, a.iteration ORDER BY a.seq) AS next_model,
					MAX(CASE WHEN a.outcome = 'ok' THEN a.seq END) OVER (PARTITION BY a.run_id, a.node_id) AS answer_seq
				FROM attempts a WHERE a.run_id IN (SELECT id FROM picked) AND a.purpose = 'answer'
			), fb AS (
				SELECT run_id, node_id, score, created_at,
					ROW_NUMBER() OVER (PARTITION BY run_id, node_id ORDER BY created_at DESC, id DESC) AS rn
				FROM feedback WHERE run_id IN (SELECT id FROM picked)
			)
			SELECT a.run_id, r.workflow_name, a.node_id, n.task, a.seq, a.iteration, a.model, a.provider, a.outcome,
				CASE WHEN a.outcome <> 'ok' AND a.next_model IS NOT NULL AND a.next_model <> a.model THEN 1 ELSE 0 END,
				COALESCE(a.seq = a.answer_seq, 0),
				a.input_tokens, a.cache_read_tokens, a.cache_write_5m_tokens, a.cache_write_1h_tokens, a.output_tokens,
				a.reasoning_tokens, a.audio_in_tokens, a.audio_out_tokens, a.images,
				a.usage_reported, a.cost_nano, a.latency_ms, a.started_at, a.ended_at, fb.score, fb.created_at, a.confidence
			FROM a
			JOIN runs r ON r.id = a.run_id
			JOIN nodes n ON n.run_id = a.run_id AND n.node_id = a.node_id
			LEFT JOIN fb ON fb.run_id = a.run_id AND fb.node_id = a.node_id AND fb.rn = 1
			WHERE a.ended_at >= ? AND a.outcome <> 'interrupted'
			ORDER BY a.ended_at, a.run_id, a.seq`, sinceN, sinceN)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var o ObservationRow
			var outcome string
			var started, ended int64
			var score sql.NullFloat64
			var scoreAt sql.NullInt64
			var conf sql.NullFloat64
			u := &o.Usage
			if err := rows.Scan(&o.RunID, &o.WorkflowName, &o.NodeID, &o.Task, &o.Seq, &o.Iteration, &o.Model, &o.Provider, &outcome,
				&o.Escalated, &o.Answer,
				&u.InputTokens, &u.CacheReadTokens, &u.CacheWrite5mTokens, &u.CacheWrite1hTokens, &u.OutputTokens,
				&u.ReasoningTokens, &u.AudioInputTokens, &u.AudioOutputTokens, &u.Images,
				&o.UsageReported, &o.CostNano, &o.LatencyMS, &started, &ended, &score, &scoreAt, &conf); err != nil {
				return err
			}
			o.Outcome, o.StartedAt, o.EndedAt = Outcome(outcome), fromNanos(started), fromNanos(ended)
			if score.Valid {
				v := score.Float64
				o.Feedback, o.FeedbackAt = &v, fromNullNanos(scoreAt)
			}
			if conf.Valid {
				v := conf.Float64
				o.Confidence = &v
			}
			out = append(out, o)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
