package server

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// sseEvent is one data line of a stream and when the client read it.
type sseEvent struct {
	data string
	at   time.Time
}

// streamChat posts a stream request and reads its events as they come.
func streamChat(t *testing.T, url, model string) (*http.Response, []sseEvent, time.Time) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/chat/completions",
		strings.NewReader(chatBody(model, "Write a haiku.", `, "stream": true, "stream_options": {"include_usage": true}`)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+clientKeyA)
	sent := time.Now()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	var evs []sseEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			evs = append(evs, sseEvent{data: data, at: time.Now()})
		}
	}
	require.NoError(t, sc.Err())
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp, evs, sent
}

// contentOf returns the event's delta text ("" for other events).
func contentOf(t *testing.T, ev sseEvent) string {
	t.Helper()
	if ev.data == "[DONE]" {
		return ""
	}
	var c ChatChunk
	require.NoError(t, json.Unmarshal([]byte(ev.data), &c), ev.data)
	for _, ch := range c.Choices {
		if ch.Delta != nil && ch.Delta.Content != nil {
			return *ch.Delta.Content
		}
	}
	return ""
}

func TestChatStreamIsIncremental(t *testing.T) {
	const answer = "Maples blush, then let go." // six upstream chunks
	const delay = 50 * time.Millisecond
	usage := catalog.Usage{InputTokens: 30, OutputTokens: 7}
	e := newEnv(t, providertest.Script{"large": {{Text: answer, Usage: &usage, ChunkDelay: delay}}}, providertest.Script{}, serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()

	resp, evs, _ := streamChat(t, ts.URL, "openai/large")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "openai/large", resp.Header.Get("x-costwise-model"))
	assert.Equal(t, "0", resp.Header.Get("x-costwise-escalations"))
	assert.NotEmpty(t, resp.Header.Get("x-costwise-run-id"))
	assert.InDelta(t, float64(e.price(t, "openai/large", usage).NanoUSD())/1e9, costHeader(t, resp.Trailer), 1e-12)

	require.NotEmpty(t, evs)
	assert.Equal(t, "[DONE]", evs[len(evs)-1].data)
	var text strings.Builder
	var first time.Time
	parts := 0
	for _, ev := range evs {
		if c := contentOf(t, ev); c != "" {
			if first.IsZero() {
				first = ev.at
			}
			parts++
			text.WriteString(c)
		}
	}
	assert.Equal(t, answer, text.String())
	assert.Equal(t, 6, parts, "one event per upstream chunk")
	// The upstream pauses 5 x delay after its first chunk: the client
	// must have had that chunk long before the stream ended.
	assert.GreaterOrEqual(t, evs[len(evs)-1].at.Sub(first), 4*delay, "the first chunk arrived only with the last")
	calls := e.oa.CallsFor("large")
	require.Len(t, calls, 1)
	assert.True(t, calls[0].Stream, "the upstream call streamed")
}

func TestChatStreamEscalatesBeforeFirstChunk(t *testing.T) {
	usage := catalog.Usage{InputTokens: 20, OutputTokens: 4}
	e := newEnv(t, providertest.Script{"large": {{Text: "from large", Usage: &usage}}},
		providertest.Script{"mid": {{Status: 500}}}, serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()

	resp, evs, _ := streamChat(t, ts.URL, "cheap-chat")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "openai/large", resp.Header.Get("x-costwise-model"))
	assert.Equal(t, "1", resp.Header.Get("x-costwise-escalations"))
	assert.InDelta(t, float64(e.price(t, "openai/large", usage).NanoUSD())/1e9, costHeader(t, resp.Trailer), 1e-12)
	var text strings.Builder
	for _, ev := range evs {
		text.WriteString(contentOf(t, ev))
	}
	assert.Equal(t, "from large", text.String())
	assert.Equal(t, "[DONE]", evs[len(evs)-1].data)
	assert.Len(t, e.an.Calls(), 1)
}

func TestChatStreamBreaksAfterFirstChunk(t *testing.T) {
	e := newEnv(t, providertest.Script{"large": {{Text: "from large"}}},
		providertest.Script{"mid": {{Text: "a long answer that will be cut", StreamCut: 2}}}, serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()

	resp, evs, _ := streamChat(t, ts.URL, "cheap-chat")
	require.Equal(t, http.StatusOK, resp.StatusCode, "the status left with the first chunk")
	assert.Equal(t, "anthropic/mid", resp.Header.Get("x-costwise-model"))
	require.NotEmpty(t, evs)
	last := evs[len(evs)-1]
	assert.NotEqual(t, "[DONE]", last.data, "a broken stream does not end with [DONE]")
	var eb ErrorBody
	require.NoError(t, json.Unmarshal([]byte(last.data), &eb), last.data)
	assert.Equal(t, "stream_broken", eb.Error.Code)
	assert.Contains(t, eb.Error.Message, "cannot escalate")
	var text strings.Builder
	for _, ev := range evs[:len(evs)-1] {
		text.WriteString(contentOf(t, ev))
	}
	assert.Equal(t, "a long ans", text.String())
	assert.Empty(t, e.oa.Calls(), "no escalation after the first chunk")
}
