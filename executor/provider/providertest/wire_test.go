package providertest

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
)

// geminiChunk is the part of a GenerateContentResponse the tests read.
type geminiChunk struct {
	Candidates []struct {
		Content struct {
			Role  string
			Parts []struct{ Text string }
		}
		FinishReason json.RawMessage
	}
	UsageMetadata *struct {
		PromptTokenCount, CandidatesTokenCount, CachedContentTokenCount, ThoughtsTokenCount, TotalTokenCount int64
	}
}

func geminiPost(t *testing.T, url, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("X-Goog-Api-Key", key)
	}
	code, _, out := do(t, req)
	return code, out
}

func do(t *testing.T, req *http.Request) (int, http.Header, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b strings.Builder
	_, err = bufio.NewReader(resp.Body).WriteTo(&b)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b.String()
}

const geminiBody = `{"contents": [{"role": "user", "parts": [{"text": "Hi"}, {"text": " there"}]}],
	"systemInstruction": {"parts": [{"text": "Be kind."}]},
	"generationConfig": {"maxOutputTokens": 77, "temperature": 0.5, "responseMimeType": "application/json"}}`

func TestGeminiFraming(t *testing.T) {
	u := catalog.Usage{InputTokens: 10, CacheReadTokens: 4, OutputTokens: 12, ReasoningTokens: 3}
	srv := NewGeminiServer(Script{"g-1": {{Text: "hello world!", Usage: &u}}})
	defer srv.Close()
	base := srv.URL + "/v1beta/models/g-1"
	last := func(t *testing.T, cs []geminiChunk) {
		t.Helper()
		require.Len(t, cs, 3) // "hello", " worl", "d!"
		var text strings.Builder
		for k, c := range cs {
			require.Len(t, c.Candidates, 1)
			assert.Equal(t, "model", c.Candidates[0].Content.Role)
			text.WriteString(c.Candidates[0].Content.Parts[0].Text)
			require.NotNil(t, c.UsageMetadata, "usage on every chunk")
			assert.Equal(t, int64(14), c.UsageMetadata.PromptTokenCount)
			assert.Equal(t, int64(12*(k+1)/3), c.UsageMetadata.CandidatesTokenCount, "output counted so far")
			assert.Equal(t, k == 2, c.Candidates[0].FinishReason != nil, "finishReason on the last chunk only")
		}
		assert.Equal(t, "hello world!", text.String())
		um := cs[2].UsageMetadata
		assert.Equal(t, int64(4), um.CachedContentTokenCount)
		assert.Equal(t, int64(3), um.ThoughtsTokenCount)
		assert.Equal(t, int64(14+12+3), um.TotalTokenCount)
	}

	t.Run("json array with enum numbers", func(t *testing.T) {
		code, out := geminiPost(t, base+":streamGenerateContent?%24alt=json%3Benum-encoding%3Dint", "k", geminiBody)
		require.Equal(t, 200, code, out)
		assert.True(t, strings.HasPrefix(out, "[{") && strings.HasSuffix(out, "}]"), out)
		var cs []geminiChunk
		require.NoError(t, json.Unmarshal([]byte(out), &cs))
		last(t, cs)
		assert.JSONEq(t, "1", string(cs[2].Candidates[0].FinishReason))
	})
	t.Run("server-sent events", func(t *testing.T) {
		code, out := geminiPost(t, base+":streamGenerateContent?alt=sse", "k", geminiBody)
		require.Equal(t, 200, code, out)
		var cs []geminiChunk
		for _, ev := range strings.Split(strings.TrimSpace(out), "\r\n\r\n") {
			data, ok := strings.CutPrefix(ev, "data: ")
			require.True(t, ok, ev)
			var c geminiChunk
			require.NoError(t, json.Unmarshal([]byte(data), &c))
			cs = append(cs, c)
		}
		last(t, cs)
		assert.JSONEq(t, `"STOP"`, string(cs[2].Candidates[0].FinishReason))
	})
	t.Run("generateContent", func(t *testing.T) {
		code, out := geminiPost(t, base+":generateContent?key=k", "", geminiBody)
		require.Equal(t, 200, code, out)
		var c geminiChunk
		require.NoError(t, json.Unmarshal([]byte(out), &c))
		assert.Equal(t, "hello world!", c.Candidates[0].Content.Parts[0].Text)
		assert.Equal(t, int64(12), c.UsageMetadata.CandidatesTokenCount)
	})
	calls := srv.Calls()
	require.Len(t, calls, 3)
	c := calls[0]
	assert.Equal(t, "g-1", c.Model)
	assert.Equal(t, "k", c.Key)
	assert.Equal(t, "Be kind.", c.System)
	assert.Equal(t, "Hi there", c.Prompt)
	assert.Equal(t, 77, c.MaxTokens)
	require.NotNil(t, c.Temperature)
	assert.InDelta(t, 0.5, *c.Temperature, 1e-9)
	assert.True(t, c.JSON)
	assert.True(t, c.Stream)
	assert.Equal(t, u, c.Usage)
	assert.True(t, c.UsageReported)
	assert.False(t, calls[2].Stream)
	assert.Equal(t, "k", calls[2].Key, "key from ?key=")
}

