package catalog

import (
	"maps"
	"slices"
	"strconv"
	"time"
)

// Rate is one price. A Rate that is not Known means the catalog did not
// state it: the component is unknown or not offered. It is never read as 0;
// a provider that really charges nothing has Known true and Value 0.
type Rate struct {
	Value float64 // USD per million tokens, or per unit for per-unit fees
	Known bool
}

// RateOf returns a known rate of v.
func RateOf(v float64) Rate { return Rate{Value: v, Known: true} }

// Get returns the value and whether it is known.
func (r Rate) Get() (float64, bool) { return r.Value, r.Known }

// String formats the rate as a number, or "unknown".
func (r Rate) String() string {
	if !r.Known {
		return "unknown"
	}
	return strconv.FormatFloat(r.Value, 'g', -1, 64)
}

// Prices are the rates of one way of calling a model: its base prices, a
// long-context tier or a service tier. Token rates are USD per million
// tokens; the others are USD per unit.
type Prices struct {
	InputPerMTok        Rate // uncached input text tokens
	OutputPerMTok       Rate // output text tokens
	CacheReadPerMTok    Rate // cached input read
	CacheWritePerMTok   Rate // cache write, 5-minute TTL
	CacheWrite1hPerMTok Rate // cache write, 1-hour TTL
	ReasoningPerMTok    Rate // reasoning tokens; unknown = billed as output
	AudioInputPerMTok   Rate // audio input tokens
	AudioOutputPerMTok  Rate // audio output tokens

	ImageUSD               Rate // per input image, where billed per image
	RequestUSD             Rate // fixed fee per request
	InputPerSecondUSD      Rate // per second of billed time (generic per-second billing)
	AudioInputPerSecondUSD Rate // per second of input audio, where billed per second
	VideoInputPerSecondUSD Rate // per second of input video, where billed per second
}

// Tier is a long-context price tier: when a call's whole prompt exceeds
// AboveTokens, every token of the call is billed at the tier's rates.
// A rate the tier leaves unknown falls back to the base rate (see [Price]).
type Tier struct {
	AboveTokens int64
	Prices
}

// Service tier names accepted under [model.service_tier.NAME].
const (
	ServiceBatch    = "batch"
	ServiceFlex     = "flex"
	ServicePriority = "priority"
)

// TaskKinds are the task kinds the project scores models on. A catalog may
// carry other kinds too; "default" is used when a kind has no score.
var TaskKinds = []string{
	"default", "classification", "extraction", "summarization", "writing",
	"code", "reasoning", "math", "vision", "long_context",
}

// Modality values accepted in modalities / output_modalities.
var (
	InputModalities  = []string{"text", "image", "audio", "video", "document"}
	OutputModalities = []string{"text", "image", "audio"}
)

// Model is one catalog entry. Models returned by a [Catalog] are shared:
// treat them as read-only (use [Model.Clone] to modify one).
type Model struct {
	ID          string // "provider/name", unique in a catalog
	Provider    string
	APIName     string // name sent to the provider's API
	DisplayName string
	Source      string    // where the prices came from
	AsOf        time.Time // date the prices were read; zero when unknown
	Deprecated  bool

	Prices                          // base prices
	BatchDiscount Rate              // multiplier on token prices for batch calls (0.5 = half)
	Tiers         []Tier            // long-context tiers, ascending AboveTokens
	ServiceTiers  map[string]Prices // "batch", "flex", "priority"

	ContextWindow    int64 // tokens; 0 = unknown
	MaxOutputTokens  int64 // tokens; 0 = unknown
	Modalities       []string
	OutputModalities []string
	Tools            bool // function / tool calling
	JSONMode         bool // JSON mode / structured outputs
	Reasoning        bool // emits reasoning tokens
	PromptCaching    bool // supports prompt caching

	TTFTSeconds           float64 // typical time to first token; 0 = unknown
	OutputTokensPerSecond float64 // typical output speed; 0 = unknown

	Tokenizer            string  // "o200k_base", "cl100k_base" or "" (estimate)
	TokenRatio           float64 // provider tokens per o200k token; default 1
	ImageTokens          string  // image token rule; "" = unknown
	ImageBaseTokens      int64
	ImageTileTokens      int64
	ImagePatchMultiplier float64
	AudioTokensPerSecond float64
	VideoTokensPerSecond float64

	Quality       map[string]float64 // task kind -> 0..1
	QualitySource map[string]string  // task kind -> citation

	set fieldSet // keys the loading file wrote (for Merge)
}

