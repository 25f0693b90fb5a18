package executor_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/provider/providertest"
	"github.com/costwise/costwise/graph"
)

// schemaWorkflow: one node whose output must match a JSON schema.
const schemaWorkflow = `
name = "schema"

[[node]]
id = "extract"
task = "extraction"
prompt = "Which team handles: the invoice is wrong? Answer as JSON."
output_tokens = { mean = 20, p95 = 40, max = 50 }
min_quality = 0.75
models = ["openai/*"]
output_schema = { type = "object", required = ["team"], properties = { team = { type = "string", enum = ["billing", "support"] } } }
`

// TestRunOutputSchema: a node's output_schema implies JSON mode, reaches
// OpenAI as response_format json_schema, and an answer that does not match
// it escalates to the next rung.
func TestRunOutputSchema(t *testing.T) {
	blocks := strings.Split(itCatalog, "[[model]]")
	for i, b := range blocks {
		if strings.Contains(b, `provider = "openai"`) {
			blocks[i] = strings.Replace(b, "[model.quality]", "json_mode = true\n[model.quality]", 1)
		}
	}
	cat, err := catalog.LoadTOML("it-catalog.toml", []byte(strings.Join(blocks, "[[model]]")))
	require.NoError(t, err)
	plan := planWorkflow(t, cat, schemaWorkflow)
	require.Equal(t, []string{"openai/cheap", "openai/mid"}, ladderOf(t, plan, "extract"))
	assert.Contains(t, plan.Workflow.Nodes[0].Requires, graph.RequireJSON, "a schema implies JSON mode")

	res, oa, _, _ := runOnOpenAI(t, cat, schemaWorkflow, plan,
		providertest.Script{"cheap": {{Text: `{"team": "finance"}`}}, "mid": {{Text: `{"team": "billing"}`}}}, executor.Options{})
	require.Equal(t, executor.StatusSucceeded, res.Status, res.Error)
	n := nodeByID(t, res, "extract")
	assert.Equal(t, "openai/mid", n.Model)
	assert.JSONEq(t, `{"team": "billing"}`, n.Output)
	require.Len(t, n.Attempts, 2)
	assert.Equal(t, executor.OutcomeInvalid, n.Attempts[0].Outcome)
	assert.Contains(t, n.Attempts[0].Reason, "does not match the JSON schema: at '/team'")
	for _, c := range oa.Calls() {
		assert.True(t, c.JSON)
		assert.Contains(t, string(c.JSONSchema), `"name":"extract"`)
		assert.Contains(t, string(c.JSONSchema), `"enum":["billing","support"]`)
	}
}

func TestCompileRulesOutputSchema(t *testing.T) {
	src := strings.Replace(schemaWorkflow, `type = "object", required`, `type = 12, required`, 1)
	w, err := graph.Parse("schema.toml", []byte(src))
	require.NoError(t, err)
	_, err = executor.CompileRules(w)
	require.Error(t, err)
	assert.Equal(t, `schema.toml:11:1: node "extract": output_schema: does not compile: it is not a valid JSON schema: `+
		`at '/type': value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string'; at '/type': got number, want array`, err.Error())
}
