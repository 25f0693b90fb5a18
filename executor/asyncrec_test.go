package executor_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/ledger"
)

// stepRecorder forwards every write to a LedgerRecorder but is no
// RoutedRunWriter: an AsyncRouterRecorder makes its writes one by one.
type stepRecorder struct {
	in         executor.LedgerRecorder
	failFinish bool // FinishRun fails
}

func (s stepRecorder) CreateCall(c executor.RoutedCall) (string, error) { return s.in.CreateCall(c) }
func (s stepRecorder) StartNode(id, node string) error                  { return s.in.StartNode(id, node) }
func (s stepRecorder) BeginAttempt(id string, a *executor.Attempt, est int64) (int64, error) {
	return s.in.BeginAttempt(id, a, est)
}
func (s stepRecorder) RecordAttempt(id string, seq int64, a *executor.Attempt) error {
	return s.in.RecordAttempt(id, seq, a)
}
func (s stepRecorder) FinishNode(id string, n *executor.NodeResult, f *executor.Attempt, seq int64) error {
	return s.in.FinishNode(id, n, f, seq)
}
func (s stepRecorder) FinishRun(id, status string) error {
	if s.failFinish {
		return errors.New("disk full")
	}
	return s.in.FinishRun(id, status)
}
func (s stepRecorder) SpentSince(t time.Time) (int64, error) { return s.in.SpentSince(t) }

// gatedRecorder is a LedgerRecorder whose batches wait for gate (when set)
// and are logged by size.
type gatedRecorder struct {
	executor.LedgerRecorder
	gate    chan struct{}
	entered chan struct{}
	mu      *sync.Mutex
	sizes   *[]int
}

func (g gatedRecorder) WriteRoutedRuns(runs []*executor.RoutedRun) []error {
	g.mu.Lock()
	*g.sizes = append(*g.sizes, len(runs))
	first := len(*g.sizes) == 1
	g.mu.Unlock()
	if first && g.gate != nil {
		close(g.entered)
		<-g.gate
	}
	return g.LedgerRecorder.WriteRoutedRuns(runs)
}

