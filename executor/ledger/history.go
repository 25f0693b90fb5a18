package ledger

import (
	"context"
	"database/sql"
	"time"
)

// HistoryFilter selects the rows of History.
type HistoryFilter struct {
	// Task keeps the nodes of this task kind only; "" keeps every node.
	Task string
	// Since keeps the answers that ended at or after it; zero keeps all.
	Since time.Time
}

// HistoryRow is one model's answer to one query of a real run, where a
// query is one iteration of one node of one run (RunID, NodeID,
// Iteration): the ledger's own history as an outcome table in the long
// layout, one row per query and model that answered it.
type HistoryRow struct {
	RunID        string
	WorkflowName string
	NodeID       string
	Task         string // the node's task kind; "" when the plan gave none
	Iteration    int
	Model        string
	Provider     string
	// Outcome is OutcomeOK when the model's answer was accepted and
	// OutcomeInvalid when it was rejected (it failed the node's validate
	// rule, or a cascade's confidence threshold): the outcome of the
	// model's last answer in the iteration.
	Outcome Outcome
	Reason  string // why the answer was rejected, or a note on its cost
	// Confidence is the cascade signal judged on that answer (schema 3),
	// nil when none was.
	Confidence *float64
	// Answer is true when this is the answer the node kept (its last
	// accepted one); Feedback, the node's latest feedback score, judges
	// it. Feedback is nil when the node has none.
	Answer   bool
	Feedback *float64
	// Calls, CostNano and LatencyMS cover every call of the model in the
	// iteration: the answer, failed tries before it and self-check calls.
	Calls     int
	CostNano  int64
	LatencyMS int64
	// InputTokens and OutputTokens are the answer call's.
	InputTokens  int64
	OutputTokens int64
	EndedAt      time.Time // when the answer call ended
}

// History returns the answers recorded for non-simulated runs: one row per
// (run, node, iteration, model) where the model gave an answer that was
// accepted (outcome ok) or rejected (outcome invalid), its last one in the
// iteration. A model whose calls all failed (errors, timeouts, budget,
// interruptions) gave no answer and has no row. Rows come by query, in
// the order the queries' first answers ended, and within a query in the
// order the models answered.
func (l *Ledger) History(f HistoryFilter) ([]HistoryRow, error) {
	sinceN := int64(-1 << 63)
	if !f.Since.IsZero() {
		sinceN = nanos(f.Since)
	}
	var out []HistoryRow
	err := l.readTx("read history", func(ctx context.Context, tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			WITH real AS (
				SELECT id FROM runs WHERE simulated = 0
			), g AS (
				SELECT a.run_id, a.node_id, a.iteration, a.model,
					COUNT(*) AS calls, SUM(a.cost_nano) AS cost, SUM(a.latency_ms) AS latency,
					MAX(CASE WHEN a.purpose = 'answer' AND a.outcome IN ('ok', 'invalid') THEN a.seq END) AS answer_seq
				FROM attempts a
				WHERE a.run_id IN (SELECT id FROM real)
				GROUP BY a.run_id, a.node_id, a.iteration, a.model
			), kept AS (
				SELECT g.*, a.provider, a.outcome, a.reason, a.confidence, a.input_tokens, a.output_tokens, a.ended_at,
					MIN(a.ended_at) OVER (PARTITION BY g.run_id, g.node_id, g.iteration) AS query_ended
				FROM g JOIN attempts a ON a.run_id = g.run_id AND a.seq = g.answer_seq
				JOIN nodes n ON n.run_id = g.run_id AND n.node_id = g.node_id
				WHERE g.answer_seq IS NOT NULL AND (? = '' OR n.task = ?) AND a.ended_at >= ?
			), kept_answer AS (
				SELECT a.run_id, a.node_id, MAX(a.seq) AS seq FROM attempts a
				WHERE a.run_id IN (SELECT id FROM real) AND a.purpose = 'answer' AND a.outcome = 'ok'
				GROUP BY a.run_id, a.node_id
			), fb AS (
				SELECT run_id, node_id, score,
					ROW_NUMBER() OVER (PARTITION BY run_id, node_id ORDER BY created_at DESC, id DESC) AS rn
				FROM feedback WHERE run_id IN (SELECT id FROM real)
			)
			SELECT k.run_id, r.workflow_name, k.node_id, n.task, k.iteration, k.model, k.provider, k.outcome, k.reason,
				k.confidence, COALESCE(ka.seq = k.answer_seq, 0), fb.score, k.calls, k.cost, k.latency,
				k.input_tokens, k.output_tokens, k.ended_at
			FROM kept k
			JOIN runs r ON r.id = k.run_id
			JOIN nodes n ON n.run_id = k.run_id AND n.node_id = k.node_id
			LEFT JOIN kept_answer ka ON ka.run_id = k.run_id AND ka.node_id = k.node_id
			LEFT JOIN fb ON fb.run_id = k.run_id AND fb.node_id = k.node_id AND fb.rn = 1
			ORDER BY k.query_ended, k.run_id, k.node_id, k.iteration, k.answer_seq`,
			f.Task, f.Task, sinceN)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h HistoryRow
			var outcome string
			var conf, score sql.NullFloat64
			var ended int64
			if err := rows.Scan(&h.RunID, &h.WorkflowName, &h.NodeID, &h.Task, &h.Iteration, &h.Model, &h.Provider, &outcome, &h.Reason,
				&conf, &h.Answer, &score, &h.Calls, &h.CostNano, &h.LatencyMS,
				&h.InputTokens, &h.OutputTokens, &ended); err != nil {
				return err
			}
			h.Outcome, h.EndedAt = Outcome(outcome), fromNanos(ended)
			if conf.Valid {
				v := conf.Float64
				h.Confidence = &v
			}
			if score.Valid {
				v := score.Float64
				h.Feedback = &v
			}
			out = append(out, h)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
