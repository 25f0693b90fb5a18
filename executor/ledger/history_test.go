package ledger

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// histRun creates a started run whose nodes carry task kinds.
func histRun(t *testing.T, l *Ledger, id string, simulated bool, nodes map[string]string) {
	t.Helper()
	var planned []PlannedNode
	for _, n := range []string{"classify", "summarise", "loop"} {
		if task, ok := nodes[n]; ok {
			planned = append(planned, PlannedNode{ID: n, Task: task})
		}
	}
	_, err := l.CreateRun(NewRun{ID: id, WorkflowName: "wf", WorkflowFile: "wf.toml", WorkflowHash: HashWorkflow([]byte("wf")),
		Simulated: simulated, Nodes: planned})
	require.NoError(t, err)
	for _, p := range planned {
		require.NoError(t, l.StartNode(id, p.ID))
	}
}

// hcall is an attempt for the history tests.
type hcall struct {
	node, model string
	iteration   int
	outcome     Outcome
	cost        int64
	latency     int64
	conf        float64 // < 0: none
	purpose     Purpose
}

func hrecord(t *testing.T, l *Ledger, runID string, calls ...hcall) {
	t.Helper()
	for _, c := range calls {
		a := Attempt{RunID: runID, NodeID: c.node, Iteration: c.iteration, Model: c.model, Provider: "openai", Outcome: c.outcome,
			CostNano: c.cost, LatencyMS: c.latency, UsageReported: true, Purpose: c.purpose,
			Usage: Usage{InputTokens: 100, OutputTokens: 20}}
		if c.conf >= 0 {
			v := c.conf
			a.Confidence = &v
		}
		_, err := l.RecordAttempt(a)
		require.NoError(t, err)
	}
}

