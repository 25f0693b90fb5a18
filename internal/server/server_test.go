package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/executor/provider/providertest"
)

func post(t testing.TB, url, key, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func get(t testing.TB, url, key string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func chatBody(model, prompt string, extra string) string {
	b, _ := json.Marshal(prompt)
	return fmt.Sprintf(`{"model": %q, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": %s}]%s}`, model, b, extra)
}

func apiError(t testing.TB, body []byte) ErrorDetail {
	t.Helper()
	var eb ErrorBody
	require.NoError(t, json.Unmarshal(body, &eb), string(body))
	require.NotEmpty(t, eb.Error.Message, string(body))
	return eb.Error
}

func costHeader(t testing.TB, h http.Header) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(h.Get("x-costwise-cost-usd"), 64)
	require.NoError(t, err, h.Get("x-costwise-cost-usd"))
	return v
}

func TestChatRoutesToCheapestQualifying(t *testing.T) {
	usage := catalog.Usage{InputTokens: 40, OutputTokens: 7}
	e := newEnv(t, providertest.Script{"small": {{Text: "wrong model"}}, "large": {{Text: "wrong model"}}},
		providertest.Script{"mid": {{Text: "Leaves fall, slowly.", Usage: &usage}}}, serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	want := e.price(t, "anthropic/mid", usage)

	resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA, chatBody("cheap-chat", "Write a haiku about autumn.", ""))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Equal(t, "anthropic/mid", resp.Header.Get("x-costwise-model"), "cheapest model with writing quality >= 0.9")
	assert.Equal(t, "0", resp.Header.Get("x-costwise-escalations"))
	assert.InDelta(t, float64(want.NanoUSD())/1e9, costHeader(t, resp.Header), 1e-12)
	var cr ChatResponse
	require.NoError(t, json.Unmarshal(body, &cr))
	assert.Equal(t, "chat.completion", cr.Object)
	assert.Equal(t, "anthropic/mid", cr.Model)
	require.Len(t, cr.Choices, 1)
	assert.Equal(t, "Leaves fall, slowly.", *cr.Choices[0].Message.Content)
	assert.Equal(t, "assistant", cr.Choices[0].Message.Role)
	assert.Equal(t, "stop", *cr.Choices[0].FinishReason)
	require.NotNil(t, cr.Usage)
	assert.Equal(t, Usage{PromptTokens: 40, CompletionTokens: 7, TotalTokens: 47}, *cr.Usage)
	assert.Empty(t, e.oa.Calls(), "no OpenAI model may be called")
	calls := e.an.Calls()
	require.Len(t, calls, 1)
	assert.Equal(t, anKey, calls[0].Key, "the provider's key, not the client's, goes upstream")
	assert.Equal(t, "Be brief.", calls[0].System)

	// The request is in the ledger as a routed run, once the asynchronous
	// recorder has written it.
	require.NoError(t, e.srv.Flush(context.Background()))
	runs, err := e.l.Runs(0)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	assert.Equal(t, "router:cheap-chat", runs[0].WorkflowName)
	assert.Equal(t, want.NanoUSD(), runs[0].SpentNano)
	assert.Equal(t, runs[0].ID, resp.Header.Get("x-costwise-run-id"))
}

// TestLangchaingoClient talks to the gateway with langchaingo's OpenAI
// client, as any OpenAI-compatible client would, streaming and not.
func TestLangchaingoClient(t *testing.T) {
	usage := catalog.Usage{InputTokens: 30, OutputTokens: 5}
	e := newEnv(t, providertest.Script{}, providertest.Script{"mid": {{Text: "Crisp air, red maples.", Usage: &usage}}}, serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	llm, err := openai.New(openai.WithBaseURL(ts.URL+"/v1"), openai.WithToken(clientKeyA), openai.WithModel("cheap-chat"))
	require.NoError(t, err)
	msgs := []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "Write a haiku about autumn.")}

	t.Run("plain", func(t *testing.T) {
		resp, err := llm.GenerateContent(context.Background(), msgs)
		require.NoError(t, err)
		require.Len(t, resp.Choices, 1)
		assert.Equal(t, "Crisp air, red maples.", resp.Choices[0].Content)
		assert.Equal(t, 30, resp.Choices[0].GenerationInfo["PromptTokens"])
		assert.Equal(t, 5, resp.Choices[0].GenerationInfo["CompletionTokens"])
	})
	t.Run("stream", func(t *testing.T) {
		var got strings.Builder
		resp, err := llm.GenerateContent(context.Background(), msgs, llms.WithStreamingFunc(func(_ context.Context, b []byte) error {
			got.Write(b)
			return nil
		}))
		require.NoError(t, err)
		assert.Equal(t, "Crisp air, red maples.", got.String())
		assert.Equal(t, "Crisp air, red maples.", resp.Choices[0].Content)
	})
}

