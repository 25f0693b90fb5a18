package catalog

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/costwise/costwise/internal/suggest"
	"github.com/costwise/costwise/internal/tomlpos"
)

// LoadTOML parses a catalog in the project's TOML format (see README.md).
// name is used in error messages only. Unknown keys, values of the wrong
// type or out of range, duplicate ids and missing ids are all reported, each
// as `name:line:col: model "id": field: message`, in one [Errors].
func LoadTOML(name string, data []byte) (*Catalog, error) {
	return loadTOML(name, data, false)
}

// loadTOML parses data; provenance makes source and as_of required (the
// embedded default catalog must say where every price came from).
func loadTOML(name string, data []byte, provenance bool) (*Catalog, error) {
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Errors{{File: name, Line: pe.Position.Line, Col: pe.Position.Col,
				Msg: "TOML syntax error: " + pe.Message + "; fix the file's syntax"}}
		}
		return nil, Errors{{File: name, Msg: "cannot parse TOML: " + err.Error()}}
	}
	l := &tomlLoader{name: name, ix: tomlpos.Build(data), provenance: provenance}
	for _, k := range l.sortedKeys("", doc) {
		if k != "model" {
			l.errAt(k, "", "", fmt.Sprintf("unknown top-level key %q; a catalog holds only [[model]] entries", k))
		}
	}
	c := &Catalog{byID: map[string]*Model{}}
	firstAt := map[string]tomlpos.Pos{}
	if raw, ok := doc["model"]; ok {
		entries, ok := raw.([]map[string]any)
		if !ok {
			l.errAt("model", "", "", "model must be an array of tables: write each entry under a [[model]] header")
		}
		for i, e := range entries {
			m := l.model(i, e)
			if m == nil {
				continue
			}
			at := fmt.Sprintf("model[%d].id", i)
			if prev, dup := firstAt[m.ID]; dup {
				l.errAt(at, m.ID, "id", fmt.Sprintf("duplicate id; first defined at line %d; merge the two entries or rename one", prev.Line))
				continue
			}
			firstAt[m.ID] = l.ix.Key(at)
			c.add(m)
		}
	}
	if err := l.errs.errOrNil(); err != nil {
		return nil, err
	}
	return c, nil
}

type tomlLoader struct {
	name       string
	ix         *tomlpos.Index
	provenance bool
	errs       Errors
}

// errAt records a problem at the key path (e.g. "model[2].tier[0].above_tokens").
func (l *tomlLoader) errAt(path, model, field, msg string) {
	pos := l.ix.Key(path)
	l.errs = append(l.errs, &Error{File: l.name, Line: pos.Line, Col: pos.Col, Model: model, Field: field, Msg: msg})
}

// sortedKeys returns the keys of t in document order (unplaced keys last,
// alphabetically) so that problems come out in a stable order.
func (l *tomlLoader) sortedKeys(prefix string, t map[string]any) []string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	pos := func(k string) tomlpos.Pos {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		return l.ix.Key(p)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := pos(keys[i]), pos(keys[j])
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return keys[i] < keys[j]
	})
	return keys
}

var (
	dateRe     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	taskKindRe = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	tokenizers = []string{"o200k_base", "cl100k_base"}
	imageRules = []string{"openai-tile", "openai-patch", "anthropic", "gemini", "fixed", "none"}
	tierNames  = []string{ServiceBatch, ServiceFlex, ServicePriority}
)

// modelEntry carries the state of one [[model]] being read.
type modelEntry struct {
	l      *tomlLoader
	prefix string // "model[3]"
	label  string // id or "#4"
	m      *Model
}

func (e *modelEntry) err(field, msg string) {
	e.l.errAt(e.prefix+"."+field, e.label, field, msg)
}

