package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// litellmPath is LiteLLM's price file in the shared data directory beside
// the repository root (../shared/data/litellm from the root).
var litellmPath = filepath.Join("..", "..", "..", "shared", "data", "litellm", "model_prices_and_context_window.json")

func readLiteLLM(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(litellmPath)
	if errors.Is(err, os.ErrNotExist) {
		abs, _ := filepath.Abs(litellmPath)
		t.Skipf("LiteLLM price file not found at %s (../shared/data/litellm/ beside the repository root); skipping", abs)
	}
	require.NoError(t, err)
	return data
}

func TestLoadLiteLLMRealFile(t *testing.T) {
	data := readLiteLLM(t)
	c, err := Load("model_prices_and_context_window.json", data) // detected as LiteLLM
	require.NoError(t, err)
	reps := c.Reports()
	require.Len(t, reps, 1)
	rep := reps[0]
	assert.Equal(t, 1803, rep.Entries)
	assert.Equal(t, 1470, rep.Loaded)
	assert.Equal(t, rep.Loaded, c.Len())
	assert.Equal(t, map[string]int{
		"duplicate id": 5, "no mode": 8,
		"mode embedding": 85, "mode image_generation": 116, "mode audio_transcription": 50,
		"mode audio_speech": 10, "mode video_generation": 20, "mode rerank": 15, "mode search": 10,
		"mode ocr": 7, "mode moderation": 6, "mode vector_store": 1,
	}, rep.Skipped)
	assert.Empty(t, rep.Problems)
	total := rep.Loaded
	for _, n := range rep.Skipped {
		total += n
	}
	assert.Equal(t, rep.Entries, total, "every entry is loaded or skipped")

	// Values below are read by hand from the file (per token x 1e6).
	gpt4o := mustModel(t, c, "openai/gpt-4o")
	assert.Equal(t, "gpt-4o", gpt4o.APIName)
	assert.Equal(t, RateOf(2.5), gpt4o.InputPerMTok)
	assert.Equal(t, RateOf(10), gpt4o.OutputPerMTok)
	assert.Equal(t, RateOf(1.25), gpt4o.CacheReadPerMTok)
	assert.False(t, gpt4o.CacheWritePerMTok.Known)
	assert.Equal(t, Prices{InputPerMTok: RateOf(1.25), OutputPerMTok: RateOf(5)}, gpt4o.ServiceTiers[ServiceBatch])
	assert.Equal(t, Prices{InputPerMTok: RateOf(4.25), OutputPerMTok: RateOf(17), CacheReadPerMTok: RateOf(2.125)}, gpt4o.ServiceTiers[ServicePriority])
	assert.Equal(t, int64(128000), gpt4o.ContextWindow)
	assert.Equal(t, int64(16384), gpt4o.MaxOutputTokens)
	assert.Equal(t, []string{"text", "image", "document"}, gpt4o.Modalities)
	assert.True(t, gpt4o.Tools && gpt4o.JSONMode && gpt4o.PromptCaching)
	assert.False(t, gpt4o.Reasoning)

	sonnet := mustModel(t, c, "anthropic/claude-sonnet-4-5")
	assert.Equal(t, Prices{InputPerMTok: RateOf(3), OutputPerMTok: RateOf(15), CacheReadPerMTok: RateOf(0.3), CacheWritePerMTok: RateOf(3.75)}, sonnet.Prices)
	assert.Equal(t, []Tier{{AboveTokens: 200000, Prices: Prices{InputPerMTok: RateOf(6), OutputPerMTok: RateOf(22.5), CacheReadPerMTok: RateOf(0.6), CacheWritePerMTok: RateOf(7.5)}}}, sonnet.Tiers)
	assert.True(t, sonnet.Reasoning)

	haiku := mustModel(t, c, "anthropic/claude-haiku-4-5")
	assert.Equal(t, RateOf(2), haiku.CacheWrite1hPerMTok)
	assert.Equal(t, RateOf(30), mustModel(t, c, "anthropic/claude-opus-4-1").CacheWrite1hPerMTok)

	vgem := mustModel(t, c, "vertex_ai/gemini-2.5-pro") // bare key, provider vertex_ai-language-models
	assert.Equal(t, "vertex_ai", vgem.Provider)
	assert.Equal(t, RateOf(0.125), vgem.CacheReadPerMTok)
	assert.Equal(t, []Tier{{AboveTokens: 200000, Prices: Prices{InputPerMTok: RateOf(2.5), OutputPerMTok: RateOf(15), CacheWritePerMTok: RateOf(0.25)}}}, vgem.Tiers)
	assert.Equal(t, []string{"text", "image", "audio", "video", "document"}, vgem.Modalities)
	gem := mustModel(t, c, "gemini/gemini-2.5-pro")
	assert.Equal(t, "gemini-2.5-pro", gem.APIName)
	assert.Equal(t, RateOf(0.3125), gem.CacheReadPerMTok)

	audio := mustModel(t, c, "openai/gpt-4o-audio-preview-2024-12-17")
	assert.Equal(t, RateOf(40), audio.AudioInputPerMTok)
	assert.Equal(t, RateOf(80), audio.AudioOutputPerMTok)

	g5m := mustModel(t, c, "openai/gpt-5-mini")
	assert.Equal(t, Prices{InputPerMTok: RateOf(0.125), OutputPerMTok: RateOf(1), CacheReadPerMTok: RateOf(0.0125)}, g5m.ServiceTiers[ServiceFlex])

	ds := mustModel(t, c, "deepseek/deepseek-chat") // key "deepseek/deepseek-chat" beats bare "deepseek-chat"
	assert.Equal(t, RateOf(0.27), ds.InputPerMTok)
	assert.Equal(t, RateOf(0.07), ds.CacheReadPerMTok)

	qf := mustModel(t, c, "dashscope/qwen-flash") // tiered_pricing only
	assert.Equal(t, RateOf(0.05), qf.InputPerMTok)
	assert.Equal(t, RateOf(0.4), qf.OutputPerMTok)
	assert.Equal(t, []Tier{{AboveTokens: 256000, Prices: Prices{InputPerMTok: RateOf(0.25), OutputPerMTok: RateOf(2)}}}, qf.Tiers)

	px := mustModel(t, c, "perplexity/sonar-small-online")
	assert.Equal(t, RateOf(0), px.InputPerMTok, "a real zero stays a known zero")
	assert.Equal(t, RateOf(0.005), px.RequestUSD)

	g15 := mustModel(t, c, "vertex_ai/gemini-1.5-flash")
	assert.Equal(t, RateOf(0.000002), g15.AudioInputPerSecondUSD)
	assert.Equal(t, RateOf(0.00002), g15.ImageUSD)
	require.Len(t, g15.Tiers, 1)
	assert.Equal(t, int64(128000), g15.Tiers[0].AboveTokens)
	assert.Equal(t, RateOf(1), g15.Tiers[0].InputPerMTok)
	assert.Equal(t, RateOf(0.000004), g15.Tiers[0].AudioInputPerSecondUSD)

	assert.Equal(t, Prices{InputPerMTok: RateOf(1), OutputPerMTok: RateOf(4)}, mustModel(t, c, "azure/gpt-4.1").ServiceTiers[ServiceBatch])
	assert.Equal(t, RateOf(0.0175), mustModel(t, c, "bedrock/us-east-1/1-month-commitment/anthropic.claude-v1").InputPerSecondUSD)
	vh := mustModel(t, c, "vertex_ai/claude-3-5-haiku")
	assert.Equal(t, "claude-3-5-haiku", vh.APIName)
	qp := mustModel(t, c, "dashscope/qwen-plus-2025-07-28")
	assert.Equal(t, RateOf(4), qp.ReasoningPerMTok)
	assert.Equal(t, RateOf(12), qp.Tiers[0].ReasoningPerMTok)

	// Priced through the catalog, LiteLLM's rates give the hand-computed
	// provider prices of price_test.go.
	cost := Price(sonnet, Usage{InputTokens: 150_000, CacheReadTokens: 50_000, CacheWriteTokens: 10_000, OutputTokens: 1000})
	assert.InDelta(t, 1.0275, cost.TotalUSD, 1e-12)
	cost = Price(sonnet, Usage{InputTokens: 10, CacheWrite1hTokens: 10})
	require.Len(t, cost.Unknown, 1, "LiteLLM has no 1h cache-write rate for claude-sonnet-4-5")
	assert.Equal(t, CompCacheWrite1h, cost.Unknown[0].Component)
	cost = Price(gpt4o, Usage{InputTokens: 100_000, OutputTokens: 10_000, Batch: true})
	assert.InDelta(t, 0.175, cost.TotalUSD, 1e-12)

	models, err := c.Match("anthropic/claude-*-4-5")
	require.NoError(t, err)
	var ids []string
	for _, m := range models {
		ids = append(ids, m.ID)
	}
	assert.Subset(t, ids, []string{"anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5"})
}

