package ledger

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCreateRunWithCallAndFinishRunWithNode: the two combined writes leave
// the same rows as the five step-by-step ones, and the run is in flight in
// between.
func TestCreateRunWithCallAndFinishRunWithNode(t *testing.T) {
	l := openTest(t, Options{})
	newRun := func(id string) NewRun {
		return NewRun{ID: id, WorkflowName: "router:chat", WorkflowFile: "(router)", PredictedMeanUSD: 0.001,
			Nodes: []PlannedNode{{ID: "call", Task: "writing", PredictedCostUSD: 0.001}}}
	}
	call := CallStart{NodeID: "call", Iteration: 1, Model: "openai/mini", Provider: "openai", EstimateNano: 5000}
	final := func(id string, seq int64) *Attempt {
		return &Attempt{RunID: id, NodeID: "call", Seq: seq, Iteration: 1, Model: "openai/mini", Provider: "openai",
			Outcome: OutcomeOK, CostNano: 1234, UsageReported: true, Usage: Usage{InputTokens: 40, OutputTokens: 7}}
	}
	res := NodeResult{Status: NodeSucceeded, FinalModel: "openai/mini", Output: "hi"}

	// Step by step.
	_, err := l.CreateRun(newRun("r_steps"))
	require.NoError(t, err)
	require.NoError(t, l.StartNode("r_steps", "call"))
	c := call
	c.RunID = "r_steps"
	seq, err := l.BeginAttempt(c)
	require.NoError(t, err)
	_, err = l.RecordFinalAttempt(*final("r_steps", seq), res)
	require.NoError(t, err)
	require.NoError(t, l.FinishRun("r_steps", RunSucceeded))

	// Combined.
	seq, err = l.CreateRunWithCall(newRun("r_two"), call)
	require.NoError(t, err)
	mid, err := l.Run("r_two")
	require.NoError(t, err)
	assert.Equal(t, RunRunning, mid.Status)
	require.Len(t, mid.InFlight, 1, "the call is in flight before it is sent")
	assert.Equal(t, int64(5000), mid.InFlight[0].EstimateNano)
	assert.Equal(t, NodeRunning, mid.Nodes[0].Status)
	require.NoError(t, l.FinishRunWithNode("r_two", "call", final("r_two", seq), res, RunSucceeded))

	a, err := l.Run("r_steps")
	require.NoError(t, err)
	b, err := l.Run("r_two")
	require.NoError(t, err)
	for _, r := range []*RunRecord{a, b} {
		assert.Equal(t, RunSucceeded, r.Status)
		assert.Equal(t, int64(1234), r.SpentNano)
		assert.Empty(t, r.InFlight)
		require.Len(t, r.Nodes, 1)
		n := r.Nodes[0]
		assert.Equal(t, NodeSucceeded, n.Status)
		assert.Equal(t, "hi", n.Output)
		assert.Equal(t, "openai/mini", n.FinalModel)
		assert.Equal(t, "writing", n.Task)
		require.Len(t, n.Attempts, 1)
		assert.Equal(t, int64(1), n.Attempts[0].Seq)
		assert.Equal(t, Usage{InputTokens: 40, OutputTokens: 7}, n.Attempts[0].Usage)
	}
	require.NoError(t, l.Check())

	t.Run("a failed request without a final attempt", func(t *testing.T) {
		_, err := l.CreateRunWithCall(newRun("r_fail"), call)
		require.NoError(t, err)
		require.NoError(t, l.FinishRunWithNode("r_fail", "call", nil, NodeResult{Status: NodeFailed}, RunFailed))
		r, err := l.Run("r_fail")
		require.NoError(t, err)
		assert.Equal(t, RunFailed, r.Status)
		assert.Equal(t, NodeFailed, r.Nodes[0].Status)
		assert.Len(t, r.InFlight, 1, "a call never recorded stays in flight: it may have been billed")
	})
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"no run id", func() error { _, err := l.CreateRunWithCall(newRun(""), call); return err }, "run.id is empty"},
		{"taken run id", func() error { _, err := l.CreateRunWithCall(newRun("r_two"), call); return err }, `run id "r_two" is already in the ledger`},
		{"no node", func() error { c := call; c.NodeID = ""; _, err := l.CreateRunWithCall(newRun("r_x"), c); return err }, "empty node id"},
		{"still running", func() error { return l.FinishRunWithNode("r_two", "call", nil, res, RunRunning) }, `run status "running"`},
		{"another node's attempt", func() error { return l.FinishRunWithNode("r_two", "other", final("r_two", 0), res, RunSucceeded) }, `not "other"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err = l.Run("r_x")
	assert.ErrorIs(t, err, ErrNotFound, "a refused write leaves nothing")
}
