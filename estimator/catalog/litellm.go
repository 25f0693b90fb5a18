package catalog

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// LiteLLM import rules (README.md repeats them for users):
//
// Entries are kept when mode is chat, completion or responses; every other
// mode (embedding, image_generation, audio_transcription, ...) and entries
// without a mode or litellm_provider are skipped and counted by reason.
//
// Provider: litellm_provider, normalised so that ids line up with the
// project's: "vertex_ai-*" -> "vertex_ai", together_ai -> together,
// fireworks_ai -> fireworks, bedrock_converse -> bedrock, cohere_chat ->
// cohere, azure_text -> azure, text-completion-openai -> openai; other
// names are kept as written.
//
// Id: LiteLLM keys are sometimes "provider/name" and sometimes a bare name.
// The API name is the key with a leading "<provider>/" removed, where
// <provider> is the raw litellm_provider, the normalised provider, or the
// raw provider's part before the first "-" (so "vertex_ai/claude-3-5-haiku"
// under vertex_ai-anthropic_models gives "claude-3-5-haiku"). The id is
// "<normalised provider>/<api name>": "gpt-4o" (openai) -> "openai/gpt-4o",
// "gemini/gemini-2.5-pro" -> "gemini/gemini-2.5-pro", "gemini-2.5-pro"
// (vertex_ai-language-models) -> "vertex_ai/gemini-2.5-pro". When two keys
// give the same id, the key spelled exactly as the id wins; otherwise the
// first in the file wins. The loser is skipped as "duplicate id".

var keepModes = []string{"chat", "completion", "responses"}

var providerAliases = map[string]string{
	"together_ai":            "together",
	"fireworks_ai":           "fireworks",
	"bedrock_converse":       "bedrock",
	"cohere_chat":            "cohere",
	"azure_text":             "azure",
	"text-completion-openai": "openai",
}

// NormalizeLiteLLMProvider maps a litellm_provider value to the provider
// name used in catalog ids (see the import rules in README.md).
func NormalizeLiteLLMProvider(p string) string {
	if a, ok := providerAliases[p]; ok {
		return a
	}
	if strings.HasPrefix(p, "vertex_ai-") {
		return "vertex_ai"
	}
	return p
}

// litellmID returns the catalog id and API name of a LiteLLM key.
func litellmID(key, rawProvider string) (id, apiName string) {
	prov := NormalizeLiteLLMProvider(rawProvider)
	apiName = key
	head, _, _ := strings.Cut(rawProvider, "-")
	for _, pre := range []string{rawProvider, prov, head} {
		if pre != "" && strings.HasPrefix(key, pre+"/") {
			apiName = key[len(pre)+1:]
			break
		}
	}
	return prov + "/" + apiName, apiName
}

// LiteLLM keys mapped onto Prices, per token unless the unit says otherwise.
var litellmRates = []struct {
	key   string
	unit  string // "mtok" (per token in the file) or "unit"
	field string // TOML key it maps to
}{
	{"input_cost_per_token", "mtok", "input_per_mtok"},
	{"output_cost_per_token", "mtok", "output_per_mtok"},
	{"cache_read_input_token_cost", "mtok", "cache_read_per_mtok"},
	{"cache_creation_input_token_cost", "mtok", "cache_write_per_mtok"},
	{"cache_creation_input_token_cost_above_1hr", "mtok", "cache_write_1h_per_mtok"},
	{"output_cost_per_reasoning_token", "mtok", "reasoning_per_mtok"},
	{"input_cost_per_audio_token", "mtok", "audio_input_per_mtok"},
	{"output_cost_per_audio_token", "mtok", "audio_output_per_mtok"},
	{"input_cost_per_image", "unit", "image_per_image_usd"},
	{"input_cost_per_request", "unit", "per_request_usd"},
	{"input_cost_per_second", "unit", "input_per_second_usd"},
	{"input_cost_per_audio_per_second", "unit", "audio_input_per_second_usd"},
	{"input_cost_per_video_per_second", "unit", "video_input_per_second_usd"},
}

var aboveRe = regexp.MustCompile(`^(.+)_above_(\d+)k_tokens$`)

// ll reads one LiteLLM entry with the file's tolerance: numbers may be
// written as strings, null means absent, unknown keys are ignored.
type ll struct {
	raw      map[string]json.RawMessage
	problems []llProblem
}

type llProblem struct{ field, msg string }

func (e *ll) bad(field, msg string) { e.problems = append(e.problems, llProblem{field, msg}) }

func (e *ll) num(key string) (float64, bool) {
	raw, ok := e.raw[key]
	if !ok {
		return 0, false
	}
	return e.numRaw(key, raw)
}

