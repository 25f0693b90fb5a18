package learn

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/costwise/costwise/estimator/catalog"
)

// Origin says where a number in a blended catalog came from.
type Origin string

// Origins of a blended number.
const (
	// FromCatalog: no observation; the catalog's number is kept.
	FromCatalog Origin = "catalog"
	// FromBlend: the catalog's number and the observations, weighted by
	// PriorWeight and Weight.
	FromBlend Origin = "blend"
	// FromObserved: the catalog had no number; observations with an
	// uninformative prior (success) or the estimator's defaults (latency).
	FromObserved Origin = "observed"
)

// Blended fields, as Source.Field names them. Quality fields are
// "quality." followed by the task kind.
const (
	FieldTTFT            = "ttft_s"
	FieldTokensPerSecond = "output_tokens_per_s"
	FieldQualityPrefix   = "quality."
)

// Source says where one number of a blended catalog came from.
type Source struct {
	Model  string
	Field  string // "quality.code", "ttft_s", "output_tokens_per_s"
	Origin Origin
	// Value is the number in the blended catalog.
	Value float64
	// Catalog is the catalog's number, when CatalogKnown.
	Catalog      float64
	CatalogKnown bool
	// Observed is what the observations alone say (the weighted success
	// rate; the latency line fitted without the prior). For latency it is
	// 0 when the observations cannot determine it, e.g. when every call
	// returned the same number of tokens.
	Observed float64
	// N is the number of observations behind the number, Weight the sum
	// of their decay weights and PriorWeight the catalog's pseudo-count.
	N           int
	Weight      float64
	PriorWeight float64
}

// Share is the observations' share of the number: Weight / (Weight +
// PriorWeight), 0 for catalog numbers.
func (s Source) Share() float64 {
	if s.Weight+s.PriorWeight <= 0 {
		return 0
	}
	return s.Weight / (s.Weight + s.PriorWeight)
}

// String is a short citation, e.g. "blend of catalog 0.8 (weight 10) and
// 42 calls (weight 31.5, observed 0.62)".
func (s Source) String() string {
	switch s.Origin {
	case FromBlend:
		return fmt.Sprintf("blend of catalog %.4g (weight %.3g) and %d calls (weight %.3g, observed %.4g)",
			s.Catalog, s.PriorWeight, s.N, s.Weight, s.Observed)
	case FromObserved:
		return fmt.Sprintf("observed: %d calls (weight %.3g, observed %.4g); no catalog value", s.N, s.Weight, s.Observed)
	}
	return "catalog"
}

// Sources is what Blend changed; numbers not listed are the catalog's.
type Sources []Source

// For returns the Source of a model's field; a number Blend did not touch
// gets a Source with Origin FromCatalog and no value.
func (ss Sources) For(model, field string) Source {
	for _, s := range ss {
		if s.Model == model && s.Field == field {
			return s
		}
	}
	return Source{Model: model, Field: field, Origin: FromCatalog}
}

// minEvidence is the weight below which observations are ignored (a call
// more than about 30 half-lives old).
const minEvidence = 1e-9

// Blend returns a copy of cat in which every model with observations has:
//
//   - Quality[task], for each observed task kind, set to the posterior mean
//     of its success rate with cat's score as the prior (cat's quality for
//     the task, else its "default" score, worth Options.PriorStrength
//     calls); QualitySource[task] says so. Observations without a task
//     kind do not change quality.
//   - TTFTSeconds and OutputTokensPerSecond refitted from the latency of
//     its answered calls, all tasks pooled, with cat's profile (or the
//     estimator's defaults when cat has none) worth
//     Options.LatencyPriorStrength calls.
//
// Models that are not in cat are ignored; cat is not modified. The sources
// list every changed number, sorted by model and field.
func (m *Model) Blend(cat *catalog.Catalog) (*catalog.Catalog, Sources) {
	out := catalog.Merge(cat, nil) // deep copies, owned by out until returned
	var srcs Sources
	for _, s := range m.stats {
		if s.Task == "" || s.JudgedWeight < minEvidence {
			continue
		}
		cm, ok := out.Lookup(s.Model)
		if !ok {
			continue
		}
		src := Source{Model: s.Model, Field: FieldQualityPrefix + s.Task, N: s.Calls, Weight: s.JudgedWeight, Observed: s.Observed}
		q, known := cm.QualityFor(s.Task)
		prior, k := 0.5, 2.0
		src.Origin = FromObserved
		if known && !math.IsNaN(q) {
			prior, k = math.Max(0, math.Min(1, q)), m.Options.PriorStrength
			src.Catalog, src.CatalogKnown, src.Origin = q, true, FromBlend
		}
		a, b := posterior(prior, k, s.Successes, s.JudgedWeight)
		src.Value, src.PriorWeight = a/(a+b), k
		if cm.Quality == nil {
			cm.Quality = map[string]float64{}
		}
		if cm.QualitySource == nil {
			cm.QualitySource = map[string]string{}
		}
		cm.Quality[s.Task] = src.Value
		cm.QualitySource[s.Task] = src.String()
		srcs = append(srcs, src)
	}
	for model, pts := range m.lat {
		cm, ok := out.Lookup(model)
		if !ok {
			continue
		}
		srcs = append(srcs, m.blendLatency(cm, pts)...)
	}
	slices.SortFunc(srcs, func(a, b Source) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.Field, b.Field))
	})
	return out, srcs
}