// IsSet reports whether the file the model came from wrote the TOML key
// (e.g. "output_per_mtok", "quality", "tier"); LiteLLM imports report the
// TOML key each LiteLLM key was mapped to. Merged models report the union.
func (m *Model) IsSet(key string) bool {
	i, ok := fieldIndex[key]
	return ok && m.set.has(i)
}

// QualityFor returns the model's score for the task kind, falling back to
// its "default" score. ok is false when neither is given.
func (m *Model) QualityFor(kind string) (q float64, ok bool) {
	if q, ok := m.Quality[kind]; ok {
		return q, true
	}
	q, ok = m.Quality["default"]
	return q, ok
}

// HasModality reports whether the model accepts the input modality.
func (m *Model) HasModality(mod string) bool { return slices.Contains(m.Modalities, mod) }

// Clone returns a deep copy of m.
func (m *Model) Clone() *Model {
	c := *m
	c.Tiers = slices.Clone(m.Tiers)
	c.ServiceTiers = maps.Clone(m.ServiceTiers)
	c.Modalities = slices.Clone(m.Modalities)
	c.OutputModalities = slices.Clone(m.OutputModalities)
	c.Quality = maps.Clone(m.Quality)
	c.QualitySource = maps.Clone(m.QualitySource)
	return &c
}

// fieldSet records which keys of fieldKeys a file wrote.
type fieldSet uint64

func (s fieldSet) has(i int) bool { return s&(1<<uint(i)) != 0 }
func (s *fieldSet) add(i int)     { *s |= 1 << uint(i) }

// priceKey describes one rate key shared by the base prices, tiers and
// service tiers.
type priceKey struct {
	key  string
	unit string // "mtok", "image", "request", "second"
	rate func(p *Prices) *Rate
}

var priceKeys = []priceKey{
	{"input_per_mtok", "mtok", func(p *Prices) *Rate { return &p.InputPerMTok }},
	{"output_per_mtok", "mtok", func(p *Prices) *Rate { return &p.OutputPerMTok }},
	{"cache_read_per_mtok", "mtok", func(p *Prices) *Rate { return &p.CacheReadPerMTok }},
	{"cache_write_per_mtok", "mtok", func(p *Prices) *Rate { return &p.CacheWritePerMTok }},
	{"cache_write_1h_per_mtok", "mtok", func(p *Prices) *Rate { return &p.CacheWrite1hPerMTok }},
	{"reasoning_per_mtok", "mtok", func(p *Prices) *Rate { return &p.ReasoningPerMTok }},
	{"audio_input_per_mtok", "mtok", func(p *Prices) *Rate { return &p.AudioInputPerMTok }},
	{"audio_output_per_mtok", "mtok", func(p *Prices) *Rate { return &p.AudioOutputPerMTok }},
	{"image_per_image_usd", "image", func(p *Prices) *Rate { return &p.ImageUSD }},
	{"per_request_usd", "request", func(p *Prices) *Rate { return &p.RequestUSD }},
	{"input_per_second_usd", "second", func(p *Prices) *Rate { return &p.InputPerSecondUSD }},
	{"audio_input_per_second_usd", "second", func(p *Prices) *Rate { return &p.AudioInputPerSecondUSD }},
	{"video_input_per_second_usd", "second", func(p *Prices) *Rate { return &p.VideoInputPerSecondUSD }},
}

// mergePrices copies every known rate of src into dst.
func mergePrices(dst *Prices, src *Prices) {
	for _, k := range priceKeys {
		if r := k.rate(src); r.Known {
			*k.rate(dst) = *r
		}
	}
}

