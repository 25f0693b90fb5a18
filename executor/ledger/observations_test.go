package ledger

import (
	"database/sql"
	"errors"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeV1 makes a ledger file as a schema-1 costwise left it: the first
// migration only, with one run, one node and one attempt.
func writeV1(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_journal_mode=WAL&_foreign_keys=1")
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(migrations[0])
	require.NoError(t, err)
	_, err = db.Exec(`PRAGMA user_version = 1`)
	require.NoError(t, err)
	ns := t0.UnixNano()
	_, err = db.Exec(`
		INSERT INTO runs (id, workflow_name, workflow_file, workflow_hash, inputs_json, plan_json, predicted_mean_usd,
			predicted_p95_usd, budget_max_nano, status, simulated, created_at, updated_at, last_seq)
		VALUES ('r_old', 'wf', 'wf.toml', 'h', '{}', '{}', 0.01, 0.02, 0, 'succeeded', 0, ?, ?, 1);
		INSERT INTO nodes (run_id, node_id, ord, status, final_model, output, started_at, finished_at)
		VALUES ('r_old', 'n1', 0, 'succeeded', 'm', 'out', ?, ?);
		INSERT INTO attempts (run_id, node_id, seq, iteration, model, provider, outcome, reason, may_have_billed,
			input_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens,
			audio_in_tokens, audio_out_tokens, images, usage_reported, cost_nano, latency_ms, started_at, ended_at)
		VALUES ('r_old', 'n1', 1, 0, 'm', 'p', 'ok', '', 0, 10, 0, 0, 0, 20, 0, 0, 0, 0, 1, 777, 1500, ?, ?);`,
		ns, ns, ns, ns, ns, ns)
	require.NoError(t, err)
	var v int
	require.NoError(t, db.QueryRow(`PRAGMA user_version`).Scan(&v))
	require.Equal(t, 1, v)
}

func TestMigrateFromV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	writeV1(t, path)

	l, err := OpenWith(path, Options{Now: fakeClock()})
	require.NoError(t, err)
	defer l.Close()
	var v int
	require.NoError(t, l.w.QueryRow(`PRAGMA user_version`).Scan(&v))
	assert.Equal(t, SchemaVersion, v)
	require.NoError(t, l.Check())

	rec, err := l.Run("r_old")
	require.NoError(t, err, "old runs still read")
	assert.Equal(t, "", rec.Nodes[0].Task, "old nodes have no task")
	assert.Equal(t, int64(777), rec.SpentNano)

	obs, err := l.Observations(time.Time{})
	require.NoError(t, err)
	require.Len(t, obs, 1)
	assert.Equal(t, "", obs[0].Task)
	assert.Equal(t, int64(1500), obs[0].LatencyMS)
	assert.True(t, obs[0].Answer)
	assert.Nil(t, obs[0].Feedback)

	require.NoError(t, l.AddFeedback("r_old", "n1", 0.25), "feedback on a migrated run")
	obs, err = l.Observations(time.Time{})
	require.NoError(t, err)
	require.NotNil(t, obs[0].Feedback)
	assert.Equal(t, 0.25, *obs[0].Feedback)

	id, err := l.CreateRun(NewRun{WorkflowName: "wf", Nodes: []PlannedNode{{ID: "a", Task: "code"}}})
	require.NoError(t, err)
	rec, err = l.Run(id)
	require.NoError(t, err)
	assert.Equal(t, "code", rec.Nodes[0].Task)
	require.NoError(t, l.Close())

	l2, err := Open(path)
	require.NoError(t, err, "reopening a migrated file is a no-op")
	require.NoError(t, l2.Check())
	require.NoError(t, l2.Close())
}

