package provider

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"

	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/estimator/tokens"
)

// GenerationInfo keys langchaingo v0.1.14 writes per provider.
const (
	// OpenAI (and every OpenAI-compatible service): PromptTokens includes
	// cached and audio input; CompletionTokens includes reasoning and audio
	// output.
	giPromptTokens          = "PromptTokens"
	giCompletionTokens      = "CompletionTokens"
	giReasoningTokens       = "ReasoningTokens"
	giCompletionReasoning   = "CompletionReasoningTokens"
	giPromptCachedTokens    = "PromptCachedTokens"
	giPromptAudioTokens     = "PromptAudioTokens"
	giCompletionAudioTokens = "CompletionAudioTokens"

	// Anthropic: InputTokens excludes cache reads and writes.
	giInputTokens              = "InputTokens"
	giOutputTokens             = "OutputTokens"
	giCacheCreationInputTokens = "CacheCreationInputTokens"
	giCacheReadInputTokens     = "CacheReadInputTokens"

	// Google AI: PromptTokens includes CachedTokens (only set when > 0).
	giCachedTokens = "CachedTokens"
)

// NormalizeUsage converts the usage langchaingo reports in a choice's
// GenerationInfo into disjoint [catalog.Usage] counts for a provider of the
// given kind. ok is false when the map reports no usage at all (every
// count absent or zero), in which case the caller should count locally.
//
//   - openai: InputTokens = PromptTokens - PromptCachedTokens -
//     PromptAudioTokens; OutputTokens = CompletionTokens - ReasoningTokens -
//     CompletionAudioTokens. Parts larger than their total are capped so
//     that the disjoint counts always add up to the reported totals.
//   - anthropic: counts are already disjoint; cache creation is priced as
//     the 5-minute cache write (langchaingo does not expose the 1-hour
//     split). Extended-thinking tokens are inside OutputTokens.
//   - googleai: InputTokens = PromptTokens - CachedTokens.
//   - ollama: PromptTokens and CompletionTokens as they are.
//
// Values may be any Go integer or float type or json.Number; negative,
// NaN and non-numeric values count as 0.
func NormalizeUsage(kind Kind, info map[string]any) (u catalog.Usage, ok bool) {
	get := func(key string) int64 { return count(info[key]) }
	switch kind {
	case KindAnthropic:
		u.InputTokens = get(giInputTokens)
		u.CacheWriteTokens = get(giCacheCreationInputTokens)
		u.CacheReadTokens = get(giCacheReadInputTokens)
		u.OutputTokens = get(giOutputTokens)
	case KindGoogleAI:
		prompt := get(giPromptTokens)
		cached := min(get(giCachedTokens), prompt)
		u.InputTokens = prompt - cached
		u.CacheReadTokens = cached
		u.OutputTokens = get(giCompletionTokens)
	case KindOllama:
		u.InputTokens = get(giPromptTokens)
		u.OutputTokens = get(giCompletionTokens)
	default: // KindOpenAI and OpenAI-compatible services
		prompt := get(giPromptTokens)
		cached := min(get(giPromptCachedTokens), prompt)
		audioIn := min(get(giPromptAudioTokens), prompt-cached)
		u.InputTokens = prompt - cached - audioIn
		u.CacheReadTokens = cached
		u.AudioInputTokens = audioIn

		completion := get(giCompletionTokens)
		reasoning := get(giReasoningTokens)
		if reasoning == 0 {
			reasoning = get(giCompletionReasoning)
		}
		reasoning = min(reasoning, completion)
		audioOut := min(get(giCompletionAudioTokens), completion-reasoning)
		u.ReasoningTokens = reasoning
		u.AudioOutputTokens = audioOut
		u.OutputTokens = completion - reasoning - audioOut
	}
	ok = u.PromptTokens() > 0 || u.OutputTokens+u.ReasoningTokens+u.AudioOutputTokens > 0
	return u, ok
}

// geminiUsageMetadata is a Gemini response's usageMetadata.
type geminiUsageMetadata struct {
	Prompt     float64 `json:"promptTokenCount"` // cached included
	Candidates float64 `json:"candidatesTokenCount"`
	Cached     float64 `json:"cachedContentTokenCount"`
	Thoughts   float64 `json:"thoughtsTokenCount"`
}

