package executor_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// loopWorkflow: an Anthropic loop that resends its history and declares a
// cacheable prefix, and a single call with the same declaration.
const loopWorkflow = `
name = "loop"

[[node]]
id = "agent"
system = "You are a research agent."
prompt = "Find three facts about tea."
output_tokens = { mean = 20, p95 = 40, max = 50 }
models = ["anthropic/*"]
repeat = { mean = 2, max = 2, history = true }
cache_prefix_tokens = 10

[[node]]
id = "once"
depends_on = ["agent"]
prompt = "Summarise: {{node.agent.output}}"
output_tokens = { mean = 20, p95 = 40, max = 50 }
models = ["anthropic/*"]
cache_prefix_tokens = 10
`

// TestRunLoopTurnsAndCache: a loop with history sends its iterations as
// messages, and asks Anthropic to cache the prefix up to the first one; a
// single call does not (it would only pay the cache write).
func TestRunLoopTurnsAndCache(t *testing.T) {
	cat := loadCatalog(t)
	plan := planWorkflow(t, cat, loopWorkflow)
	res, _, an, _, _ := runOnFakes(t, cat, loopWorkflow, plan, providertest.Script{},
		providertest.Script{"haiku": {{Text: "Fact one."}, {Text: "Fact two."}, {Text: "Tea is old."}}}, executor.Options{})
	require.Equal(t, executor.StatusSucceeded, res.Status, res.Error)
	calls := an.CallsFor("haiku")
	require.Len(t, calls, 3)
	first, second, once := calls[0], calls[1], calls[2]
	require.Len(t, first.Messages, 1)
	assert.True(t, first.Messages[0].Cached, "the first message is the cache breakpoint")
	assert.Equal(t, []providertest.Message{
		{Role: "user", Text: "Find three facts about tea.", Cached: true},
		{Role: "assistant", Text: "Fact one."},
		{Role: "user", Text: "Continue."},
	}, second.Messages, "the second iteration resends the first as messages, same breakpoint")
	require.Len(t, once.Messages, 1)
	assert.False(t, once.Messages[0].Cached, "a single call asks for no cache")
}