// fieldKeys lists every top-level model key in the TOML format, in the
// order README.md documents them. Their index is their bit in fieldSet.
var fieldKeys = func() []string {
	keys := []string{
		"id", "provider", "api_name", "display_name", "source", "as_of", "deprecated",
	}
	for _, k := range priceKeys {
		keys = append(keys, k.key)
	}
	keys = append(keys,
		"batch_discount", "tier", "service_tier",
		"context_window", "max_output_tokens", "modalities", "output_modalities",
		"tools", "json_mode", "reasoning", "prompt_caching",
		"ttft_s", "output_tokens_per_s",
		"tokenizer", "token_ratio", "image_tokens", "image_base_tokens",
		"image_tile_tokens", "image_patch_multiplier", "audio_tokens_per_s",
		"video_tokens_per_s", "quality", "quality_source",
	)
	return keys
}()

var fieldIndex = func() map[string]int {
	m := make(map[string]int, len(fieldKeys))
	for i, k := range fieldKeys {
		m[k] = i
	}
	if len(fieldKeys) > 64 {
		panic("catalog: more than 64 model keys; widen fieldSet")
	}
	return m
}()

// mark records that key was written.
func (m *Model) mark(key string) {
	if i, ok := fieldIndex[key]; ok {
		m.set.add(i)
	}
}

// overlay copies into dst every field src's file wrote. Rates merge one by
// one; service tiers merge per tier and rate; quality and quality_source
// merge per task kind; tiers and modality lists are replaced whole.
func overlay(dst, src *Model) {
	for i, key := range fieldKeys {
		if !src.set.has(i) {
			continue
		}
		dst.set.add(i)
		switch key {
		case "id":
			dst.ID = src.ID
		case "provider":
			dst.Provider = src.Provider
		case "api_name":
			dst.APIName = src.APIName
		case "display_name":
			dst.DisplayName = src.DisplayName
		case "source":
			dst.Source = src.Source
		case "as_of":
			dst.AsOf = src.AsOf
		case "deprecated":
			dst.Deprecated = src.Deprecated
		case "batch_discount":
			dst.BatchDiscount = src.BatchDiscount
		case "tier":
			dst.Tiers = slices.Clone(src.Tiers)
		case "service_tier":
			if dst.ServiceTiers == nil {
				dst.ServiceTiers = map[string]Prices{}
			}
			for name, p := range src.ServiceTiers {
				cur := dst.ServiceTiers[name]
				mergePrices(&cur, &p)
				dst.ServiceTiers[name] = cur
			}
		case "context_window":
			dst.ContextWindow = src.ContextWindow
		case "max_output_tokens":
			dst.MaxOutputTokens = src.MaxOutputTokens
		case "modalities":
			dst.Modalities = slices.Clone(src.Modalities)
		case "output_modalities":
			dst.OutputModalities = slices.Clone(src.OutputModalities)
		case "tools":
			dst.Tools = src.Tools
		case "json_mode":
			dst.JSONMode = src.JSONMode
		case "reasoning":
			dst.Reasoning = src.Reasoning
		case "prompt_caching":
			dst.PromptCaching = src.PromptCaching
		case "ttft_s":
			dst.TTFTSeconds = src.TTFTSeconds
		case "output_tokens_per_s":
			dst.OutputTokensPerSecond = src.OutputTokensPerSecond
		case "tokenizer":
			dst.Tokenizer = src.Tokenizer
		case "token_ratio":
			dst.TokenRatio = src.TokenRatio
		case "image_tokens":
			dst.ImageTokens = src.ImageTokens
		case "image_base_tokens":
			dst.ImageBaseTokens = src.ImageBaseTokens
		case "image_tile_tokens":
			dst.ImageTileTokens = src.ImageTileTokens
		case "image_patch_multiplier":
			dst.ImagePatchMultiplier = src.ImagePatchMultiplier
		case "audio_tokens_per_s":
			dst.AudioTokensPerSecond = src.AudioTokensPerSecond
		case "video_tokens_per_s":
			dst.VideoTokensPerSecond = src.VideoTokensPerSecond
		case "quality":
			if dst.Quality == nil {
				dst.Quality = map[string]float64{}
			}
			maps.Copy(dst.Quality, src.Quality)
		case "quality_source":
			if dst.QualitySource == nil {
				dst.QualitySource = map[string]string{}
			}
			maps.Copy(dst.QualitySource, src.QualitySource)
		default:
			for _, k := range priceKeys {
				if k.key == key {
					*k.rate(&dst.Prices) = *k.rate(&src.Prices)
				}
			}
		}
	}
}
