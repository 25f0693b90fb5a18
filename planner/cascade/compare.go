package cascade

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/costwise/costwise/internal/suggest"
	"github.com/costwise/costwise/internal/tomlpos"
)

// policyKeys are the keys a policy file may hold.
var policyKeys = []string{"name", "kind", "model", "models", "thresholds"}

// LoadPolicy reads a policy file; see ParsePolicy.
func LoadPolicy(path string) (Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Policy{}, Errors{{File: path, Row: -1, Msg: "cannot read: " + unwrapPath(err).Error()}}
	}
	return ParsePolicy(path, data)
}

// ParsePolicy decodes a policy written in TOML, either
//
//	kind = "single"
//	model = "gpt-4o-mini"
//
// or
//
//	kind = "cascade"
//	models = ["gpt-4o-mini", "gpt-4o"]   # cheap -> strong
//	thresholds = [0.8]                   # one per model but the last
//
// with an optional name. name is used in errors, which are Errors naming
// file:line:col and the key. Whether the models exist is checked against a
// table by CheckPolicy.
func ParsePolicy(name string, data []byte) (Policy, error) {
	var raw struct {
		Name       any `toml:"name"`
		Kind       any `toml:"kind"`
		Model      any `toml:"model"`
		Models     any `toml:"models"`
		Thresholds any `toml:"thresholds"`
	}
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return Policy{}, Errors{{File: name, Line: pe.Position.Line, Col: pe.Position.Col, Row: -1, Msg: "TOML syntax: " + pe.Message + "; fix the file's syntax"}}
		}
		return Policy{}, Errors{{File: name, Row: -1, Msg: err.Error()}}
	}
	ix := tomlpos.Build(data)
	var errs Errors
	at := func(key, msg string) {
		p := ix.Value(key)
		if !p.IsValid() && key == "thresholds" {
			p = ix.Value("models") // missing thresholds: point at the models they belong to
		}
		if !p.IsValid() {
			p = tomlpos.Pos{Line: 1, Col: 1}
		}
		errs = append(errs, &Error{File: name, Line: p.Line, Col: p.Col, Row: -1, Msg: key + ": " + msg})
	}
	for _, u := range ix.Undecoded(md) {
		msg := fmt.Sprintf("%s: unknown key %q; allowed keys are %s", u.Path, u.Key, strings.Join(policyKeys, ", "))
		if s := suggest.Closest(u.Key, policyKeys); s != "" {
			msg = fmt.Sprintf("%s: unknown key %q; did you mean %q?", u.Path, u.Key, s)
		}
		errs = append(errs, &Error{File: name, Line: u.Pos.Line, Col: u.Pos.Col, Row: -1, Msg: msg})
	}
	p := Policy{Name: name, file: name, where: map[string]tomlpos.Pos{}}
	for _, k := range policyKeys {
		p.where[k] = ix.Value(k)
	}
	if raw.Name != nil {
		if s, ok := raw.Name.(string); ok {
			p.Name = s
		} else {
			at("name", "must be a string")
		}
	}
	kind, ok := raw.Kind.(string)
	switch {
	case raw.Kind == nil:
		at("kind", `missing; add kind = "single" (with model = "...") or kind = "cascade" (with models and thresholds)`)
	case !ok || kind != "single" && kind != "cascade":
		at("kind", fmt.Sprintf(`must be "single" or "cascade", got %v`, raw.Kind))
	case kind == "single":
		if raw.Models != nil || raw.Thresholds != nil {
			at("kind", `a single-model policy takes model = "..." only; drop models and thresholds or use kind = "cascade"`)
		}
		m, ok := raw.Model.(string)
		if !ok || m == "" {
			at("model", `missing or not a model name; add model = "..." naming a model of the outcome table`)
		}
		p.Models = []string{m}
	case kind == "cascade":
		if raw.Model != nil {
			at("model", `a cascade lists its models in models = [...]; drop model`)
		}
		before := len(errs) // count mismatches only matter when every entry parsed
		list, ok := raw.Models.([]any)
		if !ok || len(list) == 0 {
			at("models", `missing or empty; add models = ["cheap", "strong"], cheapest first`)
		}
		for _, v := range list {
			s, ok := v.(string)
			if !ok || s == "" {
				at("models", "every entry must be a model name (a non-empty string)")
				break
			}
			p.Models = append(p.Models, s)
		}
		thr, ok := raw.Thresholds.([]any)
		if raw.Thresholds != nil && !ok {
			at("thresholds", "must be a list of numbers")
		}
		for _, v := range thr {
			var f float64
			switch x := v.(type) {
			case float64:
				f = x
			case int64:
				f = float64(x)
			default:
				at("thresholds", "every entry must be a number")
			}
			if math.IsNaN(f) {
				at("thresholds", "nan is not a threshold")
			}
			p.Thresholds = append(p.Thresholds, f)
		}
		if len(p.Models) > 0 && len(p.Thresholds) != len(p.Models)-1 && len(errs) == before {
			at("thresholds", fmt.Sprintf("%d models need %d thresholds (one per model but the last), got %d", len(p.Models), len(p.Models)-1, len(p.Thresholds)))
		}
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(a, b int) bool {
			return errs[a].Line < errs[b].Line || errs[a].Line == errs[b].Line && errs[a].Col < errs[b].Col
		})
		return Policy{}, errs
	}
	return p, nil
}