// model reads one entry; it returns nil when the entry cannot be indexed
// (no usable id). Problems are recorded on l.
func (l *tomlLoader) model(i int, t map[string]any) *Model {
	e := &modelEntry{l: l, prefix: fmt.Sprintf("model[%d]", i), label: "#" + strconv.Itoa(i+1),
		m: &Model{TokenRatio: 1, Modalities: []string{"text"}, OutputModalities: []string{"text"}}}
	m := e.m
	if id, ok := t["id"].(string); ok && id != "" {
		e.label = id
	}
	for _, k := range l.sortedKeys(e.prefix, t) {
		e.key(k, t[k])
	}
	ok := true
	switch {
	case !m.IsSet("id"):
		ok = false
		if _, present := t["id"]; !present {
			l.errAt(e.prefix, e.label, "id", `missing; every [[model]] needs id = "provider/name"`)
		}
	case m.ID == "" || !validID(m.ID):
		ok = false
		e.err("id", fmt.Sprintf(`%q is not of the form "provider/name"`, m.ID))
	}
	if ok {
		prefix, name, _ := strings.Cut(m.ID, "/")
		if !m.IsSet("provider") {
			m.Provider = prefix
		} else if m.Provider != prefix {
			e.err("provider", fmt.Sprintf("%q does not match the id's prefix %q; ids are \"provider/name\"", m.Provider, prefix))
		}
		if !m.IsSet("api_name") {
			m.APIName = name
		}
	}
	if l.provenance {
		if !m.IsSet("source") {
			l.errAt(e.prefix, e.label, "source", "missing; the default catalog must say where its prices came from (a URL)")
		}
		if !m.IsSet("as_of") {
			l.errAt(e.prefix, e.label, "as_of", `missing; the default catalog must date its prices ("YYYY-MM-DD")`)
		}
	}
	if m.ContextWindow > 0 && m.MaxOutputTokens > m.ContextWindow {
		e.err("max_output_tokens", fmt.Sprintf("%d exceeds context_window %d", m.MaxOutputTokens, m.ContextWindow))
	}
	if !ok {
		return nil
	}
	return m
}

func validID(id string) bool {
	p, n, ok := strings.Cut(id, "/")
	return ok && p != "" && n != "" && strings.TrimSpace(id) == id
}

// key reads one key of a [[model]] entry.
func (e *modelEntry) key(k string, v any) {
	m := e.m
	if pk, ok := findPriceKey(k); ok {
		if r, ok := e.rate(k, v); ok {
			*pk.rate(&m.Prices) = r
			m.mark(k)
		}
		return
	}
	var good bool
	switch k {
	case "id":
		good = e.str(k, v, &m.ID)
	case "provider":
		if good = e.str(k, v, &m.Provider); good && m.Provider == "" {
			e.err(k, "must not be empty")
			good = false
		}
	case "api_name":
		good = e.str(k, v, &m.APIName)
	case "display_name":
		good = e.str(k, v, &m.DisplayName)
	case "source":
		good = e.str(k, v, &m.Source)
	case "deprecated":
		good = e.boolean(k, v, &m.Deprecated)
	case "tools":
		good = e.boolean(k, v, &m.Tools)
	case "json_mode":
		good = e.boolean(k, v, &m.JSONMode)
	case "reasoning":
		good = e.boolean(k, v, &m.Reasoning)
	case "prompt_caching":
		good = e.boolean(k, v, &m.PromptCaching)
	case "as_of":
		good = e.date(k, v, &m.AsOf)
	case "batch_discount":
		var f float64
		if good = e.float(k, v, &f); good {
			if f <= 0 || f > 1 {
				e.err(k, fmt.Sprintf("%g is outside (0, 1]; it multiplies token prices for batch calls (0.5 = half price)", f))
				good = false
			} else {
				m.BatchDiscount = RateOf(f)
			}
		}
	case "context_window":
		good = e.count(k, v, &m.ContextWindow)
	case "max_output_tokens":
		good = e.count(k, v, &m.MaxOutputTokens)
	case "image_base_tokens":
		good = e.count(k, v, &m.ImageBaseTokens)
	case "image_tile_tokens":
		good = e.count(k, v, &m.ImageTileTokens)
	case "modalities":
		good = e.list(k, v, InputModalities, &m.Modalities)
	case "output_modalities":
		good = e.list(k, v, OutputModalities, &m.OutputModalities)
	case "ttft_s":
		good = e.nonneg(k, v, &m.TTFTSeconds)
	case "output_tokens_per_s":
		good = e.nonneg(k, v, &m.OutputTokensPerSecond)
	case "image_patch_multiplier":
		good = e.nonneg(k, v, &m.ImagePatchMultiplier)
	case "audio_tokens_per_s":
		good = e.nonneg(k, v, &m.AudioTokensPerSecond)
	case "video_tokens_per_s":
		good = e.nonneg(k, v, &m.VideoTokensPerSecond)
	case "token_ratio":
		if good = e.float(k, v, &m.TokenRatio); good && m.TokenRatio <= 0 {
			e.err(k, fmt.Sprintf("%g must be > 0 (provider tokens per o200k token, about 1)", m.TokenRatio))
			good = false
		}
	case "tokenizer":
		good = e.enum(k, v, tokenizers, &m.Tokenizer)
	case "image_tokens":
		good = e.enum(k, v, imageRules, &m.ImageTokens)
	case "tier":
		good = e.tiers(k, v)
	case "service_tier":
		good = e.serviceTiers(k, v)
	case "quality":
		good = e.quality(k, v)
	case "quality_source":
		good = e.qualitySource(k, v)
	default:
		msg := "unknown key"
		if s := suggest.Closest(k, fieldKeys); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		} else {
			msg += "; see estimator/catalog/README.md for the keys"
		}
		e.err(k, msg)
	}
	if good {
		m.mark(k)
	}
}

