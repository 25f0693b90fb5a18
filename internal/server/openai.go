package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/provider"
)

// ChatRequest is the part of an OpenAI chat completions request the
// gateway uses. Other fields (user, logit_bias, parallel_tool_calls ...)
// are accepted and ignored.
type ChatRequest struct {
	Model               string          `json:"model"`
	Messages            []ChatMessage   `json:"messages"`
	MaxTokens           *int            `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int            `json:"max_completion_tokens,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	Seed                *int            `json:"seed,omitempty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty,omitempty"`
	PresencePenalty     *float64        `json:"presence_penalty,omitempty"`
	Logprobs            *bool           `json:"logprobs,omitempty"`
	TopLogprobs         *int            `json:"top_logprobs,omitempty"`
	Stop                json.RawMessage `json:"stop,omitempty"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options,omitempty"`
	ResponseFormat *struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Schema      json.RawMessage `json:"schema"`
			Strict      bool            `json:"strict"`
		} `json:"json_schema,omitempty"`
	} `json:"response_format,omitempty"`
	N          *int            `json:"n,omitempty"`
	Tools      json.RawMessage `json:"tools,omitempty"`
	Functions  json.RawMessage `json:"functions,omitempty"`
	ToolChoice json.RawMessage `json:"tool_choice,omitempty"`

	// Filled by DecodeChatRequest.
	stops      []string
	tools      []llms.Tool
	toolChoice any // "auto", "none", "required" or an llms.ToolChoice
}

// ChatMessage is one message: content is a string or an array of parts of
// which only "text" parts are accepted. An assistant message may carry
// tool_calls (its content is then often null); a tool message answers one
// of them by tool_call_id.
type ChatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name,omitempty"`
	ToolCalls  []ToolCall      `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`

	text   string
	images []imagePart
}

// ToolCall is a tool call in OpenAI's format: in an assistant message of
// a request, and in the answer.
type ToolCall struct {
	// Index is the call's place in a streamed delta (omitted elsewhere).
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id"`
	Type     string       `json:"type"` // "function"
	Function FunctionCall `json:"function"`
}

// FunctionCall is a tool call's function: its name and its arguments, a
// JSON object as a string.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Text returns the message's text once decoded.
func (m ChatMessage) Text() string { return m.text }

// Stops returns the stop sequences once decoded.
func (r *ChatRequest) Stops() []string { return r.stops }

// IncludeUsage reports whether a streamed answer ends with a usage chunk.
func (r *ChatRequest) IncludeUsage() bool {
	return r.StreamOptions != nil && r.StreamOptions.IncludeUsage
}

// DecodeChatRequest parses and validates a chat completions body. Every
// error names the field at fault and says what to send instead; it is
// meant for the client (HTTP 400).
func DecodeChatRequest(body []byte) (*ChatRequest, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("the request body is empty; send a JSON object with model and messages")
	}
	var r ChatRequest
	// A well-formed body is decoded in place; any other is decoded again
	// by a Decoder, whose errors say what is wrong, and where.
	if json.Unmarshal(body, &r) != nil {
		if err := decodeStrict(body, &r); err != nil {
			return nil, err
		}
	}
	return validateChatRequest(&r)
}

// decodeStrict decodes one JSON object, with errors for the client.
func decodeStrict(body []byte, r *ChatRequest) error {
	*r = ChatRequest{}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(r); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return fmt.Errorf("malformed JSON at byte %d: %v", se.Offset, se)
		case errors.As(err, &te):
			return fmt.Errorf("field %s: expected %s, got JSON %s", fieldName(te), te.Type, te.Value)
		}
		return fmt.Errorf("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("malformed JSON: data after the request object; send one JSON object")
	}
	return nil
}