func TestLoadLiteLLMOddities(t *testing.T) {
	src := `{
  "sample_spec": {"input_cost_per_token": 0.0, "mode": "one of chat, embedding"},
  "model-a": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": "1e-06", "output_cost_per_token": 2e-06, "max_tokens": 4096.0, "cache_read_input_token_cost": null},
  "bad-price": {"litellm_provider": "openai", "mode": "chat",
                "input_cost_per_token": "cheap"},
  "bad-flag": {"litellm_provider": "openai", "mode": "chat", "supports_vision": "maybe"},
  "not-object": [1, 2],
  "neg": {"litellm_provider": "openai", "mode": "chat", "output_cost_per_token": -1e-06},
  "emb": {"litellm_provider": "openai", "mode": "embedding"},
  "noprov": {"mode": "chat"},
  "together_ai/m": {"litellm_provider": "together_ai", "mode": "completion", "max_input_tokens": 100, "max_output_tokens": 200}
}`
	c, err := LoadLiteLLM("x.json", []byte(src))
	require.NoError(t, err)
	rep := c.Reports()[0]
	assert.Equal(t, 8, rep.Entries)
	assert.Equal(t, 2, rep.Loaded)
	assert.Equal(t, map[string]int{"unreadable entry": 4, "mode embedding": 1, "no litellm_provider": 1}, rep.Skipped)
	var probs []string
	for _, p := range rep.Problems {
		probs = append(probs, p.Error())
	}
	assert.Equal(t, []string{
		`x.json:5:17: model "bad-price": input_cost_per_token: "cheap" is not a number`,
		`x.json:6:62: model "bad-flag": supports_vision: "maybe" is not true or false`,
		`x.json:7:3: model "not-object": entry is not a JSON object`,
		`x.json:8:57: model "neg": output_cost_per_token: -1e-06 is negative`,
	}, probs)

	a := mustModel(t, c, "openai/model-a")
	assert.Equal(t, RateOf(1), a.InputPerMTok, "numbers written as strings are read")
	assert.Equal(t, RateOf(2), a.OutputPerMTok)
	assert.False(t, a.CacheReadPerMTok.Known, "null is absent")
	assert.Equal(t, int64(4096), a.MaxOutputTokens, "legacy max_tokens with a float value")
	m := mustModel(t, c, "together/m")
	assert.Equal(t, "m", m.APIName)
	assert.Equal(t, int64(0), m.MaxOutputTokens, "max output above the context is dropped")
}

