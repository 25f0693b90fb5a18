package tokens

import (
	"errors"
	"fmt"
	"math"
)

// ImageKind names a provider's documented image-token rule. The values match
// the catalog's `image_tokens` key.
type ImageKind string

const (
	// ImageNone marks a model that does not accept images.
	ImageNone ImageKind = "none"
	// ImageOpenAITile is OpenAI's 512px-tile rule (gpt-4o, gpt-4.1, o-series,
	// gpt-4o-mini with its own base/tile numbers).
	ImageOpenAITile ImageKind = "openai-tile"
	// ImageOpenAIPatch is OpenAI's 32px-patch rule with a per-model multiplier
	// (gpt-4.1-mini, gpt-4.1-nano, o4-mini, gpt-5-mini, ...).
	ImageOpenAIPatch ImageKind = "openai-patch"
	// ImageAnthropic is Anthropic's area rule: tokens = ceil(w*h/750) after
	// downscaling to a 1568px long edge and about 1600 tokens.
	ImageAnthropic ImageKind = "anthropic"
	// ImageGemini is Gemini's rule: 258 tokens up to 384x384, otherwise 258 per
	// tile of a crop-unit grid.
	ImageGemini ImageKind = "gemini"
	// ImageFixed charges BaseTokens per image whatever its size (e.g. Gemini 3
	// media_resolution levels). Not a catalog value yet.
	ImageFixed ImageKind = "fixed"
)

// ImageRule is the image-token rule of one model, filled from the catalog
// keys image_tokens, image_base_tokens, image_tile_tokens and
// image_patch_multiplier.
type ImageRule struct {
	Kind            ImageKind
	BaseTokens      int     // openai-tile: tokens always charged (gpt-4o 85); fixed: tokens per image
	TileTokens      int     // openai-tile: tokens per 512px tile (gpt-4o 170)
	PatchMultiplier float64 // openai-patch: tokens per patch (gpt-4.1-mini 1.62)
}

// Detail is OpenAI's image detail parameter.
type Detail string

const (
	// DetailAuto lets the API choose. This package counts it as DetailHigh:
	// OpenAI does not document what auto picks for a given image, and a
	// budget check must not underestimate.
	DetailAuto Detail = "auto"
	// DetailLow charges only the base tokens on tile models.
	DetailLow Detail = "low"
	// DetailHigh tiles the image.
	DetailHigh Detail = "high"
)

// Documented constants of the image rules.
const (
	OpenAITileSize      = 512  // px, side of one OpenAI tile
	OpenAIFitBox        = 2048 // px, tile models first fit the image in this square
	OpenAIShortSide     = 768  // px, then shrink the shortest side to this
	OpenAIPatchSize     = 32   // px, side of one OpenAI patch
	OpenAIPatchBudget   = 1536 // patches, cap of patch models
	AnthropicMaxEdge    = 1568 // px, longest edge before Anthropic downscales
	AnthropicMaxTokens  = 1600 // about this many tokens before Anthropic downscales
	AnthropicPixelsPerT = 750  // px per token: tokens = w*h/750
	GeminiImageTokens   = 258  // tokens per small image or per tile
	GeminiSmallSide     = 384  // px, both sides at most this: one 258-token image
	MaxImageSide        = 1 << 16
)

// ErrNoImages is returned (wrapped) when the rule says the model takes no
// images (or documents).
var ErrNoImages = errors.New("model does not accept images")

