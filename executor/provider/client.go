package provider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/anthropic"
	"github.com/tmc/langchaingo/llms/googleai"
	"github.com/tmc/langchaingo/llms/ollama"
	"github.com/tmc/langchaingo/llms/openai"
	"google.golang.org/api/option"

	"github.com/costwise/costwise/estimator/catalog"
)

// Request is one model call.
type Request struct {
	Model  string // upstream model name (catalog.Model.APIName)
	System string // system prompt; "" = none
	Prompt string // the user message
	// Turns, when set, is a conversation sent as its messages, in order,
	// in place of Prompt (System stays apart): user and assistant turns,
	// the last normally the user's. Prompt then holds the same
	// conversation as one text; it is what the simulator counts.
	Turns     []Turn
	MaxTokens int  // output cap; 0 = provider default (Anthropic: 2048)
	JSON      bool // ask for a JSON object (OpenAI response_format, Gemini MIME type, Ollama format)
	// Temperature; nil leaves it to langchaingo, which sends 0 to OpenAI
	// and Anthropic (and omits it for OpenAI reasoning models).
	Temperature *float64
	// Stream receives the answer as server-sent events and collects the
	// text (OpenAI and Anthropic SSE, Gemini's streamGenerateContent;
	// Ollama always streams NDJSON). A stream that is cut, or ends without
	// its end marker ([DONE], message_stop, Ollama's "done": true), fails
	// with ErrTransient.
	Stream bool
	// OnChunk, when set and Stream is true, receives each piece of text as
	// it arrives (besides its being collected into Response.Text). An
	// error it returns aborts the call. It runs on the calling goroutine.
	OnChunk func(ctx context.Context, chunk []byte) error
	// LogProbs asks for the answer's token log-probabilities (OpenAI chat
	// completions protocol, not streamed; other kinds return none), with
	// TopLogProbs alternatives per token (0..20).
	LogProbs    bool
	TopLogProbs int
	// Tools are the functions the model may call instead of answering
	// (OpenAI-protocol, Anthropic and Gemini tool calling through
	// langchaingo; refused for Ollama, whose langchaingo client drops
	// them); ToolChoice is "auto", "none", "required" or an
	// llms.ToolChoice naming one (nil: the provider's default; only
	// OpenAI-protocol providers take one other than "auto": langchaingo's
	// Anthropic and Gemini clients drop it, so such a call is refused
	// there before it is sent).
	Tools      []llms.Tool
	ToolChoice any
	// Sampling are the caller's sampling settings beyond Temperature, each
	// sent where the provider takes it (nil: the provider's default).
	Sampling Sampling
	// CacheFirstTurn asks an Anthropic provider to cache the prompt up to
	// the end of the first user message (cache_control on it), so that
	// calls resending that prefix (a loop's later iterations) read it from
	// the cache; OpenAI-protocol providers cache long prefixes by
	// themselves, and the other kinds ignore it.
	CacheFirstTurn bool
	// CacheLastTurn asks an Anthropic provider to cache the whole prompt,
	// up to the end of the last user message: a conversation's next turn
	// then reads it from the cache (Anthropic finds the earlier breakpoint
	// by itself). Ignored by the other kinds, like CacheFirstTurn.
	CacheLastTurn bool
	// JSONSchema, when set, asks for a JSON answer that matches it (JSON is
	// then implied): sent as response_format json_schema to
	// OpenAI-protocol providers, as JSON mode to the others. The provider
	// does not check the answer against it; the caller does.
	JSONSchema *JSONSchema
}

// Sampling holds OpenAI's sampling parameters. OpenAI-protocol providers
// get all four; Anthropic and Gemini take top_p (they have no seed or
// penalties), Ollama none of them through langchaingo.
type Sampling struct {
	TopP                              *float64
	Seed                              *int
	FrequencyPenalty, PresencePenalty *float64
}

// JSONSchema is a structured-output request, as OpenAI's response_format
// json_schema names it.
type JSONSchema struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema"`
	Strict      bool            `json:"strict,omitempty"`
}

// Turn is one message of a conversation (Request.Turns).
type Turn struct {
	Role string // TurnUser, TurnAssistant or TurnTool
	Text string
	// ToolCalls are the calls an assistant turn made (its Text may then
	// be empty).
	ToolCalls []llms.ToolCall
	// ToolCallID and ToolName say which call a TurnTool turn answers.
	ToolCallID, ToolName string
	// Images are a user turn's pictures, after its text.
	Images []Image
}

