package graph

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOutputSchema(t *testing.T) {
	src := `name = "s"

[[node]]
id = "extract"
prompt = "Which team?"
output_schema = { type = "object", required = ["team"], properties = { team = { type = "string", enum = ["billing", "support"] } } }
`
	w, err := Parse("s.toml", []byte(src))
	require.NoError(t, err)
	n := w.Nodes[0]
	assert.JSONEq(t, `{"type": "object", "required": ["team"], "properties": {"team": {"type": "string", "enum": ["billing", "support"]}}}`,
		string(n.OutputSchema), "any JSON Schema keyword is kept: the executor compiles it")
	assert.Equal(t, []string{RequireJSON}, n.Requires, "a schema implies JSON mode")

	_, err = Parse("s.toml", []byte(`name = "s"

[[node]]
id = "extract"
prompt = "Which team?"
output_schema = "object"
`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `s.toml:6:1: node "extract": output_schema: is a string; give a table`)
}