// ImageTokens returns the input tokens one image of w x h pixels costs under
// rule. detail matters only for OpenAI tile models ("" means auto). Patch
// models ignore detail: OpenAI documents no low-detail rule for them.
func ImageTokens(rule ImageRule, w, h int, detail Detail) (int, error) {
	if w <= 0 || h <= 0 || w > MaxImageSide || h > MaxImageSide {
		return 0, fmt.Errorf("tokens: image size %dx%d: each side must be 1..%d px", w, h, MaxImageSide)
	}
	switch detail {
	case "", DetailAuto, DetailLow, DetailHigh:
	default:
		return 0, fmt.Errorf("tokens: image detail %q: want %q, %q or %q", detail, DetailLow, DetailHigh, DetailAuto)
	}
	switch rule.Kind {
	case ImageOpenAITile:
		if rule.BaseTokens <= 0 || rule.TileTokens <= 0 {
			return 0, fmt.Errorf("tokens: openai-tile rule needs image_base_tokens > 0 and image_tile_tokens > 0 (got %d, %d)", rule.BaseTokens, rule.TileTokens)
		}
		if detail == DetailLow {
			return rule.BaseTokens, nil
		}
		cols, rows := openAITiles(w, h)
		return rule.BaseTokens + cols*rows*rule.TileTokens, nil
	case ImageOpenAIPatch:
		m := rule.PatchMultiplier
		if !(m > 0) || math.IsInf(m, 0) {
			return 0, fmt.Errorf("tokens: openai-patch rule needs image_patch_multiplier > 0 (got %v)", m)
		}
		return ceilEps(float64(openAIPatches(w, h)) * m), nil
	case ImageAnthropic:
		return anthropicImageTokens(w, h), nil
	case ImageGemini:
		return geminiImageTokens(w, h), nil
	case ImageFixed:
		if rule.BaseTokens <= 0 {
			return 0, fmt.Errorf("tokens: fixed image rule needs image_base_tokens > 0 (got %d)", rule.BaseTokens)
		}
		return rule.BaseTokens, nil
	case ImageNone, "":
		return 0, fmt.Errorf("tokens: %w (image_tokens = %q)", ErrNoImages, rule.Kind)
	default:
		return 0, fmt.Errorf("tokens: image_tokens %q: unknown rule; want one of openai-tile, openai-patch, anthropic, gemini, fixed, none", rule.Kind)
	}
}

// ceilEps is ceil that ignores float noise just above an integer.
func ceilEps(x float64) int {
	return int(math.Ceil(x - 1e-9))
}

// openAITiles returns the 512px tile grid of an image at high detail: fit in
// 2048x2048, then shrink so the shortest side is 768 (never enlarge), round to
// whole pixels (half to even, which matches observed billing at 2049x513 and
// 2050x513), and cover with 512px tiles.
func openAITiles(w, h int) (cols, rows int) {
	fw, fh := float64(w), float64(h)
	if long := math.Max(fw, fh); long > OpenAIFitBox {
		s := OpenAIFitBox / long
		fw, fh = fw*s, fh*s
	}
	if short := math.Min(fw, fh); short > OpenAIShortSide {
		s := OpenAIShortSide / short
		fw, fh = fw*s, fh*s
	}
	pw := math.Max(1, math.RoundToEven(fw))
	ph := math.Max(1, math.RoundToEven(fh))
	return int(math.Ceil(pw / OpenAITileSize)), int(math.Ceil(ph / OpenAITileSize))
}