// CheckPolicy checks p against the table it will be replayed on: every
// model exists, thresholds match, and every model but the last has a
// confidence column. Policies read by ParsePolicy get errors naming their
// file and line:col.
func CheckPolicy(t *Table, p Policy) error {
	_, err := compile(t, p)
	if err == nil {
		return nil
	}
	var fe *fieldError
	if errors.As(err, &fe) && p.where != nil {
		pos := p.where[fe.field]
		msg := fe.msg
		if fe.field == "models" && len(p.Models) == 1 && p.where["model"].IsValid() {
			pos = p.where["model"]
			msg = "model" + strings.TrimPrefix(msg, "models")
		}
		if pos.IsValid() {
			return Errors{{File: p.file, Line: pos.Line, Col: pos.Col, Row: -1, Msg: msg}}
		}
	}
	return err
}

// Interval is an estimate with a bootstrap confidence interval.
type Interval struct {
	Estimate float64
	Lo, Hi   float64
}

// Comparison is two policies replayed on the same queries. Differences are
// B minus A, means per query.
type Comparison struct {
	A, B       Policy // the fixed policies compared; zero for a classifier arm
	ArmA, ArmB Arm    // the two sides, policies or prompt classifiers
	MetricsA   Metrics
	MetricsB   Metrics
	Quality    Interval // B - A, mean quality per query
	CostUSD    Interval // B - A, mean cost per query
	Resamples  int
	Confidence float64 // 0.95
	Seed       uint64
}

// DefaultResamples is the number of bootstrap resamples of Compare.
const DefaultResamples = 2000

// Compare replays a and b on every row of t and bootstraps 95% confidence
// intervals of the differences (B - A) in mean quality and mean cost: each
// of resamples resamples draws len(rows) queries with replacement, the
// same for both policies (a paired bootstrap), and the interval is the
// 2.5% and 97.5% percentiles of the resampled differences. The same seed
// always gives the same intervals.
func Compare(t *Table, a, b Policy, resamples int, seed uint64) (*Comparison, error) {
	return CompareArms(t, PolicyArm(a), PolicyArm(b), resamples, seed)
}

// CompareArms is Compare for arms that may be prompt classifiers as well
// as fixed policies.
func CompareArms(t *Table, a, b Arm, resamples int, seed uint64) (*Comparison, error) {
	if resamples <= 0 {
		resamples = DefaultResamples
	}
	for _, arm := range []Arm{a, b} {
		if err := arm.Check(t); err != nil {
			return nil, err
		}
	}
	n := t.Len()
	if n == 0 {
		return nil, errors.New("no rows to compare the policies on")
	}
	qa, ca, err := a.perQuery(t)
	if err != nil {
		return nil, err
	}
	qb, cb, err := b.perQuery(t)
	if err != nil {
		return nil, err
	}
	dq, dc := make([]float64, n), make([]float64, n)
	var sq, sc float64
	for r := range n {
		dq[r], dc[r] = qb[r]-qa[r], cb[r]-ca[r]
		sq += dq[r]
		sc += dc[r]
	}
	cmp := &Comparison{ArmA: a, ArmB: b, Resamples: resamples, Confidence: 0.95, Seed: seed}
	if a.Classifier == nil {
		cmp.A = a.Policy
	}
	if b.Classifier == nil {
		cmp.B = b.Policy
	}
	if cmp.MetricsA, err = a.Evaluate(t); err != nil {
		return nil, err
	}
	if cmp.MetricsB, err = b.Evaluate(t); err != nil {
		return nil, err
	}
	cmp.Quality.Estimate, cmp.CostUSD.Estimate = sq/float64(n), sc/float64(n)
	rng := rand.New(rand.NewPCG(seed, 0xb007_57a9))
	bq, bc := make([]float64, resamples), make([]float64, resamples)
	for s := range resamples {
		var q, c float64
		for range n {
			r := rng.IntN(n)
			q += dq[r]
			c += dc[r]
		}
		bq[s], bc[s] = q/float64(n), c/float64(n)
	}
	cmp.Quality.Lo, cmp.Quality.Hi = percentiles(bq, 0.025, 0.975)
	cmp.CostUSD.Lo, cmp.CostUSD.Hi = percentiles(bc, 0.025, 0.975)
	return cmp, nil
}

// percentiles returns the lo and hi percentiles of xs (sorted in place),
// by the nearest-rank rule.
func percentiles(xs []float64, lo, hi float64) (float64, float64) {
	sort.Float64s(xs)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(xs)))) - 1
		return xs[min(max(i, 0), len(xs)-1)]
	}
	return rank(lo), rank(hi)
}
