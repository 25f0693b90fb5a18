package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/provider/providertest"
)

const weatherTools = `[{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city.",
	"parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]`

// TestChatTools: tools through the gateway, as OpenAI clients send them:
// the model's tool calls come back in message.tool_calls with
// finish_reason "tool_calls" (plain and streamed), the next turn's tool
// result reaches the upstream as a tool message, models the catalog does
// not list with tool calling are not picked, and the cost is the
// upstream's usage at the catalog price.
func TestChatTools(t *testing.T) {
	call := providertest.ToolCall{ID: "call_9", Name: "get_weather", Arguments: `{"city":"Rome"}`}
	script := func() providertest.Script {
		return providertest.Script{"large": {{ToolCalls: []providertest.ToolCall{call}}}, "mid": {{ToolCalls: []providertest.ToolCall{call}}}}
	}
	e := newEnv(t, script(), script(), serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	ask := `[{"role": "user", "content": "Weather in Rome?"}]`

	for _, tc := range []struct {
		model, wantModel string
		srv              *providertest.Server
	}{
		{"cheap-chat", "anthropic/mid", e.an},
		{"openai/large", "openai/large", e.oa},
	} {
		t.Run(tc.model, func(t *testing.T) {
			resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA,
				fmt.Sprintf(`{"model": %q, "messages": %s, "tools": %s, "tool_choice": "auto"}`, tc.model, ask, weatherTools))
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			assert.Equal(t, tc.wantModel, resp.Header.Get("x-costwise-model"))
			var raw map[string]any
			require.NoError(t, json.Unmarshal(body, &raw))
			msg := raw["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
			content, present := msg["content"]
			assert.True(t, present, "content is sent, as null, when the model only calls tools")
			assert.Nil(t, content)
			var cr ChatResponse
			require.NoError(t, json.Unmarshal(body, &cr))
			ch := cr.Choices[0]
			assert.Equal(t, "tool_calls", *ch.FinishReason)
			require.Len(t, ch.Message.ToolCalls, 1)
			got := ch.Message.ToolCalls[0]
			assert.Nil(t, got.Index)
			assert.Equal(t, "call_9", got.ID)
			assert.Equal(t, "function", got.Type)
			assert.Equal(t, "get_weather", got.Function.Name)
			assert.JSONEq(t, `{"city":"Rome"}`, got.Function.Arguments)
			calls := tc.srv.Calls()
			last := calls[len(calls)-1]
			assert.Equal(t, []string{"get_weather"}, last.Tools)
			want := e.price(t, tc.wantModel, last.Usage)
			assert.InDelta(t, float64(want.NanoUSD())/1e9, costHeader(t, resp.Header), 1e-12)

			// The next turn: the assistant's call and the tool's result.
			_, upstreamModel, _ := strings.Cut(tc.wantModel, "/")
			tc.srv.Push(upstreamModel, providertest.Reply{Text: "21C and sunny."})
			next := fmt.Sprintf(`{"model": %q, "tools": %s, "messages": [{"role": "user", "content": "Weather in Rome?"},
				{"role": "assistant", "content": null, "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]},
				{"role": "tool", "tool_call_id": "call_9", "content": "21C, sunny"}]}`, tc.model, weatherTools)
			resp, body = post(t, ts.URL+"/v1/chat/completions", clientKeyA, next)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			require.NoError(t, json.Unmarshal(body, &cr))
			assert.Equal(t, "21C and sunny.", *cr.Choices[0].Message.Content)
			assert.Equal(t, "stop", *cr.Choices[0].FinishReason)
			calls = tc.srv.Calls()
			msgs := calls[len(calls)-1].Messages
			require.Len(t, msgs, 3)
			require.Len(t, msgs[1].ToolCalls, 1)
			assert.Regexp(t, `^call_9 get_weather \{"city": ?"Rome"\}$`, msgs[1].ToolCalls[0])
			assert.Equal(t, "tool", msgs[2].Role)
			assert.Equal(t, "call_9", msgs[2].ToolCallID)
			assert.Equal(t, "21C, sunny", msgs[2].Text)
		})
	}

	t.Run("streamed", func(t *testing.T) {
		n := len(e.oa.Calls())
		e.oa.Push("large", providertest.Reply{ToolCalls: []providertest.ToolCall{call}})
		resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA,
			fmt.Sprintf(`{"model": "openai/large", "stream": true, "stream_options": {"include_usage": true}, "messages": %s, "tools": %s}`, ask, weatherTools))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		var deltas []ToolCall
		var finish string
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok || line == "[DONE]" {
				continue
			}
			var c ChatChunk
			require.NoError(t, json.Unmarshal([]byte(line), &c), line)
			for _, ch := range c.Choices {
				deltas = append(deltas, ch.Delta.ToolCalls...)
				if ch.FinishReason != nil {
					finish = *ch.FinishReason
				}
			}
		}
		assert.True(t, strings.HasSuffix(string(body), "data: [DONE]\n\n"))
		assert.Equal(t, "tool_calls", finish)
		require.Len(t, deltas, 1)
		require.NotNil(t, deltas[0].Index)
		assert.Equal(t, 0, *deltas[0].Index)
		assert.Equal(t, "call_9", deltas[0].ID)
		assert.Equal(t, "get_weather", deltas[0].Function.Name)
		calls := e.oa.Calls()
		require.Len(t, calls, n+1)
		assert.False(t, calls[n].Stream, "with tools the upstream is asked for the whole answer")
	})

	t.Run("a pinned model without tool calling", func(t *testing.T) {
		resp, body := post(t, ts.URL+"/v1/chat/completions", clientKeyA,
			fmt.Sprintf(`{"model": "openai/small", "messages": %s, "tools": %s}`, ask, weatherTools))
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Contains(t, apiError(t, body).Message, "the catalog does not list tool calling for this model")
	})
}

