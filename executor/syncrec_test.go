package executor_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// recordedRun is a ledger run without its times and ids, to compare how
// two recorders wrote the same request.
type recordedRun struct {
	Status   ledger.RunStatus
	Spent    int64
	InFlight int
	Nodes    []recordedNode
}

type recordedNode struct {
	ID, Model, Output string
	Status            ledger.NodeStatus
	Attempts          []recordedAttempt
}

type recordedAttempt struct {
	Seq      int64
	Model    string
	Outcome  ledger.Outcome
	CostNano int64
	Purpose  ledger.Purpose
}

func recorded(t *testing.T, l *ledger.Ledger, id string) recordedRun {
	t.Helper()
	rec, err := l.Run(id)
	require.NoError(t, err)
	out := recordedRun{Status: rec.Status, Spent: rec.SpentNano, InFlight: len(rec.InFlight)}
	for _, n := range rec.Nodes {
		rn := recordedNode{ID: n.NodeID, Model: n.FinalModel, Output: n.Output, Status: n.Status}
		for _, a := range n.Attempts {
			rn.Attempts = append(rn.Attempts, recordedAttempt{Seq: a.Seq, Model: a.Model, Outcome: a.Outcome, CostNano: a.CostNano, Purpose: a.Purpose})
		}
		out.Nodes = append(out.Nodes, rn)
	}
	return out
}

// TestSyncRouterRecorder: a SyncRouterRecorder leaves the ledger as
// LedgerRecorder does, request by request: answered at once, escalated,
// streamed, refused by the daily budget before any call.
func TestSyncRouterRecorder(t *testing.T) {
	for _, tc := range []struct {
		name string
		oa   providertest.Script
		opts executor.RouterOptions
		call []llms.CallOption
	}{
		{"answered by the first rung", providertest.Script{"nano": {{Text: "hi", Usage: u(50, 5)}}}, executor.RouterOptions{}, nil},
		{"escalated", providertest.Script{"nano": {{Status: 500}}, "big": {{Text: "big says hi", Usage: u(50, 5)}}},
			executor.RouterOptions{MaxRetries: -1}, nil},
		{"streamed", providertest.Script{"nano": {{Text: "streamed hi", Usage: u(50, 5)}}}, executor.RouterOptions{},
			[]llms.CallOption{llms.WithStreamingFunc(func(context.Context, []byte) error { return nil })}},
		{"refused by the daily budget", providertest.Script{"nano": {{Text: "hi"}}}, executor.RouterOptions{DailyBudgetNano: 1}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got [2]recordedRun
			for i, sync := range []bool{false, true} {
				e := newRTEnv(t, tc.oa, providertest.Script{"sonnet": {{Text: "sonnet says hi", Usage: u(50, 5)}}})
				var rec executor.RouterRecorder = executor.LedgerRecorder{L: e.l}
				if sync {
					rec = executor.NewSyncRouterRecorder(e.l)
				}
				opts := tc.opts
				opts.BackoffBase = time.Millisecond
				r, err := executor.NewRouter(e.cat, e.cfg, rec, opts)
				require.NoError(t, err)
				_, callErr := r.GenerateContent(context.Background(), human("Say hello."), tc.call...)
				runs, err := e.l.Runs(0)
				require.NoError(t, err)
				require.Len(t, runs, 1, "one request, one run (error: %v)", callErr)
				got[i] = recorded(t, e.l, runs[0].ID)
				require.NoError(t, e.l.Check())
			}
			assert.Equal(t, got[0], got[1])
			assert.NotEqual(t, ledger.RunRunning, got[1].Status)
		})
	}
}

// TestSyncRouterRecorderInFlight: the request is in the ledger, its call
// in flight, before the provider answers.
func TestSyncRouterRecorderInFlight(t *testing.T) {
	e := newRTEnv(t, providertest.Script{"nano": {{Text: "hi", Usage: u(50, 5), Delay: 300 * time.Millisecond}}}, providertest.Script{})
	r, err := executor.NewRouter(e.cat, e.cfg, executor.NewSyncRouterRecorder(e.l), executor.RouterOptions{})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := r.GenerateContent(context.Background(), human("Say hello."))
		done <- err
	}()
	var id string
	require.Eventually(t, func() bool {
		runs, err := e.l.Runs(0)
		require.NoError(t, err)
		if len(runs) == 0 {
			return false
		}
		id = runs[0].ID
		return true
	}, 5*time.Second, time.Millisecond)
	mid, err := e.l.Run(id)
	require.NoError(t, err)
	require.NoError(t, <-done)
	assert.Equal(t, ledger.RunRunning, mid.Status)
	require.Len(t, mid.InFlight, 1, "the call is in flight in the ledger while the provider answers")
	assert.Positive(t, mid.InFlight[0].EstimateNano)
	end := recorded(t, e.l, id)
	assert.Equal(t, ledger.RunSucceeded, end.Status)
	assert.Zero(t, end.InFlight)
}