// readSSE parses a server-sent event stream as an OpenAI client does.
func readSSE(t *testing.T, r io.Reader) (chunks []ChatChunk, done bool) {
	t.Helper()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		require.True(t, ok, "line %q is not a data line", line)
		require.False(t, done, "data after [DONE]")
		if data == "[DONE]" {
			done = true
			continue
		}
		var c ChatChunk
		require.NoError(t, json.Unmarshal([]byte(data), &c), data)
		chunks = append(chunks, c)
	}
	require.NoError(t, sc.Err())
	return chunks, done
}

func TestChatStreaming(t *testing.T) {
	usage := catalog.Usage{InputTokens: 25, OutputTokens: 9}
	for _, tc := range []struct{ includeUsage, buffer bool }{{true, false}, {false, false}, {true, true}, {false, true}} {
		includeUsage := tc.includeUsage
		t.Run(fmt.Sprintf("include_usage=%v/buffer=%v", includeUsage, tc.buffer), func(t *testing.T) {
			e := newEnv(t, providertest.Script{}, providertest.Script{"mid": {{Text: "A streamed answer.", Usage: &usage, FinishReason: "max_tokens"}}}, serverTOML,
				func(o *Options) { o.BufferStreams = tc.buffer })
			ts := httptest.NewServer(e.srv.Handler())
			defer ts.Close()
			extra := `, "stream": true`
			if includeUsage {
				extra += `, "stream_options": {"include_usage": true}`
			}
			req, err := http.NewRequest(http.MethodPost, ts.URL+"/v1/chat/completions", strings.NewReader(chatBody("cheap-chat", "Write a haiku.", extra)))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+clientKeyA)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
			assert.Equal(t, "anthropic/mid", resp.Header.Get("x-costwise-model"))
			wantCost := float64(e.price(t, "anthropic/mid", usage).NanoUSD()) / 1e9
			if tc.buffer {
				assert.InDelta(t, wantCost, costHeader(t, resp.Header), 1e-12)
			} else {
				assert.Empty(t, resp.Header.Get("x-costwise-cost-usd"), "the cost is not known when the headers leave")
			}

			chunks, done := readSSE(t, resp.Body)
			require.True(t, done, "stream must end with data: [DONE]")
			if !tc.buffer {
				_, err = io.Copy(io.Discard, resp.Body) // trailers arrive after the body
				require.NoError(t, err)
				assert.InDelta(t, wantCost, costHeader(t, resp.Trailer), 1e-12, "the cost is a trailer")
				assert.Greater(t, len(chunks), 5, "one event per upstream chunk")
			}
			var text strings.Builder
			var finish []string
			var usages []*Usage
			for i, c := range chunks {
				assert.Equal(t, "chat.completion.chunk", c.Object)
				assert.Equal(t, chunks[0].ID, c.ID, "chunk %d", i)
				assert.Equal(t, "anthropic/mid", c.Model)
				for _, ch := range c.Choices {
					if ch.Delta != nil && ch.Delta.Content != nil {
						text.WriteString(*ch.Delta.Content)
					}
					if ch.FinishReason != nil {
						finish = append(finish, *ch.FinishReason)
					}
				}
				if c.Usage != nil {
					usages = append(usages, c.Usage)
				}
			}
			assert.Equal(t, "assistant", chunks[0].Choices[0].Delta.Role)
			assert.Equal(t, "A streamed answer.", text.String())
			assert.Equal(t, []string{"length"}, finish, "Anthropic max_tokens becomes OpenAI length")
			if includeUsage {
				require.Len(t, usages, 1)
				assert.Equal(t, Usage{PromptTokens: 25, CompletionTokens: 9, TotalTokens: 34}, *usages[0])
				last := chunks[len(chunks)-1]
				assert.Empty(t, last.Choices, "the usage chunk has no choices")
				assert.NotNil(t, last.Usage)
			} else {
				assert.Empty(t, usages)
			}
		})
	}
}

