package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/executor/provider/providertest"
)

// TestTurnsOnTheWire: a conversation (Request.Turns) reaches each kind's
// service as its messages, in order, with their roles, through the real
// langchaingo clients; a call with Prompt only sends one user message.
func TestTurnsOnTheWire(t *testing.T) {
	turns := []Turn{{Role: TurnUser, Text: "Capital of France?"}, {Role: TurnAssistant, Text: "Paris."}, {Role: TurnUser, Text: "And of Italy?"}}
	want := []providertest.Message{{Role: "user", Text: "Capital of France?"}, {Role: "assistant", Text: "Paris."},
		{Role: "user", Text: "And of Italy?"}}
	for _, k := range wireKinds {
		t.Run(k.name, func(t *testing.T) {
			srv := k.new(providertest.Script{"m-1": {{Text: "Rome."}}})
			defer srv.Close()
			cl := newWireClient(t, k, srv)
			resp, err := cl.Call(context.Background(), Request{Model: "m-1", System: "One word.", Turns: turns,
				Prompt: "[user]\nCapital of France?\n\n[assistant]\nParis.\n\n[user]\nAnd of Italy?", MaxTokens: 16})
			require.NoError(t, err)
			assert.Equal(t, "Rome.", resp.Text)
			_, err = cl.Call(context.Background(), Request{Model: "m-1", Prompt: "Capital of Spain?", MaxTokens: 16})
			require.NoError(t, err)

			calls := srv.Calls()
			require.Len(t, calls, 2)
			assert.Equal(t, "One word.", calls[0].System)
			assert.Equal(t, want, calls[0].Messages)
			assert.Equal(t, []providertest.Message{{Role: "user", Text: "Capital of Spain?"}}, calls[1].Messages)
		})
	}
}

// TestTurnsCountedLocally: without usage on the wire, a conversation's
// input is counted message by message, with OpenAI's chat framing.
func TestTurnsCountedLocally(t *testing.T) {
	one, err := countLocally(Request{Prompt: "Capital of France? Paris. And of Italy?"}, "Rome.")
	require.NoError(t, err)
	three, err := countLocally(Request{Turns: []Turn{{Role: TurnUser, Text: "Capital of France?"}, {Role: TurnAssistant, Text: "Paris."},
		{Role: TurnUser, Text: "And of Italy?"}}}, "Rome.")
	require.NoError(t, err)
	assert.Equal(t, one.OutputTokens, three.OutputTokens)
	assert.Greater(t, three.InputTokens, one.InputTokens, "two more messages, two more frames")
}

