package tokens_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/tokens"
)

func TestEstimate(t *testing.T) {
	const text = "The quick brown fox jumps over the lazy dog."
	base, err := tokens.Count(tokens.O200kBase, text)
	require.NoError(t, err)
	require.Equal(t, 10, base)

	cases := []struct {
		ratio float64
		want  int
	}{
		{1.0, 10},
		{1.1, 11}, // 10*1.1 is 11.000000000000002 in float64: must not become 12
		{1.15, 12},
		{1.2, 12},
		{0.5, 5},
		{1.01, 11},
	}
	for _, tc := range cases {
		got, err := tokens.Estimate(tc.ratio, text)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got.Tokens, "ratio %v", tc.ratio)
		assert.False(t, got.Exact)
		assert.Equal(t, tokens.DefaultEstimateRelErr, got.RelErr)
	}
	for _, bad := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		_, err := tokens.Estimate(bad, text)
		require.ErrorIs(t, err, tokens.ErrBadRatio, "ratio %v", bad)
	}
}

func TestCountText(t *testing.T) {
	const text = "hello world"
	exact, err := tokens.CountText(tokens.TextRule{Encoding: tokens.O200kBase}, text)
	require.NoError(t, err)
	assert.Equal(t, tokens.TokenCount{Tokens: 2, Exact: true}, exact)
	assert.Equal(t, 2, exact.Low())
	assert.Equal(t, 2, exact.High())

	est, err := tokens.CountText(tokens.RuleForProvider("anthropic"), text)
	require.NoError(t, err)
	assert.Equal(t, 3, est.Tokens) // ceil(2*1.2)
	assert.Equal(t, 0.15, est.RelErr)
	assert.Greater(t, est.RelErr, exact.RelErr, "estimates carry a wider band than exact counts")

	dflt, err := tokens.CountText(tokens.TextRule{}, text)
	require.NoError(t, err)
	assert.Equal(t, tokens.TokenCount{Tokens: 2, RelErr: tokens.DefaultEstimateRelErr}, dflt)

	unknown := tokens.RuleForProvider("some-new-lab")
	assert.Equal(t, tokens.TextRule{Ratio: 1, RelErr: tokens.DefaultEstimateRelErr}, unknown)

	_, err = tokens.CountText(tokens.TextRule{Encoding: "gpt2"}, text)
	require.ErrorIs(t, err, tokens.ErrUnknownEncoding)
	_, err = tokens.CountText(tokens.TextRule{Ratio: -2}, text)
	require.ErrorIs(t, err, tokens.ErrBadRatio)
	_, err = tokens.CountText(tokens.TextRule{Ratio: 1, RelErr: -0.1}, text)
	require.Error(t, err)
}

func TestTokenCountBandAndAdd(t *testing.T) {
	c := tokens.TokenCount{Tokens: 1000, RelErr: 0.2}
	assert.Equal(t, 800, c.Low())
	assert.Equal(t, 1200, c.High())
	assert.Equal(t, 0, tokens.TokenCount{Tokens: 10, RelErr: 1.5}.Low())

	sum := c.Add(tokens.TokenCount{Tokens: 1000, Exact: true})
	assert.Equal(t, 2000, sum.Tokens)
	assert.False(t, sum.Exact)
	assert.InDelta(t, 0.1, sum.RelErr, 1e-12)

	both := tokens.TokenCount{Tokens: 3, Exact: true}.Add(tokens.TokenCount{Tokens: 4, Exact: true})
	assert.Equal(t, tokens.TokenCount{Tokens: 7, Exact: true}, both)
	assert.Equal(t, 0.3, tokens.TokenCount{RelErr: 0.3}.Add(tokens.TokenCount{}).RelErr)
}

func TestDefaultRatios(t *testing.T) {
	table := tokens.DefaultRatios()
	var names []string
	for _, r := range table {
		names = append(names, r.Provider)
		assert.Greater(t, r.Ratio, 0.5, r.Provider)
		assert.Less(t, r.Ratio, 2.0, r.Provider)
		assert.Greater(t, r.RelErr, 0.0, r.Provider)
		assert.NotEmpty(t, r.Source, r.Provider)
	}
	assert.Equal(t, []string{"anthropic", "deepseek", "gemini", "llama", "mistral", "qwen", "xai"}, names)

	// The returned slice is a copy.
	table[0].Ratio = 99
	r, ok := tokens.DefaultRatio("Anthropic")
	require.True(t, ok)
	assert.Equal(t, 1.20, r.Ratio)
	_, ok = tokens.DefaultRatio("openai")
	assert.False(t, ok, "openai is counted exactly, not by ratio")
}