// TestChatJSONSchema: response_format json_schema (structured output): an
// answer that does not match the schema escalates, OpenAI gets the schema
// on the wire, and bad schemas get a 400 that says why.
func TestChatJSONSchema(t *testing.T) {
	e := newEnv(t, providertest.Script{"large": {{Text: `{"city": "Rome"}`}}},
		providertest.Script{"mid": {{Text: `{"town": "Rome"}`}}}, serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	const schema = `{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}`
	body := func(format string) string {
		return fmt.Sprintf(`{"model": "cheap-chat", "messages": [{"role": "user", "content": "Capital of Italy, as JSON?"}], "response_format": %s}`, format)
	}
	resp, out := post(t, ts.URL+"/v1/chat/completions", clientKeyA,
		body(`{"type": "json_schema", "json_schema": {"name": "capital", "strict": true, "schema": `+schema+`}}`))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	assert.Equal(t, "openai/large", resp.Header.Get("x-costwise-model"), "anthropic/mid's answer lacks city: escalated")
	assert.Equal(t, "1", resp.Header.Get("x-costwise-escalations"))
	var cr ChatResponse
	require.NoError(t, json.Unmarshal(out, &cr))
	assert.JSONEq(t, `{"city": "Rome"}`, *cr.Choices[0].Message.Content)
	calls := e.oa.Calls()
	require.Len(t, calls, 1)
	assert.Contains(t, string(calls[0].JSONSchema), `"name":"capital"`)
	assert.Contains(t, string(calls[0].JSONSchema), `"strict":true`)
	an := e.an.Calls()
	require.Len(t, an, 1)
	assert.Empty(t, an[0].JSONSchema, "Anthropic gets JSON mode, and the answer is checked here")

	for _, tc := range []struct{ name, format, code, want string }{
		{"no json_schema", `{"type": "json_schema"}`, "invalid_request", "response_format.json_schema is missing"},
		{"bad name", `{"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}}`, "invalid_request", `json_schema.name "a b"`},
		{"schema not an object", `{"type": "json_schema", "json_schema": {"name": "s", "schema": [1]}}`, "invalid_request", "must be a JSON schema object"},
		{"schema that does not compile", `{"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": 12}}}`, "invalid_json_schema", "the JSON schema"},
		{"unknown type", `{"type": "yaml"}`, "invalid_request", "use text, json_object or json_schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := post(t, ts.URL+"/v1/chat/completions", clientKeyA, body(tc.format))
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			ae := apiError(t, out)
			assert.Equal(t, tc.code, ae.Code)
			assert.Contains(t, ae.Message, tc.want)
		})
	}
}