func TestChatModelSelection(t *testing.T) {
	tests := []struct {
		name, model, prompt, want, upstream string
	}{
		{"pinned catalog id", "openai/large", "Write a haiku.", "openai/large", "large"},
		{"auto picks the cheapest above the default floor", AutoModel, "Summarize this: the meeting moved to Tuesday.", "openai/small", "small"},
		{"route", "cheap-chat", "Hello", "anthropic/mid", "mid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, providertest.Script{"small": {{Text: "s"}}, "large": {{Text: "l"}}}, providertest.Script{"mid": {{Text: "m"}}}, serverTOML, nil)
			ts := httptest.NewServer(e.srv.Handler())
			defer ts.Close()
			resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA, chatBody(tc.model, tc.prompt, ""))
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			assert.Equal(t, tc.want, resp.Header.Get("x-costwise-model"))
			var calls []providertest.Call
			calls = append(calls, e.oa.Calls()...)
			calls = append(calls, e.an.Calls()...)
			require.Len(t, calls, 1)
			assert.Equal(t, tc.upstream, calls[0].Model)
		})
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t, providertest.Script{}, providertest.Script{"mid": {{Text: "m"}}}, serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	for _, tc := range []struct {
		name, header, code string
	}{
		{"missing", "", "missing_api_key"},
		{"wrong key", "Bearer cw-not-a-configured-key", "invalid_api_key"},
		{"not bearer", "Basic " + clientKeyA, "missing_api_key"},
		{"key digest instead of key", "Bearer " + digest(clientKeyA), "invalid_api_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, ts.URL+"/v1/chat/completions", strings.NewReader(chatBody("cheap-chat", "hi", "")))
			require.NoError(t, err)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.Equal(t, tc.code, apiError(t, body).Code)
			assert.NotContains(t, string(body), clientKeyA)
		})
	}
	assert.Empty(t, e.an.Calls())
	resp, _ := get(t, ts.URL+"/healthz", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "healthz needs no key")
}

func TestKeyBudget(t *testing.T) {
	cfg := fmt.Sprintf(`
[[server.key]]
name = "tiny"
key_sha256 = %q
budget_usd_per_day = 0.000001

[[server.key]]
name = "one-dollar"
key_sha256 = %q
budget_usd_per_day = 1.0

[[route]]
name = "cheap-chat"
task = "writing"
min_quality = 0.9
max_cost_usd = 0.1
`, digest(clientKeyA), digest(clientKeyB))
	// The upstream reports 210k output tokens: $1.05 on anthropic/mid.
	big := catalog.Usage{InputTokens: 10, OutputTokens: 210_000}
	e := newEnv(t, providertest.Script{}, providertest.Script{"mid": {{Text: "long", Usage: &big}}}, cfg, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()

	t.Run("request larger than the budget", func(t *testing.T) {
		resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA, chatBody("cheap-chat", "hi", ""))
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		ae := apiError(t, body)
		assert.Equal(t, "insufficient_quota", ae.Code)
		assert.Contains(t, ae.Message, `key "tiny"`)
		ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		require.NoError(t, err)
		assert.True(t, ra > 0 && ra <= 86401, "Retry-After %d is the time to UTC midnight", ra)
		assert.Empty(t, e.an.Calls())
	})
	t.Run("budget spent", func(t *testing.T) {
		resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyB, chatBody("cheap-chat", "hi", ""))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		assert.Greater(t, costHeader(t, resp.Header), 1.0)
		resp, body = post(t, ts.URL+"/v1/chat/completions", clientKeyB, chatBody("cheap-chat", "hi", ""))
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, string(body))
		assert.Equal(t, "insufficient_quota", apiError(t, body).Code)
		assert.Len(t, e.an.Calls(), 1, "the refused request never reaches the provider")
	})
}

func TestRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, providertest.Script{}, providertest.Script{"mid": {{Text: "m"}}}, serverTOML, func(o *Options) { o.Now = clock })
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	for i := range 2 {
		resp, body := get(t, ts.URL+"/v1/models", clientKeyB)
		require.Equal(t, http.StatusOK, resp.StatusCode, "request %d: %s", i, body)
	}
	resp, body := get(t, ts.URL+"/v1/models", clientKeyB)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "rate_limit_exceeded", apiError(t, body).Code)
	assert.Equal(t, "30", resp.Header.Get("Retry-After"), "rpm 2 refills one request every 30 s")
	resp, _ = get(t, ts.URL+"/v1/models", clientKeyA)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "other keys are not limited")

	mu.Lock()
	now = now.Add(30 * time.Second)
	mu.Unlock()
	resp, _ = get(t, ts.URL+"/v1/models", clientKeyB)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "after Retry-After the key may send again")
}

func TestMalformedRequests(t *testing.T) {
	e := newEnv(t, providertest.Script{}, providertest.Script{"mid": {{Text: "m"}}}, serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	user := `[{"role": "user", "content": "hi"}]`
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"not JSON", `{"model": "cheap-chat", "messages": [`, 400, "malformed JSON"},
		{"empty", ``, 400, "body is empty"},
		{"trailing data", `{"model": "cheap-chat", "messages": ` + user + `} {}`, 400, "data after the request object"},
		{"no model", `{"messages": ` + user + `}`, 400, "field model is missing"},
		{"no messages", `{"model": "cheap-chat"}`, 400, "field messages is missing"},
		{"empty messages", `{"model": "cheap-chat", "messages": []}`, 400, "field messages is missing or empty"},
		{"unknown model", `{"model": "nobody/model-x", "messages": ` + user + `}`, 400, `model "nobody/model-x" is neither a catalog model id nor a route`},
		{"bad role", `{"model": "cheap-chat", "messages": [{"role": "wizard", "content": "hi"}]}`, 400, `messages[0].role "wizard" is unknown`},
		{"image url", `{"model": "cheap-chat", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}`, 400, "image_url.url must be an http(s) URL or a base64 data: URL"},
		{"image data url", `{"model": "cheap-chat", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]}`, 400, "not data:image/...;base64,<data>"},
		{"image detail", `{"model": "cheap-chat", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "ultra"}}]}]}`, 400, `image_url.detail "ultra"`},
		{"image from the assistant", `{"model": "cheap-chat", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}`, 400, "messages[1].content: images go in user messages only"},
		{"audio part", `{"model": "cheap-chat", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}]}`, 400, "only text and image_url parts"},
		{"system only", `{"model": "cheap-chat", "messages": [{"role": "system", "content": "x"}]}`, 400, "no user text"},
		{"wrong type", `{"model": "cheap-chat", "messages": ` + user + `, "max_tokens": "many"}`, 400, "field max_tokens"},
		{"n > 1", `{"model": "cheap-chat", "messages": ` + user + `, "n": 3}`, 400, "field n is 3"},
		{"tool without function", `{"model": "cheap-chat", "messages": ` + user + `, "tools": [{"type": "function"}]}`, 400, "tools[0].function is missing"},
		{"tool bad name", `{"model": "cheap-chat", "messages": ` + user + `, "tools": [{"type": "function", "function": {"name": "a b"}}]}`, 400, `tools[0].function.name "a b" is not 1 to 64`},
		{"tool twice", `{"model": "cheap-chat", "messages": ` + user + `, "tools": [{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}]}`, 400, `"f" is given twice`},
		{"tool params", `{"model": "cheap-chat", "messages": ` + user + `, "tools": [{"type": "function", "function": {"name": "f", "parameters": [1]}}]}`, 400, "parameters must be a JSON schema object"},
		{"tool choice alone", `{"model": "cheap-chat", "messages": ` + user + `, "tool_choice": "auto"}`, 400, "tool_choice is set but tools is empty"},
		{"tool choice unknown", `{"model": "cheap-chat", "messages": ` + user + `, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}`, 400, `names function "g", which is not among tools`},
		{"functions", `{"model": "cheap-chat", "messages": ` + user + `, "functions": [{"name": "f"}]}`, 400, "deprecated"},
		{"tool message without id", `{"model": "cheap-chat", "messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}]}`, 400, "messages[1].tool_call_id is missing"},
		{"tool call without id", `{"model": "cheap-chat", "messages": [{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}]}`, 400, "messages[0].tool_calls[0].id is missing"},
		{"temperature", `{"model": "cheap-chat", "messages": ` + user + `, "temperature": 7}`, 400, "temperature"},
		{"too large", `{"model": "cheap-chat", "messages": [{"role": "user", "content": "` + strings.Repeat("a", DefaultMaxBodyBytes) + `"}]}`, 413, "larger than 16777216 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA, tc.body)
			assert.Equal(t, tc.status, resp.StatusCode, string(body))
			ae := apiError(t, body)
			assert.Equal(t, "invalid_request_error", ae.Type)
			assert.Contains(t, ae.Message, tc.want)
		})
	}
	assert.Empty(t, e.an.Calls())
}

