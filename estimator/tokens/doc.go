// Package tokens counts input tokens: exactly where a provider publishes its
// tokenizer, and by each provider's documented rule for images, audio, video
// and PDF pages.
//
// # Boundary
//
// This package knows tokenizers and token rules, not models or prices. It does
// not import the catalog: the estimator maps catalog fields onto the small
// parameter types here (tokenizer -> Encoding or TextRule.Encoding,
// token_ratio -> TextRule.Ratio, image_tokens / image_base_tokens /
// image_tile_tokens / image_patch_multiplier -> ImageRule, audio_tokens_per_s
// and video_tokens_per_s -> MediaTokens' rate). It does no network I/O: the
// OpenAI vocabularies are embedded by github.com/tiktoken-go/tokenizer and
// each is loaded once per process (see Preload).
//
// # Text
//
// Count is exact for o200k_base (gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o-series)
// and cl100k_base (gpt-4, gpt-3.5-turbo); EncodingForModel maps a model name
// to its encoding. One known deviation from tiktoken: a whitespace run of
// newline, spaces or tabs, newline (a blank line holding indentation) counts
// about one token more, because of a bug in the regexp matcher generated for
// tiktoken-go v0.10.0 (pinned by TestKnownDeviationBlankLineWithSpaces).
// That library also drops the DEL character (U+007F); Count adds it back as
// the single-byte token it always is in both vocabularies.
//
// CountChat adds OpenAI's chat framing as given in the OpenAI cookbook "How to
// count tokens with tiktoken": 3 tokens per message, 1 per name, 3 to prime
// the reply. It reproduces the cookbook's API-verified totals (129 tokens on
// cl100k_base, 124 on o200k_base).
//
// Other providers publish no local tokenizer, so their counts are estimates:
// ceil(o200k_base count × ratio) with a relative ± band (TokenCount.RelErr;
// exact counts have 0). A model's own token_ratio wins; otherwise
// RuleForProvider supplies the default below (DefaultRatios exposes the
// table), and an unknown provider gets ratio 1.0 ± 20%.
//
//	provider   ratio  ±band  basis
//	anthropic  1.20   15%    VentureBeat's May 2025 measurement of Claude 3.5 Sonnet
//	                         against GPT-4o (o200k_base): +16% English, +21% math,
//	                         +30% Python. Anthropic's token-counting docs say the
//	                         tokenizer of Claude Opus 4.7 and later yields ~30% more
//	                         tokens than earlier models: give those models
//	                         token_ratio ≈ 1.55 in the catalog.
//	gemini     1.00   20%    Gemini API docs ("Understand and count tokens"): about
//	                         4 characters per token, 100 tokens ≈ 60-80 English words,
//	                         the same order as o200k_base on English prose.
//	deepseek   1.10   25%    DeepSeek API docs ("Token & Token Usage"): 1 English
//	                         character ≈ 0.3 token, 1 Chinese character ≈ 0.6 token;
//	                         a rough guide, hence the wide band.
//	mistral    1.10   20%    Tekken (tiktoken-style BPE, ~131k vocabulary) is smaller
//	                         than o200k_base's 200k; no published ratio.
//	qwen       1.10   20%    byte-level BPE, ~151k vocabulary; no published ratio.
//	llama      1.05   15%    Llama 3 tokenizer = cl100k_base + 28k tokens (128k),
//	                         close to o200k_base on English.
//	xai        1.10   20%    no published tokenizer or ratio.
//
// The unpublished entries (mistral, qwen, llama, xai) are engineering
// defaults from vocabulary size; replace them with measured token_ratio values
// per model when measurements exist.
//
// # Images
//
// ImageTokens applies the rule named by ImageRule.Kind:
//
//   - openai-tile (OpenAI vision guide): detail low costs BaseTokens only.
//     High: fit within 2048x2048, then shrink so the shortest side is 768 px
//     (never enlarge), round to whole pixels (half to even, which matches
//     observed billing at 2049x513 vs 2050x513), count 512 px tiles; tokens =
//     BaseTokens + tiles × TileTokens. Detail auto is counted as high: OpenAI
//     does not say what auto picks, and a budget must not be underestimated.
//     Worked examples: gpt-4o 1024x1024 high 765, 2048x4096 high 1105, low 85.
//   - openai-patch (same guide): cover with 32 px patches; above 1536 patches,
//     scale by sqrt(1536·32²/(w·h)), shrink further so the width is a whole
//     number of patches, recount, cap at 1536; tokens = ceil(patches ×
//     PatchMultiplier). Worked examples: 1024x1024 -> 1024 patches,
//     1800x2400 -> 1452. Detail is ignored (no low-detail rule documented).
//   - anthropic (Anthropic vision guide): scale down, keeping the aspect
//     ratio, until the long edge is ≤ 1568 px and the image is ≤ ~1600
//     tokens, then tokens = ceil(w·h/750). The documented table (200x200 ≈ 54,
//     1000x1000 ≈ 1334, 1092x1092 ≈ 1590) is reproduced. Newer Claude models
//     are documented elsewhere with 28 px patches and larger limits; that rule
//     is not implemented here.
//   - gemini (Gemini API docs, image token calculation): 258 tokens when both
//     sides are ≤ 384 px; otherwise crop unit = floor(min(w,h)/1.5) and tokens =
//     258 × ceil(w/unit) × ceil(h/unit) (documented example: 960x540 -> unit
//     360 -> 6 tiles -> 1548). Gemini 3's media_resolution levels charge a
//     fixed count per image instead: use the fixed kind.
//   - fixed: BaseTokens per image.
//
// # Audio, video, documents
//
// MediaTokens is ceil(seconds × rate); Gemini documents 32 tokens/s for audio
// and 263 tokens/s for video.
//
// PDFTokens estimates per page. Gemini documents 258 tokens per page (±10%
// here, as Gemini 3 resolutions differ). Anthropic documents "1,500-3,000
// tokens per page depending on content density", each page being sent as
// extracted text plus a page image: 2250 per page, ±1/3 so the band is the
// documented range. OpenAI's file-inputs guide says a PDF is sent as extracted
// text plus an image of each page but gives no per-page figure: the estimate
// is PDFPageTextTokens (500, a typical page of prose) plus one high-detail
// image of a US Letter page at 200 dpi (1700x2200) under the model's image
// rule, ±50%.
package tokens
