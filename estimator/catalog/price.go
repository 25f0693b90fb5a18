package catalog

import (
	"fmt"
	"math"
)

// Usage is what one call consumed, split so that every token is counted in
// exactly one field. Provider usage reports overlap (OpenAI's prompt_tokens
// includes cached tokens; Anthropic's input_tokens excludes them): convert
// them to these disjoint counts before pricing.
type Usage struct {
	InputTokens        int64 // uncached input text tokens (images billed as tokens included); excludes cache reads, cache writes and audio
	CacheReadTokens    int64 // input tokens read from the prompt cache
	CacheWriteTokens   int64 // input tokens written to the cache with the 5-minute TTL
	CacheWrite1hTokens int64 // input tokens written to the cache with the 1-hour TTL
	OutputTokens       int64 // output text tokens, excluding reasoning tokens
	ReasoningTokens    int64 // reasoning ("thinking") tokens
	AudioInputTokens   int64 // input audio tokens
	AudioOutputTokens  int64 // output audio tokens

	Images       int64   // input images billed per image (image_per_image_usd); leave 0 where images are billed as tokens
	Seconds      float64 // seconds billed at input_per_second_usd
	AudioSeconds float64 // seconds of input audio billed at audio_input_per_second_usd (not also as AudioInputTokens)
	VideoSeconds float64 // seconds of input video billed at video_input_per_second_usd

	// Requests is how many times per_request_usd is charged; 0 means 1 (the
	// call itself). Models without per_request_usd charge no request fee.
	Requests int64
	// Batch prices the call through the provider's batch API:
	// [model.service_tier.batch] rates where given, else token rates times
	// batch_discount.
	Batch bool
	// ServiceTier is "" (standard), "flex" or "priority". Batch calls use
	// Batch, not ServiceTier.
	ServiceTier string
}

// PromptTokens returns the tokens that count toward a long-context tier:
// uncached input, cache reads, cache writes and audio input.
func (u Usage) PromptTokens() int64 {
	return u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens + u.CacheWrite1hTokens + u.AudioInputTokens
}

// Component names one priced part of a call.
type Component string

// Components of a call's price.
const (
	CompInput        Component = "input"
	CompCacheRead    Component = "cache_read"
	CompCacheWrite   Component = "cache_write"
	CompCacheWrite1h Component = "cache_write_1h"
	CompOutput       Component = "output"
	CompReasoning    Component = "reasoning"
	CompAudioInput   Component = "audio_input"
	CompAudioOutput  Component = "audio_output"
	CompImage        Component = "image"
	CompRequest      Component = "request"
	CompSeconds      Component = "seconds"
	CompAudioSeconds Component = "audio_seconds"
	CompVideoSeconds Component = "video_seconds"
	CompServiceTier  Component = "service_tier" // the requested service tier itself
)

// Line is one priced component. For token components Quantity is tokens and
// Rate is USD per million tokens; otherwise Rate is USD per unit (image,
// second, request).
type Line struct {
	Component Component
	Quantity  float64
	Rate      float64
	USD       float64
	Note      string // how the rate was chosen when it is not the plain base rate
}

// Unknown is a component that could not be priced.
type Unknown struct {
	Component Component
	Reason    string
}

// Cost is the price of one call.
type Cost struct {
	TotalUSD  float64   // sum of Lines; excludes Unknown components
	Lines     []Line    // one per component with a non-zero quantity, in Component order
	Unknown   []Unknown // components with a quantity but no rate; TotalUSD is then a lower bound
	TierAbove int64     // AboveTokens of the long-context tier applied; 0 = base prices
}

// Complete reports whether every component was priced.
func (c Cost) Complete() bool { return len(c.Unknown) == 0 }

// NanoUSD returns TotalUSD in integer nano-USD, rounded to nearest.
func (c Cost) NanoUSD() int64 { return int64(math.Round(c.TotalUSD * 1e9)) }

type tokenComp struct {
	comp     Component
	key      string // price key
	fallback string // price key used when key has no rate
	fbNote   string
	qty      func(u *Usage) int64
}