func TestUpstreamFailure(t *testing.T) {
	t.Run("escalates to the next rung", func(t *testing.T) {
		usage := catalog.Usage{InputTokens: 20, OutputTokens: 4}
		e := newEnv(t, providertest.Script{"large": {{Text: "from large", Usage: &usage}}},
			providertest.Script{"mid": {{Status: 500}}}, serverTOML, nil)
		ts := httptest.NewServer(e.srv.Handler())
		defer ts.Close()
		resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA, chatBody("cheap-chat", "Write a haiku.", ""))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		assert.Equal(t, "openai/large", resp.Header.Get("x-costwise-model"))
		assert.Equal(t, "1", resp.Header.Get("x-costwise-escalations"))
		assert.InDelta(t, float64(e.price(t, "openai/large", usage).NanoUSD())/1e9, costHeader(t, resp.Header), 1e-12,
			"a failed 500 is not billed; the cost is the large model's")
		assert.Len(t, e.an.Calls(), 1)
	})
	t.Run("every rung fails: 502", func(t *testing.T) {
		e := newEnv(t, providertest.Script{"large": {{Status: 503}}}, providertest.Script{"mid": {{Status: 500}}}, serverTOML, nil)
		ts := httptest.NewServer(e.srv.Handler())
		defer ts.Close()
		resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA, chatBody("cheap-chat", "Write a haiku.", ""))
		assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
		ae := apiError(t, body)
		assert.Equal(t, "upstream_error", ae.Type)
		assert.Contains(t, ae.Message, "every model of the ladder failed")
		assert.NotContains(t, string(body), oaKey)
		assert.NotContains(t, string(body), anKey)
	})
}

