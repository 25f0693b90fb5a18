package tokens

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	gpt4o     = ImageRule{Kind: ImageOpenAITile, BaseTokens: 85, TileTokens: 170}
	gpt4oMini = ImageRule{Kind: ImageOpenAITile, BaseTokens: 2833, TileTokens: 5667}
	oSeries   = ImageRule{Kind: ImageOpenAITile, BaseTokens: 75, TileTokens: 150}
	gpt41Mini = ImageRule{Kind: ImageOpenAIPatch, PatchMultiplier: 1.62}
	gpt41Nano = ImageRule{Kind: ImageOpenAIPatch, PatchMultiplier: 2.46}
	anthropic = ImageRule{Kind: ImageAnthropic}
	gemini    = ImageRule{Kind: ImageGemini}
)

// Worked examples from the providers' documentation.
func TestImageTokensDocumentedExamples(t *testing.T) {
	cases := []struct {
		name   string
		rule   ImageRule
		w, h   int
		detail Detail
		want   int
	}{
		// OpenAI vision guide, tile models.
		{"openai gpt-4o 1024x1024 high", gpt4o, 1024, 1024, DetailHigh, 765},
		{"openai gpt-4o 2048x4096 high", gpt4o, 2048, 4096, DetailHigh, 1105},
		{"openai gpt-4o 4096x8192 low", gpt4o, 4096, 8192, DetailLow, 85},
		{"openai gpt-4o auto is high", gpt4o, 1024, 1024, DetailAuto, 765},
		{"openai gpt-4o empty detail is auto", gpt4o, 2048, 4096, "", 1105},
		{"openai gpt-4o-mini 1024x1024 high", gpt4oMini, 1024, 1024, DetailHigh, 2833 + 4*5667},
		{"openai o-series 1024x1024 high", oSeries, 1024, 1024, DetailHigh, 75 + 4*150},
		// Small images are not enlarged: one tile.
		{"openai gpt-4o 128x64 one tile", gpt4o, 128, 64, DetailHigh, 255},
		// Observed billing around the rounding edge (OpenAI community, 2025):
		// 2049x513 -> 2048x513 -> 4x2 tiles; 2050x513 -> 2048x512 -> 4x1 tiles.
		{"openai gpt-4o 2049x513", gpt4o, 2049, 513, DetailHigh, 85 + 8*170},
		{"openai gpt-4o 2050x513", gpt4o, 2050, 513, DetailHigh, 85 + 4*170},
		// OpenAI vision guide, patch models: 1024x1024 -> 1024 patches;
		// 1800x2400 -> 1452 patches; times the model multiplier.
		{"openai gpt-4.1-mini 1024x1024", gpt41Mini, 1024, 1024, DetailHigh, 1659}, // 1024*1.62 = 1658.88
		{"openai gpt-4.1-mini 1800x2400", gpt41Mini, 1800, 2400, DetailHigh, 2353}, // 1452*1.62 = 2352.24
		{"openai gpt-4.1-nano 1024x1024", gpt41Nano, 1024, 1024, DetailLow, 2520},  // 1024*2.46 = 2519.04
		// Anthropic vision guide table: tokens = w*h/750.
		{"anthropic 200x200", anthropic, 200, 200, "", 54},
		{"anthropic 1000x1000", anthropic, 1000, 1000, "", 1334},
		{"anthropic 1092x1092", anthropic, 1092, 1092, "", 1590},
		// Gemini: both sides <= 384 -> 258; 960x540 -> crop unit 360, 3x2 tiles.
		{"gemini 384x384", gemini, 384, 384, "", 258},
		{"gemini 100x300", gemini, 100, 300, "", 258},
		{"gemini 960x540", gemini, 960, 540, "", 6 * 258},
		{"gemini 1080x1350 page", gemini, 1080, 1350, "", 4 * 258},
		{"gemini 385x385", gemini, 385, 385, "", 4 * 258}, // unit 256 -> 2x2
		{"fixed 1120", ImageRule{Kind: ImageFixed, BaseTokens: 1120}, 4000, 3000, "", 1120},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ImageTokens(tc.rule, tc.w, tc.h, tc.detail)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestOpenAIPatchCountDocumented(t *testing.T) {
	cases := []struct {
		w, h, want int
	}{
		{1024, 1024, 1024}, // 32x32 patches, under the cap
		{1800, 2400, 1452}, // shrink 0.603, width fitted to 33 patches -> 1056x1408 -> 33x44
		{4000, 1474, 1536}, // billed at the cap (OpenAI community measurement, 1536*1.62 = 2488)
		{128, 64, 8},
		{1, 1, 1},
		{1, 65536, 1536}, // extreme aspect: capped
		{65536, 1, 1536},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, openAIPatches(tc.w, tc.h), "%dx%d", tc.w, tc.h)
	}
}

func TestOpenAITileGrid(t *testing.T) {
	cols, rows := openAITiles(2048, 4096)
	assert.Equal(t, [2]int{2, 3}, [2]int{cols, rows}, "2048x4096 -> 768x1536")
	cols, rows = openAITiles(1024, 1024)
	assert.Equal(t, [2]int{2, 2}, [2]int{cols, rows}, "1024x1024 -> 768x768")
}

func TestAnthropicDownscale(t *testing.T) {
	// Anthropic's table of largest sizes per aspect ratio: each costs about
	// 1600 tokens (within 3%).
	for _, sz := range [][2]int{{1092, 1092}, {951, 1268}, {896, 1344}, {819, 1456}, {784, 1568}} {
		got, err := ImageTokens(anthropic, sz[0], sz[1], "")
		require.NoError(t, err)
		assert.InDelta(t, AnthropicMaxTokens, got, 0.03*AnthropicMaxTokens, "%v", sz)
	}
	// Big images are scaled down to at most ~1600 tokens, whatever the shape.
	for _, sz := range [][2]int{{4000, 3000}, {8000, 8000}, {1568, 1568}, {5000, 800}, {3000, 100}} {
		got, err := ImageTokens(anthropic, sz[0], sz[1], "")
		require.NoError(t, err)
		assert.LessOrEqual(t, got, AnthropicMaxTokens, "%v", sz)
		assert.Greater(t, got, 0)
	}
	// A very wide strip is limited by the 1568px edge, not the token cap.
	got, err := ImageTokens(anthropic, 3000, 100, "")
	require.NoError(t, err)
	assert.Equal(t, int(math.Ceil(1568*52/750.0)), got) // 3000x100 -> 1568x52
}

// Downscaling rules are not monotone in one side (a longer image is fitted
// to the same box and can lose its short side), so the properties are: for a
// fixed aspect ratio, enlarging never lowers the count (Anthropic up to a few
// tokens of pixel rounding at its ~1600 cap; the patch rule while under its
// 1536-patch budget, since fitting the width to whole patches makes the count
// wobble just below the cap), and the patch rule never exceeds its cap.
func TestImageTokensMonotone(t *testing.T) {
	for _, aspect := range [][2]int{{1, 1}, {4, 3}, {3, 4}, {16, 9}, {1, 2}, {10, 1}, {1, 25}} {
		prevTile, prevPatch, prevAnth := 0, 0, 0
		for k := 1; k*aspect[0] <= 8000 && k*aspect[1] <= 8000; k += 3 {
			w, h := k*aspect[0], k*aspect[1]
			tile, err := ImageTokens(gpt4o, w, h, DetailHigh)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, tile, prevTile, "tile %dx%d", w, h)
			prevTile = tile

			patch, err := ImageTokens(gpt41Mini, w, h, DetailHigh)
			require.NoError(t, err)
			assert.LessOrEqual(t, patch, ceilEps(OpenAIPatchBudget*1.62), "patch %dx%d over the cap", w, h)
			if ceilDiv(w, 32)*ceilDiv(h, 32) <= OpenAIPatchBudget {
				assert.GreaterOrEqual(t, patch, prevPatch, "patch %dx%d", w, h)
			}
			prevPatch = patch

			anth, err := ImageTokens(anthropic, w, h, "")
			require.NoError(t, err)
			assert.GreaterOrEqual(t, anth, prevAnth-3, "anthropic %dx%d", w, h)
			prevAnth = max(prevAnth, anth)
		}
	}
	// Gemini's crop unit grows with the short side; at a fixed short side the
	// count never falls as the long side grows.
	for _, short := range []int{385, 540, 768, 1000} {
		prev := 0
		for long := short; long <= 8000; long += 97 {
			got, err := ImageTokens(gemini, long, short, "")
			require.NoError(t, err)
			assert.GreaterOrEqual(t, got, prev, "gemini %dx%d", long, short)
			prev = got
		}
	}
}

