package estimator

import (
	"sort"

	"github.com/costwise/costwise/estimator/catalog"
)

// linearPrices are a model's prices as per-token coefficients in each price
// tier, read off catalog.Price itself so that the estimator bills exactly as
// Price does (fallbacks, tiers, per-unit fees) without calling it in the
// Monte Carlo loop.
type linearPrices struct {
	tiers []tierCoef // ascending by above; tiers[0] is the base (above = -1)
}

type tierCoef struct {
	above                                 int64   // the tier applies to prompts > above
	in, cacheRead, cacheWrite, out, audio float64 // USD per token
	unknown                               map[catalog.Component]string
}

// probeStep is the token quantity used to read a coefficient: small enough
// to stay inside a tier, large enough for float precision.
const probeStep = 1000

func probePrices(m *catalog.Model) *linearPrices {
	lp := &linearPrices{}
	thresholds := []int64{-1}
	for _, t := range m.Tiers {
		thresholds = append(thresholds, t.AboveTokens)
	}
	sort.Slice(thresholds, func(a, b int) bool { return thresholds[a] < thresholds[b] })
	for _, above := range thresholds {
		base := catalog.Usage{InputTokens: above + 1}
		b := catalog.Price(m, base)
		tc := tierCoef{above: above, unknown: map[catalog.Component]string{}}
		for _, u := range b.Unknown {
			tc.unknown[u.Component] = u.Reason
		}
		coef := func(comp catalog.Component, add func(u *catalog.Usage)) float64 {
			u := base
			add(&u)
			c := catalog.Price(m, u)
			for _, x := range c.Unknown {
				if x.Component == comp {
					tc.unknown[comp] = x.Reason
					return 0
				}
			}
			return (c.TotalUSD - b.TotalUSD) / probeStep
		}
		tc.in = coef(catalog.CompInput, func(u *catalog.Usage) { u.InputTokens += probeStep })
		tc.cacheRead = coef(catalog.CompCacheRead, func(u *catalog.Usage) { u.CacheReadTokens += probeStep })
		tc.cacheWrite = coef(catalog.CompCacheWrite, func(u *catalog.Usage) { u.CacheWriteTokens += probeStep })
		tc.out = coef(catalog.CompOutput, func(u *catalog.Usage) { u.OutputTokens += probeStep })
		tc.audio = coef(catalog.CompAudioInput, func(u *catalog.Usage) { u.AudioInputTokens += probeStep })
		lp.tiers = append(lp.tiers, tc)
	}
	return lp
}

// tierFor returns the index of the tier that bills a call with this prompt.
func (lp *linearPrices) tierFor(prompt float64) int {
	k := 0
	for i := 1; i < len(lp.tiers); i++ {
		if prompt > float64(lp.tiers[i].above) {
			k = i
		}
	}
	return k
}

// callParts are the billed quantities of some calls, summed.
type callParts struct {
	uncached, cacheRead, cacheWrite, out, audio float64
}

func (tc *tierCoef) usd(p callParts) float64 {
	return tc.in*p.uncached + tc.cacheRead*p.cacheRead + tc.cacheWrite*p.cacheWrite + tc.out*p.out + tc.audio*p.audio
}
