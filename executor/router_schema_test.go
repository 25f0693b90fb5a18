package executor_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/executor/provider"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// TestRouterJSONSchema: with WithJSONSchema only JSON-mode models are
// candidates, OpenAI gets the schema as response_format json_schema, an
// answer that does not match it escalates (recorded invalid, with why),
// and one that matches is the answer.
func TestRouterJSONSchema(t *testing.T) {
	schema := json.RawMessage(`{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}`)
	e := newRTEnv(t, providertest.Script{
		"nano": {{Text: `{"city": 3}`, Usage: u(50, 5)}},
		"mini": {{Text: `{"city": "Rome"}`, Usage: u(50, 6)}},
	}, providertest.Script{})
	r := e.router(t, executor.RouterOptions{MaxRetries: -1})

	plan, err := r.Prepare(human("Which city is the capital of Italy?"), executor.WithJSONSchema("capital", schema, true))
	require.NoError(t, err)
	assert.Equal(t, []string{"openai/nano", "openai/mini"}, ladderIDs(plan.Plan()), "JSON-mode models only")

	resp, err := r.GenerateContent(context.Background(), human("Which city is the capital of Italy?"), executor.WithJSONSchema("capital", schema, true))
	require.NoError(t, err)
	assert.JSONEq(t, `{"city": "Rome"}`, resp.Choices[0].Content)
	assert.Equal(t, "openai/mini", resp.Choices[0].GenerationInfo[executor.InfoModel])
	assert.Equal(t, 1, resp.Choices[0].GenerationInfo[executor.InfoEscalations])

	for _, c := range e.oa.Calls() {
		require.NotEmpty(t, c.JSONSchema, "the schema goes to OpenAI as response_format json_schema")
		var js struct {
			Name   string          `json:"name"`
			Strict bool            `json:"strict"`
			Schema json.RawMessage `json:"schema"`
		}
		require.NoError(t, json.Unmarshal(c.JSONSchema, &js))
		assert.Equal(t, "capital", js.Name)
		assert.True(t, js.Strict)
		assert.JSONEq(t, string(schema), string(js.Schema))
	}
	rec, err := e.l.Run(resp.Choices[0].GenerationInfo[executor.InfoRunID].(string))
	require.NoError(t, err)
	first := rec.Nodes[0].Attempts[0]
	assert.Equal(t, ledger.OutcomeInvalid, first.Outcome)
	assert.Contains(t, first.Reason, "does not match the JSON schema")
	assert.Contains(t, first.Reason, "does not match the JSON schema: at '/city': got number, want string")

	for _, tc := range []struct{ name, schema, want string }{
		{"not an object", `[1]`, "it must be a JSON object"},
		{"not a schema", `{"type": 12}`, "the JSON schema"},
		{"a file reference", `{"$ref": "file:///etc/passwd"}`, "refer outside themselves"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Prepare(human("hi"), executor.WithJSONSchema("s", json.RawMessage(tc.schema), false))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestRouterSampling: langchaingo's sampling options reach the provider
// (zero means unset there); WithSampling sets them exactly.
func TestRouterSampling(t *testing.T) {
	e := newRTEnvOK(t)
	r := e.router(t, executor.RouterOptions{})
	_, err := r.GenerateContent(context.Background(), human("Say hello."), llms.WithTopP(0.7), llms.WithSeed(3))
	require.NoError(t, err)
	zero := 0
	_, err = r.GenerateContent(context.Background(), human("Say hello."), executor.WithSampling(provider.Sampling{Seed: &zero}))
	require.NoError(t, err)
	calls := e.oa.CallsFor("nano")
	require.Len(t, calls, 2)
	var first, second map[string]any
	require.NoError(t, json.Unmarshal(calls[0].Body, &first))
	require.NoError(t, json.Unmarshal(calls[1].Body, &second))
	assert.Equal(t, 0.7, first["top_p"])
	assert.Equal(t, 3.0, first["seed"])
	assert.Equal(t, 0.0, second["seed"], "an explicit zero seed")
	assert.NotContains(t, second, "top_p")
}