func TestMetricsAndModels(t *testing.T) {
	usage := catalog.Usage{InputTokens: 40, OutputTokens: 7}
	e := newEnv(t, providertest.Script{}, providertest.Script{"mid": {{Text: "m", Usage: &usage}}}, serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA, chatBody("cheap-chat", "Write a haiku.", ""))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	post(t, ts.URL+"/v1/chat/completions", "", chatBody("cheap-chat", "hi", ""))

	_, m := get(t, ts.URL+"/metrics", "")
	lbl := `model="anthropic/mid",provider="anthropic",route="cheap-chat"`
	for _, want := range []string{
		`costwise_gateway_requests_total{` + lbl + `,status="200"} 1`,
		`costwise_gateway_tokens_total{` + lbl + `,type="prompt"} 40`,
		`costwise_gateway_tokens_total{` + lbl + `,type="completion"} 7`,
		fmt.Sprintf(`costwise_gateway_cost_usd_total{%s} %g`, lbl, float64(e.price(t, "anthropic/mid", usage).NanoUSD())/1e9),
		`costwise_gateway_escalations_total{` + lbl + `} 0`,
		`costwise_gateway_request_duration_seconds_count{` + lbl + `} 1`,
		`costwise_gateway_rejected_total{reason="unauthorized"} 1`,
	} {
		assert.Contains(t, string(m), want)
	}

	resp, body = get(t, ts.URL+"/v1/models", clientKeyA)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID            string `json:"id"`
			Kind          string `json:"costwise_kind"`
			ContextLength int64  `json:"context_length"`
			Architecture  *struct {
				InputModalities []string `json:"input_modalities"`
			} `json:"architecture"`
			Pricing *struct {
				Prompt, Completion string
			} `json:"pricing"`
			SupportedParameters []string `json:"supported_parameters"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	assert.Equal(t, "list", list.Object)
	var ids []string
	for _, d := range list.Data {
		ids = append(ids, d.ID)
	}
	assert.Equal(t, []string{"openai/small", "anthropic/mid", "openai/large", "cheap-chat", AutoModel}, ids)
	small, large := list.Data[0], list.Data[2]
	assert.Equal(t, int64(128000), small.ContextLength)
	assert.Equal(t, []string{"text"}, small.Architecture.InputModalities)
	assert.Equal(t, []string{"text", "image"}, large.Architecture.InputModalities)
	require.NotNil(t, large.Pricing)
	assert.Equal(t, "2.5e-06", large.Pricing.Prompt, "USD per token, as OpenRouter lists it")
	assert.Equal(t, "1e-05", large.Pricing.Completion)
	assert.NotContains(t, small.SupportedParameters, "tools")
	assert.Subset(t, large.SupportedParameters, []string{"tools", "tool_choice", "response_format", "structured_outputs"})
	assert.Equal(t, "route", list.Data[3].Kind)
	assert.Nil(t, list.Data[3].Architecture, "a route lists no model facts")
}

func TestShutdownFinishesInFlight(t *testing.T) {
	e := newEnv(t, providertest.Script{}, providertest.Script{"mid": {{Text: "slow answer", Delay: 400 * time.Millisecond}}}, serverTOML, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, ln) }()

	type result struct {
		status int
		body   []byte
		err    error
	}
	got := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/v1/chat/completions", strings.NewReader(chatBody("cheap-chat", "Write a haiku.", "")))
		req.Header.Set("Authorization", "Bearer "+clientKeyA)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, b, err}
	}()
	require.Eventually(t, func() bool { return len(e.an.Calls()) == 1 }, 5*time.Second, 5*time.Millisecond, "the request reaches the upstream")
	cancel() // as SIGTERM does in costwise serve

	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	// Serve returned only after the in-flight request was answered.
	select {
	case r := <-got:
		require.NoError(t, r.err)
		assert.Equal(t, http.StatusOK, r.status, string(r.body))
		assert.Contains(t, string(r.body), "slow answer")
	default:
		t.Fatal("Serve returned before the in-flight request was answered")
	}
	runs, err := e.l.Runs(0)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	assert.Equal(t, ledger.RunStatus("succeeded"), runs[0].Status, "the request was recorded before the ledger can close")
	_, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	assert.Error(t, err, "the listener is closed")
}

func TestCheckBind(t *testing.T) {
	for _, tc := range []struct {
		addr string
		keys int
		ok   bool
	}{
		{"127.0.0.1:8080", 0, true},
		{"[::1]:8080", 0, true},
		{"localhost:8080", 0, true},
		{"0.0.0.0:8080", 0, false},
		{":8080", 0, false},
		{"10.1.2.3:8080", 0, false},
		{"0.0.0.0:8080", 1, true},
		{"nonsense", 0, false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			err := CheckBind(tc.addr, tc.keys)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
	assert.ErrorContains(t, CheckBind("0.0.0.0:8080", 0), "without API keys")
}

// fakeWorkflows records what the planning endpoints pass on.
type fakeWorkflows struct {
	kind WorkflowKind
	name string
	src  string
	err  error
}

func (f *fakeWorkflows) Workflow(_ context.Context, kind WorkflowKind, name string, src []byte) (int, any, error) {
	f.kind, f.name, f.src = kind, name, string(src)
	if f.err != nil {
		return 0, nil, f.err
	}
	return http.StatusOK, map[string]string{"kind": string(kind)}, nil
}

func TestWorkflowEndpoints(t *testing.T) {
	fw := &fakeWorkflows{}
	e := newEnv(t, providertest.Script{}, providertest.Script{}, serverTOML, func(o *Options) { o.Workflows = fw })
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	send := func(path, ct, body string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+clientKeyA)
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for _, kind := range []WorkflowKind{KindEstimate, KindPlan, KindPreview} {
		resp, body := send("/v1/"+string(kind), "application/toml", "[workflow]\nname = \"x\"\n")
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		assert.Equal(t, kind, fw.kind)
		assert.Equal(t, "request.toml", fw.name)
		assert.Equal(t, "[workflow]\nname = \"x\"\n", fw.src)
	}
	resp, body := send("/v1/plan", "application/json", `{"workflow": {"name": "x", "budget": {"max_cost_usd": 0.5}}, "node": [{"id": "a", "task": "code", "max_tokens": 100}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, fw.src, "[[node]]")
	assert.Contains(t, fw.src, "max_tokens = 100")
	assert.Contains(t, fw.src, "max_cost_usd = 0.5")

	resp, body = send("/v1/plan", "application/json", `{"workflow": {"name": null}}`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, apiError(t, body).Message, "workflow.name is null")
	resp, body = send("/v1/plan", "text/html", `<p>`)
	assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode, string(body))
	fw.err = &InputError{Msg: "request.toml:3:1: node[0]: missing id"}
	resp, body = send("/v1/estimate", "application/toml", "x")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "request.toml:3:1: node[0]: missing id", apiError(t, body).Message)
	fw.err = errors.New("disk on fire")
	resp, _ = send("/v1/estimate", "application/toml", "x")
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	resp, body = send("/v1/runs", "application/json", `{"workflow": "x"}`)
	assert.Equal(t, http.StatusNotImplemented, resp.StatusCode)
	assert.Contains(t, apiError(t, body).Message, "no workflow runner")
}