var tokenComps = []tokenComp{
	{CompInput, "input_per_mtok", "", "", func(u *Usage) int64 { return u.InputTokens }},
	{CompCacheRead, "cache_read_per_mtok", "input_per_mtok", "no cache-read rate: billed as input", func(u *Usage) int64 { return u.CacheReadTokens }},
	{CompCacheWrite, "cache_write_per_mtok", "input_per_mtok", "no cache-write rate: billed as input", func(u *Usage) int64 { return u.CacheWriteTokens }},
	{CompCacheWrite1h, "cache_write_1h_per_mtok", "", "", func(u *Usage) int64 { return u.CacheWrite1hTokens }},
	{CompOutput, "output_per_mtok", "", "", func(u *Usage) int64 { return u.OutputTokens }},
	{CompReasoning, "reasoning_per_mtok", "output_per_mtok", "billed as output", func(u *Usage) int64 { return u.ReasoningTokens }},
	{CompAudioInput, "audio_input_per_mtok", "", "", func(u *Usage) int64 { return u.AudioInputTokens }},
	{CompAudioOutput, "audio_output_per_mtok", "", "", func(u *Usage) int64 { return u.AudioOutputTokens }},
}

type unitComp struct {
	comp Component
	key  string
	qty  func(u *Usage) float64
}

var unitComps = []unitComp{
	{CompImage, "image_per_image_usd", func(u *Usage) float64 { return float64(u.Images) }},
	{CompSeconds, "input_per_second_usd", func(u *Usage) float64 { return u.Seconds }},
	{CompAudioSeconds, "audio_input_per_second_usd", func(u *Usage) float64 { return u.AudioSeconds }},
	{CompVideoSeconds, "video_input_per_second_usd", func(u *Usage) float64 { return u.VideoSeconds }},
}

func rateOf(p *Prices, key string) Rate {
	if key == "" {
		return Rate{}
	}
	pk, _ := findPriceKey(key)
	return *pk.rate(p)
}