// pngEncode writes a w x h grey PNG.
func pngEncode(w io.Writer, width, height int) error {
	return png.Encode(w, image.NewGray(image.Rect(0, 0, width, height)))
}

// TestChatImages: pictures in user messages, as OpenAI clients send them:
// only models that take images are picked; an inline (data:) picture
// reaches Anthropic as base64; a remote one cannot (costwise fetches no URL
// for a client), so Anthropic's model is left out when the call is ranked
// and OpenAI, the next cheapest, gets the URL.
func TestChatImages(t *testing.T) {
	e := newEnv(t, providertest.Script{"large": {{Text: "A cat."}}}, providertest.Script{"mid": {{Text: "A square."}}}, serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	var png bytes.Buffer
	require.NoError(t, pngEncode(&png, 64, 32))
	dataURL := "data:image/png;base64," + base64.StdEncoding.EncodeToString(png.Bytes())
	ask := func(model, url string) string {
		return fmt.Sprintf(`{"model": %q, "messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
			{"type": "image_url", "image_url": {"url": %q, "detail": "low"}}]}]}`, model, url)
	}

	resp, out := post(t, ts.URL+"/v1/chat/completions", clientKeyA, ask("cheap-chat", dataURL))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	assert.Equal(t, "anthropic/mid", resp.Header.Get("x-costwise-model"))
	an := e.an.Calls()
	require.Len(t, an, 1)
	require.Len(t, an[0].Messages, 1)
	assert.Equal(t, "What is this?", an[0].Messages[0].Text)
	assert.Equal(t, []string{dataURL}, an[0].Messages[0].Images, "inline, as base64")

	const remote = "https://example.com/cat.jpg"
	resp, out = post(t, ts.URL+"/v1/chat/completions", clientKeyA, ask("cheap-chat", remote))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	assert.Equal(t, "openai/large", resp.Header.Get("x-costwise-model"))
	assert.Equal(t, "0", resp.Header.Get("x-costwise-escalations"), "not tried: left out when ranked")
	assert.Len(t, e.an.Calls(), 1, "nothing was sent to Anthropic")
	oa := e.oa.Calls()
	require.Len(t, oa, 1)
	assert.Equal(t, []string{remote + "#detail=low"}, oa[0].Messages[0].Images)
	require.NoError(t, e.srv.Flush(context.Background()))
	rec, err := e.l.Run(resp.Header.Get("x-costwise-run-id"))
	require.NoError(t, err)
	require.Len(t, rec.Nodes[0].Attempts, 1)
	assert.Equal(t, "openai/large", rec.Nodes[0].Attempts[0].Model)

	resp, out = post(t, ts.URL+"/v1/chat/completions", clientKeyA, ask("openai/small", remote))
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, apiError(t, out).Message, "does not list image input for this model")
}

