package provider

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/costwise/costwise/estimator/catalog"
)

func TestNormalizeUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind Kind
		info map[string]any
		want catalog.Usage
		ok   bool
	}{
		{"openai cached and reasoning", KindOpenAI, map[string]any{
			"PromptTokens": 1234, "CompletionTokens": 300, "TotalTokens": 1534,
			"PromptCachedTokens": 1024, "ReasoningTokens": 256, "CompletionReasoningTokens": 256,
		}, catalog.Usage{InputTokens: 210, CacheReadTokens: 1024, OutputTokens: 44, ReasoningTokens: 256}, true},
		{"openai audio", KindOpenAI, map[string]any{
			"PromptTokens": 500, "PromptAudioTokens": 120, "PromptCachedTokens": 100,
			"CompletionTokens": 90, "CompletionAudioTokens": 60,
		}, catalog.Usage{InputTokens: 280, CacheReadTokens: 100, AudioInputTokens: 120, OutputTokens: 30, AudioOutputTokens: 60}, true},
		{"openai reasoning only in the detailed key", KindOpenAI, map[string]any{
			"PromptTokens": 10, "CompletionTokens": 50, "CompletionReasoningTokens": 20,
		}, catalog.Usage{InputTokens: 10, OutputTokens: 30, ReasoningTokens: 20}, true},
		{"openai inconsistent parts are capped", KindOpenAI, map[string]any{
			"PromptTokens": 100, "PromptCachedTokens": 150, "CompletionTokens": 10, "ReasoningTokens": 40,
		}, catalog.Usage{CacheReadTokens: 100, ReasoningTokens: 10}, true},
		{"openai all zero (usage missing)", KindOpenAI, map[string]any{
			"PromptTokens": 0, "CompletionTokens": 0, "TotalTokens": 0, "ReasoningTokens": 0,
		}, catalog.Usage{}, false},
		{"nil map", KindOpenAI, nil, catalog.Usage{}, false},
		{"anthropic disjoint", KindAnthropic, map[string]any{
			"InputTokens": 21, "OutputTokens": 12, "CacheCreationInputTokens": 1888, "CacheReadInputTokens": 3072,
		}, catalog.Usage{InputTokens: 21, CacheWriteTokens: 1888, CacheReadTokens: 3072, OutputTokens: 12}, true},
		{"anthropic cache read only", KindAnthropic, map[string]any{"InputTokens": 0, "OutputTokens": 0, "CacheReadInputTokens": 9},
			catalog.Usage{CacheReadTokens: 9}, true},
		{"googleai int32 with cache", KindGoogleAI, map[string]any{
			"PromptTokens": int32(4000), "CompletionTokens": int32(250), "TotalTokens": int32(4250), "CachedTokens": int32(3000),
		}, catalog.Usage{InputTokens: 1000, CacheReadTokens: 3000, OutputTokens: 250}, true},
		{"ollama", KindOllama, map[string]any{"PromptTokens": 26, "CompletionTokens": 298, "TotalTokens": 324},
			catalog.Usage{InputTokens: 26, OutputTokens: 298}, true},
		{"odd value types", KindOpenAI, map[string]any{
			"PromptTokens": json.Number("40"), "CompletionTokens": float64(7.9), "PromptCachedTokens": "10", "ReasoningTokens": -3,
		}, catalog.Usage{InputTokens: 40, OutputTokens: 7}, true},
		{"huge and NaN", KindOllama, map[string]any{"PromptTokens": math.Inf(1), "CompletionTokens": math.NaN()},
			catalog.Usage{InputTokens: maxCount}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := NormalizeUsage(tc.kind, tc.info)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.ok, ok)
		})
	}
}

// FuzzNormalizeUsage checks that disjoint counts are never negative and
// always add up to what OpenAI reported, whatever the values.
func FuzzNormalizeUsage(f *testing.F) {
	f.Add(int64(1234), int64(300), int64(1024), int64(256), int64(0), int64(0), 0.0)
	f.Add(int64(-1), int64(5), int64(9), int64(99), int64(3), int64(7), math.NaN())
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), int64(1), int64(1), int64(1), int64(1), 1e300)
	f.Fuzz(func(t *testing.T, prompt, completion, cached, reasoning, audioIn, audioOut int64, fl float64) {
		info := map[string]any{
			"PromptTokens": int(prompt), "CompletionTokens": completion, "PromptCachedTokens": int32(cached),
			"ReasoningTokens": float64(reasoning), "PromptAudioTokens": json.Number(jsonInt(audioIn)),
			"CompletionAudioTokens": audioOut, "TotalTokens": fl,
		}
		u, ok := NormalizeUsage(KindOpenAI, info)
		for _, v := range []int64{u.InputTokens, u.CacheReadTokens, u.AudioInputTokens, u.OutputTokens, u.ReasoningTokens, u.AudioOutputTokens} {
			if v < 0 || v > maxCount {
				t.Fatalf("count out of range: %+v", u)
			}
		}
		p := min(max(prompt, 0), maxCount)
		c := clampI(completion)
		if u.PromptTokens() != p {
			t.Fatalf("prompt parts %d != prompt_tokens %d: %+v", u.PromptTokens(), p, u)
		}
		if got := u.OutputTokens + u.ReasoningTokens + u.AudioOutputTokens; got != c {
			t.Fatalf("completion parts %d != completion_tokens %d: %+v", got, c, u)
		}
		if ok != (p > 0 || c > 0) {
			t.Fatalf("ok=%v for prompt %d completion %d", ok, p, c)
		}
		for _, k := range kinds {
			u, _ := NormalizeUsage(k, map[string]any{"InputTokens": fl, "OutputTokens": prompt, "PromptTokens": cached, "CachedTokens": completion, "CompletionTokens": reasoning})
			if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadTokens < 0 {
				t.Fatalf("%s: negative count %+v", k, u)
			}
		}
	})
}

func jsonInt(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