// validateChatRequest checks a decoded request (see DecodeChatRequest).
func validateChatRequest(r *ChatRequest) (*ChatRequest, error) {
	if strings.TrimSpace(r.Model) == "" {
		return nil, errors.New(`field model is missing; give a catalog model id, a route name, or "costwise/auto" (GET /v1/models lists them)`)
	}
	if len(r.Messages) == 0 {
		return nil, errors.New("field messages is missing or empty; send at least one message with role and content")
	}
	hasText := false
	for i := range r.Messages {
		m := &r.Messages[i]
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool", "function":
		case "":
			return nil, fmt.Errorf("messages[%d].role is missing; use system, developer, user, assistant or tool", i)
		default:
			return nil, fmt.Errorf("messages[%d].role %q is unknown; use system, developer, user, assistant or tool", i, truncate(m.Role))
		}
		t, images, err := contentParts(m.Content)
		if err != nil {
			return nil, fmt.Errorf("messages[%d].content: %v", i, err)
		}
		if len(images) > 0 && m.Role != "user" {
			return nil, fmt.Errorf("messages[%d].content: images go in user messages only", i)
		}
		m.text, m.images = t, images
		if m.Role != "system" && m.Role != "developer" && (strings.TrimSpace(t) != "" || len(images) > 0) {
			hasText = true
		}
		if len(m.ToolCalls) > 0 && m.Role != "assistant" {
			return nil, fmt.Errorf("messages[%d].tool_calls: only an assistant message calls tools", i)
		}
		for j, tc := range m.ToolCalls {
			switch {
			case tc.ID == "":
				return nil, fmt.Errorf("messages[%d].tool_calls[%d].id is missing; give the id the model returned", i, j)
			case tc.Type != "" && tc.Type != "function":
				return nil, fmt.Errorf("messages[%d].tool_calls[%d].type %q is not supported; use function", i, j, truncate(tc.Type))
			case tc.Function.Name == "":
				return nil, fmt.Errorf("messages[%d].tool_calls[%d].function.name is missing", i, j)
			}
			hasText = true
		}
		if m.Role == "tool" && m.ToolCallID == "" {
			return nil, fmt.Errorf("messages[%d].tool_call_id is missing; a tool message answers the assistant's tool call with that id", i)
		}
	}
	if !hasText {
		return nil, errors.New("messages hold no user text; add a user message with non-empty content")
	}
	if r.MaxTokens != nil && *r.MaxTokens < 1 {
		return nil, fmt.Errorf("field max_tokens is %d; give a positive number or leave it out", *r.MaxTokens)
	}
	if r.MaxCompletionTokens != nil && *r.MaxCompletionTokens < 1 {
		return nil, fmt.Errorf("field max_completion_tokens is %d; give a positive number or leave it out", *r.MaxCompletionTokens)
	}
	if t := r.Temperature; t != nil && (math.IsNaN(*t) || *t < 0 || *t > 2) {
		return nil, fmt.Errorf("field temperature is %v; give a number between 0 and 2", *t)
	}
	if n := r.TopLogprobs; n != nil {
		switch {
		case *n < 0 || *n > 20:
			return nil, fmt.Errorf("field top_logprobs is %d; give 0 to 20", *n)
		case r.Logprobs == nil || !*r.Logprobs:
			return nil, errors.New("field top_logprobs needs logprobs: true")
		}
	}
	if p := r.TopP; p != nil && !(*p > 0 && *p <= 1) {
		return nil, fmt.Errorf("field top_p is %v; give a number above 0 and at most 1", *p)
	}
	for _, f := range []struct {
		name string
		v    *float64
	}{{"frequency_penalty", r.FrequencyPenalty}, {"presence_penalty", r.PresencePenalty}} {
		if f.v != nil && !(*f.v >= -2 && *f.v <= 2) {
			return nil, fmt.Errorf("field %s is %v; give a number between -2 and 2", f.name, *f.v)
		}
	}
	if r.N != nil && *r.N != 1 {
		return nil, fmt.Errorf("field n is %d; the gateway returns one choice per request, leave n out or set it to 1", *r.N)
	}
	if isSet(r.Functions) {
		return nil, errors.New("field functions is deprecated and not supported; send the functions as tools: [{\"type\": \"function\", \"function\": {...}}]")
	}
	if err := r.decodeTools(); err != nil {
		return nil, err
	}
	if rf := r.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text", "json_object":
		case "json_schema":
			js := rf.JSONSchema
			switch {
			case js == nil:
				return nil, errors.New(`response_format.json_schema is missing; give {"name": ..., "schema": {JSON schema}}`)
			case !toolNameOK(js.Name):
				return nil, fmt.Errorf("response_format.json_schema.name %q is not 1 to 64 letters, digits, _ or -", truncate(js.Name))
			case !isSet(js.Schema) || bytes.TrimSpace(js.Schema)[0] != '{':
				return nil, errors.New("response_format.json_schema.schema must be a JSON schema object")
			}
		default:
			return nil, fmt.Errorf("response_format.type %q is not supported; use text, json_object or json_schema", truncate(rf.Type))
		}
	}
	if isSet(r.Stop) {
		var one string
		var many []string
		switch {
		case json.Unmarshal(r.Stop, &one) == nil:
			r.stops = []string{one}
		case json.Unmarshal(r.Stop, &many) == nil:
			if len(many) > 4 {
				return nil, fmt.Errorf("field stop has %d sequences; give at most 4", len(many))
			}
			r.stops = many
		default:
			return nil, errors.New("field stop must be a string or an array of strings")
		}
	}
	return r, nil
}