func TestLoadLiteLLMDuplicateIDs(t *testing.T) {
	src := `{"deepseek-chat": {"litellm_provider": "deepseek", "mode": "chat", "input_cost_per_token": 6e-07},
"deepseek/deepseek-chat": {"litellm_provider": "deepseek", "mode": "chat", "input_cost_per_token": 2.7e-07},
"other": {"litellm_provider": "x", "mode": "chat"},
"x/other": {"litellm_provider": "x", "mode": "chat", "input_cost_per_token": 1e-06},
"x/other2": {"litellm_provider": "x", "mode": "chat"}}`
	c, err := LoadLiteLLM("d.json", []byte(src))
	require.NoError(t, err)
	var ids []string
	for _, m := range c.Models() {
		ids = append(ids, m.ID)
	}
	assert.Equal(t, []string{"deepseek/deepseek-chat", "x/other", "x/other2"}, ids, "the replaced entry keeps its place")
	assert.Equal(t, RateOf(0.27), mustModel(t, c, "deepseek/deepseek-chat").InputPerMTok, "the key spelled as the id wins")
	assert.Equal(t, RateOf(1), mustModel(t, c, "x/other").InputPerMTok)
	assert.Equal(t, 2, c.Reports()[0].Skipped["duplicate id"])
}

func TestLoadLiteLLMFatal(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"array", `[1]`, `x.json:1:1: not a LiteLLM price file: expected a JSON object of model entries`},
		{"truncated", "{\n \"a\": {\"mode\": \"chat\"", `x.json:2:21: invalid JSON: the file ends early (truncated download?)`},
		{"syntax", "{\n \"a\": {\"mode\" \"chat\"}}", `x.json:2:15: invalid JSON: invalid character '"' after object key`},
		{"trailing", "{} {}", `x.json:1:4: invalid JSON: invalid character '{' after top-level value`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadLiteLLM("x.json", []byte(tc.src))
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
		})
	}
}

func TestLoadDetectsFormat(t *testing.T) {
	c, err := Load("a", []byte("\ufeff  \n{\"m\": {\"litellm_provider\": \"p\", \"mode\": \"chat\"}}"))
	require.NoError(t, err)
	assert.Len(t, c.Reports(), 1)
	c, err = Load("b", []byte("[[model]]\nid = \"p/m\"\n"))
	require.NoError(t, err)
	assert.Empty(t, c.Reports())
	_, ok := c.Lookup("p/m")
	assert.True(t, ok)
}

func TestNormalizeLiteLLMProvider(t *testing.T) {
	for in, want := range map[string]string{
		"vertex_ai-language-models": "vertex_ai", "together_ai": "together", "fireworks_ai": "fireworks",
		"openai": "openai", "text-completion-openai": "openai", "bedrock_converse": "bedrock", "gemini": "gemini",
	} {
		assert.Equal(t, want, NormalizeLiteLLMProvider(in), in)
	}
}