func TestImageTokensErrors(t *testing.T) {
	cases := []struct {
		name   string
		rule   ImageRule
		w, h   int
		detail Detail
		want   string
	}{
		{"zero width", gpt4o, 0, 10, "", "image size 0x10"},
		{"negative height", gpt4o, 10, -1, "", "image size 10x-1"},
		{"too big", gpt4o, MaxImageSide + 1, 10, "", "each side must be"},
		{"bad detail", gpt4o, 10, 10, "ultra", `detail "ultra"`},
		{"tile missing params", ImageRule{Kind: ImageOpenAITile}, 10, 10, "", "image_base_tokens"},
		{"patch missing multiplier", ImageRule{Kind: ImageOpenAIPatch}, 10, 10, "", "image_patch_multiplier"},
		{"patch NaN multiplier", ImageRule{Kind: ImageOpenAIPatch, PatchMultiplier: math.NaN()}, 10, 10, "", "image_patch_multiplier"},
		{"fixed missing base", ImageRule{Kind: ImageFixed}, 10, 10, "", "image_base_tokens"},
		{"none", ImageRule{Kind: ImageNone}, 10, 10, "", "does not accept images"},
		{"unknown", ImageRule{Kind: "mystery"}, 10, 10, "", `image_tokens "mystery"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ImageTokens(tc.rule, tc.w, tc.h, tc.detail)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := ImageTokens(ImageRule{Kind: ImageNone}, 10, 10, "")
	assert.ErrorIs(t, err, ErrNoImages)
}

func TestMediaTokens(t *testing.T) {
	cases := []struct {
		name       string
		secs, rate float64
		want       int
	}{
		{"gemini audio 1 min", 60, GeminiAudioTokensPerSecond, 1920},
		{"gemini video 10 s", 10, GeminiVideoTokensPerSecond, 2630},
		{"gemini video 1 h", 3600, GeminiVideoTokensPerSecond, 946800},
		{"fraction rounds up", 0.5, 263, 132},
		{"zero seconds", 0, 32, 0},
		{"exact product not bumped", 0.1, 30, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MediaTokens(tc.secs, tc.rate)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	for _, bad := range [][2]float64{{-1, 32}, {math.NaN(), 32}, {math.Inf(1), 32}, {10, 0}, {10, -5}, {10, math.NaN()}, {1e12, 263}} {
		_, err := MediaTokens(bad[0], bad[1])
		assert.Error(t, err, "%v", bad)
	}
}

func TestPDFTokens(t *testing.T) {
	c, err := PDFTokens(gemini, 10)
	require.NoError(t, err)
	assert.Equal(t, 2580, c.Tokens)
	assert.False(t, c.Exact)

	c, err = PDFTokens(anthropic, 4)
	require.NoError(t, err)
	assert.Equal(t, 9000, c.Tokens)
	assert.Equal(t, 1500*4, c.Low(), "band covers the documented 1,500 tokens/page")
	assert.Equal(t, 3000*4, c.High(), "band covers the documented 3,000 tokens/page")

	// OpenAI: text + a 1700x2200 page image; on gpt-4o that image is
	// 768x994 -> 2x2 tiles -> 765 tokens.
	c, err = PDFTokens(gpt4o, 2)
	require.NoError(t, err)
	assert.Equal(t, 2*(PDFPageTextTokens+765), c.Tokens)
	assert.Equal(t, 0.5, c.RelErr)

	c, err = PDFTokens(gpt41Mini, 1)
	require.NoError(t, err)
	patches := openAIPatches(PDFPageWidth, PDFPageHeight)
	assert.Equal(t, PDFPageTextTokens+ceilEps(float64(patches)*1.62), c.Tokens)

	c, err = PDFTokens(gemini, 0)
	require.NoError(t, err)
	assert.Zero(t, c.Tokens)

	_, err = PDFTokens(ImageRule{Kind: ImageNone}, 1)
	assert.ErrorIs(t, err, ErrNoImages)
	_, err = PDFTokens(gemini, -1)
	assert.Error(t, err)
	_, err = PDFTokens(ImageRule{Kind: "x"}, 1)
	assert.Error(t, err)
}

func FuzzImageTokens(f *testing.F) {
	f.Add(1024, 1024, 0, "high")
	f.Add(1800, 2400, 1, "")
	f.Add(1, 65536, 2, "low")
	f.Add(-5, 0, 3, "auto")
	f.Fuzz(func(t *testing.T, w, h, kind int, detail string) {
		rules := []ImageRule{gpt4o, gpt41Mini, anthropic, gemini, {Kind: ImageNone}, {Kind: ImageFixed, BaseTokens: 258}}
		rule := rules[((kind%len(rules))+len(rules))%len(rules)]
		n, err := ImageTokens(rule, w, h, Detail(detail))
		if err == nil && n <= 0 {
			t.Fatalf("%+v %dx%d: %d tokens without error", rule, w, h, n)
		}
	})
}