// Price prices one call of m exactly as providers bill it:
//
//   - Long-context tiers: when u.PromptTokens() exceeds a tier's
//     AboveTokens, every token of the call (input, cache, output, reasoning,
//     audio) is billed at the highest such tier's rates. A rate the tier
//     does not state falls back to the base rate (noted on the line).
//   - Cache reads and 5-minute cache writes without their own rate are
//     billed as input; reasoning tokens without their own rate as output.
//     Every other component with a quantity but no rate is listed in
//     Cost.Unknown and left out of TotalUSD — never priced as zero.
//   - Batch: [model.service_tier.batch] rates when given and no
//     long-context tier applies; otherwise the token rates times
//     batch_discount; otherwise unknown. Per-unit fees are not discounted.
//   - Flex / priority: the service tier's rates (cache reads and writes
//     falling back to its input rate, reasoning to its output rate); a
//     component the tier does not price is unknown.
func Price(m *Model, u Usage) Cost {
	var c Cost
	unknown := func(comp Component, format string, args ...any) {
		c.Unknown = append(c.Unknown, Unknown{Component: comp, Reason: fmt.Sprintf(format, args...)})
	}
	var tier *Tier
	prompt := u.PromptTokens()
	for i := range m.Tiers {
		if prompt > m.Tiers[i].AboveTokens && (tier == nil || m.Tiers[i].AboveTokens > tier.AboveTokens) {
			tier = &m.Tiers[i]
		}
	}
	if tier != nil {
		c.TierAbove = tier.AboveTokens
	}

	var svc *Prices
	switch u.ServiceTier {
	case "":
	case ServiceFlex, ServicePriority:
		if u.Batch {
			unknown(CompServiceTier, "batch calls have no %s tier", u.ServiceTier)
			return c
		}
		p, ok := m.ServiceTiers[u.ServiceTier]
		if !ok {
			unknown(CompServiceTier, "%s does not offer the %s service tier", m.ID, u.ServiceTier)
			return c
		}
		svc = &p
	case ServiceBatch:
		unknown(CompServiceTier, `service tier "batch" is requested with Usage.Batch, not ServiceTier`)
		return c
	default:
		unknown(CompServiceTier, "unknown service tier %q (want flex or priority)", u.ServiceTier)
		return c
	}
	var batch *Prices
	if u.Batch {
		if p, ok := m.ServiceTiers[ServiceBatch]; ok {
			batch = &p
		}
	}

	add := func(comp Component, qty, rate, usd float64, note string) {
		c.Lines = append(c.Lines, Line{Component: comp, Quantity: qty, Rate: rate, USD: usd, Note: note})
		c.TotalUSD += usd
	}

	for _, tc := range tokenComps {
		n := tc.qty(&u)
		if n == 0 {
			continue
		}
		if n < 0 {
			unknown(tc.comp, "negative token count %d", n)
			continue
		}
		rate, note, ok := standardRate(m, tier, tc)
		switch {
		case svc != nil:
			rate, note, ok = serviceRate(svc, tc, u.ServiceTier)
		case u.Batch:
			if r, n, found := serviceRate(batch, tc, ServiceBatch); found && tier == nil {
				rate, note = r, n
			} else if ok && m.BatchDiscount.Known {
				rate *= m.BatchDiscount.Value
				note = joinNote(note, fmt.Sprintf("batch discount x%g", m.BatchDiscount.Value))
			} else if ok {
				ok = false
				note = fmt.Sprintf("%s has no batch price for %s", m.ID, tc.comp)
				if tier != nil && batch != nil {
					note += fmt.Sprintf(" above %d prompt tokens (no batch_discount)", tier.AboveTokens)
				}
			}
		}
		if !ok {
			unknown(tc.comp, "%s", note)
			continue
		}
		add(tc.comp, float64(n), rate, float64(n)*rate/1e6, note)
	}

	for _, uc := range unitComps {
		q := uc.qty(&u)
		if q == 0 {
			continue
		}
		if q < 0 || math.IsNaN(q) || math.IsInf(q, 0) {
			unknown(uc.comp, "invalid quantity %g", q)
			continue
		}
		r, note := rateOf(&m.Prices, uc.key), ""
		if tier != nil {
			if tr := rateOf(&tier.Prices, uc.key); tr.Known {
				r = tr
			} else if r.Known {
				note = fmt.Sprintf("tier above %d has no %s rate: base rate used", tier.AboveTokens, uc.key)
			}
		}
		if !r.Known {
			unknown(uc.comp, "%s has no %s", m.ID, uc.key)
			continue
		}
		add(uc.comp, q, r.Value, q*r.Value, note)
	}

	if r := m.RequestUSD; r.Known {
		n := u.Requests
		if n == 0 {
			n = 1
		}
		if n < 0 {
			unknown(CompRequest, "negative request count %d", n)
		} else if r.Value != 0 {
			add(CompRequest, float64(n), r.Value, float64(n)*r.Value, "")
		}
	}
	return c
}

// standardRate resolves a token rate at standard service: the tier's rate,
// the base rate, then the fallback key in the tier and in the base.
func standardRate(m *Model, tier *Tier, tc tokenComp) (rate float64, note string, ok bool) {
	if tier != nil {
		if r := rateOf(&tier.Prices, tc.key); r.Known {
			return r.Value, "", true
		}
	}
	if r := rateOf(&m.Prices, tc.key); r.Known {
		if tier != nil {
			note = fmt.Sprintf("tier above %d has no %s rate: base rate used", tier.AboveTokens, tc.key)
		}
		return r.Value, note, true
	}
	if tc.fallback != "" {
		if tier != nil {
			if r := rateOf(&tier.Prices, tc.fallback); r.Known {
				return r.Value, tc.fbNote, true
			}
		}
		if r := rateOf(&m.Prices, tc.fallback); r.Known {
			note = tc.fbNote
			if tier != nil {
				note = joinNote(note, fmt.Sprintf("tier above %d has no %s rate: base rate used", tier.AboveTokens, tc.fallback))
			}
			return r.Value, note, true
		}
	}
	return 0, fmt.Sprintf("%s has no %s", m.ID, tc.key), false
}

// serviceRate resolves a token rate inside a service tier's prices.
func serviceRate(p *Prices, tc tokenComp, name string) (rate float64, note string, ok bool) {
	if p == nil {
		return 0, "", false
	}
	if r := rateOf(p, tc.key); r.Known {
		return r.Value, name + " rate", true
	}
	if r := rateOf(p, tc.fallback); r.Known {
		return r.Value, joinNote(name+" rate", tc.fbNote), true
	}
	return 0, fmt.Sprintf("service tier %s has no %s", name, tc.key), false
}

func joinNote(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