// TestToolsOnTheWire: tools, the tool choice, an assistant turn's tool
// calls and a tool's result reach OpenAI, Anthropic and Gemini in their
// wire formats through the real langchaingo clients, and the model's tool
// calls come back in Response.ToolCalls, each with an id (Gemini gives
// none: the client makes one). Ollama's client would drop the tools: such
// a request is refused before it is sent.
func TestToolsOnTheWire(t *testing.T) {
	// Parameters as raw JSON: Gemini's client takes only a map, and the
	// client converts it.
	weather := llms.Tool{Type: "function", Function: &llms.FunctionDefinition{Name: "get_weather", Description: "Weather in a city.",
		Parameters: json.RawMessage(`{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}`)}}
	earlier := llms.ToolCall{ID: "call_1", Type: "function", FunctionCall: &llms.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}}
	turns := []Turn{
		{Role: TurnUser, Text: "Weather in Paris and Rome?"},
		{Role: TurnAssistant, ToolCalls: []llms.ToolCall{earlier}},
		{Role: TurnTool, ToolCallID: "call_1", ToolName: "get_weather", Text: "18C, sunny"},
	}
	for _, k := range wireKinds {
		t.Run(k.name, func(t *testing.T) {
			srv := k.new(providertest.Script{"m-1": {{ToolCalls: []providertest.ToolCall{{ID: "call_2", Name: "get_weather", Arguments: `{"city":"Rome"}`}}}}})
			defer srv.Close()
			cl := newWireClient(t, k, srv)
			req := Request{Model: "m-1", Turns: turns, Prompt: "(the conversation)", MaxTokens: 64, Tools: []llms.Tool{weather}}
			if k.kind != KindGoogleAI { // langchaingo's Gemini client has no tool choice
				req.ToolChoice = "auto"
			}
			resp, err := cl.Call(context.Background(), req)
			if k.kind == KindOllama {
				require.ErrorIs(t, err, ErrInvalidRequest)
				assert.Contains(t, err.Error(), "tool calling through Ollama is not supported")
				assert.False(t, MayHaveBilled(err))
				assert.Empty(t, srv.Calls(), "nothing was sent")
				return
			}
			require.NoError(t, err)
			require.Len(t, resp.ToolCalls, 1)
			got := resp.ToolCalls[0]
			if k.kind == KindGoogleAI {
				assert.Regexp(t, `^call_[0-9a-f]{24}$`, got.ID, "an id made for the call")
			} else {
				assert.Equal(t, "call_2", got.ID)
			}
			assert.Equal(t, "function", got.Type)
			require.NotNil(t, got.FunctionCall)
			assert.Equal(t, "get_weather", got.FunctionCall.Name)
			assert.JSONEq(t, `{"city":"Rome"}`, got.FunctionCall.Arguments)
			assert.Empty(t, resp.Text)
			if k.kind != KindGoogleAI { // Gemini says STOP
				assert.Contains(t, []string{"tool_calls", "tool_use"}, resp.FinishReason)
			}

			calls := srv.Calls()
			require.Len(t, calls, 1)
			c := calls[0]
			assert.Equal(t, []string{"get_weather"}, c.Tools)
			require.Len(t, c.Messages, 3, "%+v", c.Messages)
			assert.Equal(t, providertest.Message{Role: "user", Text: "Weather in Paris and Rome?"}, c.Messages[0])
			assert.Equal(t, "assistant", c.Messages[1].Role)
			require.Len(t, c.Messages[1].ToolCalls, 1)
			id := "call_1"
			if k.kind == KindGoogleAI { // a function response names the function
				id = "get_weather"
				assert.Regexp(t, `^ get_weather \{"city": ?"Paris"\}$`, c.Messages[1].ToolCalls[0])
			} else {
				assert.Regexp(t, `^call_1 get_weather \{"city": ?"Paris"\}$`, c.Messages[1].ToolCalls[0])
			}
			assert.Equal(t, "tool", c.Messages[2].Role)
			assert.Equal(t, id, c.Messages[2].ToolCallID)
			assert.Equal(t, "18C, sunny", c.Messages[2].Text)
		})
	}
}

// tinyPNG is a 2x1 PNG as a data: URL.
const tinyPNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAYAAAD0In+KAAAAEUlEQVR4nGP4z8DwHwQZYAwAXvUH+Xo2bDcAAAAASUVORK5CYII="

// TestImagesOnTheWire: a user turn's images reach each kind of provider
// through the real langchaingo clients: OpenAI as image_url parts (data:
// or remote URL, with detail), the others inline as base64. A remote URL
// is refused before anything is sent to a provider that cannot take one.
func TestImagesOnTheWire(t *testing.T) {
	const remote = "https://example.com/cat.jpg"
	for _, k := range wireKinds {
		t.Run(k.name, func(t *testing.T) {
			srv := k.new(providertest.Script{"m-1": {{Text: "A cat."}}})
			defer srv.Close()
			cl := newWireClient(t, k, srv)
			turns := []Turn{{Role: TurnUser, Text: "What is in the picture?", Images: []Image{{URL: tinyPNG, Detail: "low"}}}}
			resp, err := cl.Call(context.Background(), Request{Model: "m-1", Turns: turns, MaxTokens: 16})
			require.NoError(t, err)
			assert.Equal(t, "A cat.", resp.Text)
			calls := srv.Calls()
			require.Len(t, calls, 1)
			require.Len(t, calls[0].Messages, 1)
			m := calls[0].Messages[0]
			assert.Equal(t, "What is in the picture?", m.Text)
			require.Len(t, m.Images, 1)
			_, payload, _ := strings.Cut(tinyPNG, ",")
			switch k.kind {
			case KindOpenAI:
				assert.Equal(t, tinyPNG+"#detail=low", m.Images[0])
			case KindOllama: // Ollama takes base64 without a media type
				assert.Equal(t, "base64,"+payload, m.Images[0])
			default:
				assert.Equal(t, tinyPNG, m.Images[0])
			}

			turns[0].Images = []Image{{URL: remote, Detail: "high"}}
			_, err = cl.Call(context.Background(), Request{Model: "m-1", Turns: turns, MaxTokens: 16})
			if k.kind != KindOpenAI {
				require.ErrorIs(t, err, ErrInvalidRequest)
				assert.Contains(t, err.Error(), "base64 data: URLs only")
				assert.False(t, MayHaveBilled(err))
				assert.Len(t, srv.Calls(), 1, "nothing more was sent")
				return
			}
			require.NoError(t, err)
			calls = srv.Calls()
			require.Len(t, calls, 2)
			assert.Equal(t, []string{remote + "#detail=high"}, calls[1].Messages[0].Images)
		})
	}
}

