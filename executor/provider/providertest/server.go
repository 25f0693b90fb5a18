package providertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/estimator/tokens"
)

// Reply is one scripted answer. The zero Reply is a successful answer "ok"
// whose usage the server counts from the request.
type Reply struct {
	// Text is the assistant's answer; "" means "ok".
	Text string
	// Usage is the usage to report, as disjoint counts (InputTokens,
	// CacheReadTokens, CacheWriteTokens, OutputTokens, ReasoningTokens);
	// the server converts it to the wire format: OpenAI prompt_tokens =
	// Input+CacheRead+CacheWrite with cached_tokens = CacheRead and
	// completion_tokens = Output+Reasoning with reasoning_tokens =
	// Reasoning; Anthropic input_tokens = Input, cache_read_input_tokens,
	// cache_creation_input_tokens, output_tokens = Output+Reasoning.
	// nil: the server counts Input (the request's text) and Output (Text)
	// with o200k_base.
	Usage *catalog.Usage
	// NoUsage omits the usage block (OpenAI: also from the stream, even
	// when include_usage was asked; Anthropic streams report zeros).
	NoUsage bool
	// FinishReason; "" = "stop" (OpenAI) or "end_turn" (Anthropic).
	FinishReason string

	// Status, when not 0 or 200, answers with this HTTP status and an
	// error body in the provider's format.
	Status int
	// ErrorType, ErrorCode and ErrorMessage fill the error body; they
	// default from Status (e.g. 429 -> rate_limit_exceeded).
	ErrorType, ErrorCode, ErrorMessage string
	// RetryAfter is sent as the Retry-After header (with any Status).
	RetryAfter string

	// Delay waits this long before answering (stopping early when the
	// client goes away).
	Delay time.Duration
	// Hang never answers; the handler returns when the client gives up or
	// the server closes.
	Hang bool
	// Malformed answers 200 with a JSON body cut in the middle.
	Malformed bool
	// EmptyChoices answers 200 with "choices": [] (OpenAI) or
	// "content": [] (Anthropic).
	EmptyChoices bool
	// Reset reads the request and closes the connection without answering.
	Reset bool
	// StreamCut, for streamed requests, closes the connection after this
	// many text chunks, without the final events or end marker.
	StreamCut int
	// ChunkDelay, for streamed requests, waits this long before each text
	// chunk after the first (stopping early when the client goes away), so
	// that a test can see chunks reach its client before the answer ends.
	ChunkDelay time.Duration
	// RawBody, when set, is sent verbatim as a 200 application/json body.
	RawBody string
	// LogProbs are the answer's token log-probabilities, given (OpenAI,
	// non-streamed) when the request asks for logprobs: the answer is split
	// into len(LogProbs) tokens. With top_logprobs, each token's
	// alternatives are itself and, for a "yes"/"no" token, the other word
	// with the remaining probability.
	LogProbs []float64
	// ToolCalls, when set, answer with these tool calls (and Text, which
	// may then be empty): OpenAI message.tool_calls with finish_reason
	// "tool_calls", Anthropic tool_use blocks with stop_reason "tool_use".
	// Not streamed.
	ToolCalls []ToolCall
}

// answer is the reply's text: Text, or "ok" for a reply that calls no tool.
func (r Reply) answer() string {
	if r.Text == "" && len(r.ToolCalls) == 0 {
		return "ok"
	}
	return r.Text
}

// ToolCall is one scripted tool call: Arguments is a JSON object.
type ToolCall struct{ ID, Name, Arguments string }

// Script maps model names to the replies given in turn. When a model's
// replies are used up, its last reply repeats. Requests for a model not in
// the script get the provider's 404 "model not found" error.
type Script map[string][]Reply

