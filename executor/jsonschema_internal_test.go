package executor

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzJSONSchema: any schema a client sends either compiles or is refused
// with an error, and any answer is then judged without a panic.
func FuzzJSONSchema(f *testing.F) {
	for _, s := range [][2]string{
		{`{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}`, `{"city": "Rome"}`},
		{`{"type": "object", "additionalProperties": false}`, `{"x": 1}`},
		{`{"$schema": "http://json-schema.org/draft-07/schema#", "type": "array", "items": {"type": "integer"}}`, `[1, "a"]`},
		{`{"$ref": "#/$defs/a", "$defs": {"a": {"type": "string", "pattern": "^a+$"}}}`, `"aaa"`},
		{`{"$ref": "https://example.com/s.json"}`, `1`},
		{`{"type": 12}`, `{}`}, {`[1]`, `null`}, {`{`, `{`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, schema, answer string) {
		compiled, err := compileSchema(json.RawMessage(schema))
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		_ = (&answerSchema{compiled: compiled}).mismatch(answer)
	})
}