func FuzzDecodeChatRequest(f *testing.F) {
	for _, s := range []string{
		`{"model": "costwise/auto", "messages": [{"role": "user", "content": "hi"}]}`,
		`{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}], "stop": ["x"], "stream": true, "stream_options": {"include_usage": true}}`,
		`{"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}`,
		`{"model": "m", "messages": [{"role": "assistant", "content": null}], "stop": 5}`,
		`{"model": "m", "messages": [{"role": "user", "content": "w?"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c1", "content": "18"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}], "tool_choice": {"type": "function", "function": {"name": "f"}}}`,
		`{"model": "m", "messages": [{"role": "user", "content": "c?"}], "response_format": {"type": "json_schema", "json_schema": {"name": "c", "strict": true, "schema": {"type": "object"}}}}`,
		`{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "what?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}]}]}`,
		`[]`, `{`, ``, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeChatRequest(data)
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		require.NotEmpty(t, strings.TrimSpace(r.Model))
		require.NotEmpty(t, r.Messages)
		msgs := r.messages()
		require.Len(t, msgs, len(r.Messages))
		_ = r.callOptions()
		require.LessOrEqual(t, len(r.Stops()), 4)
		// A decoded request encodes back to JSON.
		_, err = json.Marshal(r)
		require.NoError(t, err)
		_ = bytes.TrimSpace(data)
	})
}

