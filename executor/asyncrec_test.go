package executor_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/ledger"
)

// failingRecorder fails every write after CreateCall.
type failingRecorder struct {
	executor.LedgerRecorder
}

func (failingRecorder) FinishRun(string, string) error { return errors.New("disk full") }

func TestAsyncRouterRecorder(t *testing.T) {
	t.Run("concurrent requests are all in the ledger after Flush, and Close writes later ones synchronously", func(t *testing.T) {
		e := newRTEnvOK(t)
		e.useAsync(t)
		r := e.router(t, executor.RouterOptions{})
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
		require.NoError(t, e.async.Flush(context.Background()))
		want := e.price(t, "openai/nano", *u(50, 5))
		for _, id := range ids {
			rec, err := e.l.Run(id)
			require.NoError(t, err, id)
			assert.Equal(t, ledger.RunSucceeded, rec.Status)
			assert.Equal(t, want, rec.SpentNano)
		}
		spent, err := e.async.SpentSince(time.Now().Add(-time.Hour))
		require.NoError(t, err)
		assert.Equal(t, n*want, spent)

		require.NoError(t, e.async.Close(context.Background()))
		resp, err := r.GenerateContent(context.Background(), human("Say hello."))
		require.NoError(t, err)
		rec, err := e.l.Run(resp.Choices[0].GenerationInfo[executor.InfoRunID].(string))
		require.NoError(t, err, "a request after Close is written before it returns")
		assert.Equal(t, ledger.RunSucceeded, rec.Status)
		require.NoError(t, e.l.Check())
	})
	t.Run("write errors reach OnError and Errors, not the request", func(t *testing.T) {
		e := newRTEnvOK(t)
		var mu sync.Mutex
		var got []error
		a := executor.NewAsyncRouterRecorder(failingRecorder{executor.LedgerRecorder{L: e.l}}, executor.AsyncOptions{
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
	t.Run("Flush honours its context", func(t *testing.T) {
		e := newRTEnvOK(t)
		block := make(chan struct{})
		a := executor.NewAsyncRouterRecorder(blockingRecorder{executor.LedgerRecorder{L: e.l}, block}, executor.AsyncOptions{QueueSize: 1})
		require.NoError(t, a.FinishRun("r_x", executor.StatusSucceeded))
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