// Image is a picture in a user turn: a data: URL (base64), which every
// kind of provider takes, or an http(s) URL, which only OpenAI-protocol
// providers take (the provider fetches it; costwise never does).
type Image struct {
	URL    string
	Detail string // OpenAI's detail: "", "auto", "low" or "high"
}

// isDataURL reports whether url is a base64 data: URL, without decoding
// it (Refuses runs for every candidate model of a call).
func isDataURL(url string) bool {
	meta, _, ok := strings.Cut(url, ",")
	return ok && strings.HasPrefix(meta, "data:") && strings.HasSuffix(meta, ";base64") && len(meta) > len("data:;base64")
}

// DataURL decodes a base64 data: URL: its media type and bytes; ok is
// false for any other URL or a malformed one.
func DataURL(url string) (mediaType string, data []byte, ok bool) {
	rest, found := strings.CutPrefix(url, "data:")
	if !found {
		return "", nil, false
	}
	meta, payload, found := strings.Cut(rest, ",")
	mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
	if !found || !isBase64 || mediaType == "" {
		return "", nil, false
	}
	data, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return "", nil, false
	}
	return mediaType, data, true
}

// The roles of a Turn.
const (
	TurnUser      = "user"
	TurnAssistant = "assistant"
	TurnTool      = "tool" // a tool's result, answering an assistant turn's call
)

// turns is the conversation a request sends: Turns, or Prompt as one user
// message.
func (r Request) turns() []Turn {
	if len(r.Turns) > 0 {
		return r.Turns
	}
	return []Turn{{Role: TurnUser, Text: r.Prompt}}
}

// message is the turn as langchaingo sends it.
func (t Turn) message(kind Kind) (llms.MessageContent, error) {
	switch t.Role {
	case TurnAssistant:
		m := llms.MessageContent{Role: llms.ChatMessageTypeAI}
		if t.Text != "" || len(t.ToolCalls) == 0 {
			m.Parts = append(m.Parts, llms.TextContent{Text: t.Text})
		}
		for _, tc := range t.ToolCalls {
			m.Parts = append(m.Parts, tc)
		}
		return m, nil
	case TurnTool:
		return llms.MessageContent{Role: llms.ChatMessageTypeTool,
			Parts: []llms.ContentPart{llms.ToolCallResponse{ToolCallID: t.ToolCallID, Name: t.ToolName, Content: t.Text}}}, nil
	}
	m := llms.TextParts(llms.ChatMessageTypeHuman, t.Text)
	if t.Text == "" && len(t.Images) > 0 {
		m.Parts = nil
	}
	for i, img := range t.Images {
		if kind == KindOpenAI {
			m.Parts = append(m.Parts, llms.ImageURLContent{URL: img.URL, Detail: img.Detail})
			continue
		}
		mt, data, ok := DataURL(img.URL)
		if !ok {
			// langchaingo's Gemini client would download the URL itself,
			// the others cannot send it: costwise fetches nothing for a
			// caller.
			return m, fmt.Errorf("image %d: a %s provider takes images as base64 data: URLs only; send the image inline, or route it to an OpenAI-protocol provider", i+1, kind)
		}
		m.Parts = append(m.Parts, llms.BinaryContent{MIMEType: mt, Data: data})
	}
	return m, nil
}

// nameCalls gives each tool call without an id one (Gemini's calls have
// none, and OpenAI clients answer a call by its id), and the type
// "function" when it has none.
func nameCalls(calls []llms.ToolCall) {
	for i := range calls {
		if calls[i].ID == "" {
			var b [12]byte
			_, _ = rand.Read(b[:])
			calls[i].ID = "call_" + hex.EncodeToString(b[:])
		}
		if calls[i].Type == "" {
			calls[i].Type = "function"
		}
	}
}