// TestChatSampling: top_p, seed and the penalties reach the upstream as the
// client sent them; out-of-range values get a 400 naming the field.
func TestChatSampling(t *testing.T) {
	e := newEnv(t, providertest.Script{"large": {{Text: "ok"}}}, providertest.Script{}, serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	resp, out := post(t, ts.URL+"/v1/chat/completions", clientKeyA,
		`{"model": "openai/large", "messages": [{"role": "user", "content": "hi"}], "top_p": 0.8, "seed": 7, "frequency_penalty": 0, "presence_penalty": 1.5}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	calls := e.oa.Calls()
	require.Len(t, calls, 1)
	var body map[string]any
	require.NoError(t, json.Unmarshal(calls[0].Body, &body))
	assert.Equal(t, 0.8, body["top_p"])
	assert.Equal(t, 7.0, body["seed"])
	assert.Equal(t, 0.0, body["frequency_penalty"], "a zero penalty is sent as given")
	assert.Equal(t, 1.5, body["presence_penalty"])

	for _, tc := range []struct{ field, want string }{
		{`"top_p": 0`, "field top_p is 0"},
		{`"top_p": 1.5`, "field top_p is 1.5"},
		{`"presence_penalty": 3`, "field presence_penalty is 3"},
		{`"seed": "x"`, "field seed"},
	} {
		t.Run(tc.field, func(t *testing.T) {
			resp, out := post(t, ts.URL+"/v1/chat/completions", clientKeyA,
				`{"model": "openai/large", "messages": [{"role": "user", "content": "hi"}], `+tc.field+`}`)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Contains(t, apiError(t, out).Message, tc.want)
		})
	}
}

// TestChatLogprobs: logprobs and top_logprobs, as OpenAI clients ask for
// them, reach an OpenAI-protocol upstream and come back in
// choices[0].logprobs.content, token by token with their alternatives.
func TestChatLogprobs(t *testing.T) {
	e := newEnv(t, providertest.Script{"large": {{Text: "yes", LogProbs: []float64{-0.1}}}}, providertest.Script{}, serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	resp, out := post(t, ts.URL+"/v1/chat/completions", clientKeyA,
		`{"model": "openai/large", "messages": [{"role": "user", "content": "Is the sky blue? yes or no"}], "logprobs": true, "top_logprobs": 2}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	calls := e.oa.Calls()
	require.Len(t, calls, 1)
	assert.True(t, calls[0].LogProbs)
	assert.Equal(t, 2, calls[0].TopLogProbs)
	var cr ChatResponse
	require.NoError(t, json.Unmarshal(out, &cr))
	lp := cr.Choices[0].Logprobs
	require.NotNil(t, lp)
	require.Len(t, lp.Content, 1)
	assert.Equal(t, "yes", lp.Content[0].Token)
	assert.InDelta(t, -0.1, lp.Content[0].Logprob, 1e-9)
	assert.Equal(t, []int{'y', 'e', 's'}, lp.Content[0].Bytes)
	require.NotEmpty(t, lp.Content[0].TopLogprobs)
	assert.Equal(t, "yes", lp.Content[0].TopLogprobs[0].Token)

	// Without logprobs the answer carries none.
	resp, out = post(t, ts.URL+"/v1/chat/completions", clientKeyA, `{"model": "openai/large", "messages": [{"role": "user", "content": "hi"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotContains(t, string(out), "logprobs")

	resp, out = post(t, ts.URL+"/v1/chat/completions", clientKeyA, `{"model": "openai/large", "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2}`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, apiError(t, out).Message, "top_logprobs needs logprobs: true")
}

// TestChatPlan: POST /v1/chat/plan answers how a chat completion would be
// routed (ladder, predicted cost, why the other models are out) without
// sending it or charging anyone.
func TestChatPlan(t *testing.T) {
	e := newEnv(t, providertest.Script{}, providertest.Script{}, serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	resp, out := post(t, ts.URL+"/v1/chat/plan", clientKeyA, chatBody("cheap-chat", "Write a haiku about autumn.", ""))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	var p ChatPlan
	require.NoError(t, json.Unmarshal(out, &p))
	assert.Equal(t, "costwise.chat_plan", p.Object)
	assert.Equal(t, "cheap-chat", p.Route)
	assert.Equal(t, "writing", p.Task)
	assert.Equal(t, "route", p.TaskSource)
	require.Len(t, p.Ladder, 2)
	assert.Equal(t, "anthropic/mid", p.Ladder[0].Model, "the cheapest model meeting min_quality 0.9")
	assert.Equal(t, "openai/large", p.Ladder[1].Model)
	assert.InDelta(t, p.Ladder[0].PredictedCostUSD, p.PredictedCostUSD, 1e-12)
	assert.Greater(t, p.Ladder[0].ReserveUSD, p.Ladder[0].PredictedCostUSD, "the reserve is the worst case")
	require.NotNil(t, p.MaxCostUSD)
	assert.Equal(t, 0.1, *p.MaxCostUSD)
	require.Len(t, p.Rejected, 1)
	assert.Equal(t, "quality", p.Rejected[0].Reason)
	assert.Equal(t, 1, p.Rejected[0].Count)
	assert.Contains(t, p.Rejected[0].Example, "openai/small: quality 0.80 for writing is below min_quality 0.9")
	assert.Empty(t, e.oa.Calls())
	assert.Empty(t, e.an.Calls())
	require.NoError(t, e.srv.Flush(context.Background()))
	runs, err := e.l.Runs(0)
	require.NoError(t, err)
	assert.Empty(t, runs, "nothing is recorded")

	resp, out = post(t, ts.URL+"/v1/chat/plan", clientKeyA, fmt.Sprintf(`{"model": "openai/small", "messages": [{"role": "user", "content": "hi"}], "tools": %s}`, weatherTools))
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, apiError(t, out).Message, "rejected")
	resp, _ = post(t, ts.URL+"/v1/chat/plan", "cw-wrong-key-000000000000000000000", chatBody("cheap-chat", "hi", ""))
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// TestChatSimulated: with the simulator as clients and Router.Simulated
// (costwise serve --simulate), answers are marked SIMULATED, carry
// x-costwise-simulated, and are recorded as simulated runs, which no
// key's spend counts.
func TestChatSimulated(t *testing.T) {
	var opts Options
	e := newEnv(t, providertest.Script{}, providertest.Script{}, serverTOML, func(o *Options) {
		o.Router.Simulated = true
		opts = *o
	})
	_ = e.srv.Close(context.Background())
	opts.Clients = executor.NewSimulator(e.cat, 1)
	opts.Registry = prometheus.NewRegistry()
	srv, err := New(opts)
	require.NoError(t, err)
	defer func() { _ = srv.Close(context.Background()) }()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	resp, out := post(t, ts.URL+"/v1/chat/completions", clientKeyA, chatBody("cheap-chat", "Write a haiku.", ""))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	assert.Equal(t, "true", resp.Header.Get("x-costwise-simulated"))
	var cr ChatResponse
	require.NoError(t, json.Unmarshal(out, &cr))
	assert.True(t, strings.HasPrefix(*cr.Choices[0].Message.Content, executor.SimulatedPrefix), *cr.Choices[0].Message.Content)
	require.NoError(t, srv.Flush(context.Background()))
	rec, err := e.l.Run(resp.Header.Get("x-costwise-run-id"))
	require.NoError(t, err)
	assert.True(t, rec.Simulated)
	assert.Positive(t, rec.SpentNano, "priced from the catalog")
	spent, err := e.l.SpentBy("team-a", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	assert.Zero(t, spent, "a simulated request costs the key nothing")
}

// TestChatCachedTokens: prompt tokens the provider read from its cache are
// reported as OpenAI does (usage.prompt_tokens_details.cached_tokens),
// priced at the cache-read rate, and counted in tokens_total{type="cache_read"}.
func TestChatCachedTokens(t *testing.T) {
	usage := catalog.Usage{InputTokens: 200, CacheReadTokens: 1800, OutputTokens: 5}
	e := newEnv(t, providertest.Script{"large": {{Text: "ok", Usage: &usage}}}, providertest.Script{}, serverTOML, nil)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	resp, out := post(t, ts.URL+"/v1/chat/completions", clientKeyA, `{"model": "openai/large", "messages": [{"role": "user", "content": "hi"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	var cr ChatResponse
	require.NoError(t, json.Unmarshal(out, &cr))
	require.NotNil(t, cr.Usage)
	assert.Equal(t, 2000, cr.Usage.PromptTokens)
	require.NotNil(t, cr.Usage.PromptTokensDetails)
	assert.Equal(t, 1800, cr.Usage.PromptTokensDetails.CachedTokens)
	want := e.price(t, "openai/large", usage)
	assert.InDelta(t, float64(want.NanoUSD())/1e9, costHeader(t, resp.Header), 1e-12)
	_, m := get(t, ts.URL+"/metrics", "")
	assert.Contains(t, string(m), `costwise_gateway_tokens_total{model="openai/large",provider="openai",route="costwise/pinned",type="cache_read"} 1800`)
}