// Call is one request the server received.
type Call struct {
	Model  string
	Key    string // API key presented (Authorization bearer or x-api-key)
	System string // system prompt
	Prompt string // the other messages' text, joined by "\n"
	// Messages are the messages other than the system prompt, in order,
	// with their roles as the wire gave them (Gemini's "model" read as
	// "assistant"; an Anthropic tool_result block as a "tool" message).
	Messages []Message
	// Tools are the names of the tools the request offered, and
	// ToolChoice its tool_choice as sent (OpenAI and Anthropic).
	Tools       []string
	ToolChoice  json.RawMessage
	MaxTokens   int // max_completion_tokens, max_tokens; 0 when absent
	Temperature *float64
	JSON        bool // response_format json_object / json_schema
	// JSONSchema is response_format's json_schema object when its type is
	// json_schema (OpenAI).
	JSONSchema   json.RawMessage
	Stream       bool
	IncludeUsage bool // OpenAI stream_options.include_usage
	LogProbs     bool // OpenAI logprobs
	TopLogProbs  int  // OpenAI top_logprobs
	Header       http.Header
	Body         []byte // raw request body
	Reply        Reply  // the scripted reply given
	// Usage is the usage the server reported, as disjoint counts; zero
	// when it reported none (see UsageReported) or failed.
	Usage         catalog.Usage
	UsageReported bool
}

// Message is one message of a request (Call.Messages). ToolCalls are an
// assistant message's calls as "id name arguments"; ToolCallID is the call
// a tool message answers.
type Message struct {
	Role, Text string
	ToolCalls  []string
	ToolCallID string
	// Images are the message's pictures as data: URLs (inline ones) or
	// their URLs, with "#detail=" and OpenAI's detail when it was sent.
	Images []string
	// Cached says a block of the message carried Anthropic's
	// cache_control (a cache breakpoint).
	Cached bool
}

// add appends a non-system message to the call.
func (c *Call) add(m Message) {
	if m.Text != "" {
		if c.Prompt != "" {
			c.Prompt += "\n"
		}
		c.Prompt += m.Text
	}
	c.Messages = append(c.Messages, m)
}

type format int

const (
	formatOpenAI format = iota
	formatAnthropic
)

// Server is a fake provider endpoint. Its methods are safe for concurrent
// use.
type Server struct {
	*httptest.Server
	format format
	done   chan struct{}
	once   sync.Once

	mu      sync.Mutex
	script  Script
	next    map[string]int
	calls   []Call
	keys    map[string]bool
	seq     int
	respond func(Call) (Reply, bool)
}

// NewOpenAIServer starts a fake OpenAI chat completions endpoint
// (POST {BaseURL}/chat/completions).
func NewOpenAIServer(script Script) *Server { return newServer(formatOpenAI, script) }

// NewAnthropicServer starts a fake Anthropic messages endpoint
// (POST {BaseURL}/messages).
func NewAnthropicServer(script Script) *Server { return newServer(formatAnthropic, script) }

func newServer(f format, script Script) *Server {
	return startServer(f, script, (*Server).serve)
}

// startServer starts a server of format f answering with handle, on a copy
// of script.
func startServer(f format, script Script, handle func(*Server, http.ResponseWriter, *http.Request)) *Server {
	s := &Server{format: f, done: make(chan struct{}), script: Script{}, next: map[string]int{}}
	for m, rs := range script {
		s.script[m] = append([]Reply(nil), rs...)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handle(s, w, r) }))
	return s
}

// BaseURL is the value for base_url: the server URL with "/v1".
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// Close unblocks hanging handlers and shuts the server down.
func (s *Server) Close() {
	s.once.Do(func() { close(s.done) })
	s.Server.CloseClientConnections()
	s.Server.Close()
}

// Push appends replies to a model's script.
func (s *Server) Push(model string, replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script[model] = append(s.script[model], replies...)
}

// AcceptKeys restricts the keys the server accepts; others get 401. With
// no call (or no keys) any non-empty key is accepted.
func (s *Server) AcceptKeys(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = map[string]bool{}
	for _, k := range keys {
		s.keys[k] = true
	}
}

// Calls returns the requests received so far, in arrival order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallsFor returns the requests received for one model.
func (s *Server) CallsFor(model string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Model == model {
			out = append(out, c)
		}
	}
	return out
}

// record appends a call and returns its index.
func (s *Server) record(c Call) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	return len(s.calls) - 1
}

func (s *Server) setUsage(i int, u catalog.Usage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[i].Usage = u
	s.calls[i].UsageReported = true
}