// mapParameters returns tools whose parameters are map[string]any, the
// only form langchaingo's Gemini client takes (a json.RawMessage or a
// struct is re-read through JSON).
func mapParameters(tools []llms.Tool) ([]llms.Tool, error) {
	out := make([]llms.Tool, len(tools))
	for i, t := range tools {
		out[i] = t
		if t.Function == nil || t.Function.Parameters == nil {
			continue
		}
		if _, ok := t.Function.Parameters.(map[string]any); ok {
			continue
		}
		b, err := json.Marshal(t.Function.Parameters)
		if err != nil {
			return nil, fmt.Errorf("tool %q: parameters: %w", t.Function.Name, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("tool %q: parameters must be a JSON object: %w", t.Function.Name, err)
		}
		f := *t.Function
		f.Parameters = m
		out[i].Function = &f
	}
	return out, nil
}

// Refuses says why a provider of kind k cannot take req as langchaingo
// would send it (nil when it can), so that the call fails before it is
// sent rather than reach the model without what it asked for:
//   - pictures by URL go to OpenAI-protocol providers only (the others take
//     data: URLs; costwise fetches no URL for a caller);
//   - a tool choice other than "auto" is dropped by langchaingo's Anthropic
//     and Gemini clients: the model would be free not to call the tool;
//   - langchaingo's Ollama client sends neither tools nor tool messages.
func (k Kind) Refuses(req Request) error {
	if k != KindOpenAI {
		for _, t := range req.Turns {
			for i, img := range t.Images {
				if !isDataURL(img.URL) {
					return fmt.Errorf("image %d: %s providers take images as base64 data: URLs only; send the image inline, or route it to an OpenAI-protocol provider", i+1, k)
				}
			}
		}
	}
	if (k == KindAnthropic || k == KindGoogleAI) && req.ToolChoice != nil && req.ToolChoice != "auto" {
		return fmt.Errorf("tool choice %v cannot be sent to %s providers (the langchaingo client drops it); route the call to an OpenAI-protocol provider, or leave the choice to the model", toolChoiceString(req.ToolChoice), k)
	}
	if k == KindOllama && (len(req.Tools) > 0 || hasToolTurns(req.Turns)) {
		return errors.New("tool calling through Ollama is not supported (the langchaingo client drops tools); route tool calls to another provider")
	}
	return nil
}

// KindOf returns the kind of the named provider, when it is configured.
func (c *Config) KindOf(provider string) (Kind, bool) {
	pc, ok := c.Providers[provider]
	return pc.Kind, ok
}

// toolChoiceString names a tool choice in an error.
func toolChoiceString(c any) string {
	switch c := c.(type) {
	case string:
		return strconv.Quote(c)
	case llms.ToolChoice:
		if c.Function != nil {
			return "function " + strconv.Quote(c.Function.Name)
		}
		return strconv.Quote(c.Type)
	}
	return fmt.Sprint(c)
}

// withJSONInstruction is the system prompt a provider of kind k gets: req's,
// followed, where the wire cannot ask for it, by an instruction to answer
// in JSON (langchaingo's Anthropic client ignores JSON mode) and to match
// the JSON schema (only OpenAI's protocol carries one). The answer is
// checked by the caller either way; the instruction saves paying for
// answers that would be set aside.
func withJSONInstruction(req Request, k Kind) string {
	var add string
	switch {
	case req.JSONSchema != nil && k != KindOpenAI:
		add = "Answer with a single JSON value and nothing else, no prose and no code fence. It must match this JSON Schema:\n" + string(req.JSONSchema.Schema)
	case req.JSON && k == KindAnthropic:
		add = "Answer with a single JSON object and nothing else, no prose and no code fence."
	default:
		return req.System
	}
	if req.System == "" {
		return add
	}
	return req.System + "\n\n" + add
}

// hasToolTurns reports whether a conversation holds tool calls or results.
func hasToolTurns(turns []Turn) bool {
	for _, t := range turns {
		if t.Role == TurnTool || len(t.ToolCalls) > 0 {
			return true
		}
	}
	return false
}

// toolsSize is about how many bytes the tools' definitions add to a
// prompt (their JSON).
func toolsSize(tools []llms.Tool) int {
	if len(tools) == 0 {
		return 0
	}
	b, _ := json.Marshal(tools)
	return len(b)
}

// TokenLogProb is one answer token's log-probability and its most likely
// alternatives.
type TokenLogProb struct {
	Token   string
	LogProb float64
	Top     []TokenAlt
}

// TokenAlt is one alternative token at a position.
type TokenAlt struct {
	Token   string
	LogProb float64
}

// Response is a successful call's result.
type Response struct {
	Text  string
	Usage catalog.Usage // disjoint counts, ready for catalog pricing
	// UsageReported is false when the provider reported no usage and
	// Usage was counted locally with o200k_base: its cost is an estimate.
	UsageReported bool
	FinishReason  string        // as the provider says it: "stop", "length", "end_turn", "max_tokens", "STOP" ...
	Latency       time.Duration // from sending the request to the last byte
	KeyEnv        string        // environment variable of the key used ("" for keyless providers)
	// LogProbs are the answer's tokens with their log-probabilities when
	// Request.LogProbs asked and the provider returned them; nil otherwise.
	LogProbs []TokenLogProb
	// ToolCalls are the tools the model called (Request.Tools), in order;
	// Text may then be empty.
	ToolCalls []llms.ToolCall
}

// Client calls one configured provider. Implementations are safe for
// concurrent use. Every error is an [*Error].
type Client interface {
	Call(ctx context.Context, req Request) (Response, error)
}

// Client returns the cached client of the named provider, creating it on
// first use. It fails when the provider is not configured or one of its key
// variables is unset (the error names the variable, never a value).
func (c *Config) Client(provider string) (Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[provider]; ok {
		return cl, nil
	}
	pc, ok := c.Providers[provider]
	if !ok {
		return nil, &Error{Provider: provider, Kind: ErrInvalidRequest,
			Err: fmt.Errorf("provider %q is not configured in %s; add a [providers.%s] table", provider, c.Path, provider)}
	}
	if pc.Name == "" {
		pc.Name = provider
	}
	cl, err := newClient(pc)
	if err != nil {
		return nil, err
	}
	if c.clients == nil {
		c.clients = map[string]*client{}
	}
	c.clients[provider] = cl
	return cl, nil
}

// Close releases the cached clients' resources (Google AI connections).
func (c *Config) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, cl := range c.clients {
		for _, s := range cl.ring.slots {
			errs = append(errs, s.close())
		}
	}
	c.clients = nil
	return errors.Join(errs...)
}

