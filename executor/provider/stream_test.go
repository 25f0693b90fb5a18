package provider

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/executor/provider/providertest"
)

// TestOnChunkIncremental shows that OnChunk sees the first chunk long
// before the upstream has sent the whole answer.
func TestOnChunkIncremental(t *testing.T) {
	const text = "one two three four five six" // 6 chunks of 5 bytes
	const delay = 60 * time.Millisecond
	for _, tc := range []struct {
		name string
		kind Kind
	}{
		{"openai", KindOpenAI},
		{"anthropic", KindAnthropic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := providertest.Script{"m": {{Text: text, ChunkDelay: delay}}}
			srv := providertest.NewOpenAIServer(script)
			if tc.kind == KindAnthropic {
				srv = providertest.NewAnthropicServer(script)
			}
			defer srv.Close()
			cl := newTestClient(t, tc.kind, srv, nil)
			var got []string
			var firstAt time.Time
			start := time.Now()
			resp, err := cl.Call(context.Background(), Request{Model: "m", Prompt: "go", Stream: true,
				OnChunk: func(_ context.Context, chunk []byte) error {
					if firstAt.IsZero() {
						firstAt = time.Now()
					}
					got = append(got, string(chunk))
					return nil
				}})
			end := time.Now()
			require.NoError(t, err)
			assert.Equal(t, text, resp.Text)
			assert.Equal(t, text, strings.Join(got, ""))
			require.GreaterOrEqual(t, len(got), 5)
			assert.GreaterOrEqual(t, end.Sub(start), 5*delay, "the upstream paused between chunks")
			assert.Less(t, firstAt.Sub(start), end.Sub(start)-3*delay, "first chunk arrived only near the end")
		})
	}
}

// TestOnChunkError aborts the call when OnChunk fails.
func TestOnChunkError(t *testing.T) {
	srv := providertest.NewOpenAIServer(providertest.Script{"m": {{Text: "a long enough answer"}}})
	defer srv.Close()
	cl := newTestClient(t, KindOpenAI, srv, nil)
	stop := errors.New("client went away")
	n := 0
	_, err := cl.Call(context.Background(), Request{Model: "m", Prompt: "go", Stream: true,
		OnChunk: func(context.Context, []byte) error { n++; return stop }})
	require.Error(t, err)
	assert.Equal(t, 1, n, "no chunk after the error")
}