func TestHistory(t *testing.T) {
	l := openTest(t, Options{})
	const nano, gpt5 = "openai/gpt-5-nano", "openai/gpt-5"
	// r1: a cascade on classify: nano answers with low confidence (rejected),
	// a self-check call is paid, gpt-5 answers; summarise: nano times out,
	// then answers.
	histRun(t, l, "r1", false, map[string]string{"classify": "classification", "summarise": "summary"})
	hrecord(t, l, "r1",
		hcall{node: "classify", model: nano, outcome: OutcomeInvalid, cost: 1000, latency: 300, conf: 0.4},
		hcall{node: "classify", model: nano, outcome: OutcomeOK, cost: 200, latency: 100, conf: 0.4, purpose: PurposeSelfCheck},
		hcall{node: "classify", model: gpt5, outcome: OutcomeOK, cost: 20000, latency: 2000, conf: -1},
		hcall{node: "summarise", model: nano, outcome: OutcomeTimeout, cost: 0, latency: 5000, conf: -1},
		hcall{node: "summarise", model: nano, outcome: OutcomeOK, cost: 900, latency: 400, conf: 0.9},
	)
	require.NoError(t, l.AddFeedback("r1", "classify", 0.8))
	require.NoError(t, l.AddFeedback("r1", "classify", 0.6)) // the latest counts
	// r2: nano accepted at once; gpt-5 errored on summarise and gave no answer.
	histRun(t, l, "r2", false, map[string]string{"classify": "classification", "summarise": "summary"})
	hrecord(t, l, "r2",
		hcall{node: "classify", model: nano, outcome: OutcomeOK, cost: 1100, latency: 250, conf: 0.95},
		hcall{node: "summarise", model: gpt5, outcome: OutcomeError, cost: 0, latency: 10, conf: -1},
	)
	// A simulated run is left out.
	histRun(t, l, "sim", true, map[string]string{"classify": "classification"})
	hrecord(t, l, "sim", hcall{node: "classify", model: nano, outcome: OutcomeOK, cost: 5, latency: 1, conf: 0.99})
	// r3: a loop node: two iterations, each its own query.
	histRun(t, l, "r3", false, map[string]string{"loop": "code"})
	hrecord(t, l, "r3",
		hcall{node: "loop", model: nano, iteration: 0, outcome: OutcomeInvalid, cost: 10, latency: 1, conf: -1},
		hcall{node: "loop", model: nano, iteration: 1, outcome: OutcomeOK, cost: 20, latency: 2, conf: -1},
	)

	type key struct {
		run, node string
		iter      int
		model     string
	}
	type want struct {
		outcome  Outcome
		conf     float64 // < 0: nil
		answer   bool
		feedback float64 // < 0: nil
		calls    int
		cost     int64
		latency  int64
	}
	all := map[key]want{
		{"r1", "classify", 0, nano}:  {OutcomeInvalid, 0.4, false, 0.6, 2, 1200, 400},
		{"r1", "classify", 0, gpt5}:  {OutcomeOK, -1, true, 0.6, 1, 20000, 2000},
		{"r1", "summarise", 0, nano}: {OutcomeOK, 0.9, true, -1, 2, 900, 5400},
		{"r2", "classify", 0, nano}:  {OutcomeOK, 0.95, true, -1, 1, 1100, 250},
		{"r3", "loop", 0, nano}:      {OutcomeInvalid, -1, false, -1, 1, 10, 1},
		{"r3", "loop", 1, nano}:      {OutcomeOK, -1, true, -1, 1, 20, 2},
	}
	cases := []struct {
		name   string
		filter HistoryFilter
		keys   []key // in the order History returns them
	}{
		{"everything real", HistoryFilter{}, []key{
			{"r1", "classify", 0, nano}, {"r1", "classify", 0, gpt5}, {"r1", "summarise", 0, nano},
			{"r2", "classify", 0, nano}, {"r3", "loop", 0, nano}, {"r3", "loop", 1, nano}}},
		{"one task", HistoryFilter{Task: "classification"}, []key{
			{"r1", "classify", 0, nano}, {"r1", "classify", 0, gpt5}, {"r2", "classify", 0, nano}}},
		{"unknown task", HistoryFilter{Task: "poetry"}, nil},
		{"since", HistoryFilter{Since: t0.Add(time.Hour)}, nil},
		{"since the start", HistoryFilter{Since: t0}, []key{
			{"r1", "classify", 0, nano}, {"r1", "classify", 0, gpt5}, {"r1", "summarise", 0, nano},
			{"r2", "classify", 0, nano}, {"r3", "loop", 0, nano}, {"r3", "loop", 1, nano}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, err := l.History(c.filter)
			require.NoError(t, err)
			var got []key
			for _, r := range rows {
				k := key{r.RunID, r.NodeID, r.Iteration, r.Model}
				got = append(got, k)
				w, ok := all[k]
				require.True(t, ok, "unexpected row %+v", k)
				assert.Equal(t, w.outcome, r.Outcome, "%v", k)
				assert.Equal(t, w.answer, r.Answer, "%v", k)
				assert.Equal(t, w.calls, r.Calls, "%v", k)
				assert.Equal(t, w.cost, r.CostNano, "%v", k)
				assert.Equal(t, w.latency, r.LatencyMS, "%v", k)
				if w.conf < 0 {
					assert.Nil(t, r.Confidence, "%v", k)
				} else if assert.NotNil(t, r.Confidence, "%v", k) {
					assert.Equal(t, w.conf, *r.Confidence, "%v", k)
				}
				if w.feedback < 0 {
					assert.Nil(t, r.Feedback, "%v", k)
				} else if assert.NotNil(t, r.Feedback, "%v", k) {
					assert.Equal(t, w.feedback, *r.Feedback, "%v", k)
				}
				assert.Equal(t, "wf", r.WorkflowName)
				assert.Equal(t, "openai", r.Provider)
				assert.Equal(t, int64(100), r.InputTokens)
				assert.Equal(t, int64(20), r.OutputTokens)
				assert.False(t, r.EndedAt.IsZero())
			}
			assert.Equal(t, c.keys, got)
		})
	}
	rows, err := l.History(HistoryFilter{Task: "classification"})
	require.NoError(t, err)
	assert.Equal(t, "classification", rows[0].Task)
}

func TestHistoryEmptyLedger(t *testing.T) {
	l := openTest(t, Options{})
	rows, err := l.History(HistoryFilter{})
	require.NoError(t, err)
	assert.Empty(t, rows)
}

func BenchmarkHistory(b *testing.B) {
	for _, runs := range []int{1000, 5000} {
		l := openTest(b, Options{Synchronous: SyncNormal})
		for i := range runs {
			id := fmt.Sprintf("r%05d", i)
			_, err := l.CreateRun(NewRun{ID: id, WorkflowName: "wf", WorkflowFile: "wf.toml", WorkflowHash: HashWorkflow([]byte("wf")),
				Nodes: []PlannedNode{{ID: "a", Task: "qa"}, {ID: "b", Task: "code"}}})
			require.NoError(b, err)
			record(b, l, id, call{node: "a", model: "nano", outcome: OutcomeInvalid, cost: 10},
				call{node: "a", model: "big", outcome: OutcomeOK, cost: 100},
				call{node: "b", model: "nano", outcome: OutcomeError, cost: 0},
				call{node: "b", model: "nano", outcome: OutcomeOK, cost: 10})
		}
		rows, err := l.History(HistoryFilter{})
		require.NoError(b, err)
		require.Len(b, rows, 3*runs)
		b.Run(fmt.Sprintf("runs=%d/attempts=%d", runs, 4*runs), func(b *testing.B) {
			for b.Loop() {
				if _, err := l.History(HistoryFilter{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