// toolNameOK reports whether name is a valid function name: 1 to 64
// letters, digits, underscores and dashes (OpenAI's rule).
func toolNameOK(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

// decodeTools reads tools and tool_choice into r.tools and r.toolChoice.
func (r *ChatRequest) decodeTools() error {
	if isSet(r.Tools) {
		var tools []struct {
			Type     string `json:"type"`
			Function *struct {
				Name        string          `json:"name"`
				Description string          `json:"description"`
				Parameters  json.RawMessage `json:"parameters"`
				Strict      bool            `json:"strict"`
			} `json:"function"`
		}
		if err := json.Unmarshal(r.Tools, &tools); err != nil {
			return errors.New(`field tools must be an array of {"type": "function", "function": {"name": ..., "description": ..., "parameters": {JSON schema}}}`)
		}
		seen := map[string]bool{}
		for i, t := range tools {
			switch {
			case t.Type != "function":
				return fmt.Errorf("tools[%d].type %q is not supported; use function", i, truncate(t.Type))
			case t.Function == nil:
				return fmt.Errorf("tools[%d].function is missing", i)
			case !toolNameOK(t.Function.Name):
				return fmt.Errorf("tools[%d].function.name %q is not 1 to 64 letters, digits, _ or -", i, truncate(t.Function.Name))
			case seen[t.Function.Name]:
				return fmt.Errorf("tools[%d].function.name %q is given twice", i, t.Function.Name)
			}
			seen[t.Function.Name] = true
			def := &llms.FunctionDefinition{Name: t.Function.Name, Description: t.Function.Description, Strict: t.Function.Strict}
			if isSet(t.Function.Parameters) {
				// A map, as every langchaingo client takes it (Gemini's
				// takes nothing else).
				var params map[string]any
				if err := json.Unmarshal(t.Function.Parameters, &params); err != nil {
					return fmt.Errorf("tools[%d].function.parameters must be a JSON schema object", i)
				}
				def.Parameters = params
			}
			r.tools = append(r.tools, llms.Tool{Type: "function", Function: def})
		}
	}
	if !isSet(r.ToolChoice) {
		return nil
	}
	if len(r.tools) == 0 {
		return errors.New("field tool_choice is set but tools is empty; send tools, or leave tool_choice out")
	}
	var mode string
	if json.Unmarshal(r.ToolChoice, &mode) == nil {
		switch mode {
		case "auto", "none", "required":
			r.toolChoice = mode
			return nil
		}
		return fmt.Errorf("tool_choice %q is not supported; use auto, none, required or {\"type\": \"function\", \"function\": {\"name\": ...}}", truncate(mode))
	}
	var one struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(r.ToolChoice, &one) != nil || one.Type != "function" {
		return errors.New(`tool_choice must be auto, none, required or {"type": "function", "function": {"name": ...}}`)
	}
	if !slices.ContainsFunc(r.tools, func(t llms.Tool) bool { return t.Function.Name == one.Function.Name }) {
		return fmt.Errorf("tool_choice names function %q, which is not among tools", truncate(one.Function.Name))
	}
	r.toolChoice = llms.ToolChoice{Type: "function", Function: &llms.FunctionReference{Name: one.Function.Name}}
	return nil
}

func isSet(raw json.RawMessage) bool {
	s := bytes.TrimSpace(raw)
	return len(s) > 0 && !bytes.Equal(s, []byte("null"))
}

func fieldName(te *json.UnmarshalTypeError) string {
	if te.Field != "" {
		return te.Field
	}
	return "(the request)"
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// imagePart is an image_url part of a user message.
type imagePart struct{ url, detail string }

// contentParts returns the text and the images of a message's content: a
// string, null, or an array of {"type": "text", "text": ...} and
// {"type": "image_url", "image_url": {"url": ..., "detail": ...}} parts.
// An image's url is a base64 data: URL or an http(s) URL.
func contentParts(raw json.RawMessage) (string, []imagePart, error) {
	s := bytes.TrimSpace(raw)
	if len(s) == 0 || s[0] != '[' {
		t, err := contentText(raw)
		return t, nil, err
	}
	var parts []struct {
		Type     string  `json:"type"`
		Text     *string `json:"text"`
		ImageURL *struct {
			URL    string `json:"url"`
			Detail string `json:"detail"`
		} `json:"image_url"`
	}
	if err := json.Unmarshal(s, &parts); err != nil {
		return "", nil, errors.New(`must be a string or an array of {"type": "text", "text": ...} and {"type": "image_url", "image_url": {"url": ...}} parts`)
	}
	var b strings.Builder
	var images []imagePart
	for j, p := range parts {
		switch {
		case p.Type == "text" && p.Text != nil:
			b.WriteString(*p.Text)
		case p.Type == "image_url" && p.ImageURL != nil:
			u := p.ImageURL.URL
			switch {
			case strings.HasPrefix(u, "data:"):
				if _, _, ok := provider.DataURL(u); !ok {
					return "", nil, fmt.Errorf("part %d: image_url.url is a data: URL that is not data:image/...;base64,<data>", j)
				}
			case strings.HasPrefix(u, "https://"), strings.HasPrefix(u, "http://"):
			default:
				return "", nil, fmt.Errorf("part %d: image_url.url must be an http(s) URL or a base64 data: URL", j)
			}
			switch p.ImageURL.Detail {
			case "", "auto", "low", "high":
			default:
				return "", nil, fmt.Errorf("part %d: image_url.detail %q is not auto, low or high", j, truncate(p.ImageURL.Detail))
			}
			images = append(images, imagePart{url: u, detail: p.ImageURL.Detail})
		default:
			return "", nil, fmt.Errorf("part %d has type %q; only text and image_url parts are supported", j, truncate(p.Type))
		}
	}
	return b.String(), images, nil
}

// contentText returns the text of a message's content: a string, null, or
// an array of {"type": "text", "text": ...} parts.
func contentText(raw json.RawMessage) (string, error) {
	s := bytes.TrimSpace(raw)
	if len(s) == 0 || bytes.Equal(s, []byte("null")) {
		return "", nil
	}
	switch s[0] {
	case '"':
		var t string
		if err := json.Unmarshal(s, &t); err != nil {
			return "", err
		}
		return t, nil
	case '[':
		var parts []struct {
			Type string  `json:"type"`
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(s, &parts); err != nil {
			return "", errors.New("must be a string or an array of {\"type\": \"text\", \"text\": ...} parts")
		}
		var b strings.Builder
		for j, p := range parts {
			if p.Type != "text" || p.Text == nil {
				return "", fmt.Errorf("part %d has type %q; only text parts are supported", j, truncate(p.Type))
			}
			b.WriteString(*p.Text)
		}
		return b.String(), nil
	}
	return "", errors.New("must be a string or an array of {\"type\": \"text\", \"text\": ...} parts")
}

// messages converts the request's messages for the router: an
// assistant's tool calls as llms.ToolCall parts, a tool message as the
// llms.ToolCallResponse to its call (named after it).
func (r *ChatRequest) messages() []llms.MessageContent {
	out := make([]llms.MessageContent, 0, len(r.Messages))
	var names map[string]string // tool call id -> function name
	for _, m := range r.Messages {
		var role llms.ChatMessageType
		switch m.Role {
		case "system", "developer":
			role = llms.ChatMessageTypeSystem
		case "assistant":
			role = llms.ChatMessageTypeAI
		case "tool", "function":
			role = llms.ChatMessageTypeTool
		default:
			role = llms.ChatMessageTypeHuman
		}
		switch {
		case len(m.ToolCalls) > 0:
			mc := llms.MessageContent{Role: role}
			if m.text != "" {
				mc.Parts = append(mc.Parts, llms.TextContent{Text: m.text})
			}
			if names == nil {
				names = map[string]string{}
			}
			for _, tc := range m.ToolCalls {
				names[tc.ID] = tc.Function.Name
				mc.Parts = append(mc.Parts, llms.ToolCall{ID: tc.ID, Type: "function",
					FunctionCall: &llms.FunctionCall{Name: tc.Function.Name, Arguments: tc.Function.Arguments}})
			}
			out = append(out, mc)
		case m.Role == "tool":
			name := names[m.ToolCallID]
			if name == "" {
				name = m.Name
			}
			out = append(out, llms.MessageContent{Role: role,
				Parts: []llms.ContentPart{llms.ToolCallResponse{ToolCallID: m.ToolCallID, Name: name, Content: m.text}}})
		case len(m.images) > 0:
			mc := llms.MessageContent{Role: role}
			if m.text != "" {
				mc.Parts = append(mc.Parts, llms.TextContent{Text: m.text})
			}
			for _, img := range m.images {
				mc.Parts = append(mc.Parts, llms.ImageURLContent{URL: img.url, Detail: img.detail})
			}
			out = append(out, mc)
		default:
			out = append(out, llms.TextParts(role, m.text))
		}
	}
	return out
}

// callOptions converts the request's options for the router.
func (r *ChatRequest) callOptions() []llms.CallOption {
	var opts []llms.CallOption
	switch {
	case r.MaxCompletionTokens != nil:
		opts = append(opts, llms.WithMaxTokens(*r.MaxCompletionTokens))
	case r.MaxTokens != nil:
		opts = append(opts, llms.WithMaxTokens(*r.MaxTokens))
	}
	if r.Temperature != nil {
		opts = append(opts, llms.WithTemperature(*r.Temperature))
	}
	if r.Logprobs != nil && *r.Logprobs {
		top := 0
		if r.TopLogprobs != nil {
			top = *r.TopLogprobs
		}
		opts = append(opts, executor.WithLogProbs(top))
	}
	if r.TopP != nil || r.Seed != nil || r.FrequencyPenalty != nil || r.PresencePenalty != nil {
		opts = append(opts, executor.WithSampling(provider.Sampling{TopP: r.TopP, Seed: r.Seed,
			FrequencyPenalty: r.FrequencyPenalty, PresencePenalty: r.PresencePenalty}))
	}
	if len(r.stops) > 0 {
		opts = append(opts, llms.WithStopWords(r.stops))
	}
	if rf := r.ResponseFormat; rf != nil {
		switch rf.Type {
		case "json_object":
			opts = append(opts, llms.WithJSONMode())
		case "json_schema":
			opts = append(opts, executor.WithJSONSchema(rf.JSONSchema.Name, rf.JSONSchema.Schema, rf.JSONSchema.Strict))
		}
	}
	if len(r.tools) > 0 {
		opts = append(opts, llms.WithTools(r.tools))
	}
	if r.toolChoice != nil {
		opts = append(opts, llms.WithToolChoice(r.toolChoice))
	}
	return opts
}

// ChatResponse is an OpenAI chat.completion object.
type ChatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []ChatChoice `json:"choices"`
	Usage   *Usage       `json:"usage,omitempty"`
}

// appendCompletion appends r as JSON, byte for byte what encoding/json
// writes for it (without the trailing newline of an Encoder), for an
// answer as the gateway makes one: one choice with a message and a finish
// reason. Any other response is marshalled by encoding/json.
func appendCompletion(dst []byte, r *ChatResponse) []byte {
	if len(r.Choices) != 1 || r.Choices[0].Message == nil || r.Choices[0].Delta != nil || len(r.Choices[0].Message.ToolCalls) > 0 ||
		r.Choices[0].Logprobs != nil {
		b, _ := json.Marshal(r)
		return append(dst, b...)
	}
	c := r.Choices[0]
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, r.ID)
	dst = append(dst, `,"object":`...)
	dst = appendJSONString(dst, r.Object)
	dst = append(dst, `,"created":`...)
	dst = strconv.AppendInt(dst, r.Created, 10)
	dst = append(dst, `,"model":`...)
	dst = appendJSONString(dst, r.Model)
	dst = append(dst, `,"choices":[{"index":`...)
	dst = strconv.AppendInt(dst, int64(c.Index), 10)
	m := c.Message
	dst = append(dst, `,"message":{"role":`...)
	dst = appendJSONString(dst, m.Role)
	dst = append(dst, `,"content":`...)
	if m.Content == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONString(dst, *m.Content)
	}
	dst = append(dst, `},"finish_reason":`...)
	if c.FinishReason == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONString(dst, *c.FinishReason)
	}
	dst = append(dst, "}]"...)
	if u := r.Usage; u != nil {
		dst = append(dst, `,"usage":{"prompt_tokens":`...)
		dst = strconv.AppendInt(dst, int64(u.PromptTokens), 10)
		dst = append(dst, `,"completion_tokens":`...)
		dst = strconv.AppendInt(dst, int64(u.CompletionTokens), 10)
		dst = append(dst, `,"total_tokens":`...)
		dst = strconv.AppendInt(dst, int64(u.TotalTokens), 10)
		if d := u.PromptTokensDetails; d != nil {
			dst = append(dst, `,"prompt_tokens_details":{"cached_tokens":`...)
			dst = strconv.AppendInt(dst, int64(d.CachedTokens), 10)
			dst = append(dst, '}')
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string the way encoding/json
// writes it: ", \\ and control characters escaped (\b \f \n \r \t, the
// others as \u00XX), <, > and & as \u003c \u003e \u0026, U+2028 and
// U+2029 escaped, and each byte of invalid UTF-8 replaced by \ufffd.
func appendJSONString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// ChatChoice is one choice of a completion (Message) or a chunk (Delta).
type ChatChoice struct {
	Index        int               `json:"index"`
	Message      *AssistantMessage `json:"message,omitempty"`
	Delta        *AssistantDelta   `json:"delta,omitempty"`
	Logprobs     *ChoiceLogprobs   `json:"logprobs,omitempty"`
	FinishReason *string           `json:"finish_reason"`
}

// ChoiceLogprobs is a choice's token log-probabilities, as OpenAI writes
// them (logprobs: true in the request).
type ChoiceLogprobs struct {
	Content []TokenLogprob `json:"content"`
}

// TokenLogprob is one answer token: its log-probability, its UTF-8 bytes
// and its most likely alternatives.
type TokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float64      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []TopLogprob `json:"top_logprobs"`
}

// TopLogprob is one alternative token at a position.
type TopLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// choiceLogprobs converts the log-probabilities the router put in an
// answer's GenerationInfo (nil for none).
func choiceLogprobs(info map[string]any) *ChoiceLogprobs {
	toks, ok := info[executor.InfoLogProbs].([]provider.TokenLogProb)
	if !ok {
		return nil
	}
	bytesOf := func(s string) []int {
		out := make([]int, len(s))
		for i := 0; i < len(s); i++ {
			out[i] = int(s[i])
		}
		return out
	}
	out := &ChoiceLogprobs{Content: make([]TokenLogprob, 0, len(toks))}
	for _, t := range toks {
		tl := TokenLogprob{Token: t.Token, Logprob: t.LogProb, Bytes: bytesOf(t.Token), TopLogprobs: make([]TopLogprob, 0, len(t.Top))}
		for _, a := range t.Top {
			tl.TopLogprobs = append(tl.TopLogprobs, TopLogprob{Token: a.Token, Logprob: a.LogProb, Bytes: bytesOf(a.Token)})
		}
		out.Content = append(out.Content, tl)
	}
	return out
}

// AssistantMessage is a completion's message, as OpenAI writes it: the
// role and the content always, the content null when the model only
// called tools.
type AssistantMessage struct {
	Role      string     `json:"role"`
	Content   *string    `json:"content"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// AssistantDelta is a chunk's delta.
type AssistantDelta struct {
	Role      string     `json:"role,omitempty"`
	Content   *string    `json:"content,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// Usage is OpenAI's usage block. PromptTokensDetails, OpenAI's breakdown
// of the prompt, is sent when some of it was read from the provider's
// cache.
type Usage struct {
	PromptTokens        int                  `json:"prompt_tokens"`
	CompletionTokens    int                  `json:"completion_tokens"`
	TotalTokens         int                  `json:"total_tokens"`
	PromptTokensDetails *PromptTokensDetails `json:"prompt_tokens_details,omitempty"`
}

// PromptTokensDetails says how many prompt tokens came from the cache.
type PromptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// ChatChunk is an OpenAI chat.completion.chunk object.
type ChatChunk struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []ChatChoice `json:"choices"`
	Usage   *Usage       `json:"usage"`
}

// ErrorBody is OpenAI's error format.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of an ErrorBody.
type ErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// finishReason maps a provider's stop reason to OpenAI's vocabulary.
func finishReason(s string) string {
	switch strings.ToLower(s) {
	case "length", "max_tokens", "max_output_tokens":
		return "length"
	case "content_filter", "safety":
		return "content_filter"
	case "tool_calls", "tool_use":
		return "tool_calls"
	}
	return "stop"
}

// toolCalls converts the model's tool calls to OpenAI's format; indexed
// numbers each call's place, as a streamed delta does.
func toolCalls(calls []llms.ToolCall, indexed bool) []ToolCall {
	if len(calls) == 0 {
		return nil
	}
	out := make([]ToolCall, 0, len(calls))
	for i, c := range calls {
		tc := ToolCall{ID: c.ID, Type: "function"}
		if c.FunctionCall != nil {
			tc.Function = FunctionCall{Name: c.FunctionCall.Name, Arguments: c.FunctionCall.Arguments}
		}
		if indexed {
			tc.Index = &i
		}
		out = append(out, tc)
	}
	return out
}
