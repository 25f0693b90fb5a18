package providertest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
)

func post(t *testing.T, url, key, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Api-Key", key)
	req.Header.Set("Anthropic-Version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

func TestScriptOrderAndRepeat(t *testing.T) {
	srv := NewOpenAIServer(Script{"m": {{Status: 500}, {Text: "second", Usage: &catalog.Usage{InputTokens: 5, CacheReadTokens: 2, OutputTokens: 3, ReasoningTokens: 1}}}})
	defer srv.Close()
	body := `{"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":[{"type":"text","text":"P"}]}],"max_completion_tokens":9}`
	code, _, out := post(t, srv.BaseURL()+"/chat/completions", "k", body)
	assert.Equal(t, 500, code)
	assert.Contains(t, out, `"type":"server_error"`)
	for range 2 { // the last reply repeats
		code, _, out = post(t, srv.BaseURL()+"/chat/completions", "k", body)
		require.Equal(t, 200, code)
		var doc struct {
			Choices []struct {
				Message struct{ Content string }
			}
			Usage struct {
				PromptTokens        int `json:"prompt_tokens"`
				CompletionTokens    int `json:"completion_tokens"`
				PromptTokensDetails struct {
					CachedTokens int `json:"cached_tokens"`
				} `json:"prompt_tokens_details"`
				CompletionTokensDetails struct {
					ReasoningTokens int `json:"reasoning_tokens"`
				} `json:"completion_tokens_details"`
			}
		}
		require.NoError(t, json.Unmarshal([]byte(out), &doc))
		assert.Equal(t, "second", doc.Choices[0].Message.Content)
		assert.Equal(t, 7, doc.Usage.PromptTokens, "prompt_tokens includes cached")
		assert.Equal(t, 2, doc.Usage.PromptTokensDetails.CachedTokens)
		assert.Equal(t, 4, doc.Usage.CompletionTokens, "completion_tokens includes reasoning")
		assert.Equal(t, 1, doc.Usage.CompletionTokensDetails.ReasoningTokens)
	}
	calls := srv.Calls()
	require.Len(t, calls, 3)
	assert.Equal(t, "S", calls[1].System)
	assert.Equal(t, "P", calls[1].Prompt)
	assert.Equal(t, 9, calls[1].MaxTokens)
	assert.False(t, calls[0].UsageReported)
	assert.True(t, calls[1].UsageReported)
}

func TestUnknownModelAndAuth(t *testing.T) {
	srv := NewAnthropicServer(Script{"a": {{}}})
	defer srv.Close()
	code, _, out := post(t, srv.BaseURL()+"/messages", "k", `{"model":"zzz","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`)
	assert.Equal(t, 404, code)
	assert.Contains(t, out, `"not_found_error"`)
	code, _, out = post(t, srv.BaseURL()+"/messages", "k", `{"model":"a","messages":[{"role":"user","content":"x"}]}`)
	assert.Equal(t, 400, code, "max_tokens is required")
	assert.Contains(t, out, "max_tokens")
	srv.AcceptKeys("good")
	code, _, out = post(t, srv.BaseURL()+"/messages", "bad-key-123456", `{"model":"a","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`)
	assert.Equal(t, 401, code)
	assert.Contains(t, out, `"authentication_error"`)
	assert.NotContains(t, out, "bad-key-123456", "keys are echoed masked, like OpenAI does")
}

func TestOpenAIStreamWireFormat(t *testing.T) {
	srv := NewOpenAIServer(Script{"m": {{Text: "hello world", Usage: &catalog.Usage{InputTokens: 3, OutputTokens: 2}}}})
	defer srv.Close()
	_, h, out := post(t, srv.BaseURL()+"/chat/completions", "k", `{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}`)
	assert.True(t, strings.HasPrefix(h.Get("Content-Type"), "text/event-stream"))
	events := strings.Split(strings.TrimSpace(out), "\n\n")
	require.GreaterOrEqual(t, len(events), 4)
	assert.Equal(t, "data: [DONE]", events[len(events)-1])
	var text bytes.Buffer
	for _, ev := range events[:len(events)-1] {
		require.True(t, strings.HasPrefix(ev, "data: "), ev)
		var chunk struct {
			Choices []struct {
				Delta struct{ Content string }
			}
			Usage *struct {
				PromptTokens int `json:"prompt_tokens"`
			}
		}
		require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(ev, "data: ")), &chunk))
		for _, c := range chunk.Choices {
			text.WriteString(c.Delta.Content)
		}
		if chunk.Usage != nil {
			assert.Empty(t, chunk.Choices, "the usage chunk has no choices")
			assert.Equal(t, 3, chunk.Usage.PromptTokens)
		}
	}
	assert.Equal(t, "hello world", text.String())
}