func findPriceKey(k string) (priceKey, bool) {
	for _, pk := range priceKeys {
		if pk.key == k {
			return pk, true
		}
	}
	return priceKey{}, false
}

func (e *modelEntry) wrongType(field string, v any, want string) {
	e.err(field, fmt.Sprintf("must be %s, not %s", want, tomlpos.TypeName(v)))
}

func (e *modelEntry) str(field string, v any, dst *string) bool {
	s, ok := v.(string)
	if !ok {
		e.wrongType(field, v, "a string")
		return false
	}
	*dst = s
	return true
}

func (e *modelEntry) boolean(field string, v any, dst *bool) bool {
	b, ok := v.(bool)
	if !ok {
		e.wrongType(field, v, "true or false")
		return false
	}
	*dst = b
	return true
}

func (e *modelEntry) float(field string, v any, dst *float64) bool {
	var f float64
	switch x := v.(type) {
	case int64:
		f = float64(x)
	case float64:
		f = x
	default:
		e.wrongType(field, v, "a number")
		return false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		e.err(field, "must be a finite number")
		return false
	}
	*dst = f
	return true
}

func (e *modelEntry) nonneg(field string, v any, dst *float64) bool {
	var f float64
	if !e.float(field, v, &f) {
		return false
	}
	if f < 0 {
		e.err(field, fmt.Sprintf("%g is negative", f))
		return false
	}
	*dst = f
	return true
}

// rate reads a price; field is the path inside the entry.
func (e *modelEntry) rate(field string, v any) (Rate, bool) {
	var f float64
	if !e.float(field, v, &f) {
		return Rate{}, false
	}
	if f < 0 {
		e.err(field, fmt.Sprintf("price %g is negative; omit the key when the price is unknown, write 0 only when it is free", f))
		return Rate{}, false
	}
	return RateOf(f), true
}

func (e *modelEntry) count(field string, v any, dst *int64) bool {
	n, ok := v.(int64)
	if !ok {
		e.wrongType(field, v, "an integer")
		return false
	}
	if n < 0 {
		e.err(field, fmt.Sprintf("%d is negative", n))
		return false
	}
	*dst = n
	return true
}

func (e *modelEntry) enum(field string, v any, allowed []string, dst *string) bool {
	var s string
	if !e.str(field, v, &s) {
		return false
	}
	if !slices.Contains(allowed, s) {
		e.err(field, fmt.Sprintf("%q is not one of %s", s, strings.Join(allowed, ", ")))
		return false
	}
	*dst = s
	return true
}

func (e *modelEntry) list(field string, v any, allowed []string, dst *[]string) bool {
	arr, ok := v.([]any)
	if !ok {
		e.wrongType(field, v, "an array of strings")
		return false
	}
	out := make([]string, 0, len(arr))
	good := true
	for j, x := range arr {
		s, ok := x.(string)
		switch {
		case !ok:
			e.err(fmt.Sprintf("%s[%d]", field, j), fmt.Sprintf("must be a string, not %s", tomlpos.TypeName(x)))
			good = false
		case !slices.Contains(allowed, s):
			e.err(field, fmt.Sprintf("%q is not one of %s", s, strings.Join(allowed, ", ")))
			good = false
		case !slices.Contains(out, s):
			out = append(out, s)
		}
	}
	if good {
		*dst = out
	}
	return good
}

func (e *modelEntry) date(field string, v any, dst *time.Time) bool {
	switch x := v.(type) {
	case string:
		t, err := time.Parse(time.DateOnly, x)
		if !dateRe.MatchString(x) || err != nil {
			e.err(field, fmt.Sprintf("%q is not a date; write YYYY-MM-DD", x))
			return false
		}
		*dst = t
	case time.Time:
		if x.Hour() != 0 || x.Minute() != 0 || x.Second() != 0 || x.Nanosecond() != 0 {
			e.err(field, "must be a date without time of day; write YYYY-MM-DD")
			return false
		}
		*dst = time.Date(x.Year(), x.Month(), x.Day(), 0, 0, 0, 0, time.UTC)
	default:
		e.wrongType(field, v, `a date "YYYY-MM-DD"`)
		return false
	}
	return true
}