// reply pops the next reply for model; ok is false for an unknown model.
// Respond makes f choose the reply to each request from what it asked
// (the Call as recorded so far: model, messages, tools ...): a reply
// that f gives (ok) is used instead of the script's. For answers that
// depend on the request rather than on its order, e.g. a tool call when
// tools are offered and a text answer to the tool's result.
func (s *Server) Respond(f func(Call) (Reply, bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.respond = f
}

// replyFor is the reply to call: Respond's, else the script's.
func (s *Server) replyFor(call Call) (Reply, bool) {
	s.mu.Lock()
	f := s.respond
	s.mu.Unlock()
	if f != nil {
		if rep, ok := f(call); ok {
			return rep, true
		}
	}
	return s.reply(call.Model)
}

func (s *Server) reply(model string) (Reply, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs, ok := s.script[model]
	if !ok || len(rs) == 0 {
		return Reply{}, false
	}
	i := s.next[model]
	if i >= len(rs) {
		i = len(rs) - 1
	} else {
		s.next[model] = i + 1
	}
	return rs[i], true
}

func (s *Server) id(prefix string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return fmt.Sprintf("%s%024d", prefix, s.seq)
}

func (s *Server) keyAccepted(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return key != "" && (len(s.keys) == 0 || s.keys[key])
}

// wireRequest is the union of the request fields both APIs use.
type wireRequest struct {
	Model               string          `json:"model"`
	Messages            []wireMessage   `json:"messages"`
	System              json.RawMessage `json:"system"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	ResponseFormat *struct {
		Type       string          `json:"type"`
		JSONSchema json.RawMessage `json:"json_schema"`
	} `json:"response_format"`
	LogProbs    bool `json:"logprobs"`
	TopLogProbs int  `json:"top_logprobs"`
	Tools       []struct {
		Name     string `json:"name"` // Anthropic
		Function struct {
			Name string `json:"name"`
		} `json:"function"` // OpenAI
	} `json:"tools"`
	ToolChoice json.RawMessage `json:"tool_choice"`
}

type wireMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCallID string          `json:"tool_call_id"` // OpenAI role "tool"
	ToolCalls  []struct {
		ID       string `json:"id"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"` // OpenAI assistant
}

// wireBlock is an Anthropic content block of the kinds tool use needs.
type wireBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ID        string          `json:"id"`          // tool_use
	Name      string          `json:"name"`        // tool_use
	Input     json.RawMessage `json:"input"`       // tool_use
	ToolUseID string          `json:"tool_use_id"` // tool_result
	Content   json.RawMessage `json:"content"`     // tool_result: a string or text blocks
	ImageURL  *struct {
		URL    string `json:"url"`
		Detail string `json:"detail"`
	} `json:"image_url"` // OpenAI image_url part
	CacheControl json.RawMessage `json:"cache_control"` // Anthropic
	Source       *struct {
		Type      string `json:"type"`
		MediaType string `json:"media_type"`
		Data      string `json:"data"`
	} `json:"source"` // Anthropic image block
}

// messagesOf reads one wire message as the Messages it holds: OpenAI
// messages as they are; an Anthropic message's tool_use blocks as its
// calls and each tool_result block as a "tool" message of its own.
func messagesOf(m wireMessage) []Message {
	out := Message{Role: m.Role, Text: text(m.Content), ToolCallID: m.ToolCallID}
	for _, tc := range m.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, tc.ID+" "+tc.Function.Name+" "+tc.Function.Arguments)
	}
	var blocks []wireBlock
	if json.Unmarshal(m.Content, &blocks) != nil {
		return []Message{out}
	}
	var results []Message
	for _, b := range blocks {
		if len(b.CacheControl) > 0 && string(b.CacheControl) != "null" {
			out.Cached = true
		}
		switch b.Type {
		case "tool_use":
			out.ToolCalls = append(out.ToolCalls, b.ID+" "+b.Name+" "+string(b.Input))
		case "tool_result":
			results = append(results, Message{Role: "tool", Text: text(b.Content), ToolCallID: b.ToolUseID})
		case "image_url":
			if b.ImageURL != nil {
				u := b.ImageURL.URL
				if b.ImageURL.Detail != "" {
					u += "#detail=" + b.ImageURL.Detail
				}
				out.Images = append(out.Images, u)
			}
		case "image":
			if b.Source != nil && b.Source.Type == "base64" {
				out.Images = append(out.Images, "data:"+b.Source.MediaType+";base64,"+b.Source.Data)
			}
		}
	}
	if out.Text == "" && len(out.ToolCalls) == 0 && len(out.Images) == 0 && len(results) > 0 {
		return results
	}
	return append([]Message{out}, results...)
}

