package catalog

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func loadTestdata(t testing.TB, file string) *Catalog {
	t.Helper()
	data, err := os.ReadFile("testdata/" + file)
	require.NoError(t, err)
	c, err := LoadTOML(file, data)
	require.NoError(t, err)
	return c
}

func mustModel(t testing.TB, c *Catalog, id string) *Model {
	t.Helper()
	m, ok := c.Lookup(id)
	require.True(t, ok, "model %s not in catalog", id)
	return m
}

// Expected values are computed by hand from the rates in testdata/prices.toml
// (each copied from the provider's price page); the comment on each case
// shows the sum.
func TestPriceExact(t *testing.T) {
	c := loadTestdata(t, "prices.toml")
	cases := []struct {
		name    string
		model   string
		usage   Usage
		wantUSD float64
		tier    int64
		unknown []Component
	}{
		{"gpt-4o cached input", "openai/gpt-4o",
			Usage{InputTokens: 1000, CacheReadTokens: 2000, OutputTokens: 500},
			// 1000*2.5 + 2000*1.25 + 500*10 = 2500+2500+5000 = 10000 / 1e6
			0.01, 0, nil},
		{"gpt-4o batch discount", "openai/gpt-4o",
			Usage{InputTokens: 100_000, OutputTokens: 10_000, Batch: true},
			// (100000*2.5 + 10000*10)/1e6 * 0.5 = (0.25+0.1)*0.5
			0.175, 0, nil},
		{"gpt-4.1 explicit batch prices", "openai/gpt-4.1",
			Usage{InputTokens: 100_000, OutputTokens: 10_000, Batch: true},
			// 100000*1.0 + 10000*4.0 = 0.1 + 0.04
			0.14, 0, nil},
		{"gpt-4.1 batch cache read without batch rate: billed as batch input", "openai/gpt-4.1",
			Usage{InputTokens: 1000, CacheReadTokens: 1000, Batch: true},
			// (1000 + 1000) * 1.0
			0.002, 0, nil},
		{"gpt-4.1 batch audio: no rate anywhere", "openai/gpt-4.1",
			Usage{InputTokens: 1000, AudioInputTokens: 1000, Batch: true},
			0.001, 0, []Component{CompAudioInput}},
		{"gpt-4.1 cache write has no rate: billed as input", "openai/gpt-4.1",
			Usage{InputTokens: 1000, CacheWriteTokens: 3000},
			// (1000+3000)*2.0 = 0.008
			0.008, 0, nil},
		{"o3 reasoning billed as output", "openai/o3",
			Usage{InputTokens: 1000, OutputTokens: 200, ReasoningTokens: 3000},
			// 1000*2 + 200*8 + 3000*8 = 2000+1600+24000 = 27600 / 1e6
			0.0276, 0, nil},
		{"o3 flex", "openai/o3",
			Usage{InputTokens: 10_000, CacheReadTokens: 4000, OutputTokens: 1000, ReasoningTokens: 1000, ServiceTier: ServiceFlex},
			// 10000*1 + 4000*0.25 + 2000*4 = 10000+1000+8000 = 19000 / 1e6
			0.019, 0, nil},
		{"o3 priority not offered", "openai/o3",
			Usage{InputTokens: 10, ServiceTier: ServicePriority},
			0, 0, []Component{CompServiceTier}},
		{"audio preview", "openai/gpt-4o-audio-preview",
			Usage{InputTokens: 1000, AudioInputTokens: 5000, OutputTokens: 200, AudioOutputTokens: 3000},
			// 1000*2.5 + 5000*40 + 200*10 + 3000*80 = 2500+200000+2000+240000 = 444500 / 1e6
			0.4445, 0, nil},
		{"gpt-4o has no audio rate: unknown, not zero", "openai/gpt-4o",
			Usage{InputTokens: 1000, AudioInputTokens: 5000, AudioOutputTokens: 10},
			0.0025, 0, []Component{CompAudioInput, CompAudioOutput}},
		{"sonnet 4.5 all cache kinds", "anthropic/claude-sonnet-4-5",
			Usage{InputTokens: 10_000, CacheWriteTokens: 5000, CacheWrite1hTokens: 2000, CacheReadTokens: 20_000, OutputTokens: 1000},
			// 10000*3 + 5000*3.75 + 2000*6 + 20000*0.3 + 1000*15 = 30000+18750+12000+6000+15000 = 81750 / 1e6
			0.08175, 0, nil},
		{"sonnet 4.5 prompt exactly 200k stays at base", "anthropic/claude-sonnet-4-5",
			Usage{InputTokens: 200_000, OutputTokens: 1000},
			// 200000*3 + 1000*15 = 615000 / 1e6
			0.615, 0, nil},
		{"sonnet 4.5 above 200k: every token at tier rates", "anthropic/claude-sonnet-4-5",
			Usage{InputTokens: 150_000, CacheReadTokens: 50_000, CacheWriteTokens: 10_000, OutputTokens: 1000},
			// prompt 210000 > 200000: 150000*6 + 50000*0.6 + 10000*7.5 + 1000*22.5 = 900000+30000+75000+22500 = 1027500 / 1e6
			1.0275, 200_000, nil},
		{"sonnet 4.5 batch above 200k", "anthropic/claude-sonnet-4-5",
			Usage{InputTokens: 250_000, OutputTokens: 2000, Batch: true},
			// (250000*6 + 2000*22.5) * 0.5 = (1500000+45000)*0.5 = 772500 / 1e6
			0.7725, 200_000, nil},
		{"gemini 2.5 pro above 200k", "gemini/gemini-2.5-pro",
			Usage{InputTokens: 250_000, OutputTokens: 2000},
			// 250000*2.5 + 2000*15 = 625000+30000 = 655000 / 1e6
			0.655, 200_000, nil},
		{"gemini 2.5 pro: cached tokens count toward the threshold", "gemini/gemini-2.5-pro",
			Usage{InputTokens: 100_000, CacheReadTokens: 150_000, ReasoningTokens: 1000, OutputTokens: 1000},
			// prompt 250000: 100000*2.5 + 150000*0.25 + 2000*15 = 250000+37500+30000 = 317500 / 1e6
			0.3175, 200_000, nil},
		{"gemini 2.5 pro has no batch price", "gemini/gemini-2.5-pro",
			Usage{InputTokens: 1000, OutputTokens: 10, Batch: true},
			0, 0, []Component{CompInput, CompOutput}},
		{"qwen plus reasoning rate and tier", "dashscope/qwen-plus-2025-07-28",
			Usage{InputTokens: 300_000, OutputTokens: 1000, ReasoningTokens: 2000},
			// 300000*1.2 + 1000*3.6 + 2000*12 = 360000+3600+24000 = 387600 / 1e6
			0.3876, 256_000, nil},
		{"qwen plus base reasoning rate", "dashscope/qwen-plus-2025-07-28",
			Usage{InputTokens: 10_000, ReasoningTokens: 1000},
			// 10000*0.4 + 1000*4 = 8000 / 1e6
			0.008, 0, nil},
		{"per-request fee, requests default 1", "perplexity/sonar-small-online",
			Usage{InputTokens: 100, OutputTokens: 1000},
			// 0 + 1000*0.28/1e6 + 0.005 = 0.00028 + 0.005
			0.00528, 0, nil},
		{"per-request fee, 3 requests", "perplexity/sonar-small-online",
			Usage{OutputTokens: 1000, Requests: 3},
			0.01528, 0, nil},
		{"per-second media and images", "vertex_ai/gemini-1.5-flash",
			Usage{InputTokens: 1000, Images: 2, AudioSeconds: 60, VideoSeconds: 10},
			// 1000*0.075/1e6 + 2*0.00002 + 60*0.000002 + 10*0.00002 = 0.000075+0.00004+0.00012+0.0002
			0.000435, 0, nil},
		{"per-image fee unknown", "openai/gpt-4o",
			Usage{Images: 1, Seconds: 3},
			0, 0, []Component{CompImage, CompSeconds}},
		{"service tier batch is rejected", "openai/gpt-4o",
			Usage{InputTokens: 1, ServiceTier: "batch"},
			0, 0, []Component{CompServiceTier}},
		{"negative count", "openai/gpt-4o",
			Usage{InputTokens: -5},
			0, 0, []Component{CompInput}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cost := Price(mustModel(t, c, tc.model), tc.usage)
			assert.InDelta(t, tc.wantUSD, cost.TotalUSD, 1e-12)
			assert.Equal(t, int64(tc.wantUSD*1e9+0.5), cost.NanoUSD())
			assert.Equal(t, tc.tier, cost.TierAbove)
			var got []Component
			for _, u := range cost.Unknown {
				got = append(got, u.Component)
				assert.NotEmpty(t, u.Reason)
			}
			assert.Equal(t, tc.unknown, got)
			assert.Equal(t, len(tc.unknown) == 0, cost.Complete())
			sum := 0.0
			for _, l := range cost.Lines {
				assert.NotZero(t, l.Quantity, "line %s", l.Component)
				sum += l.USD
			}
			assert.InDelta(t, cost.TotalUSD, sum, 1e-15)
		})
	}
}

