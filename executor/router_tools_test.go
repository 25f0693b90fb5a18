package executor_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// TestRouterTools: a call that offers tools goes to the cheapest model the
// catalog lists with tool calling, the model's tool calls come back in the
// choice (and in the ledger's output), and the next turn sends the call
// and the tool's result as such; a streamed call with tools is not
// streamed from the provider.
func TestRouterTools(t *testing.T) {
	call := providertest.ToolCall{ID: "call_7", Name: "get_weather", Arguments: `{"city":"Rome"}`}
	e := newRTEnv(t, providertest.Script{
		"mini": {{ToolCalls: []providertest.ToolCall{call}, Usage: u(80, 12)}, {Text: "It is 21C in Rome.", Usage: u(120, 8)}},
	}, providertest.Script{})
	// Only mini and sonnet call tools.
	src := strings.Replace(rtCatalog, "id = \"openai/mini\"\n", "id = \"openai/mini\"\ntools = true\n", 1)
	src = strings.Replace(src, "id = \"anthropic/sonnet\"\n", "id = \"anthropic/sonnet\"\ntools = true\n", 1)
	cat, err := catalog.LoadTOML("rt-catalog.toml", []byte(src))
	require.NoError(t, err)
	e.cat = cat
	r := e.router(t, executor.RouterOptions{})
	weather := llms.Tool{Type: "function", Function: &llms.FunctionDefinition{Name: "get_weather", Description: "Weather in a city.",
		Parameters: map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}}}
	ctx := context.Background()

	plan, err := r.Prepare(human("Weather in Rome?"), llms.WithTools([]llms.Tool{weather}))
	require.NoError(t, err)
	assert.Equal(t, []string{"openai/mini", "anthropic/sonnet"}, ladderIDs(plan.Plan()), "models without tool calling are left out")
	// A required tool choice cannot reach Anthropic through langchaingo:
	// its model is left out when the call is ranked, not tried.
	plan, err = r.Prepare(human("Weather in Rome?"), llms.WithTools([]llms.Tool{weather}), llms.WithToolChoice("required"))
	require.NoError(t, err)
	assert.Equal(t, []string{"openai/mini"}, ladderIDs(plan.Plan()))
	i := slices.IndexFunc(plan.Plan().Rejected, func(x executor.RouteRejection) bool { return x.Model == "anthropic/sonnet" })
	require.GreaterOrEqual(t, i, 0)
	assert.Equal(t, "provider_kind", plan.Plan().Rejected[i].Reason)
	assert.Contains(t, plan.Plan().Rejected[i].Detail, `tool choice "required" cannot be sent to anthropic providers`)

	var streamed []string
	resp, err := r.GenerateContent(ctx, human("Weather in Rome?"), llms.WithTools([]llms.Tool{weather}), llms.WithToolChoice("auto"),
		llms.WithStreamingFunc(func(_ context.Context, c []byte) error { streamed = append(streamed, string(c)); return nil }))
	require.NoError(t, err)
	ch := resp.Choices[0]
	require.Len(t, ch.ToolCalls, 1)
	assert.Equal(t, "call_7", ch.ToolCalls[0].ID)
	assert.Equal(t, "get_weather", ch.ToolCalls[0].FunctionCall.Name)
	assert.JSONEq(t, `{"city":"Rome"}`, ch.ToolCalls[0].FunctionCall.Arguments)
	assert.Equal(t, "tool_calls", ch.StopReason)
	assert.Empty(t, ch.Content)
	assert.Empty(t, streamed, "no text to stream")
	assert.Equal(t, "openai/mini", ch.GenerationInfo[executor.InfoModel])
	first := e.oa.CallsFor("mini")
	require.Len(t, first, 1)
	assert.False(t, first[0].Stream, "a call with tools is not streamed from the provider")
	assert.Equal(t, []string{"get_weather"}, first[0].Tools)
	assert.JSONEq(t, `"auto"`, string(first[0].ToolChoice))
	rec, err := e.l.Run(ch.GenerationInfo[executor.InfoRunID].(string))
	require.NoError(t, err)
	assert.Contains(t, rec.Nodes[0].Output, `"get_weather"`, "the ledger keeps the tool call")

	resp, err = r.GenerateContent(ctx, []llms.MessageContent{
		llms.TextParts(llms.ChatMessageTypeHuman, "Weather in Rome?"),
		{Role: llms.ChatMessageTypeAI, Parts: []llms.ContentPart{ch.ToolCalls[0]}},
		{Role: llms.ChatMessageTypeTool, Parts: []llms.ContentPart{llms.ToolCallResponse{ToolCallID: "call_7", Name: "get_weather", Content: "21C"}}},
	}, llms.WithTools([]llms.Tool{weather}))
	require.NoError(t, err)
	assert.Equal(t, "It is 21C in Rome.", resp.Choices[0].Content)
	assert.Empty(t, resp.Choices[0].ToolCalls)
	second := e.oa.CallsFor("mini")
	require.Len(t, second, 2)
	msgs := second[1].Messages
	require.Len(t, msgs, 3)
	assert.Equal(t, "assistant", msgs[1].Role)
	assert.Equal(t, []string{`call_7 get_weather {"city":"Rome"}`}, msgs[1].ToolCalls)
	assert.Equal(t, providertest.Message{Role: "tool", Text: "21C", ToolCallID: "call_7"}, msgs[2])
}
