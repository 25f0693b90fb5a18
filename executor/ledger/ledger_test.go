package ledger

import (
	"database/sql"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenMigratesOnceAndReopens(t *testing.T) {
	require.Equal(t, len(migrations), SchemaVersion, "bump SchemaVersion with each migration")
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "ledger.db") // parents do not exist yet
	for i := 0; i < 3; i++ {
		l, err := Open(path)
		require.NoError(t, err, "open #%d", i+1)
		var v int
		require.NoError(t, l.w.QueryRow(`PRAGMA user_version`).Scan(&v))
		assert.Equal(t, SchemaVersion, v)
		var mode string
		var syncMode, fk int
		require.NoError(t, l.w.QueryRow(`PRAGMA journal_mode`).Scan(&mode))
		require.NoError(t, l.w.QueryRow(`PRAGMA synchronous`).Scan(&syncMode))
		require.NoError(t, l.w.QueryRow(`PRAGMA foreign_keys`).Scan(&fk))
		assert.Equal(t, "wal", mode)
		assert.Equal(t, 2, syncMode, "FULL")
		assert.Equal(t, 1, fk)
		if i == 0 {
			_, err := l.CreateRun(NewRun{ID: "r_keep", WorkflowName: "wf"})
			require.NoError(t, err)
		}
		_, err = l.Run("r_keep")
		require.NoError(t, err, "data survives reopening")
		_, err = l.r.Exec(`UPDATE runs SET status = 'failed'`)
		require.Error(t, err, "the read pool is query-only")
		require.NoError(t, l.Check())
		require.NoError(t, l.Close())
	}
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	newer := filepath.Join(dir, "newer.db")
	db, err := sql.Open("sqlite", newer)
	require.NoError(t, err)
	_, err = db.Exec(`PRAGMA user_version = 999`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))

	for _, tc := range []struct {
		name, path, want string
	}{
		{"empty", "", "empty path"},
		{"memory", ":memory:", "plain file path"},
		{"uri", "file:x.db", "plain file path"},
		{"query", filepath.Join(dir, "x.db?mode=ro"), "plain file path"},
		{"newer schema", newer, "schema version 999"},
		{"parent is a file", filepath.Join(blocker, "ledger.db"), "creating the directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Open(tc.path)
			if l != nil {
				l.Close()
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestDefaultPath(t *testing.T) {
	for _, tc := range []struct {
		name, xdg, home, want string
	}{
		{"xdg", "/data", "/home/u", "/data/costwise/ledger.db"},
		{"relative xdg ignored", "rel/data", "/home/u", "/home/u/.local/share/costwise/ledger.db"},
		{"no xdg", "", "/home/u", "/home/u/.local/share/costwise/ledger.db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("XDG_DATA_HOME", tc.xdg)
			t.Setenv("HOME", tc.home)
			got, err := DefaultPath()
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestNewRunID(t *testing.T) {
	re := regexp.MustCompile(`^r_20261127T041200Z_[0-9a-f]{6}$`)
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		id := NewRunID(t0.Add(999 * time.Millisecond))
		require.Regexp(t, re, id)
		seen[id] = true
	}
	assert.Greater(t, len(seen), 190, "ids in the same second differ")
	assert.Less(t, NewRunID(t0), NewRunID(t0.Add(time.Second)), "ids sort by time")
}

func TestRoundTrip(t *testing.T) {
	l := openTest(t, Options{})
	hash := HashWorkflow([]byte("[workflow]\nname = \"triage\"\n"))
	id, err := l.CreateRun(NewRun{
		WorkflowName: "triage", WorkflowFile: "/w/triage.toml", WorkflowHash: hash,
		Inputs:           json.RawMessage(`{"ticket":"printer on fire"}`),
		Plan:             json.RawMessage(`{"classify":["small","big"],"answer":["big"]}`),
		PredictedMeanUSD: 0.0123, PredictedP95USD: 0.05, BudgetMaxNano: 100_000_000, Simulated: true,
		Nodes: []PlannedNode{{ID: "classify", PredictedCostUSD: 0.001}, {ID: "answer", PredictedCostUSD: 0.0113}, {ID: "notify"}},
	})
	require.NoError(t, err)
	require.Regexp(t, `^r_20261127T041200Z_[0-9a-f]{6}$`, id)

	require.NoError(t, l.StartNode(id, "classify"))
	seq, err := l.BeginAttempt(CallStart{RunID: id, NodeID: "classify", Model: "small", Provider: "openai", EstimateNano: 900})
	require.NoError(t, err)
	assert.EqualValues(t, 1, seq)
	usage := Usage{InputTokens: 1, CacheReadTokens: 2, CacheWrite5mTokens: 3, CacheWrite1hTokens: 4, OutputTokens: 5,
		ReasoningTokens: 6, AudioInputTokens: 7, AudioOutputTokens: 8, Images: 9}
	conf := 0.41
	rc, err := l.RecordAttempt(Attempt{RunID: id, NodeID: "classify", Seq: seq, Model: "small", Provider: "openai",
		Outcome: OutcomeInvalid, Reason: "not a label", MayHaveBilled: true, Usage: usage, UsageReported: true,
		CostNano: 1234, EndedAt: t0.Add(time.Hour), Confidence: &conf})
	require.NoError(t, err)
	assert.Equal(t, Receipt{Seq: 1, RunSpentNano: 1234}, rc)
	rc, err = l.RecordFinalAttempt(Attempt{RunID: id, NodeID: "classify", Model: "big", Provider: "anthropic",
		Outcome: OutcomeOK, CostNano: 5678, LatencyMS: 321, StartedAt: t0.Add(time.Minute), EndedAt: t0.Add(2 * time.Minute)},
		NodeResult{Status: NodeSucceeded, FinalModel: "big", Output: "urgent"})
	require.NoError(t, err)
	assert.Equal(t, Receipt{Seq: 2, RunSpentNano: 1234 + 5678}, rc)
	require.NoError(t, l.StartNode(id, "answer"))
	require.NoError(t, l.MarkReplanned(id, "answer", "p95 over budget; dropped big"))
	require.NoError(t, l.FinishNode(id, "answer", NodeResult{Status: NodeFailed}))
	require.NoError(t, l.FinishNode(id, "notify", NodeResult{Status: NodeSkipped}))
	require.NoError(t, l.FinishRun(id, RunFailed))

	rec, err := l.Run(id)
	require.NoError(t, err)
	assert.Equal(t, Run{ID: id, WorkflowName: "triage", WorkflowFile: "/w/triage.toml", WorkflowHash: hash,
		Inputs: json.RawMessage(`{"ticket":"printer on fire"}`), Plan: json.RawMessage(`{"classify":["small","big"],"answer":["big"]}`),
		PredictedMeanUSD: 0.0123, PredictedP95USD: 0.05, BudgetMaxNano: 100_000_000, Status: RunFailed,
		SpentNano: 6912, Simulated: true, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}, rec.Run)
	assert.True(t, rec.UpdatedAt.After(rec.CreatedAt))
	require.Len(t, rec.Nodes, 3)
	assert.Equal(t, []string{"classify", "answer", "notify"}, []string{rec.Nodes[0].NodeID, rec.Nodes[1].NodeID, rec.Nodes[2].NodeID})
	c := rec.Nodes[0]
	assert.Equal(t, NodeSucceeded, c.Status)
	assert.Equal(t, "big", c.FinalModel)
	assert.Equal(t, "urgent", c.Output)
	assert.Equal(t, 0.001, c.PredictedCostUSD)
	assert.True(t, c.FinishedAt.After(c.StartedAt))
	require.Len(t, c.Attempts, 2)
	a := c.Attempts[0]
	assert.Equal(t, Attempt{RunID: id, NodeID: "classify", Seq: 1, Model: "small", Provider: "openai",
		Outcome: OutcomeInvalid, Reason: "not a label", MayHaveBilled: true, Usage: usage, UsageReported: true,
		CostNano: 1234, LatencyMS: a.EndedAt.Sub(a.StartedAt).Milliseconds(), StartedAt: a.StartedAt, EndedAt: t0.Add(time.Hour),
		Purpose: PurposeAnswer, Confidence: &conf}, a)
	assert.Nil(t, c.Attempts[1].Confidence, "no signal, no confidence")
	assert.False(t, a.StartedAt.IsZero(), "start time taken from BeginAttempt")
	b := c.Attempts[1]
	assert.Equal(t, int64(321), b.LatencyMS)
	assert.Equal(t, t0.Add(time.Minute), b.StartedAt)
	assert.False(t, b.UsageReported)
	assert.True(t, rec.Nodes[1].Replanned)
	assert.Equal(t, "p95 over budget; dropped big", rec.Nodes[1].ReplanNote)
	assert.Equal(t, NodeFailed, rec.Nodes[1].Status)
	assert.Equal(t, NodeSkipped, rec.Nodes[2].Status)
	assert.True(t, rec.Nodes[2].StartedAt.Equal(rec.Nodes[2].FinishedAt), "a skipped node never started")
	assert.Empty(t, rec.InFlight)

	done, err := l.CompletedNodes(id)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"classify": "urgent"}, done)
	require.NoError(t, l.Check())
}

func TestSpentEqualsSumOfAttempts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		costs []int64
	}{
		{"none", nil},
		{"zeros", []int64{0, 0, 0}},
		{"one nano", []int64{1}},
		{"sub-cent mix", []int64{1, 999, 1_000_000, 7, 123_456_789}},
		{"large", []int64{math.MaxInt64 / 4, math.MaxInt64 / 4, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openTest(t, Options{})
			id := mustRun(t, l, "", "wf", false, "n")
			var want int64
			for i, c := range tc.costs {
				want += c
				rc, err := l.RecordAttempt(Attempt{RunID: id, NodeID: "n", Model: "m", Outcome: OutcomeOK, CostNano: c})
				require.NoError(t, err)
				assert.Equal(t, Receipt{Seq: int64(i + 1), RunSpentNano: want}, rc)
			}
			rec, err := l.Run(id)
			require.NoError(t, err)
			assert.Equal(t, want, rec.SpentNano)
			var sum int64
			for _, a := range rec.Nodes[0].Attempts {
				sum += a.CostNano
			}
			assert.Equal(t, want, sum)
			require.NoError(t, l.Check())
		})
	}
}

func TestWriteErrors(t *testing.T) {
	l := openTest(t, Options{})
	id := mustRun(t, l, "r_x", "wf", false, "n")
	ok := Attempt{RunID: id, NodeID: "n", Model: "m", Outcome: OutcomeOK}
	with := func(f func(*Attempt)) Attempt { a := ok; f(&a); return a }
	for _, tc := range []struct {
		name     string
		do       func() error
		sentinel error
		want     string
	}{
		{"unknown run", func() error { _, err := l.RecordAttempt(with(func(a *Attempt) { a.RunID = "r_nope" })); return err },
			ErrNotFound, `no run "r_nope" in the ledger (` + "`costwise runs`"},
		{"unknown node", func() error { _, err := l.RecordAttempt(with(func(a *Attempt) { a.NodeID = "zz" })); return err },
			ErrNotFound, `run "r_x" has no node "zz"`},
		{"bad outcome", func() error { _, err := l.RecordAttempt(with(func(a *Attempt) { a.Outcome = "meh" })); return err },
			ErrInvalid, `outcome "meh"`},
		{"bad purpose", func() error { _, err := l.RecordAttempt(with(func(a *Attempt) { a.Purpose = "vibes" })); return err },
			ErrInvalid, `purpose "vibes"`},
		{"confidence above 1", func() error {
			c := 1.5
			_, err := l.RecordAttempt(with(func(a *Attempt) { a.Confidence = &c }))
			return err
		}, ErrInvalid, "confidence is 1.5"},
		{"negative cost", func() error { _, err := l.RecordAttempt(with(func(a *Attempt) { a.CostNano = -1 })); return err },
			ErrInvalid, "cost_nano is -1"},
		{"negative tokens", func() error {
			_, err := l.RecordAttempt(with(func(a *Attempt) { a.Usage.CacheWrite1hTokens = -5 }))
			return err
		}, ErrInvalid, "usage.cache_write_1h_tokens is -5"},
		{"no model", func() error { _, err := l.RecordAttempt(with(func(a *Attempt) { a.Model = "" })); return err },
			ErrInvalid, "model is empty"},
		{"ends before start", func() error {
			_, err := l.RecordAttempt(with(func(a *Attempt) { a.StartedAt = t0.Add(time.Hour); a.EndedAt = t0 }))
			return err
		}, ErrInvalid, "ended"},
		{"seq not in flight", func() error { _, err := l.RecordAttempt(with(func(a *Attempt) { a.Seq = 42 })); return err },
			ErrInvalid, "no call in flight with seq 42"},
		{"begin on unknown node", func() error {
			_, err := l.BeginAttempt(CallStart{RunID: id, NodeID: "zz", Model: "m"})
			return err
		}, ErrNotFound, `no node "zz"`},
		{"begin on unknown run", func() error {
			_, err := l.BeginAttempt(CallStart{RunID: "r_nope", NodeID: "n", Model: "m"})
			return err
		}, ErrNotFound, "costwise runs"},
		{"finish run running", func() error { return l.FinishRun(id, RunRunning) }, ErrInvalid, `run status "running"`},
		{"finish unknown run", func() error { return l.FinishRun("r_nope", RunFailed) }, ErrNotFound, "r_nope"},
		{"finish node pending", func() error { return l.FinishNode(id, "n", NodeResult{Status: NodePending}) }, ErrInvalid, `"pending"`},
		{"finish unknown node", func() error { return l.FinishNode(id, "zz", NodeResult{Status: NodeFailed}) }, ErrNotFound, `"zz"`},
		{"replan unknown node", func() error { return l.MarkReplanned(id, "zz", "x") }, ErrNotFound, `"zz"`},
		{"duplicate run id", func() error { _, err := l.CreateRun(NewRun{ID: "r_x", WorkflowName: "wf"}); return err },
			ErrInvalid, `"r_x" is already in the ledger`},
		{"bad inputs json", func() error {
			_, err := l.CreateRun(NewRun{WorkflowName: "wf", Inputs: json.RawMessage(`{"a":`)})
			return err
		}, ErrInvalid, "run.inputs is not valid JSON"},
		{"duplicate node", func() error {
			_, err := l.CreateRun(NewRun{WorkflowName: "wf", Nodes: []PlannedNode{{ID: "a"}, {ID: "a"}}})
			return err
		}, ErrInvalid, `node "a" listed twice`},
		{"read unknown run", func() error { _, err := l.Run("r_nope"); return err }, ErrNotFound, "`costwise runs`"},
		{"completed of unknown run", func() error { _, err := l.CompletedNodes("r_nope"); return err }, ErrNotFound, "r_nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.sentinel)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	rec, err := l.Run(id)
	require.NoError(t, err)
	assert.Empty(t, rec.Nodes[0].Attempts, "failed writes leave nothing behind")
	assert.Zero(t, rec.SpentNano)
	require.NoError(t, l.Check())
}

func TestAttemptsAreAppendOnly(t *testing.T) {
	l := openTest(t, Options{})
	id := mustRun(t, l, "", "wf", false, "n")
	record(t, l, id, call{"n", "m", OutcomeOK, 10, 0})
	for _, q := range []string{`UPDATE attempts SET cost_nano = 1`, `DELETE FROM attempts`} {
		_, err := l.w.Exec(q)
		require.Error(t, err, q)
		assert.Contains(t, err.Error(), "append-only")
	}
}

func TestCheckFindsTampering(t *testing.T) {
	l := openTest(t, Options{})
	id := mustRun(t, l, "", "wf", false, "n")
	record(t, l, id, call{"n", "m", OutcomeOK, 10, 0})
	require.NoError(t, l.Check())
	_, err := l.w.Exec(`UPDATE runs SET spent_nano = 11`)
	require.NoError(t, err)
	err = l.Check()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spent 11, attempts sum to 10")
}

func TestStartNode(t *testing.T) {
	l := openTest(t, Options{})
	id := mustRun(t, l, "", "wf", false, "a")
	require.NoError(t, l.FinishNode(id, "a", NodeResult{Status: NodeSucceeded, Output: "x"}))
	err := l.StartNode(id, "a")
	assert.ErrorIs(t, err, ErrNodeSucceeded)

	require.NoError(t, l.StartNode(id, "unplanned")) // not in the plan: appended
	require.NoError(t, l.FinishNode(id, "unplanned", NodeResult{Status: NodeFailed}))
	require.NoError(t, l.StartNode(id, "unplanned")) // a failed node may be retried
	rec, err := l.Run(id)
	require.NoError(t, err)
	require.Len(t, rec.Nodes, 2)
	assert.Equal(t, "unplanned", rec.Nodes[1].NodeID)
	assert.Equal(t, NodeRunning, rec.Nodes[1].Status)
	assert.True(t, rec.Nodes[1].FinishedAt.IsZero(), "restart clears the finish time")
}

func TestResumeRun(t *testing.T) {
	l := openTest(t, Options{})
	id := mustRun(t, l, "r_res", "wf", false, "a", "b", "c")
	hash := HashWorkflow([]byte("wf"))
	_, err := l.RecordFinalAttempt(Attempt{RunID: id, NodeID: "a", Model: "m1", Outcome: OutcomeOK, CostNano: 100},
		NodeResult{Status: NodeSucceeded, FinalModel: "m1", Output: "A"})
	require.NoError(t, err)
	// b: paid an ok answer but crashed before FinishNode; c: crashed mid-call.
	record(t, l, id, call{"b", "m1", OutcomeOK, 50, 0})
	seq, err := l.BeginAttempt(CallStart{RunID: id, NodeID: "c", Model: "m2", Provider: "p", Iteration: 2, EstimateNano: 70})
	require.NoError(t, err)

	rec, err := l.Run(id)
	require.NoError(t, err)
	require.Len(t, rec.InFlight, 1)
	assert.Equal(t, InFlightCall{Seq: seq, CallStart: CallStart{RunID: id, NodeID: "c", Iteration: 2, Model: "m2",
		Provider: "p", EstimateNano: 70, StartedAt: rec.InFlight[0].StartedAt}}, rec.InFlight[0])
	assert.EqualValues(t, 150, rec.SpentNano, "in-flight calls are not yet charged")

	_, err = l.ResumeRun(id, HashWorkflow([]byte("wf edited")))
	assert.ErrorIs(t, err, ErrWorkflowChanged)
	_, err = l.ResumeRun("r_nope", hash)
	assert.ErrorIs(t, err, ErrNotFound)

	require.NoError(t, l.FinishRun(id, RunFailed))
	rec, err = l.ResumeRun(id, hash)
	require.NoError(t, err)
	assert.Equal(t, RunRunning, rec.Status)
	assert.Empty(t, rec.InFlight)
	assert.EqualValues(t, 220, rec.SpentNano, "interrupted call charged at its estimate")
	require.Len(t, rec.Nodes[2].Attempts, 1)
	in := rec.Nodes[2].Attempts[0]
	assert.Equal(t, OutcomeInterrupted, in.Outcome)
	assert.True(t, in.MayHaveBilled)
	assert.False(t, in.UsageReported)
	assert.Equal(t, seq, in.Seq)
	assert.Equal(t, 2, in.Iteration)
	_, err = l.RecordAttempt(Attempt{RunID: id, NodeID: "c", Seq: seq, Model: "m2", Outcome: OutcomeOK})
	assert.ErrorIs(t, err, ErrInvalid, "a settled call cannot be recorded twice")

	done, err := l.CompletedNodes(id)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "A"}, done, "only succeeded nodes are skipped on resume")
	assert.ErrorIs(t, l.StartNode(id, "a"), ErrNodeSucceeded)
	require.NoError(t, l.StartNode(id, "b"))
	seq2, err := l.BeginAttempt(CallStart{RunID: id, NodeID: "b", Model: "m1"})
	require.NoError(t, err)
	assert.Equal(t, seq+1, seq2, "sequence numbers continue after resume")

	require.NoError(t, l.FinishRun(id, RunSucceeded))
	_, err = l.ResumeRun(id, hash)
	assert.ErrorIs(t, err, ErrRunSucceeded)
	require.NoError(t, l.Check())
}

func TestRerouteRates(t *testing.T) {
	for _, tc := range []struct {
		name  string
		runs  [][]call // one slice per run, oldest first
		lastN int
		want  []Reroute
	}{
		{
			name: "escalation then success",
			runs: [][]call{{{"n", "small", OutcomeInvalid, 1, 0}, {"n", "big", OutcomeOK, 5, 0}}},
			want: []Reroute{
				{WorkflowName: "wf", NodeID: "n", Model: "big", Calls: 1, Escalated: 0, Rate: 0},
				{WorkflowName: "wf", NodeID: "n", Model: "small", Calls: 1, Escalated: 1, Rate: 1},
			},
		},
		{
			name: "retry on the same model is not an escalation",
			runs: [][]call{{{"n", "small", OutcomeRateLimited, 0, 0}, {"n", "small", OutcomeOK, 1, 0}}},
			want: []Reroute{{WorkflowName: "wf", NodeID: "n", Model: "small", Calls: 2, Escalated: 0, Rate: 0}},
		},
		{
			name: "last failure with nothing after is not an escalation",
			runs: [][]call{{{"n", "small", OutcomeError, 0, 0}}},
			want: []Reroute{{WorkflowName: "wf", NodeID: "n", Model: "small", Calls: 1}},
		},
		{
			name: "next iteration or other node does not count",
			runs: [][]call{{
				{"n", "small", OutcomeError, 0, 0}, {"m", "big", OutcomeOK, 0, 0}, {"n", "big", OutcomeOK, 0, 1},
			}},
			want: []Reroute{
				{WorkflowName: "wf", NodeID: "m", Model: "big", Calls: 1},
				{WorkflowName: "wf", NodeID: "n", Model: "big", Calls: 1},
				{WorkflowName: "wf", NodeID: "n", Model: "small", Calls: 1},
			},
		},
		{
			name: "interleaved nodes still pair within a node",
			runs: [][]call{{
				{"n", "small", OutcomeTimeout, 0, 0}, {"m", "small", OutcomeOK, 0, 0}, {"n", "big", OutcomeOK, 0, 0},
			}},
			want: []Reroute{
				{WorkflowName: "wf", NodeID: "m", Model: "small", Calls: 1},
				{WorkflowName: "wf", NodeID: "n", Model: "big", Calls: 1},
				{WorkflowName: "wf", NodeID: "n", Model: "small", Calls: 1, Escalated: 1, Rate: 1},
			},
		},
		{
			name: "rate over runs, limited to the newest",
			runs: [][]call{
				{{"n", "small", OutcomeInvalid, 0, 0}, {"n", "big", OutcomeOK, 0, 0}}, // dropped by lastN
				{{"n", "small", OutcomeInvalid, 0, 0}, {"n", "big", OutcomeOK, 0, 0}},
				{{"n", "small", OutcomeOK, 0, 0}},
				{{"n", "small", OutcomeOK, 0, 0}},
				{{"n", "small", OutcomeInvalid, 0, 0}, {"n", "mid", OutcomeError, 0, 0}, {"n", "big", OutcomeOK, 0, 0}},
			},
			lastN: 4,
			want: []Reroute{
				{WorkflowName: "wf", NodeID: "n", Model: "big", Calls: 2},
				{WorkflowName: "wf", NodeID: "n", Model: "mid", Calls: 1, Escalated: 1, Rate: 1},
				{WorkflowName: "wf", NodeID: "n", Model: "small", Calls: 4, Escalated: 2, Rate: 0.5},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openTest(t, Options{})
			for _, calls := range tc.runs {
				id := mustRun(t, l, "", "wf", false, "n", "m")
				record(t, l, id, calls...)
			}
			// A simulated run full of escalations must not count.
			sim := mustRun(t, l, "", "wf", true, "n")
			record(t, l, sim, call{"n", "small", OutcomeError, 0, 0}, call{"n", "big", OutcomeOK, 0, 0})
			got, err := l.RerouteRates(tc.lastN)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRuns(t *testing.T) {
	l := openTest(t, Options{})
	old := mustRun(t, l, "", "alpha", false, "a", "b")
	record(t, l, old, call{"a", "small", OutcomeError, 3, 0}, call{"a", "big", OutcomeOK, 7, 0})
	require.NoError(t, l.FinishNode(old, "a", NodeResult{Status: NodeSucceeded}))
	require.NoError(t, l.FinishNode(old, "b", NodeResult{Status: NodeSkipped}))
	require.NoError(t, l.FinishRun(old, RunSucceeded))
	newer, err := l.CreateRun(NewRun{WorkflowName: "beta", PredictedMeanUSD: 1.5, PredictedP95USD: 2.5, BudgetMaxNano: 9,
		Nodes: []PlannedNode{{ID: "x"}, {ID: "y"}, {ID: "z"}}})
	require.NoError(t, err)
	require.NoError(t, l.StartNode(newer, "x"))

	all, err := l.Runs(0)
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, newer, all[0].ID, "newest first")
	assert.Equal(t, RunSummary{ID: newer, WorkflowName: "beta", Status: RunRunning, BudgetMaxNano: 9,
		PredictedMeanUSD: 1.5, PredictedP95USD: 2.5, Nodes: NodeCounts{Total: 3, Pending: 2, Running: 1},
		CreatedAt: all[0].CreatedAt, UpdatedAt: all[0].UpdatedAt}, all[0])
	assert.Equal(t, RunSummary{ID: old, WorkflowName: "alpha", Status: RunSucceeded, SpentNano: 10,
		Nodes: NodeCounts{Total: 2, Succeeded: 1, Skipped: 1}, Attempts: 2, Escalations: 1,
		CreatedAt: all[1].CreatedAt, UpdatedAt: all[1].UpdatedAt}, all[1])

	one, err := l.Runs(1)
	require.NoError(t, err)
	require.Len(t, one, 1)
	assert.Equal(t, newer, one[0].ID)
}

func TestCostPerCompletedRun(t *testing.T) {
	for _, tc := range []struct {
		name   string
		runs   []RunStatus
		spends []int64
		want   RunCost
	}{
		{"no runs", nil, nil, RunCost{WorkflowName: "wf"}},
		{"only failures", []RunStatus{RunFailed}, []int64{40}, RunCost{WorkflowName: "wf", Runs: 1, SpentNano: 40}},
		{"failures paid by successes", []RunStatus{RunSucceeded, RunFailed, RunBudgetExhausted, RunSucceeded},
			[]int64{100, 30, 70, 100}, RunCost{WorkflowName: "wf", Runs: 4, Succeeded: 2, SpentNano: 300, PerCompletedNano: 150}},
		{"rounds to nearest nano", []RunStatus{RunSucceeded, RunSucceeded, RunSucceeded, RunRunning},
			[]int64{1, 1, 0, 0}, RunCost{WorkflowName: "wf", Runs: 4, Succeeded: 3, SpentNano: 2, PerCompletedNano: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openTest(t, Options{})
			for i, st := range tc.runs {
				id := mustRun(t, l, "", "wf", false, "n")
				record(t, l, id, call{"n", "m", OutcomeOK, tc.spends[i], 0})
				if st != RunRunning {
					require.NoError(t, l.FinishRun(id, st))
				}
			}
			other := mustRun(t, l, "", "other", false, "n")
			record(t, l, other, call{"n", "m", OutcomeOK, 1_000_000, 0})
			require.NoError(t, l.FinishRun(other, RunSucceeded))
			sim := mustRun(t, l, "", "wf", true, "n")
			record(t, l, sim, call{"n", "m", OutcomeOK, 1_000_000, 0})
			require.NoError(t, l.FinishRun(sim, RunSucceeded))

			got, err := l.CostPerCompletedRun("wf")
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestErrorMessagesAreWrapped(t *testing.T) {
	l := openTest(t, Options{})
	_, err := l.Run("r_20261127T041200Z_ab12cd")
	require.True(t, errors.Is(err, ErrNotFound))
	assert.True(t, strings.HasPrefix(err.Error(), "ledger: "), err.Error())
	assert.Equal(t, "ledger: not found: no run \"r_20261127T041200Z_ab12cd\" in the ledger (`costwise runs` lists the recorded runs)", err.Error())
}