// text returns the text of a content value: a string or a list of
// {"type": "text", "text": ...} parts.
func text(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := "/v1/chat/completions"
	if s.format == formatAnthropic {
		path = "/v1/messages"
	}
	if r.Method != http.MethodPost || r.URL.Path != path {
		s.writeError(w, http.StatusNotFound, Reply{ErrorMessage: fmt.Sprintf("Unknown request URL: %s %s", r.Method, r.URL.Path)})
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, Reply{ErrorMessage: "could not read the request body"})
		return
	}
	var key string
	if s.format == formatOpenAI {
		key, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	} else {
		key = r.Header.Get("X-Api-Key")
	}
	var req wireRequest
	jsonErr := json.Unmarshal(body, &req)
	call := Call{Model: req.Model, Key: key, Header: r.Header.Clone(), Body: body,
		Temperature: req.Temperature, Stream: req.Stream}
	for _, m := range req.Messages {
		t := text(m.Content)
		switch m.Role {
		case "system", "developer":
			call.System += t
		default:
			for _, mm := range messagesOf(m) {
				call.add(mm)
			}
		}
	}
	if t := text(req.System); t != "" {
		call.System += t
	}
	switch {
	case req.MaxCompletionTokens != nil:
		call.MaxTokens = *req.MaxCompletionTokens
	case req.MaxTokens != nil:
		call.MaxTokens = *req.MaxTokens
	}
	call.JSON = req.ResponseFormat != nil && strings.HasPrefix(req.ResponseFormat.Type, "json")
	if req.ResponseFormat != nil && req.ResponseFormat.Type == "json_schema" {
		call.JSONSchema = req.ResponseFormat.JSONSchema
	}
	call.IncludeUsage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	call.LogProbs, call.TopLogProbs = req.LogProbs, req.TopLogProbs
	for _, t := range req.Tools {
		call.Tools = append(call.Tools, t.Name+t.Function.Name)
	}
	if len(req.ToolChoice) > 0 {
		call.ToolChoice = req.ToolChoice
	}

	// Checks in the order the real services make them.
	if key == "" {
		msg := "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
		if s.format == formatAnthropic {
			msg = "x-api-key header is required"
		}
		s.record(call)
		s.writeError(w, http.StatusUnauthorized, Reply{ErrorMessage: msg})
		return
	}
	if !s.keyAccepted(key) {
		s.record(call)
		s.writeError(w, http.StatusUnauthorized, Reply{ErrorCode: "invalid_api_key", ErrorMessage: "Incorrect API key provided: " + mask(key) + "."})
		return
	}
	if s.format == formatAnthropic && r.Header.Get("Anthropic-Version") == "" {
		s.record(call)
		s.writeError(w, http.StatusBadRequest, Reply{ErrorMessage: "anthropic-version: header is required"})
		return
	}
	if jsonErr != nil {
		s.record(call)
		s.writeError(w, http.StatusBadRequest, Reply{ErrorMessage: "We could not parse the JSON body of your request."})
		return
	}
	if req.Model == "" || len(req.Messages) == 0 {
		s.record(call)
		s.writeError(w, http.StatusBadRequest, Reply{ErrorMessage: "you must provide a model parameter and at least one message"})
		return
	}
	if s.format == formatAnthropic && req.MaxTokens == nil {
		s.record(call)
		s.writeError(w, http.StatusBadRequest, Reply{ErrorMessage: "max_tokens: Field required"})
		return
	}
	rep, ok := s.replyFor(call)
	call.Reply = rep
	i := s.record(call)
	if !ok {
		msg := fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", req.Model)
		if s.format == formatAnthropic {
			msg = "model: " + req.Model
		}
		s.writeError(w, http.StatusNotFound, Reply{ErrorCode: "model_not_found", ErrorMessage: msg})
		return
	}

	if rep.RetryAfter != "" {
		w.Header().Set("Retry-After", rep.RetryAfter)
	}
	if rep.Hang {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	if rep.Delay > 0 {
		t := time.NewTimer(rep.Delay)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.done:
			t.Stop()
			return
		case <-t.C:
		}
	}
	if rep.Reset {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		s.writeError(w, rep.Status, rep)
		return
	}
	if rep.RawBody != "" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, rep.RawBody)
		return
	}
	answer := rep.answer()
	usage := s.usage(rep, call, answer)
	if !rep.NoUsage && !rep.Malformed && !rep.EmptyChoices && rep.StreamCut == 0 {
		if !req.Stream || s.format == formatAnthropic || call.IncludeUsage {
			s.setUsage(i, usage)
		}
	}
	if rep.Malformed {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id": "chatcmpl-cut", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "he`)
		return
	}
	if s.format == formatOpenAI {
		if req.Stream {
			s.openAIStream(w, r, rep, req.Model, answer, usage, call.IncludeUsage)
		} else {
			s.openAIJSON(w, rep, req.Model, answer, usage, logProbsBlock(rep, answer, req.LogProbs, req.TopLogProbs))
		}
		return
	}
	if req.Stream {
		s.anthropicStream(w, r, rep, req.Model, answer, usage)
	} else {
		s.anthropicJSON(w, rep, req.Model, answer, usage)
	}
}

// usage is the reply's usage, or one counted from the request.
func (s *Server) usage(rep Reply, call Call, answer string) catalog.Usage {
	if rep.Usage != nil {
		return *rep.Usage
	}
	var msgs []tokens.Message
	if call.System != "" {
		msgs = append(msgs, tokens.Message{Role: "system", Content: call.System})
	}
	for _, m := range call.Messages {
		msgs = append(msgs, tokens.Message{Role: m.Role, Content: m.Text})
	}
	in, _ := tokens.CountChat(tokens.O200kBase, msgs)
	for _, tc := range rep.ToolCalls {
		answer += tc.Name + tc.Arguments
	}
	out, _ := tokens.Count(tokens.O200kBase, answer)
	return catalog.Usage{InputTokens: int64(in), OutputTokens: int64(out)}
}

func mask(key string) string {
	if len(key) <= 8 {
		return "***"
	}
	return key[:3] + "*****" + key[len(key)-4:]
}

// openAIUsage is OpenAI's usage object.
func openAIUsage(u catalog.Usage) map[string]any {
	prompt := u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens + u.CacheWrite1hTokens + u.AudioInputTokens
	completion := u.OutputTokens + u.ReasoningTokens + u.AudioOutputTokens
	return map[string]any{
		"prompt_tokens":     prompt,
		"completion_tokens": completion,
		"total_tokens":      prompt + completion,
		"prompt_tokens_details": map[string]any{
			"cached_tokens": u.CacheReadTokens,
			"audio_tokens":  u.AudioInputTokens,
		},
		"completion_tokens_details": map[string]any{
			"reasoning_tokens":           u.ReasoningTokens,
			"audio_tokens":               u.AudioOutputTokens,
			"accepted_prediction_tokens": 0,
			"rejected_prediction_tokens": 0,
		},
	}
}

func anthropicUsage(u catalog.Usage) map[string]any {
	return map[string]any{
		"input_tokens":                u.InputTokens,
		"cache_creation_input_tokens": u.CacheWriteTokens + u.CacheWrite1hTokens,
		"cache_read_input_tokens":     u.CacheReadTokens,
		"output_tokens":               u.OutputTokens + u.ReasoningTokens,
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// logProbsBlock is the choice's "logprobs" value: null unless the request
// asked for them and the reply scripts them.
func logProbsBlock(rep Reply, answer string, asked bool, top int) any {
	if !asked || len(rep.LogProbs) == 0 {
		return nil
	}
	content := make([]any, len(rep.LogProbs))
	for k, lp := range rep.LogProbs {
		lo, hi := k*len(answer)/len(rep.LogProbs), (k+1)*len(answer)/len(rep.LogProbs)
		tok := answer[lo:hi]
		alts := []any{}
		if top > 0 {
			alts = append(alts, map[string]any{"token": tok, "logprob": lp, "bytes": []byte(tok)})
			other := map[string]string{"yes": "no", "no": "yes"}[strings.ToLower(strings.TrimSpace(tok))]
			if other != "" && top > 1 && lp < 0 {
				alts = append(alts, map[string]any{"token": other, "logprob": math.Log1p(-math.Exp(lp)), "bytes": []byte(other)})
			}
		}
		content[k] = map[string]any{"token": tok, "logprob": lp, "bytes": []byte(tok), "top_logprobs": alts}
	}
	return map[string]any{"content": content, "refusal": nil}
}

func (s *Server) openAIJSON(w http.ResponseWriter, rep Reply, model, answer string, u catalog.Usage, logprobs any) {
	finish := rep.FinishReason
	if finish == "" {
		finish = "stop"
	}
	msg := map[string]any{"role": "assistant", "content": answer, "refusal": nil, "annotations": []any{}}
	if len(rep.ToolCalls) > 0 {
		if rep.FinishReason == "" {
			finish = "tool_calls"
		}
		if answer == "" {
			msg["content"] = nil
		}
		var calls []any
		for _, tc := range rep.ToolCalls {
			calls = append(calls, map[string]any{"id": tc.ID, "type": "function",
				"function": map[string]any{"name": tc.Name, "arguments": tc.Arguments}})
		}
		msg["tool_calls"] = calls
	}
	choices := []any{map[string]any{
		"index":         0,
		"message":       msg,
		"logprobs":      logprobs,
		"finish_reason": finish,
	}}
	if rep.EmptyChoices {
		choices = []any{}
	}
	body := map[string]any{
		"id":                 s.id("chatcmpl-"),
		"object":             "chat.completion",
		"created":            time.Now().Unix(),
		"model":              model,
		"choices":            choices,
		"service_tier":       "default",
		"system_fingerprint": "fp_providertest",
	}
	if !rep.NoUsage {
		body["usage"] = openAIUsage(u)
	}
	writeJSON(w, body)
}

// chunks splits text into stream deltas of a few bytes, on rune
// boundaries.
func chunks(text string) []string {
	var out []string
	for len(text) > 0 {
		n := min(len(text), 5)
		for n < len(text) && !utf8Start(text[n]) {
			n++
		}
		out = append(out, text[:n])
		text = text[n:]
	}
	return out
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func sse(w io.Writer, f http.Flusher, event string, v any) {
	var b bytes.Buffer
	if event != "" {
		b.WriteString("event: " + event + "\n")
	}
	data, _ := json.Marshal(v)
	b.WriteString("data: ")
	b.Write(data)
	b.WriteString("\n\n")
	_, _ = w.Write(b.Bytes())
	f.Flush()
}

// pause waits rep.ChunkDelay before text chunk i (none before the first);
// it reports false when the client went away or the server closed.
func (s *Server) pause(r *http.Request, rep Reply, i int) bool {
	if rep.ChunkDelay <= 0 || i == 0 {
		return true
	}
	t := time.NewTimer(rep.ChunkDelay)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		return false
	case <-s.done:
		return false
	case <-t.C:
		return true
	}
}

func (s *Server) openAIStream(w http.ResponseWriter, r *http.Request, rep Reply, model, answer string, u catalog.Usage, includeUsage bool) {
	f, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	id, created := s.id("chatcmpl-"), time.Now().Unix()
	chunk := func(delta map[string]any, finish any) map[string]any {
		c := map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
			"service_tier": "default", "system_fingerprint": "fp_providertest",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
		}
		if includeUsage {
			c["usage"] = nil
		}
		return c
	}
	sse(w, f, "", chunk(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil))
	for i, part := range chunks(answer) {
		if rep.StreamCut > 0 && i >= rep.StreamCut {
			panic(http.ErrAbortHandler) // drop the connection mid-stream
		}
		if !s.pause(r, rep, i) {
			return
		}
		sse(w, f, "", chunk(map[string]any{"content": part}, nil))
	}
	finish := rep.FinishReason
	if finish == "" {
		finish = "stop"
	}
	sse(w, f, "", chunk(map[string]any{}, finish))
	if includeUsage && !rep.NoUsage {
		sse(w, f, "", map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
			"service_tier": "default", "system_fingerprint": "fp_providertest",
			"choices": []any{}, "usage": openAIUsage(u),
		})
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	f.Flush()
}

func (s *Server) anthropicJSON(w http.ResponseWriter, rep Reply, model, answer string, u catalog.Usage) {
	finish := rep.FinishReason
	if finish == "" {
		finish = "end_turn"
	}
	content := []any{map[string]any{"type": "text", "text": answer}}
	if answer == "" {
		content = []any{}
	}
	for _, tc := range rep.ToolCalls {
		content = append(content, map[string]any{"type": "tool_use", "id": tc.ID, "name": tc.Name, "input": json.RawMessage(tc.Arguments)})
		if rep.FinishReason == "" {
			finish = "tool_use"
		}
	}
	if rep.EmptyChoices {
		content = []any{}
	}
	body := map[string]any{
		"id": s.id("msg_"), "type": "message", "role": "assistant", "model": model,
		"content": content, "stop_reason": finish, "stop_sequence": nil,
	}
	if !rep.NoUsage {
		body["usage"] = anthropicUsage(u)
	}
	writeJSON(w, body)
}

func (s *Server) anthropicStream(w http.ResponseWriter, r *http.Request, rep Reply, model, answer string, u catalog.Usage) {
	f, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	if rep.NoUsage {
		u = catalog.Usage{}
	}
	start := anthropicUsage(u)
	start["output_tokens"] = min(1, u.OutputTokens+u.ReasoningTokens)
	sse(w, f, "message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": s.id("msg_"), "type": "message", "role": "assistant", "model": model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": start,
	}})
	if !rep.EmptyChoices {
		sse(w, f, "content_block_start", map[string]any{"type": "content_block_start", "index": 0,
			"content_block": map[string]any{"type": "text", "text": ""}})
		sse(w, f, "ping", map[string]any{"type": "ping"})
		for i, part := range chunks(answer) {
			if rep.StreamCut > 0 && i >= rep.StreamCut {
				panic(http.ErrAbortHandler)
			}
			if !s.pause(r, rep, i) {
				return
			}
			sse(w, f, "content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
				"delta": map[string]any{"type": "text_delta", "text": part}})
		}
		sse(w, f, "content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	}
	finish := rep.FinishReason
	if finish == "" {
		finish = "end_turn"
	}
	sse(w, f, "message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": finish, "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": u.OutputTokens + u.ReasoningTokens}})
	sse(w, f, "message_stop", map[string]any{"type": "message_stop"})
}

// writeError answers with status and an error body in the provider's
// format, filling defaults from the status.
func (s *Server) writeError(w http.ResponseWriter, status int, rep Reply) {
	typ, code, msg := rep.ErrorType, rep.ErrorCode, rep.ErrorMessage
	if s.format == formatAnthropic {
		if typ == "" {
			typ = anthropicErrorType(status)
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}})
		return
	}
	if typ == "" || code == "" {
		dt, dc, dm := openAIErrorDefaults(status)
		if typ == "" {
			typ = dt
		}
		if code == "" {
			code = dc
		}
		if msg == "" {
			msg = dm
		}
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	var codeVal any
	if code != "" {
		codeVal = code
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": codeVal}})
}

func openAIErrorDefaults(status int) (typ, code, msg string) {
	switch {
	case status == http.StatusTooManyRequests:
		return "requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."
	case status == http.StatusUnauthorized:
		return "invalid_request_error", "invalid_api_key", "Incorrect API key provided."
	case status == http.StatusForbidden:
		return "invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory not supported"
	case status == http.StatusNotFound:
		return "invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."
	case status >= 500:
		return "server_error", "", "The server had an error while processing your request. Sorry about that!"
	default:
		return "invalid_request_error", "", "Invalid request (HTTP " + strconv.Itoa(status) + ")."
	}
}

func anthropicErrorType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 529:
		return "overloaded_error"
	default:
		return "api_error"
	}
}