// NewClient returns an uncached client for pc (Config.Client caches them).
func NewClient(pc ProviderConfig) (Client, error) { return newClient(pc) }

// client implements Client for every kind through langchaingo.
type client struct {
	pc       ProviderConfig
	hc       *http.Client
	base     http.RoundTripper
	ring     keyRing
	rpm, tpm *bucket
	now      func() time.Time
}

func newClient(pc ProviderConfig) (*client, error) {
	if !validKind(pc.Kind) {
		return nil, &Error{Provider: pc.Name, Kind: ErrInvalidRequest, Err: fmt.Errorf("unknown kind %q; use one of %s", pc.Kind, kindList())}
	}
	if len(pc.APIKeyEnv) == 0 && pc.Kind != KindOllama {
		return nil, &Error{Provider: pc.Name, Kind: ErrAuth, Err: fmt.Errorf("no api_key_env configured for provider %q", pc.Name)}
	}
	for _, env := range pc.APIKeyEnv {
		if os.Getenv(env) == "" {
			return nil, &Error{Provider: pc.Name, Kind: ErrAuth, Err: missingKey(pc.Name, env)}
		}
	}
	if pc.Timeout <= 0 {
		pc.Timeout = DefaultTimeout
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 32
	cl := &client{
		pc:   pc,
		base: base,
		hc:   &http.Client{Timeout: backstop(pc.Timeout), Transport: &transport{base: base}},
		now:  time.Now,
	}
	envs := pc.APIKeyEnv
	if len(envs) == 0 {
		envs = []string{""}
	}
	for _, e := range envs {
		cl.ring.slots = append(cl.ring.slots, &keySlot{env: e})
	}
	if pc.RPM > 0 {
		cl.rpm = newBucket(pc.RPM, cl.now)
	}
	if pc.TPM > 0 {
		cl.tpm = newBucket(pc.TPM, cl.now)
	}
	return cl, nil
}

// backstop is the http.Client timeout: the call's context carries the
// real timeout (so that expiry is recognised as ErrTimeout); the client's
// own, a little later, only guards against a context that is ignored.
func backstop(d time.Duration) time.Duration { return d + d/10 + time.Second }

func missingKey(provider, env string) error {
	return fmt.Errorf("provider %q: environment variable %s is not set; export it with the API key", provider, env)
}

// build creates the langchaingo model for one key.
func (cl *client) build(key string) (llms.Model, func() error, error) {
	pc := cl.pc
	switch pc.Kind {
	case KindOpenAI:
		baseURL := pc.BaseURL
		if baseURL == "" {
			baseURL = "https://api.openai.com/v1"
		}
		m, err := openai.New(openai.WithToken(key), openai.WithBaseURL(baseURL), openai.WithHTTPClient(cl.hc), openai.WithOrganization(""))
		return m, nil, err
	case KindAnthropic:
		opts := []anthropic.Option{anthropic.WithToken(key), anthropic.WithHTTPClient(cl.hc)}
		if pc.BaseURL != "" {
			opts = append(opts, anthropic.WithBaseURL(pc.BaseURL))
		}
		m, err := anthropic.New(opts...)
		return m, nil, err
	case KindGoogleAI:
		// genai's REST clients ignore the API key option when given an
		// http.Client, so the transport adds the key header itself; the
		// key option is still needed by genai's (gRPC) cache client.
		hc := &http.Client{Timeout: backstop(pc.Timeout), Transport: &transport{base: cl.base, headerName: "x-goog-api-key", headerValue: key}}
		opts := []googleai.Option{googleai.WithAPIKey(key), googleai.WithHTTPClient(hc)}
		if pc.BaseURL != "" {
			endpoint := pc.BaseURL
			opts = append(opts, func(o *googleai.Options) {
				o.ClientOptions = append(o.ClientOptions, option.WithEndpoint(endpoint))
			})
		}
		g, err := googleai.New(context.Background(), opts...)
		if err != nil {
			return nil, nil, err
		}
		return g, g.Close, nil
	case KindOllama:
		opts := []ollama.Option{ollama.WithHTTPClient(cl.hc)}
		if pc.BaseURL != "" {
			opts = append(opts, ollama.WithServerURL(pc.BaseURL))
		}
		m, err := ollama.New(opts...)
		return m, nil, err
	}
	return nil, nil, fmt.Errorf("unknown kind %q", pc.Kind)
}

// Call runs req, rotating keys after a 429, 401 or 403 (requests that were
// surely not billed) and honouring the client-side rpm/tpm limits.
func (cl *client) Call(ctx context.Context, req Request) (Response, error) {
	if strings.TrimSpace(req.Model) == "" {
		return Response{}, cl.fail(req, ErrInvalidRequest, errors.New("request has no model name"))
	}
	if req.MaxTokens < 0 {
		return Response{}, cl.fail(req, ErrInvalidRequest, fmt.Errorf("max tokens %d is negative", req.MaxTokens))
	}
	if err := cl.pc.Kind.Refuses(req); err != nil {
		return Response{}, cl.fail(req, ErrInvalidRequest, err)
	}
	var reserved float64
	if cl.tpm != nil {
		reserved = float64(estimateTokens(req))
		if err := cl.tpm.take(ctx, reserved); err != nil {
			return Response{}, cl.abandoned(req, err)
		}
	}
	var last error
	for range len(cl.ring.slots) {
		slot, shortest, allRetired := cl.ring.pick(cl.now())
		if slot == nil {
			if last != nil && (allRetired || errors.Is(last, ErrRateLimited)) {
				// Surface the provider's own answer, with the ring's
				// shortest rest when every key rests.
				var e *Error
				if errors.As(last, &e) && !allRetired {
					e.RetryAfter = shortest
				}
				break
			}
			cl.refund(reserved)
			if allRetired {
				return Response{}, cl.fail(req, ErrAuth, fmt.Errorf("every key of provider %q was rejected by the provider (401/403) earlier in this process", cl.pc.Name))
			}
			e := cl.fail(req, ErrRateLimited, fmt.Errorf("all %d keys of provider %q are resting after rate limits", len(cl.ring.slots), cl.pc.Name))
			e.RetryAfter = shortest
			return Response{}, e
		}
		if cl.rpm != nil {
			if err := cl.rpm.take(ctx, 1); err != nil {
				cl.refund(reserved)
				return Response{}, cl.abandoned(req, err)
			}
		}
		resp, err := cl.callOnce(ctx, slot, req)
		if err == nil {
			if cl.tpm != nil {
				u := resp.Usage
				cl.tpm.adjust(float64(u.PromptTokens()+u.OutputTokens+u.ReasoningTokens+u.AudioOutputTokens) - reserved)
			}
			return resp, nil
		}
		last = err
		var e *Error
		if !errors.As(err, &e) {
			break
		}
		switch {
		case e.Kind == ErrRateLimited && e.Status == http.StatusTooManyRequests:
			d := e.RetryAfter
			if d <= 0 {
				d = defaultRest
			}
			slot.rest(cl.now().Add(d))
			continue
		case e.Kind == ErrAuth && e.Status != 0:
			slot.retire()
			continue
		}
		break
	}
	if !MayHaveBilled(last) {
		cl.refund(reserved)
	}
	var e *Error
	if errors.As(last, &e) && e.Kind == ErrRateLimited && e.Status == http.StatusTooManyRequests {
		// Every key was tried and rests: wait for the first to wake.
		// The key that just failed rests exactly the provider's
		// Retry-After; keep that value rather than its remainder.
		if d := cl.ring.shortestRest(cl.now()); d > 0 && (e.RetryAfter == 0 || d < e.RetryAfter-50*time.Millisecond) {
			e.RetryAfter = d
		}
	}
	return Response{}, last
}

func (cl *client) refund(reserved float64) {
	if cl.tpm != nil && reserved > 0 {
		cl.tpm.adjust(-reserved)
	}
}

// estimateTokens is what a request reserves from the tpm budget: its
// prompt (about 4 bytes a token) plus its output cap.
func estimateTokens(req Request) int {
	size := len(req.System)
	for _, t := range req.turns() {
		size += len(t.Text) + 16         // and the message's framing
		size += 4 * 1600 * len(t.Images) // about the most a provider bills for one image
		for _, tc := range t.ToolCalls {
			if tc.FunctionCall != nil {
				size += len(tc.FunctionCall.Name) + len(tc.FunctionCall.Arguments)
			}
		}
	}
	size += toolsSize(req.Tools)
	n := size/4 + 8
	if req.MaxTokens > 0 {
		n += req.MaxTokens
	} else {
		n += 1024
	}
	return n
}

func (cl *client) fail(req Request, kind, cause error) *Error {
	return &Error{Provider: cl.pc.Name, Model: req.Model, Kind: kind, Err: cause}
}

// abandoned wraps the caller's context error (nothing was sent).
func (cl *client) abandoned(req Request, err error) *Error {
	e := cl.fail(req, nil, err)
	if errors.Is(err, context.DeadlineExceeded) {
		e.Kind = ErrTimeout
	}
	return e
}

// callOnce makes one HTTP call with one key.
func (cl *client) callOnce(ctx context.Context, slot *keySlot, req Request) (Response, error) {
	var key string
	if slot.env != "" {
		key = os.Getenv(slot.env)
		if key == "" {
			return Response{}, cl.fail(req, ErrAuth, missingKey(cl.pc.Name, slot.env))
		}
	}
	model, err := slot.modelFor(key, cl.build)
	if err != nil {
		return Response{}, cl.fail(req, ErrInvalidRequest, redact(fmt.Errorf("cannot create the %s client: %w", cl.pc.Kind, err), key))
	}

	obs := &observation{}
	if req.LogProbs && !req.Stream && cl.pc.Kind == KindOpenAI {
		obs.logprobs, obs.topLogprobs = true, min(max(req.TopLogProbs, 0), 20)
	}
	if req.JSONSchema != nil && cl.pc.Kind == KindOpenAI {
		js := *req.JSONSchema
		if js.Name == "" {
			js.Name = "response" // OpenAI requires one
		}
		rf, err := json.Marshal(struct {
			Type       string      `json:"type"`
			JSONSchema *JSONSchema `json:"json_schema"`
		}{"json_schema", &js})
		if err != nil {
			return Response{}, cl.fail(req, ErrInvalidRequest, fmt.Errorf("encoding the JSON schema: %w", err))
		}
		if obs.fields == nil {
			obs.fields = map[string]json.RawMessage{}
		}
		obs.fields["response_format"] = rf
	}
	if req.Stream {
		switch cl.pc.Kind {
		case KindOpenAI:
			obs.endMarker = []byte("[DONE]")
		case KindAnthropic:
			obs.endMarker = []byte("message_stop")
		}
	}
	switch cl.pc.Kind {
	case KindOllama:
		// Ollama always answers NDJSON, and langchaingo takes any end of
		// the body, cut or not, for the end of the answer: only the last
		// line says "done": true.
		obs.endMarker = []byte(`"done":true`)
	case KindGoogleAI:
		// Usage is read from the body (geminiWireUsage): Google's Go
		// client keeps the first chunk's usage of a stream.
		obs.capture = true
	}
	callCtx, cancel := context.WithTimeout(ctx, cl.pc.Timeout)
	defer cancel()
	callCtx = withObservation(callCtx, obs)

	opts := []llms.CallOption{llms.WithModel(req.Model)}
	if req.MaxTokens > 0 {
		opts = append(opts, llms.WithMaxTokens(req.MaxTokens))
	}
	if req.Temperature != nil {
		opts = append(opts, llms.WithTemperature(*req.Temperature))
	}
	sp := req.Sampling
	if sp.TopP != nil && (cl.pc.Kind == KindAnthropic || cl.pc.Kind == KindGoogleAI) {
		opts = append(opts, llms.WithTopP(*sp.TopP))
	}
	if cl.pc.Kind == KindOpenAI {
		// Set on the wire as given: langchaingo's OpenAI client sends no
		// top_p, and drops a zero seed or penalty.
		set := func(name, value string) {
			if obs.fields == nil {
				obs.fields = map[string]json.RawMessage{}
			}
			obs.fields[name] = json.RawMessage(value)
		}
		num := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
		if sp.TopP != nil {
			set("top_p", num(*sp.TopP))
		}
		if sp.Seed != nil {
			set("seed", strconv.Itoa(*sp.Seed))
		}
		if sp.FrequencyPenalty != nil {
			set("frequency_penalty", num(*sp.FrequencyPenalty))
		}
		if sp.PresencePenalty != nil {
			set("presence_penalty", num(*sp.PresencePenalty))
		}
	}
	if req.JSON || req.JSONSchema != nil {
		opts = append(opts, llms.WithJSONMode())
	}
	var streamed strings.Builder
	var chunkErr error // OnChunk's error (langchaingo's googleai client drops it)
	if req.Stream {
		onChunk := req.OnChunk
		opts = append(opts, llms.WithStreamingFunc(func(ctx context.Context, chunk []byte) error {
			streamed.Write(chunk)
			if onChunk != nil && len(chunk) > 0 {
				if err := onChunk(ctx, chunk); err != nil {
					chunkErr = err
					return err
				}
			}
			return nil
		}))
	}
	turns := req.turns()
	msgs := make([]llms.MessageContent, 0, len(turns)+1)
	if system := withJSONInstruction(req, cl.pc.Kind); system != "" {
		msgs = append(msgs, llms.TextParts(llms.ChatMessageTypeSystem, system))
	}
	cacheAt := -1 // the message whose first text part is a cache breakpoint
	for _, t := range turns {
		m, err := t.message(cl.pc.Kind)
		if err != nil {
			return Response{}, cl.fail(req, ErrInvalidRequest, err)
		}
		if cl.pc.Kind == KindAnthropic && m.Role == llms.ChatMessageTypeHuman &&
			((req.CacheFirstTurn && cacheAt < 0) || req.CacheLastTurn) {
			cacheAt = len(msgs)
		}
		msgs = append(msgs, m)
	}
	if cacheAt >= 0 {
		for j, p := range msgs[cacheAt].Parts {
			if tc, ok := p.(llms.TextContent); ok {
				msgs[cacheAt].Parts[j] = llms.CachedContent{ContentPart: tc, CacheControl: &llms.CacheControl{Type: "ephemeral"}}
				break
			}
		}
	}
	if len(req.Tools) > 0 {
		tools := req.Tools
		if cl.pc.Kind == KindGoogleAI {
			if tools, err = mapParameters(tools); err != nil {
				return Response{}, cl.fail(req, ErrInvalidRequest, err)
			}
		}
		opts = append(opts, llms.WithTools(tools))
	}
	if req.ToolChoice != nil {
		opts = append(opts, llms.WithToolChoice(req.ToolChoice))
	}

	start := time.Now()
	out, err := model.GenerateContent(callCtx, msgs, opts...)
	latency := time.Since(start)
	snap := obs.snapshot()
	if err == nil && chunkErr != nil {
		err = chunkErr
	}
	if err == nil && len(obs.endMarker) > 0 && !snap.sawEnd {
		err = errors.New("stream ended before its end marker")
	}
	if err == nil && (out == nil || len(out.Choices) == 0) {
		err = errors.New("empty response")
	}
	if err != nil {
		e := cl.classify(ctx, callCtx, snap, err, req, key)
		return Response{}, e
	}

	resp := Response{Latency: latency, KeyEnv: slot.env}
	var b strings.Builder
	var info map[string]any
	for _, ch := range out.Choices {
		b.WriteString(ch.Content)
		resp.ToolCalls = append(resp.ToolCalls, ch.ToolCalls...)
		if resp.FinishReason == "" {
			resp.FinishReason = ch.StopReason
		}
		if info == nil && ch.GenerationInfo != nil {
			info = ch.GenerationInfo
		}
	}
	resp.Text = b.String()
	nameCalls(resp.ToolCalls)
	if req.Stream && resp.Text == "" {
		resp.Text = streamed.String()
	}
	if obs.logprobs {
		resp.LogProbs = parseLogProbs(obs.capturedBody())
	}
	resp.Usage, resp.UsageReported = NormalizeUsage(cl.pc.Kind, info)
	if obs.capture {
		if u, ok := geminiWireUsage(obs.capturedBody()); ok {
			resp.Usage, resp.UsageReported = u, true
		}
	}
	if !resp.UsageReported {
		u, err := countLocally(req, resp.Text+toolCallsText(resp.ToolCalls))
		if err != nil {
			return Response{}, cl.fail(req, ErrInvalidRequest, fmt.Errorf("counting tokens locally: %w", err))
		}
		resp.Usage = u
	}
	return resp, nil
}

// classify turns a failed call into an *Error from what the transport saw,
// falling back to langchaingo's error text only when the wire told nothing.
func (cl *client) classify(parent, callCtx context.Context, o wireFacts, err error, req Request, key string) *Error {
	e := &Error{Provider: cl.pc.Name, Model: req.Model, Status: o.status, Err: redact(err, key)}
	switch {
	case parent.Err() != nil:
		// The caller gave up; not the provider's fault.
		e.Kind = nil
		if errors.Is(parent.Err(), context.DeadlineExceeded) {
			e.Kind = ErrTimeout
		}
		e.Err = parent.Err()
		e.MayHaveBilled = o.wrote
		e.Status = 0
	case o.status >= 300:
		ae := parseErrorBody(o.errBody)
		e.Kind, e.MayHaveBilled = statusKind(o.status, ae)
		if e.Kind == ErrRateLimited || e.Kind == ErrTransient {
			e.RetryAfter = parseRetryAfter(o.header, cl.now())
		}
		msg := ae.Message
		if msg == "" {
			msg = strings.TrimSpace(string(o.errBody))
			if len(msg) > 300 {
				msg = msg[:300] + "..."
			}
		}
		if ae.Code != "" {
			msg = ae.Code + ": " + msg
		}
		e.Err = redact(errors.New(msg), key)
	case o.rtErr != nil:
		e.Status = 0
		e.MayHaveBilled = o.wrote
		e.Err = redact(o.rtErr, key)
		if timedOut(callCtx, o.rtErr) {
			e.Kind = ErrTimeout
			e.Err = redact(fmt.Errorf("no answer within timeout_s = %v: %w", cl.pc.Timeout.Seconds(), o.rtErr), key)
		} else {
			e.Kind = ErrTransient
			if isRefused(o.rtErr) {
				e.MayHaveBilled = false
			}
		}
	case o.status >= 200 && o.status < 300:
		// The provider accepted the request; the answer was unusable.
		e.Status = 0
		e.MayHaveBilled = true
		if timedOut(callCtx, o.bodyErr) {
			e.Kind = ErrTimeout
		} else {
			e.Kind = ErrTransient
		}
		if o.bodyErr != nil {
			e.Err = redact(fmt.Errorf("reading the response: %w", o.bodyErr), key)
		} else {
			e.Err = redact(fmt.Errorf("malformed or empty response: %w", err), key)
		}
	case callCtx.Err() != nil:
		e.Kind = ErrTimeout
		e.MayHaveBilled = o.wrote
	case o.attempts == 0:
		// Failed before anything was sent: the request could not be built.
		e.Kind = ErrInvalidRequest
	default:
		e.Kind = ErrTransient
		e.MayHaveBilled = o.wrote
	}
	return e
}

func timedOut(callCtx context.Context, err error) bool {
	if errors.Is(callCtx.Err(), context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return err != nil && (errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()))
}

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) || isDNS(err)
}

func isDNS(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de)
}