func TestFeedbackRoundTrip(t *testing.T) {
	l := openTest(t, Options{})
	id := mustRun(t, l, "r1", "wf", false, "classify", "answer")
	other := mustRun(t, l, "r2", "wf", false, "classify")

	for _, tc := range []struct {
		name        string
		run, node   string
		score       float64
		want        error
		wantMessage string
	}{
		{"below 0", id, "classify", -0.1, ErrInvalid, "use a number from 0 (bad) to 1 (good)"},
		{"above 1", id, "classify", 1.5, ErrInvalid, "score 1.5"},
		{"NaN", id, "classify", math.NaN(), ErrInvalid, "score NaN"},
		{"unknown run", "r_nope", "classify", 1, ErrNotFound, `no run "r_nope"`},
		{"unknown node", id, "nope", 1, ErrNotFound, `run "r1" has no node "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := l.AddFeedback(tc.run, tc.node, tc.score)
			require.Error(t, err)
			assert.True(t, errors.Is(err, tc.want), "%v", err)
			assert.Contains(t, err.Error(), tc.wantMessage)
		})
	}

	require.NoError(t, l.AddFeedback(id, "classify", 1))
	fid, err := l.AddFeedbackNote(id, "classify", 0.3, "wrong label for refunds")
	require.NoError(t, err)
	require.NoError(t, l.AddFeedback(id, "answer", 0))
	require.NoError(t, l.AddFeedback(other, "classify", 0.5))

	fb, err := l.FeedbackOf(id)
	require.NoError(t, err)
	require.Len(t, fb, 3)
	assert.Equal(t, Feedback{ID: fid, RunID: id, NodeID: "classify", Score: 0.3, Note: "wrong label for refunds", CreatedAt: fb[1].CreatedAt}, fb[1])
	assert.Equal(t, []string{"classify", "classify", "answer"}, []string{fb[0].NodeID, fb[1].NodeID, fb[2].NodeID})
	assert.True(t, fb[0].CreatedAt.Before(fb[1].CreatedAt))
	_, err = l.FeedbackOf("r_nope")
	assert.ErrorIs(t, err, ErrNotFound)

	rec, err := l.Run(id)
	require.NoError(t, err)
	assert.Zero(t, rec.SpentNano, "feedback costs nothing")
	require.NoError(t, l.Check())
}

func TestObservations(t *testing.T) {
	l := openTest(t, Options{})
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	id, err := l.CreateRun(NewRun{ID: "r1", WorkflowName: "triage", Nodes: []PlannedNode{
		{ID: "classify", Task: "classification"}, {ID: "answer", Task: "writing"}}})
	require.NoError(t, err)
	rec := func(node, model string, outcome Outcome, iteration int, cost int64, out int64, start, end time.Time) {
		_, err := l.RecordAttempt(Attempt{RunID: id, NodeID: node, Iteration: iteration, Model: model, Provider: "p",
			Outcome: outcome, CostNano: cost, Usage: Usage{InputTokens: 100, OutputTokens: out}, UsageReported: true,
			StartedAt: start, EndedAt: end})
		require.NoError(t, err)
	}
	rec("classify", "nano", OutcomeInvalid, 0, 10, 5, at(0), at(1)) // escalated
	rec("classify", "mini", OutcomeTimeout, 0, 20, 0, at(1), at(2)) // retried on the same model: not escalated
	rec("classify", "mini", OutcomeOK, 0, 30, 6, at(2), at(3))      // the answer
	rec("answer", "big", OutcomeOK, 0, 400, 300, at(3), at(5))      // iteration 0 ok
	rec("answer", "big", OutcomeError, 1, 100, 0, at(5), at(6))     // last in its iteration: not escalated
	rec("answer", "big", OutcomeOK, 2, 500, 350, at(6), at(8))      // the answer (last ok)
	require.NoError(t, l.AddFeedback(id, "answer", 0.9))
	require.NoError(t, l.AddFeedback(id, "answer", 0.6)) // the latest counts

	sim := mustRun(t, l, "r_sim", "triage", true, "classify")
	record(t, l, sim, call{node: "classify", model: "nano", outcome: OutcomeOK, cost: 1})

	crashed := mustRun(t, l, "r_crash", "triage", false, "classify")
	_, err = l.BeginAttempt(CallStart{RunID: crashed, NodeID: "classify", Model: "nano", EstimateNano: 50, StartedAt: at(1)})
	require.NoError(t, err)
	_, err = l.ResumeRun(crashed, HashWorkflow([]byte("triage")))
	require.NoError(t, err)

	rows, err := l.Observations(time.Time{})
	require.NoError(t, err)
	type brief struct {
		node, task, model string
		outcome           Outcome
		iteration         int
		escalated, answer bool
		feedback          float64 // -1: none
		cost, latencyMS   int64
	}
	var got []brief
	for _, r := range rows {
		assert.Equal(t, "r1", r.RunID, "simulated and interrupted calls are left out")
		assert.Equal(t, "triage", r.WorkflowName)
		fb := -1.0
		if r.Feedback != nil {
			fb = *r.Feedback
			assert.False(t, r.FeedbackAt.IsZero())
		}
		assert.Equal(t, int64(100), r.Usage.InputTokens)
		got = append(got, brief{r.NodeID, r.Task, r.Model, r.Outcome, r.Iteration, r.Escalated, r.Answer, fb, r.CostNano, r.LatencyMS})
	}
	assert.Equal(t, []brief{
		{"classify", "classification", "nano", OutcomeInvalid, 0, true, false, -1, 10, 60_000},
		{"classify", "classification", "mini", OutcomeTimeout, 0, false, false, -1, 20, 60_000},
		{"classify", "classification", "mini", OutcomeOK, 0, false, true, -1, 30, 60_000},
		{"answer", "writing", "big", OutcomeOK, 0, false, false, 0.6, 400, 120_000},
		{"answer", "writing", "big", OutcomeError, 1, false, false, 0.6, 100, 60_000},
		{"answer", "writing", "big", OutcomeOK, 2, false, true, 0.6, 500, 120_000},
	}, got)

	rows, err = l.Observations(at(5))
	require.NoError(t, err)
	require.Len(t, rows, 3, "since filters by end time")
	assert.Equal(t, "answer", rows[0].NodeID)
	assert.False(t, rows[0].Answer, "the answer is judged over the whole node")
	assert.True(t, rows[2].Answer)
	rows, err = l.Observations(at(100))
	require.NoError(t, err)
	assert.Empty(t, rows)
}