// TestChatConversation: a conversation goes upstream as its messages, in
// order, with their roles (not as one transcript), through both
// protocols, and is priced on what the upstream reports. A follow-up gets
// Anthropic's cache breakpoint on its last user message (OpenAI caches by
// itself).
func TestChatConversation(t *testing.T) {
	e := newEnv(t, providertest.Script{"small": {{Text: "Rome."}}}, providertest.Script{"mid": {{Text: "Rome."}}}, serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	const conv = `[{"role": "system", "content": "One word."}, {"role": "user", "content": "Capital of France?"},
		{"role": "assistant", "content": "Paris."}, {"role": "user", "content": [{"type": "text", "text": "And of Italy?"}]}]`
	want := []providertest.Message{{Role: "user", Text: "Capital of France?"}, {Role: "assistant", Text: "Paris."},
		{Role: "user", Text: "And of Italy?"}}
	for _, tc := range []struct {
		model  string
		srv    *providertest.Server
		cached bool
	}{{"openai/small", e.oa, false}, {"anthropic/mid", e.an, true}} {
		t.Run(tc.model, func(t *testing.T) {
			resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA, fmt.Sprintf(`{"model": %q, "messages": %s}`, tc.model, conv))
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			var cr ChatResponse
			require.NoError(t, json.Unmarshal(body, &cr))
			assert.Equal(t, "Rome.", *cr.Choices[0].Message.Content)
			calls := tc.srv.Calls()
			require.NotEmpty(t, calls)
			last := calls[len(calls)-1]
			assert.Equal(t, "One word.", last.System)
			w := slices.Clone(want)
			w[2].Cached = tc.cached
			assert.Equal(t, w, last.Messages)
			require.NotNil(t, cr.Usage)
			assert.Equal(t, int(last.Usage.PromptTokens()), cr.Usage.PromptTokens, "the upstream's count, framing included")
		})
	}
}

// TestSyncLedger: with SyncLedger a request is in the ledger, whole, when
// its answer arrives (no flush), escalations included.
func TestSyncLedger(t *testing.T) {
	usage := catalog.Usage{InputTokens: 20, OutputTokens: 4}
	e := newEnv(t, providertest.Script{"large": {{Text: "from large", Usage: &usage}}},
		providertest.Script{"mid": {{Status: 500}, {Text: "from mid", Usage: &usage}}}, serverTOML,
		func(o *Options) { o.SyncLedger = true })
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	for _, want := range []struct{ model, runStatus string }{{"openai/large", "succeeded"}, {"anthropic/mid", "succeeded"}} {
		resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA, chatBody("cheap-chat", "Write a haiku.", ""))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		assert.Equal(t, want.model, resp.Header.Get("x-costwise-model"))
		rec, err := e.l.Run(resp.Header.Get("x-costwise-run-id"))
		require.NoError(t, err, "in the ledger as soon as it is answered")
		assert.Equal(t, want.runStatus, string(rec.Status))
		assert.Empty(t, rec.InFlight)
		require.Len(t, rec.Nodes, 1)
		assert.Equal(t, want.model, rec.Nodes[0].FinalModel)
		var cost int64
		for _, a := range rec.Nodes[0].Attempts {
			cost += a.CostNano
		}
		assert.Equal(t, rec.SpentNano, cost)
		assert.InDelta(t, float64(rec.SpentNano)/1e9, costHeader(t, resp.Header), 1e-12)
	}
	require.NoError(t, e.l.Check())
}
