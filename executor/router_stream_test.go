package executor_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// streamLog collects what a streamed router call passes to its client.
type streamLog struct {
	mu      sync.Mutex
	starts  []executor.StreamStart
	chunks  []string
	startAt time.Time // when StreamStart was called
	firstAt time.Time // when the first chunk arrived
}

func (l *streamLog) opts() []llms.CallOption {
	return []llms.CallOption{
		executor.WithStreamStart(func(s executor.StreamStart) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.starts = append(l.starts, s)
			l.startAt = time.Now()
		}),
		llms.WithStreamingFunc(func(_ context.Context, chunk []byte) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			if len(l.starts) == 0 {
				return errors.New("chunk before StreamStart")
			}
			if l.firstAt.IsZero() {
				l.firstAt = time.Now()
			}
			l.chunks = append(l.chunks, string(chunk))
			return nil
		}),
	}
}

func TestRouterStreams(t *testing.T) {
	const text = "streamed answer, five bytes a chunk"
	const delay = 40 * time.Millisecond
	ok := providertest.Reply{Text: text, Usage: u(40, 8), ChunkDelay: delay}
	cases := []struct {
		name       string
		route      executor.Route
		oa         providertest.Script
		want       string // model streaming
		wantEsc    int
		wantChunks int // 0: more than one (live), else exactly this many
		wantCalls  map[string]int
	}{
		{name: "the first rung streams live", oa: providertest.Script{"nano": {ok}},
			want: "openai/nano", wantCalls: map[string]int{"nano": 1}},
		{name: "a rung failing before its first chunk escalates",
			oa:   providertest.Script{"nano": {{Status: 500}}, "big": {ok}},
			want: "openai/big", wantEsc: 1, wantCalls: map[string]int{"nano": 2, "big": 1}},
		{name: "a route with Validate streams only after validation",
			route: executor.Route{Validate: `output contains "answer"`},
			oa:    providertest.Script{"nano": {ok}},
			want:  "openai/nano", wantChunks: 1, wantCalls: map[string]int{"nano": 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newRTEnv(t, tc.oa, nil)
			r := e.router(t, executor.RouterOptions{Default: tc.route, MaxRetries: 1})
			var l streamLog
			start := time.Now()
			resp, err := r.GenerateContent(context.Background(), human("Say hello."), l.opts()...)
			end := time.Now()
			require.NoError(t, err)
			assert.Equal(t, text, resp.Choices[0].Content)
			assert.Equal(t, text, strings.Join(l.chunks, ""))
			require.Len(t, l.starts, 1)
			assert.Equal(t, tc.want, l.starts[0].Model)
			assert.Equal(t, tc.wantEsc, l.starts[0].Escalations)
			assert.NotEmpty(t, l.starts[0].RunID)
			assert.Equal(t, tc.want, resp.Choices[0].GenerationInfo[executor.InfoModel])
			for m, n := range tc.wantCalls {
				calls := e.oa.CallsFor(m)
				require.Len(t, calls, n, m)
				assert.Equal(t, tc.wantChunks == 0, calls[n-1].Stream, "upstream streamed")
			}
			if tc.wantChunks == 0 {
				assert.Greater(t, len(l.chunks), 3)
				assert.Less(t, l.firstAt.Sub(start), end.Sub(start)-3*delay, "the first chunk came only at the end")
			} else {
				assert.Len(t, l.chunks, tc.wantChunks)
				assert.False(t, l.firstAt.Before(end.Add(-delay)), "a buffered answer is passed on at the end")
			}
		})
	}
}

// TestRouterStreamBreaks: after the first chunk reached the client, a
// failing rung ends the call; it neither retries nor escalates.
func TestRouterStreamBreaks(t *testing.T) {
	e := newRTEnv(t, providertest.Script{
		"nano": {{Text: "a long answer that will be cut", Usage: u(40, 8), StreamCut: 2}},
		"big":  {{Text: "big answer", Usage: u(40, 4)}},
	}, nil)
	r := e.router(t, executor.RouterOptions{MaxRetries: 2})
	var l streamLog
	_, err := r.GenerateContent(context.Background(), human("Say hello."), l.opts()...)
	require.Error(t, err)
	assert.ErrorIs(t, err, executor.ErrStreamBroken)
	assert.Equal(t, "a long ans", strings.Join(l.chunks, ""))
	require.Len(t, l.starts, 1)
	assert.Len(t, e.oa.CallsFor("nano"), 1, "no retry after the first chunk")
	assert.Empty(t, e.oa.CallsFor("big"), "no escalation after the first chunk")
}