// geminiWireUsage reads a Gemini answer's usage from its response body:
// the last usageMetadata of a generateContent object, of a
// streamGenerateContent JSON array, or of its server-sent events (alt=sse).
// The service reports usage on every chunk of a stream, the output counted
// so far; Google's Go client (generative-ai-go v0.15.1) keeps the first
// chunk's, which misses most of the output. Thinking tokens
// (thoughtsTokenCount, billed as output) become ReasoningTokens. ok is
// false when the body holds no usage or does not parse.
func geminiWireUsage(body []byte) (u catalog.Usage, ok bool) {
	type chunk struct {
		UsageMetadata *geminiUsageMetadata `json:"usageMetadata"`
	}
	var last *geminiUsageMetadata
	body = bytes.TrimSpace(body)
	switch {
	case len(body) == 0:
		return u, false
	case body[0] == '[':
		var cs []chunk
		if json.Unmarshal(body, &cs) != nil {
			return u, false
		}
		for _, c := range cs {
			if c.UsageMetadata != nil {
				last = c.UsageMetadata
			}
		}
	case body[0] == '{':
		var c chunk
		if json.Unmarshal(body, &c) != nil {
			return u, false
		}
		last = c.UsageMetadata
	default: // server-sent events
		for line := range bytes.Lines(body) {
			data, isData := bytes.CutPrefix(bytes.TrimSpace(line), []byte("data:"))
			var c chunk
			if isData && json.Unmarshal(bytes.TrimSpace(data), &c) == nil && c.UsageMetadata != nil {
				last = c.UsageMetadata
			}
		}
	}
	if last == nil {
		return u, false
	}
	prompt := clampF(last.Prompt)
	cached := min(clampF(last.Cached), prompt)
	u = catalog.Usage{InputTokens: prompt - cached, CacheReadTokens: cached,
		OutputTokens: clampF(last.Candidates), ReasoningTokens: clampF(last.Thoughts)}
	return u, u.PromptTokens() > 0 || u.OutputTokens+u.ReasoningTokens > 0
}

// count converts one GenerationInfo value to a token count >= 0.
func count(v any) int64 {
	switch x := v.(type) {
	case int:
		return clampI(int64(x))
	case int8:
		return clampI(int64(x))
	case int16:
		return clampI(int64(x))
	case int32:
		return clampI(int64(x))
	case int64:
		return clampI(x)
	case uint:
		return clampU(uint64(x))
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return clampU(x)
	case float32:
		return clampF(float64(x))
	case float64:
		return clampF(x)
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return clampI(n)
		}
		if f, err := x.Float64(); err == nil {
			return clampF(f)
		}
	}
	return 0
}

// maxCount keeps sums of counts far from int64 overflow.
const maxCount = int64(1) << 52

func clampU(x uint64) int64 {
	if x > uint64(maxCount) {
		return maxCount
	}
	return int64(x)
}

func clampF(f float64) int64 {
	if math.IsNaN(f) || f <= 0 {
		return 0
	}
	if f >= float64(maxCount) {
		return maxCount
	}
	return int64(f)
}

// countLocally estimates usage for a response that reported none: the
// prompt is counted as an OpenAI chat request and the reply as text, both
// with o200k_base.
func countLocally(req Request, text string) (catalog.Usage, error) {
	turns := req.turns()
	msgs := make([]tokens.Message, 0, len(turns)+1)
	if req.System != "" {
		msgs = append(msgs, tokens.Message{Role: "system", Content: req.System})
	}
	for _, t := range turns {
		msgs = append(msgs, tokens.Message{Role: t.Role, Content: t.Text + toolCallsText(t.ToolCalls)})
	}
	if len(req.Tools) > 0 { // the definitions are part of the prompt
		b, _ := json.Marshal(req.Tools)
		msgs = append(msgs, tokens.Message{Role: "system", Content: string(b)})
	}
	in, err := tokens.CountChat(tokens.O200kBase, msgs)
	if err != nil {
		return catalog.Usage{}, err
	}
	out, err := tokens.Count(tokens.O200kBase, text)
	if err != nil {
		return catalog.Usage{}, err
	}
	return catalog.Usage{InputTokens: int64(in), OutputTokens: int64(out)}, nil
}

// toolCallsText is the tool calls as they are counted: each function's
// name and arguments.
func toolCallsText(calls []llms.ToolCall) string {
	var b strings.Builder
	for _, tc := range calls {
		if tc.FunctionCall != nil {
			b.WriteString(tc.FunctionCall.Name)
			b.WriteString(tc.FunctionCall.Arguments)
		}
	}
	return b.String()
}

func clampI(x int64) int64 { return min(max(x, 0), maxCount) }
