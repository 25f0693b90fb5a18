package executor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/executor/provider"
)

// MetaJSONSchema is the metadata key of WithJSONSchema's schema (a
// *provider.JSONSchema).
const MetaJSONSchema = "costwise_json_schema"

// WithJSONSchema asks the Router for a JSON answer that matches schema, a
// JSON Schema object (structured output, as OpenAI's response_format
// json_schema): JSON mode is implied, so models the catalog does not list
// with json_mode are not candidates; OpenAI-protocol providers get the
// schema as response_format json_schema (strict as given), the others JSON
// mode; every answer is checked against the schema, and one that does not
// match escalates, as one that fails a validate rule does. name names the
// schema for the provider ("response" when empty).
func WithJSONSchema(name string, schema json.RawMessage, strict bool) llms.CallOption {
	return withMeta(MetaJSONSchema, &provider.JSONSchema{Name: name, Schema: schema, Strict: strict})
}

// ErrInvalidSchema wraps the error of a call whose WithJSONSchema schema
// does not compile (a caller's mistake, not the router's).
var ErrInvalidSchema = errors.New("invalid JSON schema")

// answerSchema is a call's structured-output request: what the provider
// is sent, and the compiled schema its answers are checked against.
type answerSchema struct {
	spec     *provider.JSONSchema
	compiled *jsonschema.Schema
}

// schemaOf reads WithJSONSchema's metadata; nil when the call has none.
func schemaOf(meta map[string]any) (*answerSchema, error) {
	v, ok := meta[MetaJSONSchema]
	if !ok || v == nil {
		return nil, nil
	}
	spec, ok := v.(*provider.JSONSchema)
	if !ok || spec == nil {
		return nil, fmt.Errorf("router: metadata %s is a %T; set it with WithJSONSchema", MetaJSONSchema, v)
	}
	compiled, err := compileSchema(spec.Schema)
	if err != nil {
		return nil, fmt.Errorf("router: the JSON schema: %w (%w)", err, ErrInvalidSchema)
	}
	return &answerSchema{spec: spec, compiled: compiled}, nil
}

// noLoader refuses every external $ref: a request's schema must be whole,
// and the router reads no file or URL on a client's behalf.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("$ref %s: schemas that refer outside themselves are not supported", url)
}

// schemaURL is the name a request's schema is compiled under.
const schemaURL = "urn:costwise:request-schema"

// compileSchema compiles a JSON Schema object (draft 2020-12 unless it
// says otherwise).
func compileSchema(raw json.RawMessage) (*jsonschema.Schema, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("it must be a JSON object")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, err
	}
	s, err := c.Compile(schemaURL)
	var se *jsonschema.SchemaValidationError
	if errors.As(err, &se) {
		return nil, errors.New("it is not a valid JSON schema: " + strings.Join(validationLines(se.Err), "; "))
	}
	return s, err
}

// validationLines are the reasons of a validation error, one per place:
// its first line (which names the schema) and the lines that only say a
// combination failed are left out.
func validationLines(err error) []string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	var why []string
	for _, l := range lines[1:] {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- "))
		if l == "" || strings.HasSuffix(l, "' failed") {
			continue
		}
		why = append(why, l)
	}
	if len(why) == 0 {
		return lines
	}
	return why
}

// mismatch says why answer does not match the schema ("" when it does).
func (s *answerSchema) mismatch(answer string) string {
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(strings.TrimSpace(answer)))
	if err != nil {
		return "the answer is not valid JSON"
	}
	if err := s.compiled.Validate(inst); err != nil {
		// "at '/city': got number, want string", one per place.
		return "the answer does not match the JSON schema: " + strings.Join(validationLines(err), "; ")
	}
	return ""
}