// prices reads the price keys of a tier or service tier table at field;
// other keys than extra are reported unknown.
func (e *modelEntry) prices(field string, t map[string]any, extra string) (Prices, bool) {
	var p Prices
	good := true
	for _, k := range e.l.sortedKeys(e.prefix+"."+field, t) {
		if k == extra {
			continue
		}
		sub := field + "." + k
		pk, ok := findPriceKey(k)
		if !ok {
			names := make([]string, 0, len(priceKeys)+1)
			for _, pk := range priceKeys {
				names = append(names, pk.key)
			}
			if extra != "" {
				names = append(names, extra)
			}
			msg := "unknown key; only price keys are allowed here"
			if s := suggest.Closest(k, names); s != "" {
				msg = fmt.Sprintf("unknown key; did you mean %q?", s)
			}
			e.err(sub, msg)
			good = false
			continue
		}
		r, ok := e.rate(sub, t[k])
		if !ok {
			good = false
			continue
		}
		*pk.rate(&p) = r
	}
	return p, good
}

func (e *modelEntry) tiers(field string, v any) bool {
	arr, ok := v.([]map[string]any)
	if !ok {
		e.wrongType(field, v, "an array of tables ([[model.tier]])")
		return false
	}
	good := true
	var tiers []Tier
	for j, t := range arr {
		sub := fmt.Sprintf("%s[%d]", field, j)
		p, ok := e.prices(sub, t, "above_tokens")
		good = good && ok
		raw, present := t["above_tokens"]
		if !present {
			e.l.errAt(e.prefix+"."+sub, e.label, sub+".above_tokens", "missing; a tier needs above_tokens (the prompt size above which its rates apply)")
			good = false
			continue
		}
		var n int64
		if !e.count(sub+".above_tokens", raw, &n) {
			good = false
			continue
		}
		if n == 0 {
			e.err(sub+".above_tokens", "must be > 0; base prices go at the top level of the model")
			good = false
			continue
		}
		for _, prev := range tiers {
			if prev.AboveTokens == n {
				e.err(sub+".above_tokens", fmt.Sprintf("another tier already starts above %d tokens", n))
				good = false
			}
		}
		tiers = append(tiers, Tier{AboveTokens: n, Prices: p})
	}
	if !good {
		return false
	}
	slices.SortFunc(tiers, func(a, b Tier) int { return cmp.Compare(a.AboveTokens, b.AboveTokens) })
	e.m.Tiers = tiers
	return true
}

func (e *modelEntry) serviceTiers(field string, v any) bool {
	t, ok := v.(map[string]any)
	if !ok {
		e.wrongType(field, v, "a table ([model.service_tier.NAME])")
		return false
	}
	good := true
	out := map[string]Prices{}
	for _, name := range e.l.sortedKeys(e.prefix+"."+field, t) {
		sub := field + "." + name
		if !slices.Contains(tierNames, name) {
			e.err(sub, fmt.Sprintf("unknown service tier %q; use one of %s", name, strings.Join(tierNames, ", ")))
			good = false
			continue
		}
		pt, ok := t[name].(map[string]any)
		if !ok {
			e.wrongType(sub, t[name], "a table of prices")
			good = false
			continue
		}
		p, ok := e.prices(sub, pt, "")
		if !ok {
			good = false
			continue
		}
		out[name] = p
	}
	if good {
		e.m.ServiceTiers = out
	}
	return good
}

func (e *modelEntry) quality(field string, v any) bool {
	t, ok := v.(map[string]any)
	if !ok {
		e.wrongType(field, v, "a table of task kind = score")
		return false
	}
	good := true
	out := map[string]float64{}
	for _, kind := range e.l.sortedKeys(e.prefix+"."+field, t) {
		sub := field + "." + kind
		if !taskKindRe.MatchString(kind) {
			e.err(sub, "task kinds are lower-case identifiers (e.g. code, long_context)")
			good = false
			continue
		}
		var q float64
		if !e.float(sub, t[kind], &q) {
			good = false
			continue
		}
		if q < 0 || q > 1 {
			e.err(sub, fmt.Sprintf("%g is outside [0, 1]", q))
			good = false
			continue
		}
		out[kind] = q
	}
	if good {
		e.m.Quality = out
	}
	return good
}

func (e *modelEntry) qualitySource(field string, v any) bool {
	t, ok := v.(map[string]any)
	if !ok {
		e.wrongType(field, v, "a table of task kind = citation")
		return false
	}
	good := true
	out := map[string]string{}
	for _, kind := range e.l.sortedKeys(e.prefix+"."+field, t) {
		var s string
		if !e.str(field+"."+kind, t[kind], &s) {
			good = false
			continue
		}
		out[kind] = s
	}
	if good {
		e.m.QualitySource = out
	}
	return good
}