func TestGeminiErrors(t *testing.T) {
	srv := NewGeminiServer(Script{"g-1": {{Status: 429, RetryAfter: "7"}, {Status: 500, ErrorType: "INTERNAL", ErrorMessage: "boom"}}})
	defer srv.Close()
	srv.AcceptKeys("good")
	for _, tc := range []struct {
		name, path, key string
		code            int
		status, msg     string
	}{
		{"no key", "/v1beta/models/g-1:streamGenerateContent", "", 403, "PERMISSION_DENIED", "unregistered callers"},
		{"refused key", "/v1beta/models/g-1:streamGenerateContent", "bad", 400, "INVALID_ARGUMENT", "API key not valid"},
		{"unknown model", "/v1beta/models/nope:streamGenerateContent", "good", 404, "NOT_FOUND", "models/nope is not found"},
		{"unknown method", "/v1beta/models/g-1:countTokens", "good", 404, "NOT_FOUND", "was not found"},
		{"scripted 429", "/v1beta/models/g-1:streamGenerateContent", "good", 429, "RESOURCE_EXHAUSTED", "exhausted"},
		{"scripted 500", "/v1beta/models/g-1:streamGenerateContent", "good", 500, "INTERNAL", "boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := geminiPost(t, srv.URL+tc.path, tc.key, geminiBody)
			assert.Equal(t, tc.code, code)
			var doc struct {
				Error struct {
					Code    int
					Message string
					Status  string
				}
			}
			require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
			assert.Equal(t, tc.code, doc.Error.Code)
			assert.Equal(t, tc.status, doc.Error.Status)
			assert.Contains(t, doc.Error.Message, tc.msg)
		})
	}
	code, out := geminiPost(t, srv.URL+"/v1beta/models/g-1:generateContent", "good", `{"contents": []}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, out, "contents is not specified")
}

func TestOllamaWire(t *testing.T) {
	u := catalog.Usage{InputTokens: 20, CacheReadTokens: 5, OutputTokens: 7, ReasoningTokens: 2}
	srv := NewOllamaServer(Script{"llama": {{Text: "hello there", Usage: &u, FinishReason: "length"}}})
	defer srv.Close()
	post := func(body string) (int, http.Header, string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/chat", strings.NewReader(body))
		require.NoError(t, err)
		return do(t, req)
	}
	type line struct {
		Message         struct{ Role, Content string }
		Done            bool
		DoneReason      string `json:"done_reason"`
		PromptEvalCount int64  `json:"prompt_eval_count"`
		EvalCount       int64  `json:"eval_count"`
	}

	// Streaming is the default: NDJSON, one line per chunk, then done.
	code, h, out := post(`{"model": "llama", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "P"}], "format": "json", "options": {"num_predict": 30}}`)
	require.Equal(t, 200, code, out)
	assert.Equal(t, "application/x-ndjson", h.Get("Content-Type"))
	var lines []line
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v line
		require.NoError(t, json.Unmarshal([]byte(l), &v), l)
		lines = append(lines, v)
	}
	require.Len(t, lines, 4) // "hello", " ther", "e", done
	var text strings.Builder
	for _, l := range lines[:3] {
		assert.False(t, l.Done)
		assert.Equal(t, "assistant", l.Message.Role)
		assert.Zero(t, l.EvalCount)
		text.WriteString(l.Message.Content)
	}
	assert.Equal(t, "hello there", text.String())
	end := lines[3]
	assert.True(t, end.Done)
	assert.Equal(t, "length", end.DoneReason)
	assert.Equal(t, int64(25), end.PromptEvalCount, "cache reads are prompt tokens to Ollama")
	assert.Equal(t, int64(9), end.EvalCount, "reasoning is output to Ollama")

	// "stream": false: one JSON object.
	code, h, out = post(`{"model": "llama", "messages": [{"role": "user", "content": "P"}], "stream": false}`)
	require.Equal(t, 200, code, out)
	assert.Equal(t, "application/json", h.Get("Content-Type"))
	var one line
	require.NoError(t, json.Unmarshal([]byte(out), &one))
	assert.True(t, one.Done)
	assert.Equal(t, "hello there", one.Message.Content)

	code, _, out = post(`{"model": "mistral", "messages": [{"role": "user", "content": "P"}]}`)
	assert.Equal(t, 404, code)
	assert.JSONEq(t, `{"error": "model \"mistral\" not found, try pulling it first"}`, out)

	calls := srv.Calls()
	require.Len(t, calls, 3)
	assert.Equal(t, "S", calls[0].System)
	assert.Equal(t, "P", calls[0].Prompt)
	assert.Equal(t, 30, calls[0].MaxTokens)
	assert.True(t, calls[0].JSON)
	assert.True(t, calls[0].Stream)
	assert.False(t, calls[1].Stream)
	assert.Equal(t, catalog.Usage{InputTokens: 25, OutputTokens: 9}, calls[0].Usage, "the two counts reported")
}