func TestAsyncRouterRecorder(t *testing.T) {
	for _, kind := range []string{"batch", "steps"} {
		t.Run("concurrent requests are all in the ledger after Flush, and Close writes later ones synchronously/"+kind, func(t *testing.T) {
			e := newRTEnvOK(t)
			var rec executor.RouterRecorder = executor.LedgerRecorder{L: e.l}
			if kind == "steps" {
				rec = stepRecorder{in: executor.LedgerRecorder{L: e.l}}
			}
			a := executor.NewAsyncRouterRecorder(rec, executor.AsyncOptions{QueueSize: 8,
				OnError: func(err error) { t.Errorf("async ledger write: %v", err) }})
			r, err := executor.NewRouter(e.cat, e.cfg, a, executor.RouterOptions{})
			require.NoError(t, err)
			const n = 12
			var wg sync.WaitGroup
			ids := make([]string, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := r.GenerateContent(context.Background(), human("Say hello."))
					assert.NoError(t, err)
					if err == nil {
						ids[i] = resp.Choices[0].GenerationInfo[executor.InfoRunID].(string)
					}
				}()
			}
			wg.Wait()
			require.NoError(t, a.Flush(context.Background()))
			want := e.price(t, "openai/nano", *u(50, 5))
			for _, id := range ids {
				rec, err := e.l.Run(id)
				require.NoError(t, err, id)
				assert.Equal(t, ledger.RunSucceeded, rec.Status)
				assert.Equal(t, want, rec.SpentNano)
				require.Len(t, rec.Nodes, 1)
				assert.Equal(t, ledger.NodeSucceeded, rec.Nodes[0].Status)
				assert.Equal(t, "openai/nano", rec.Nodes[0].FinalModel)
				require.Len(t, rec.Nodes[0].Attempts, 1)
				assert.False(t, rec.Nodes[0].StartedAt.IsZero())
				assert.False(t, rec.Nodes[0].FinishedAt.Before(rec.Nodes[0].StartedAt))
			}
			spent, err := a.SpentSince(time.Now().Add(-time.Hour))
			require.NoError(t, err)
			assert.Equal(t, n*want, spent)

			require.NoError(t, a.Close(context.Background()))
			resp, err := r.GenerateContent(context.Background(), human("Say hello."))
			require.NoError(t, err)
			got, err := e.l.Run(resp.Choices[0].GenerationInfo[executor.InfoRunID].(string))
			require.NoError(t, err, "a request after Close is written before it returns")
			assert.Equal(t, ledger.RunSucceeded, got.Status)
			require.NoError(t, e.l.Check())
			assert.Zero(t, a.Errors())
		})
	}
	t.Run("the requests finished while a batch is written go into the next one, at most MaxBatch each", func(t *testing.T) {
		for _, tc := range []struct {
			maxBatch  int
			wantSizes []int
		}{
			{0, []int{1, 9}},
			{4, []int{1, 4, 4, 1}},
		} {
			t.Run(fmt.Sprintf("max=%d", tc.maxBatch), func(t *testing.T) {
				e := newRTEnvOK(t)
				var mu sync.Mutex
				var sizes []int
				g := gatedRecorder{executor.LedgerRecorder{L: e.l}, make(chan struct{}), make(chan struct{}), &mu, &sizes}
				a := executor.NewAsyncRouterRecorder(g, executor.AsyncOptions{MaxBatch: tc.maxBatch})
				r, err := executor.NewRouter(e.cat, e.cfg, a, executor.RouterOptions{})
				require.NoError(t, err)
				_, err = r.GenerateContent(context.Background(), human("Say hello."))
				require.NoError(t, err)
				<-g.entered // the first request's batch is being written
				for range 9 {
					_, err := r.GenerateContent(context.Background(), human("Say hello."))
					require.NoError(t, err, "requests do not wait for the ledger")
				}
				close(g.gate)
				require.NoError(t, a.Close(context.Background()))
				assert.Equal(t, tc.wantSizes, sizes)
				runs, err := e.l.Runs(0)
				require.NoError(t, err)
				assert.Len(t, runs, 10)
				assert.Zero(t, a.Errors())
				require.NoError(t, e.l.Check())
			})
		}
	})
	t.Run("requests finished within Linger share a batch, and Flush does not wait for it", func(t *testing.T) {
		e := newRTEnvOK(t)
		var mu sync.Mutex
		var sizes []int
		g := gatedRecorder{executor.LedgerRecorder{L: e.l}, nil, nil, &mu, &sizes}
		a := executor.NewAsyncRouterRecorder(g, executor.AsyncOptions{Linger: time.Hour})
		r, err := executor.NewRouter(e.cat, e.cfg, a, executor.RouterOptions{})
		require.NoError(t, err)
		for range 3 {
			_, err := r.GenerateContent(context.Background(), human("Say hello."))
			require.NoError(t, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, a.Flush(ctx))
		mu.Lock()
		assert.Equal(t, []int{3}, sizes)
		mu.Unlock()
		runs, err := e.l.Runs(0)
		require.NoError(t, err)
		assert.Len(t, runs, 3)
		_, err = r.GenerateContent(context.Background(), human("Say hello."))
		require.NoError(t, err)
		require.NoError(t, a.Close(ctx), "Close does not wait for Linger either")
		assert.Equal(t, []int{3, 1}, sizes)
		assert.Zero(t, a.Errors())
	})
	t.Run("a batch that cannot be written is reported once per request", func(t *testing.T) {
		e := newRTEnvOK(t)
		l, err := ledger.Open(filepath.Join(t.TempDir(), "closed.db"))
		require.NoError(t, err)
		require.NoError(t, l.Close())
		var mu sync.Mutex
		var got []error
		var sizes []int
		g := gatedRecorder{executor.LedgerRecorder{L: l}, nil, nil, &mu, &sizes}
		a := executor.NewAsyncRouterRecorder(g, executor.AsyncOptions{
			OnError: func(err error) { mu.Lock(); got = append(got, err); mu.Unlock() }})
		r, err := executor.NewRouter(e.cat, e.cfg, a, executor.RouterOptions{})
		require.NoError(t, err)
		var ids []string
		for range 3 {
			resp, err := r.GenerateContent(context.Background(), human("Say hello."))
			require.NoError(t, err, "a ledger failure does not fail the request")
			ids = append(ids, resp.Choices[0].GenerationInfo[executor.InfoRunID].(string))
		}
		require.NoError(t, a.Close(context.Background()))
		assert.Equal(t, int64(3), a.Errors())
		require.Len(t, got, 3)
		for i, err := range got { // in the order the requests finished
			assert.ErrorContains(t, err, ids[i])
			assert.ErrorContains(t, err, "ledger: record")
		}
		total := 0
		for _, n := range sizes {
			total += n
		}
		assert.Equal(t, 3, total, "every request was tried")
	})
	t.Run("write errors of a step-by-step recorder reach OnError and Errors, not the request", func(t *testing.T) {
		e := newRTEnvOK(t)
		var mu sync.Mutex
		var got []error
		a := executor.NewAsyncRouterRecorder(stepRecorder{in: executor.LedgerRecorder{L: e.l}, failFinish: true}, executor.AsyncOptions{
			OnError: func(err error) { mu.Lock(); got = append(got, err); mu.Unlock() }})
		r, err := executor.NewRouter(e.cat, e.cfg, a, executor.RouterOptions{})
		require.NoError(t, err)
		_, err = r.GenerateContent(context.Background(), human("Say hello."))
		require.NoError(t, err)
		require.NoError(t, a.Close(context.Background()))
		assert.Equal(t, int64(1), a.Errors())
		require.Len(t, got, 1)
		assert.ErrorContains(t, got[0], "disk full")
	})
	t.Run("writes that do not fit one routed request go one by one, in order", func(t *testing.T) {
		e := newRTEnvOK(t)
		a := executor.NewAsyncRouterRecorder(executor.LedgerRecorder{L: e.l}, executor.AsyncOptions{
			OnError: func(err error) { t.Errorf("async ledger write: %v", err) }})
		id, err := a.CreateCall(executor.RoutedCall{Route: "r", Task: "default", PredictedUSD: 0.001})
		require.NoError(t, err)
		now := time.Now()
		at := func(node, outcome string, cost int64) *executor.Attempt {
			return &executor.Attempt{Node: node, Model: "openai/nano", Provider: "openai", Outcome: outcome, CostNano: cost,
				Usage: catalog.Usage{InputTokens: 10}, Started: now, Latency: time.Millisecond}
		}
		require.NoError(t, a.StartNode(id, executor.RouterNodeID))
		require.NoError(t, a.RecordAttempt(id, 0, at(executor.RouterNodeID, executor.OutcomeError, 2)))
		require.NoError(t, a.StartNode(id, "second")) // a second node: the run is no routed request
		require.NoError(t, a.RecordAttempt(id, 0, at("second", executor.OutcomeError, 3)))
		require.NoError(t, a.FinishNode(id, &executor.NodeResult{ID: "second", Status: executor.NodeSucceeded, Model: "openai/nano", Output: "x"},
			at("second", executor.OutcomeOK, 5), 0))
		require.NoError(t, a.FinishRun(id, executor.StatusSucceeded))
		require.NoError(t, a.Flush(context.Background()))
		rec, err := e.l.Run(id)
		require.NoError(t, err)
		assert.Equal(t, ledger.RunSucceeded, rec.Status)
		assert.EqualValues(t, 10, rec.SpentNano)
		require.Len(t, rec.Nodes, 2)
		assert.Equal(t, ledger.NodeRunning, rec.Nodes[0].Status)
		assert.Len(t, rec.Nodes[0].Attempts, 1)
		assert.Equal(t, ledger.NodeSucceeded, rec.Nodes[1].Status)
		require.Len(t, rec.Nodes[1].Attempts, 2)
		assert.EqualValues(t, []int64{2, 3}, []int64{rec.Nodes[1].Attempts[0].Seq, rec.Nodes[1].Attempts[1].Seq})
		require.NoError(t, a.Close(context.Background()))
		require.NoError(t, e.l.Check())
	})
	t.Run("Close writes a request still running; its later writes follow one by one", func(t *testing.T) {
		e := newRTEnvOK(t)
		a := executor.NewAsyncRouterRecorder(executor.LedgerRecorder{L: e.l}, executor.AsyncOptions{
			OnError: func(err error) { t.Errorf("async ledger write: %v", err) }})
		id, err := a.CreateCall(executor.RoutedCall{Route: "r", Task: "default"})
		require.NoError(t, err)
		require.NoError(t, a.StartNode(id, executor.RouterNodeID))
		paid := &executor.Attempt{Node: executor.RouterNodeID, Model: "openai/nano", Provider: "openai", Outcome: executor.OutcomeTimeout,
			CostNano: 7, MayHaveBilled: true, Started: time.Now()}
		require.NoError(t, a.RecordAttempt(id, 0, paid))
		require.NoError(t, a.Close(context.Background()))
		rec, err := e.l.Run(id)
		require.NoError(t, err, "the paid attempt of a request in flight is not lost at Close")
		assert.Equal(t, ledger.RunRunning, rec.Status)
		assert.EqualValues(t, 7, rec.SpentNano)

		require.NoError(t, a.FinishNode(id, &executor.NodeResult{ID: executor.RouterNodeID, Status: executor.NodeFailed}, nil, 0))
		require.NoError(t, a.FinishRun(id, executor.StatusFailed))
		rec, err = e.l.Run(id)
		require.NoError(t, err)
		assert.Equal(t, ledger.RunFailed, rec.Status)
		assert.Equal(t, ledger.NodeFailed, rec.Nodes[0].Status)
		require.NoError(t, e.l.Check())
	})
	t.Run("Flush honours its context", func(t *testing.T) {
		e := newRTEnvOK(t)
		block := make(chan struct{})
		a := executor.NewAsyncRouterRecorder(blockingRecorder{executor.LedgerRecorder{L: e.l}, block}, executor.AsyncOptions{QueueSize: 1})
		require.NoError(t, a.FinishRun("r_x", executor.StatusSucceeded)) // a run it does not hold: one write
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		assert.ErrorIs(t, a.Flush(ctx), context.DeadlineExceeded)
		close(block)
		require.NoError(t, a.Close(context.Background()))
		assert.Equal(t, int64(1), a.Errors(), "the run does not exist")
	})
}

// blockingRecorder holds FinishRun until block is closed.
type blockingRecorder struct {
	executor.LedgerRecorder
	block chan struct{}
}

func (b blockingRecorder) FinishRun(id, status string) error {
	<-b.block
	return b.LedgerRecorder.FinishRun(id, status)
}