func (e *ll) numRaw(key string, raw json.RawMessage) (float64, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "null" {
		return 0, false
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			e.bad(key, "bad string")
			return 0, false
		}
		s = strings.TrimSpace(str)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		e.bad(key, fmt.Sprintf("%s is not a number", shorten(string(raw))))
		return 0, false
	}
	if f < 0 {
		e.bad(key, fmt.Sprintf("%s is negative", shorten(string(raw))))
		return 0, false
	}
	return f, true
}

func (e *ll) rate(key, unit string) (Rate, bool) {
	f, ok := e.num(key)
	if !ok {
		return Rate{}, false
	}
	if unit == "mtok" {
		f = perMillion(f)
	}
	return RateOf(f), true
}

func (e *ll) count(key string) (int64, bool) {
	f, ok := e.num(key)
	if !ok {
		return 0, false
	}
	if f != math.Trunc(f) || f > 1e15 {
		e.bad(key, fmt.Sprintf("%g is not a whole number of tokens", f))
		return 0, false
	}
	return int64(f), true
}

func (e *ll) flag(key string) (v, present bool) {
	raw, ok := e.raw[key]
	if !ok {
		return false, false
	}
	switch strings.ToLower(strings.Trim(strings.TrimSpace(string(raw)), `"`)) {
	case "true":
		return true, true
	case "false":
		return false, true
	case "null":
		return false, false
	}
	e.bad(key, fmt.Sprintf("%s is not true or false", shorten(string(raw))))
	return false, false
}

func (e *ll) str(key string) (string, bool) {
	raw, ok := e.raw[key]
	if !ok || string(raw) == "null" {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		e.bad(key, "must be a string")
		return "", false
	}
	return s, true
}

func (e *ll) strings(key string) ([]string, bool) {
	raw, ok := e.raw[key]
	if !ok || string(raw) == "null" {
		return nil, false
	}
	var s []string
	if err := json.Unmarshal(raw, &s); err != nil {
		e.bad(key, "must be an array of strings")
		return nil, false
	}
	return s, true
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// perMillion converts a per-token price to per million tokens, rounding
// away the binary noise of the multiplication (2.5e-06*1e6 = 2.4999999999999996).
func perMillion(f float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(f*1e6, 'g', 12, 64), 64)
	return r
}

// LoadLiteLLM reads LiteLLM's model_prices_and_context_window.json. Entries
// of modes other than chat, completion and responses are skipped; entries
// that cannot be read are skipped too and listed, with their key, in the
// catalog's [ImportReport] (see [Catalog.Reports]). Only a file that is
// not a JSON object of entries is an error. See README.md for the mapping
// of LiteLLM's keys and the id rule.
func LoadLiteLLM(name string, data []byte) (*Catalog, error) {
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) { // byte order mark: keep offsets
		data = append([]byte("   "), data[3:]...)
	}
	lines := lineStarts(data)
	posOf := func(off int) (int, int) {
		i := sort.Search(len(lines), func(i int) bool { return lines[i] > off }) - 1
		if i < 0 {
			return 1, off + 1
		}
		return i + 1, off - lines[i] + 1
	}
	fatal := func(off int, msg string) error {
		line, col := posOf(off)
		return Errors{{File: name, Line: line, Col: col, Msg: msg}}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if d, ok := tok.(json.Delim); err != nil || !ok || d != '{' {
		return nil, fatal(0, "not a LiteLLM price file: expected a JSON object of model entries")
	}
	rep := ImportReport{File: name, Skipped: map[string]int{}}
	c := &Catalog{byID: map[string]*Model{}}
	exact := map[string]bool{} // id -> its key is spelled as the id
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr(data, err, fatal)
		}
		key, _ := tok.(string)
		keyOff := keyStart(data, int(dec.InputOffset()))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonErr(data, err, fatal)
		}
		if key == "sample_spec" {
			continue
		}
		rep.Entries++
		valOff := int(dec.InputOffset()) - len(raw)
		problem := func(field, msg string) {
			off := keyOff
			if field != "" {
				if i := bytes.Index(raw, []byte(strconv.Quote(field))); i >= 0 {
					off = valOff + i
				}
			}
			line, col := posOf(off)
			rep.Problems = append(rep.Problems, &Error{File: name, Line: line, Col: col, Model: key, Field: field, Msg: msg})
		}
		m, skip := litellmModel(key, raw, problem)
		if skip != "" {
			rep.Skipped[skip]++
			continue
		}
		isExact := key == m.ID
		if prev, dup := c.byID[m.ID]; dup {
			rep.Skipped["duplicate id"]++
			if isExact && !exact[m.ID] {
				*prev = *m
				exact[m.ID] = true
			}
			continue
		}
		exact[m.ID] = isExact
		c.add(m)
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonErr(data, err, fatal)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, jsonErr(data, err, fatal)
	}
	rep.Loaded = c.Len()
	rep.Problems.sort()
	c.reports = []ImportReport{rep}
	return c, nil
}