// blendLatency refits cm's latency profile from pts (see the package doc)
// and returns the two sources.
func (m *Model) blendLatency(cm *catalog.Model, pts []latPoint) []Source {
	var w float64
	for _, p := range pts {
		w += p.w
	}
	if w < minEvidence {
		return nil
	}
	ttft0, tps0 := cm.TTFTSeconds, cm.OutputTokensPerSecond
	ttftKnown, tpsKnown := ttft0 > 0, tps0 > 0
	if !ttftKnown {
		ttft0 = DefaultTTFTSeconds
	}
	if !tpsKnown {
		tps0 = DefaultOutputTokensPerSecond
	}
	k := m.Options.LatencyPriorStrength
	ws := make([]weighted, len(pts))
	for i, p := range pts {
		ws[i] = weighted{p.tokens, p.w}
	}
	xm := quantile(ws, 0.5)
	all := append(slices.Clone(pts),
		latPoint{k / 2, 0, ttft0},
		latPoint{k / 2, xm, ttft0 + xm/tps0})
	a, b := fitLine(all, 1/tps0)
	oa, ob := fitLine(pts, 0)

	ttft := Source{Model: cm.ID, Field: FieldTTFT, Origin: FromBlend, Value: a, Catalog: cm.TTFTSeconds,
		CatalogKnown: ttftKnown, N: len(pts), Weight: w, PriorWeight: k}
	tps := Source{Model: cm.ID, Field: FieldTokensPerSecond, Origin: FromBlend, Value: 1 / b, Catalog: cm.OutputTokensPerSecond,
		CatalogKnown: tpsKnown, N: len(pts), Weight: w, PriorWeight: k}
	if ob > 0 {
		ttft.Observed, tps.Observed = oa, 1/ob
	}
	if !ttftKnown {
		ttft.Origin = FromObserved
	}
	if !tpsKnown {
		tps.Origin = FromObserved
	}
	cm.TTFTSeconds, cm.OutputTokensPerSecond = ttft.Value, tps.Value
	return []Source{ttft, tps}
}

// fitLine fits seconds = a + b*tokens by weighted least squares, keeping
// a >= 0 and b > 0. When the tokens do not vary, or the fit's slope is not
// positive, it keeps slope fallback (if positive) and fits the intercept;
// with no usable fallback it returns b = 0.
func fitLine(pts []latPoint, fallback float64) (a, b float64) {
	var sw, sx, sy float64
	for _, p := range pts {
		sw += p.w
		sx += p.w * p.tokens
		sy += p.w * p.seconds
	}
	if sw <= 0 {
		return 0, 0
	}
	mx, my := sx/sw, sy/sw
	var sxx, sxy float64
	for _, p := range pts {
		dx := p.tokens - mx
		sxx += p.w * dx * dx
		sxy += p.w * dx * (p.seconds - my)
	}
	if sxx > 0 {
		b = sxy / sxx
		a = my - b*mx
	}
	if sxx <= 0 || b <= 0 {
		if fallback <= 0 {
			return 0, 0
		}
		return math.Max(0, my-fallback*mx), fallback
	}
	if a < 0 { // through the origin instead
		var sxy0, sxx0 float64
		for _, p := range pts {
			sxy0 += p.w * p.tokens * p.seconds
			sxx0 += p.w * p.tokens * p.tokens
		}
		return 0, sxy0 / sxx0
	}
	return a, b
}