func TestDataURL(t *testing.T) {
	for _, tc := range []struct {
		url, mt string
		ok      bool
	}{
		{tinyPNG, "image/png", true},
		{"data:image/jpeg;base64,/9j/", "image/jpeg", true},
		{"data:image/png,abc", "", false},        // not base64
		{"data:;base64,AAAA", "", false},         // no media type
		{"data:image/png;base64,%%%", "", false}, // bad base64
		{"https://example.com/a.png", "", false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			mt, data, ok := DataURL(tc.url)
			assert.Equal(t, tc.ok, ok)
			// The cheap check sees the shape only: bad base64 still looks inline.
			assert.Equal(t, tc.ok || tc.url == "data:image/png;base64,%%%", isDataURL(tc.url))
			assert.Equal(t, tc.mt, mt)
			if ok {
				assert.NotEmpty(t, data)
			}
		})
	}
}

// TestToolChoiceWhereDropped: a tool choice other than "auto" is refused,
// unsent, by the kinds whose langchaingo client drops it.
func TestToolChoiceWhereDropped(t *testing.T) {
	weather := llms.Tool{Type: "function", Function: &llms.FunctionDefinition{Name: "get_weather"}}
	for _, k := range wireKinds {
		for _, choice := range []any{"required", "none", llms.ToolChoice{Type: "function", Function: &llms.FunctionReference{Name: "get_weather"}}} {
			t.Run(fmt.Sprintf("%s/%v", k.name, choice), func(t *testing.T) {
				srv := k.new(providertest.Script{"m-1": {{ToolCalls: []providertest.ToolCall{{ID: "c", Name: "get_weather", Arguments: "{}"}}}}})
				defer srv.Close()
				cl := newWireClient(t, k, srv)
				_, err := cl.Call(context.Background(), Request{Model: "m-1", Prompt: "Weather?", MaxTokens: 16,
					Tools: []llms.Tool{weather}, ToolChoice: choice})
				switch k.kind {
				case KindOpenAI:
					require.NoError(t, err)
					require.Len(t, srv.Calls(), 1)
					assert.NotEmpty(t, srv.Calls()[0].ToolChoice, "sent as given")
				default:
					require.ErrorIs(t, err, ErrInvalidRequest)
					assert.Empty(t, srv.Calls(), "nothing was sent")
				}
			})
		}
	}
}

// TestSamplingOnTheWire: top_p, seed and the penalties reach the providers
// that take them, as given (a zero seed included), and no others.
func TestSamplingOnTheWire(t *testing.T) {
	topP, seed, freq, pres := 0.9, 0, 0.5, -0.25
	for _, k := range wireKinds {
		t.Run(k.name, func(t *testing.T) {
			srv := k.new(providertest.Script{"m-1": {{Text: "ok"}}})
			defer srv.Close()
			cl := newWireClient(t, k, srv)
			_, err := cl.Call(context.Background(), Request{Model: "m-1", Prompt: "Hi.", MaxTokens: 16,
				Sampling: Sampling{TopP: &topP, Seed: &seed, FrequencyPenalty: &freq, PresencePenalty: &pres}})
			require.NoError(t, err)
			calls := srv.Calls()
			require.Len(t, calls, 1)
			var body map[string]any
			require.NoError(t, json.Unmarshal(calls[0].Body, &body))
			switch k.kind {
			case KindOpenAI:
				assert.Equal(t, 0.9, body["top_p"])
				assert.Equal(t, 0.0, body["seed"], "a zero seed is sent")
				assert.Equal(t, 0.5, body["frequency_penalty"])
				assert.Equal(t, -0.25, body["presence_penalty"])
			case KindAnthropic:
				assert.Equal(t, 0.9, body["top_p"])
				assert.NotContains(t, body, "seed")
			case KindGoogleAI:
				gc, _ := body["generationConfig"].(map[string]any)
				require.NotNil(t, gc, string(calls[0].Body))
				assert.InDelta(t, 0.9, gc["topP"], 1e-6)
			case KindOllama:
				assert.NotContains(t, string(calls[0].Body), "seed")
			}
		})
	}
}