// jsonErr locates a decoding error. The streaming decoder's offsets are
// relative to the value it was reading, so the whole input is checked again
// to find the absolute position of the first syntax error.
func jsonErr(data []byte, err error, fatal func(int, string) error) error {
	var raw json.RawMessage
	var se *json.SyntaxError
	if errors.As(json.Unmarshal(data, &raw), &se) {
		off := max(int(se.Offset)-1, 0)
		if int(se.Offset) >= len(data) && strings.Contains(se.Error(), "end of JSON input") {
			return fatal(off, "invalid JSON: the file ends early (truncated download?)")
		}
		return fatal(off, "invalid JSON: "+se.Error())
	}
	return fatal(0, "invalid JSON: "+err.Error())
}

func lineStarts(data []byte) []int {
	starts := []int{0}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// keyStart finds the opening quote of the key string that ends before end.
func keyStart(data []byte, end int) int {
	end = min(end, len(data))
	i := end - 2
	for i > 0 && !(data[i] == '"' && data[i-1] != '\\') {
		i--
	}
	return max(i, 0)
}

// litellmModel maps one entry. skip is the reason the entry is left out, or
// "" when m is usable.
func litellmModel(key string, raw json.RawMessage, problem func(field, msg string)) (m *Model, skip string) {
	e := &ll{}
	if err := json.Unmarshal(raw, &e.raw); err != nil {
		problem("", "entry is not a JSON object")
		return nil, "unreadable entry"
	}
	rawProv, ok := e.str("litellm_provider")
	if !ok || rawProv == "" {
		if len(e.problems) == 0 {
			return nil, "no litellm_provider"
		}
	}
	mode, hasMode := e.str("mode")
	if len(e.problems) == 0 {
		if !hasMode {
			return nil, "no mode"
		}
		if !slices.Contains(keepModes, mode) {
			return nil, "mode " + mode
		}
	}
	m = &Model{TokenRatio: 1, Modalities: []string{"text"}, OutputModalities: []string{"text"}}
	m.ID, m.APIName = litellmID(key, rawProv)
	m.Provider = NormalizeLiteLLMProvider(rawProv)
	m.mark("id")
	m.mark("provider")
	m.mark("api_name")
	if !validID(m.ID) {
		e.bad("", fmt.Sprintf("key gives id %q, which is not of the form \"provider/name\"", m.ID))
	}
	m.Source = fmt.Sprintf("LiteLLM model_prices_and_context_window.json, key %q", key)
	if s, ok := e.str("source"); ok && s != "" {
		m.Source = s
	}
	m.mark("source")

	for _, r := range litellmRates {
		if v, ok := e.rate(r.key, r.unit); ok {
			pk, _ := findPriceKey(r.field)
			*pk.rate(&m.Prices) = v
			m.mark(r.field)
		}
	}
	if !m.CacheReadPerMTok.Known {
		if v, ok := e.rate("input_cost_per_token_cache_hit", "mtok"); ok {
			m.CacheReadPerMTok = v
			m.mark("cache_read_per_mtok")
		}
	}

	// Long-context tiers from *_above_<N>k_tokens keys.
	tiers := map[int64]*Tier{}
	for k := range e.raw {
		sub := aboveRe.FindStringSubmatch(k)
		if sub == nil {
			continue
		}
		for _, r := range litellmRates {
			if r.key != sub[1] {
				continue
			}
			n, _ := strconv.ParseInt(sub[2], 10, 64)
			v, ok := e.rate(k, r.unit)
			if !ok {
				continue
			}
			t := tiers[n*1000]
			if t == nil {
				t = &Tier{AboveTokens: n * 1000}
				tiers[n*1000] = t
			}
			pk, _ := findPriceKey(r.field)
			*pk.rate(&t.Prices) = v
		}
	}
	litellmTiered(e, m, tiers)
	for _, t := range tiers {
		m.Tiers = append(m.Tiers, *t)
	}
	if len(m.Tiers) > 0 {
		slices.SortFunc(m.Tiers, func(a, b Tier) int { return cmp.Compare(a.AboveTokens, b.AboveTokens) })
		m.mark("tier")
	}

	// Service tiers.
	for _, st := range []struct{ name, suffix string }{
		{ServiceBatch, "_batches"}, {ServiceFlex, "_flex"}, {ServicePriority, "_priority"},
	} {
		var p Prices
		found := false
		for _, r := range litellmRates[:3] { // input, output, cache read
			if v, ok := e.rate(r.key+st.suffix, r.unit); ok {
				pk, _ := findPriceKey(r.field)
				*pk.rate(&p) = v
				found = true
			}
		}
		if found {
			if m.ServiceTiers == nil {
				m.ServiceTiers = map[string]Prices{}
			}
			m.ServiceTiers[st.name] = p
			m.mark("service_tier")
		}
	}

	// Limits.
	if n, ok := e.count("max_input_tokens"); ok {
		m.ContextWindow = n
		m.mark("context_window")
	}
	if n, ok := e.count("max_output_tokens"); ok {
		m.MaxOutputTokens = n
		m.mark("max_output_tokens")
	} else if n, ok := e.count("max_tokens"); ok {
		m.MaxOutputTokens = n
		m.mark("max_output_tokens")
	}
	if m.ContextWindow > 0 && m.MaxOutputTokens > m.ContextWindow {
		// LiteLLM's legacy max_tokens sometimes holds the context size.
		m.MaxOutputTokens = 0
	}

	// Capabilities.
	for _, f := range []struct {
		key, field string
		dst        *bool
	}{
		{"supports_function_calling", "tools", &m.Tools},
		{"supports_response_schema", "json_mode", &m.JSONMode},
		{"supports_reasoning", "reasoning", &m.Reasoning},
		{"supports_prompt_caching", "prompt_caching", &m.PromptCaching},
	} {
		if v, ok := e.flag(f.key); ok {
			*f.dst = v
			m.mark(f.field)
		}
	}
	mods, modsSet := []string{"text"}, false
	for _, f := range []struct{ key, mod string }{
		{"supports_vision", "image"}, {"supports_audio_input", "audio"},
		{"supports_video_input", "video"}, {"supports_pdf_input", "document"},
	} {
		if v, ok := e.flag(f.key); ok {
			modsSet = true
			if v && !slices.Contains(mods, f.mod) {
				mods = append(mods, f.mod)
			}
		}
	}
	if list, ok := e.strings("supported_modalities"); ok {
		modsSet = true
		for _, s := range list {
			if slices.Contains(InputModalities, s) && !slices.Contains(mods, s) {
				mods = append(mods, s)
			}
		}
	}
	if modsSet {
		m.Modalities = mods
		m.mark("modalities")
	}
	outs, outsSet := []string{"text"}, false
	if v, ok := e.flag("supports_audio_output"); ok {
		outsSet = true
		if v {
			outs = append(outs, "audio")
		}
	}
	if list, ok := e.strings("supported_output_modalities"); ok {
		outsSet = true
		for _, s := range list {
			if slices.Contains(OutputModalities, s) && !slices.Contains(outs, s) {
				outs = append(outs, s)
			}
		}
	}
	if outsSet {
		m.OutputModalities = outs
		m.mark("output_modalities")
	}

	if len(e.problems) > 0 {
		for _, p := range e.problems {
			problem(p.field, p.msg)
		}
		return nil, "unreadable entry"
	}
	return m, ""
}

// litellmTiered reads dashscope-style "tiered_pricing": a list of
// {range: [lo, hi], input_cost_per_token, ...}. The range starting at 0
// supplies base rates the entry does not state; each other range becomes a
// tier above lo tokens.
func litellmTiered(e *ll, m *Model, tiers map[int64]*Tier) {
	raw, ok := e.raw["tiered_pricing"]
	if !ok || string(raw) == "null" {
		return
	}
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		e.bad("tiered_pricing", "must be an array of objects")
		return
	}
	for i, t := range list {
		field := fmt.Sprintf("tiered_pricing[%d]", i)
		var rng []json.RawMessage
		if err := json.Unmarshal(t["range"], &rng); err != nil || len(rng) != 2 {
			e.bad(field, "range must be [low, high]")
			continue
		}
		sub := &ll{raw: t}
		lo, ok := sub.numRaw(field+".range[0]", rng[0])
		if !ok || lo != math.Trunc(lo) {
			e.bad(field, "range[0] must be a whole number of tokens")
			continue
		}
		var p Prices
		for _, r := range litellmRates {
			if v, ok := sub.rate(r.key, r.unit); ok {
				pk, _ := findPriceKey(r.field)
				*pk.rate(&p) = v
			}
		}
		for _, pr := range sub.problems {
			e.bad(field+"."+pr.field, pr.msg)
		}
		if lo == 0 {
			for _, pk := range priceKeys {
				if r := pk.rate(&p); r.Known && !pk.rate(&m.Prices).Known {
					*pk.rate(&m.Prices) = *r
					m.mark(pk.key)
				}
			}
			continue
		}
		n := int64(lo)
		if tiers[n] == nil {
			tiers[n] = &Tier{AboveTokens: n}
		}
		mergePrices(&tiers[n].Prices, &p)
	}
}
