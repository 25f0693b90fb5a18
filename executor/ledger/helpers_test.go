package ledger

import (
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 27, 4, 12, 0, 0, time.UTC)

// fakeClock returns t0, t0+1ms, t0+2ms, ... on successive calls, so that
// timestamps are distinct and predictable.
func fakeClock() func() time.Time {
	var n atomic.Int64
	return func() time.Time { return t0.Add(time.Duration(n.Add(1)-1) * time.Millisecond) }
}

func openTest(t testing.TB, o Options) *Ledger {
	t.Helper()
	if o.Now == nil {
		o.Now = fakeClock()
	}
	l, err := OpenWith(filepath.Join(t.TempDir(), "sub", "ledger.db"), o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })
	return l
}

// mustRun creates a run of workflow wf with the given nodes, all started.
func mustRun(t testing.TB, l *Ledger, id, wf string, simulated bool, nodes ...string) string {
	t.Helper()
	var planned []PlannedNode
	for _, n := range nodes {
		planned = append(planned, PlannedNode{ID: n, PredictedCostUSD: 0.01})
	}
	got, err := l.CreateRun(NewRun{ID: id, WorkflowName: wf, WorkflowFile: wf + ".toml",
		WorkflowHash: HashWorkflow([]byte(wf)), Simulated: simulated, Nodes: planned})
	require.NoError(t, err)
	for _, n := range nodes {
		require.NoError(t, l.StartNode(got, n))
	}
	return got
}

// call is a compact attempt description for tests.
type call struct {
	node, model string
	outcome     Outcome
	cost        int64
	iteration   int
}

func record(t testing.TB, l *Ledger, runID string, calls ...call) {
	t.Helper()
	for _, c := range calls {
		_, err := l.RecordAttempt(Attempt{RunID: runID, NodeID: c.node, Iteration: c.iteration, Model: c.model,
			Provider: "test", Outcome: c.outcome, CostNano: c.cost, UsageReported: true})
		require.NoError(t, err)
	}
}