// TestJSONInstruction: where the wire cannot ask for JSON or carry the
// schema, the system prompt says it; OpenAI's protocol gets neither.
func TestJSONInstruction(t *testing.T) {
	schema := &JSONSchema{Name: "s", Schema: json.RawMessage(`{"type":"object","required":["team"]}`)}
	for _, k := range wireKinds {
		for _, tc := range []struct {
			name string
			req  Request
		}{
			{"json mode", Request{System: "Be brief.", JSON: true}},
			{"schema", Request{System: "Be brief.", JSONSchema: schema}},
		} {
			t.Run(k.name+"/"+tc.name, func(t *testing.T) {
				srv := k.new(providertest.Script{"m-1": {{Text: `{"team": "billing"}`}}})
				defer srv.Close()
				cl := newWireClient(t, k, srv)
				req := tc.req
				req.Model, req.Prompt, req.MaxTokens = "m-1", "Which team?", 16
				_, err := cl.Call(context.Background(), req)
				require.NoError(t, err)
				sys := srv.Calls()[0].System
				switch {
				case k.kind == KindOpenAI:
					assert.Equal(t, "Be brief.", sys, "OpenAI's protocol carries JSON mode and the schema itself")
				case req.JSONSchema != nil:
					assert.True(t, strings.HasPrefix(sys, "Be brief.\n\nAnswer with a single JSON value"), sys)
					assert.Contains(t, sys, `{"type":"object","required":["team"]}`)
				case k.kind == KindAnthropic:
					assert.Equal(t, "Be brief.\n\nAnswer with a single JSON object and nothing else, no prose and no code fence.", sys)
				default: // Gemini and Ollama have a JSON mode on the wire
					assert.Equal(t, "Be brief.", sys)
				}
			})
		}
	}
}

// TestCacheFirstTurn: Anthropic gets a cache breakpoint on the first user
// message (so the prefix up to it is cached); OpenAI caches by itself and
// gets no cache_control.
func TestCacheFirstTurn(t *testing.T) {
	turns := []Turn{{Role: TurnUser, Text: "Long stable context..."}, {Role: TurnAssistant, Text: "First answer."}, {Role: TurnUser, Text: "Continue."}}
	for _, k := range wireKinds[:2] {
		t.Run(k.name, func(t *testing.T) {
			srv := k.new(providertest.Script{"m-1": {{Text: "ok"}}})
			defer srv.Close()
			cl := newWireClient(t, k, srv)
			_, err := cl.Call(context.Background(), Request{Model: "m-1", System: "Be brief.", Turns: turns, MaxTokens: 16, CacheFirstTurn: true})
			require.NoError(t, err)
			c := srv.Calls()[0]
			require.Len(t, c.Messages, 3)
			if k.kind == KindAnthropic {
				assert.True(t, c.Messages[0].Cached, "the first user message is the breakpoint")
				assert.Equal(t, "Long stable context...", c.Messages[0].Text)
				assert.False(t, c.Messages[2].Cached)
			} else {
				assert.NotContains(t, string(c.Body), "cache_control")
			}
		})
	}
}

func TestCacheLastTurn(t *testing.T) {
	srv := providertest.NewAnthropicServer(providertest.Script{"m-1": {{Text: "ok"}}})
	defer srv.Close()
	cl := newWireClient(t, wireKinds[1], srv)
	turns := []Turn{{Role: TurnUser, Text: "Context."}, {Role: TurnAssistant, Text: "Noted."}, {Role: TurnUser, Text: "Now the question."}}
	_, err := cl.Call(context.Background(), Request{Model: "m-1", Turns: turns, MaxTokens: 16, CacheLastTurn: true})
	require.NoError(t, err)
	m := srv.Calls()[0].Messages
	require.Len(t, m, 3)
	assert.False(t, m[0].Cached)
	assert.True(t, m[2].Cached, "the last user message is the breakpoint")
}