// openAIPatches returns the 32px patch count of an image on a patch model, as
// OpenAI's vision guide documents it: cover with patches; if more than 1536,
// scale by sqrt(1536*32²/(w*h)), then shrink further so the width is a whole
// number of patches, cover again, and cap at 1536.
func openAIPatches(w, h int) int {
	const p = OpenAIPatchSize
	n := ceilDiv(w, p) * ceilDiv(h, p)
	if n <= OpenAIPatchBudget {
		return n
	}
	fw, fh := float64(w), float64(h)
	s := math.Sqrt(OpenAIPatchBudget * p * p / (fw * fh))
	if pw := fw * s / p; pw >= 1 {
		s *= math.Floor(pw) / pw
	}
	n = max(1, ceilEps(fw*s/p)) * max(1, ceilEps(fh*s/p))
	return min(n, OpenAIPatchBudget)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// anthropicImageTokens scales the image down (keeping its aspect ratio) until
// its long edge is at most 1568 px and it costs at most about 1600 tokens,
// then charges ceil(w*h/750).
func anthropicImageTokens(w, h int) int {
	fw, fh := float64(w), float64(h)
	s := 1.0
	if long := math.Max(fw, fh); long > AnthropicMaxEdge {
		s = AnthropicMaxEdge / long
	}
	if area := fw * fh * s * s; area > AnthropicMaxTokens*AnthropicPixelsPerT {
		s = math.Sqrt(AnthropicMaxTokens * AnthropicPixelsPerT / (fw * fh))
	}
	nw := math.Max(1, math.Floor(fw*s+1e-9))
	nh := math.Max(1, math.Floor(fh*s+1e-9))
	return int(math.Ceil(nw * nh / AnthropicPixelsPerT))
}

// geminiImageTokens: 258 when both sides are at most 384 px; otherwise the
// image is cut into square crops of side floor(min(w,h)/1.5) (Gemini's worked
// example: 960x540 has crop unit 360 and 3x2 = 6 tiles), each 258 tokens.
func geminiImageTokens(w, h int) int {
	if w <= GeminiSmallSide && h <= GeminiSmallSide {
		return GeminiImageTokens
	}
	unit := max(1, min(w, h)*2/3)
	return ceilDiv(w, unit) * ceilDiv(h, unit) * GeminiImageTokens
}

// Documented per-second rates of Gemini media input.
const (
	GeminiAudioTokensPerSecond = 32
	GeminiVideoTokensPerSecond = 263
)

// MediaTokens returns the tokens of seconds of audio or video at a rate of
// tokensPerSecond (the catalog's audio_tokens_per_s / video_tokens_per_s),
// rounded up.
func MediaTokens(seconds, tokensPerSecond float64) (int, error) {
	if seconds < 0 || math.IsNaN(seconds) || math.IsInf(seconds, 0) {
		return 0, fmt.Errorf("tokens: media duration %v s: must be a finite number >= 0", seconds)
	}
	if !(tokensPerSecond > 0) || math.IsInf(tokensPerSecond, 0) {
		return 0, fmt.Errorf("tokens: media rate %v tokens/s: must be a finite number > 0 (set audio_tokens_per_s / video_tokens_per_s)", tokensPerSecond)
	}
	t := seconds * tokensPerSecond
	if t > math.MaxInt32 {
		return 0, fmt.Errorf("tokens: %v s at %v tokens/s is beyond any context window", seconds, tokensPerSecond)
	}
	return ceilEps(t), nil
}

// Per-page PDF figures. See doc.go for their sources.
const (
	// GeminiPDFPageTokens is Gemini's documented cost of one PDF page.
	GeminiPDFPageTokens = 258
	// AnthropicPDFPageTokens is the midpoint of Anthropic's documented
	// "1,500-3,000 tokens per page" (text plus the page image).
	AnthropicPDFPageTokens = 2250
	// PDFPageTextTokens is the assumed extracted text of one typical page
	// (about 350-400 words) for OpenAI, which sends text plus a page image.
	PDFPageTextTokens = 500
	// PDFPageWidth and PDFPageHeight are the pixels of the page image assumed
	// for OpenAI: US Letter at 200 dpi.
	PDFPageWidth  = 1700
	PDFPageHeight = 2200
)

// PDFTokens estimates the input tokens of a PDF of the given number of pages
// for a model whose image rule is rule: Gemini 258 per page (±10%), Anthropic
// 2250 per page (±1/3, the documented 1,500-3,000 range), OpenAI extracted
// text plus one high-detail page image per page (±50%), fixed: BaseTokens per
// page (±10%).
func PDFTokens(rule ImageRule, pages int) (TokenCount, error) {
	if pages < 0 || pages > 1_000_000 {
		return TokenCount{}, fmt.Errorf("tokens: PDF page count %d: must be 0..1000000", pages)
	}
	var perPage int
	var relErr float64
	switch rule.Kind {
	case ImageGemini:
		perPage, relErr = GeminiPDFPageTokens, 0.10
	case ImageAnthropic:
		perPage, relErr = AnthropicPDFPageTokens, 1.0/3
	case ImageOpenAITile, ImageOpenAIPatch:
		img, err := ImageTokens(rule, PDFPageWidth, PDFPageHeight, DetailHigh)
		if err != nil {
			return TokenCount{}, err
		}
		perPage, relErr = PDFPageTextTokens+img, 0.50
	case ImageFixed:
		if rule.BaseTokens <= 0 {
			return TokenCount{}, fmt.Errorf("tokens: fixed image rule needs image_base_tokens > 0 (got %d)", rule.BaseTokens)
		}
		perPage, relErr = rule.BaseTokens, 0.10
	case ImageNone, "":
		return TokenCount{}, fmt.Errorf("tokens: PDF input: %w (image_tokens = %q)", ErrNoImages, rule.Kind)
	default:
		return TokenCount{}, fmt.Errorf("tokens: image_tokens %q: unknown rule; want one of openai-tile, openai-patch, anthropic, gemini, fixed, none", rule.Kind)
	}
	return TokenCount{Tokens: perPage * pages, RelErr: relErr}, nil
}