func TestPriceBreakdown(t *testing.T) {
	c := loadTestdata(t, "prices.toml")
	cost := Price(mustModel(t, c, "anthropic/claude-sonnet-4-5"), Usage{
		InputTokens: 190_000, CacheWrite1hTokens: 20_000, OutputTokens: 100,
	})
	require.Equal(t, []Line{
		{Component: CompInput, Quantity: 190_000, Rate: 6, USD: 1.14},
		{Component: CompCacheWrite1h, Quantity: 20_000, Rate: 12, USD: 0.24},
		{Component: CompOutput, Quantity: 100, Rate: 22.5, USD: 0.00225},
	}, cost.Lines)

	// A tier without a rate for a component falls back to the base rate and says so.
	gem := mustModel(t, c, "vertex_ai/gemini-1.5-flash").Clone()
	gem.Tiers = []Tier{{AboveTokens: 128_000, Prices: Prices{InputPerMTok: RateOf(0.15)}}}
	cost = Price(gem, Usage{InputTokens: 200_000, OutputTokens: 10})
	require.Len(t, cost.Lines, 2)
	assert.Equal(t, 0.15, cost.Lines[0].Rate)
	assert.Equal(t, 0.30, cost.Lines[1].Rate)
	assert.Contains(t, cost.Lines[1].Note, "tier above 128000 has no output_per_mtok rate")
}

func TestNanoUSDRounds(t *testing.T) {
	assert.Equal(t, int64(3), Cost{TotalUSD: 2.6e-9}.NanoUSD())
	assert.Equal(t, int64(2), Cost{TotalUSD: 2.4e-9}.NanoUSD())
	assert.Equal(t, int64(1_500_000_000), Cost{TotalUSD: 1.5}.NanoUSD())
}
