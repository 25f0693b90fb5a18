package cascade

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/internal/suggest"
	"github.com/costwise/costwise/internal/tomlpos"
)

// Cascade spec files hold fitted cascades for the planner (estimator.Cascade),
// one [[cascade]] table each:
//
//	[[cascade]]
//	task = "classification"            # optional; "" = any task
//	models = ["openai/gpt-5-nano", "openai/gpt-5"]
//	thresholds = [0.72]
//	signal = "logprob"                 # logprob | validate | self_check
//	quality = 0.91                     # mean quality on the held-out rows
//	reach = [1.0, 0.34]                # share of queries reaching each stage
//	rows = 1200
//	source = "outcomes.csv, test split (seed 1)"

// specKeys are the keys a [[cascade]] table may hold, in the order
// WriteSpecs writes them.
var specKeys = []string{"task", "models", "thresholds", "signal", "quality", "reach", "rows", "source"}

// rawSpec is one [[cascade]] table before its values are checked; every
// field is decoded as any so that a wrong type is reported at its key
// rather than failing the whole decode.
type rawSpec struct {
	Task       any `toml:"task"`
	Models     any `toml:"models"`
	Thresholds any `toml:"thresholds"`
	Signal     any `toml:"signal"`
	Quality    any `toml:"quality"`
	Reach      any `toml:"reach"`
	Rows       any `toml:"rows"`
	Source     any `toml:"source"`
}

// LoadSpecs reads a cascade spec file; see ParseSpecs.
func LoadSpecs(path string) ([]estimator.Cascade, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Row: -1, Msg: "cannot read: " + unwrapPath(err).Error()}}
	}
	return ParseSpecs(path, data)
}

// ParseSpecs decodes a cascade spec file: one [[cascade]] table per fitted
// cascade with the keys task (optional), models, thresholds, signal,
// quality, reach, rows (optional) and source (optional). Decoding is
// strict: an unknown key, a value of the wrong type and a cascade that
// fails estimator.Cascade.Check are all errors. Every problem is an *Error
// naming the file (name) and the line:col of the key at fault; they are
// returned together as Errors, in file order. Whether the models are in a
// catalog is for the caller to check.
func ParseSpecs(name string, data []byte) ([]estimator.Cascade, error) {
	if !utf8.Valid(data) {
		return nil, Errors{{File: name, Line: 1, Col: 1, Row: -1, Msg: "the file is not UTF-8 text; a cascade file is TOML written by costwise eval --save-cascade"}}
	}
	var raw struct {
		Cascade []rawSpec `toml:"cascade"`
	}
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Errors{{File: name, Line: pe.Position.Line, Col: pe.Position.Col, Row: -1, Msg: "TOML syntax: " + pe.Message + "; fix the file's syntax"}}
		}
		// A type mismatch of the top level (cascade = 3, [cascade] instead
		// of [[cascade]]).
		pos := tomlpos.Build(data).Key("cascade")
		if !pos.IsValid() {
			pos = tomlpos.Pos{Line: 1, Col: 1}
		}
		return nil, Errors{{File: name, Line: pos.Line, Col: pos.Col, Row: -1,
			Msg: "cascade: must be an array of tables, one per cascade; head each one [[cascade]] (not [cascade] or cascade = ...)"}}
	}
	ix := tomlpos.Build(data)
	var errs Errors
	add := func(pos tomlpos.Pos, msg string) {
		if !pos.IsValid() {
			pos = tomlpos.Pos{Line: 1, Col: 1}
		}
		errs = append(errs, &Error{File: name, Line: pos.Line, Col: pos.Col, Row: -1, Msg: msg})
	}
	for _, u := range ix.Undecoded(md) {
		allowed := specKeys
		where := "a [[cascade]] table"
		if !strings.HasPrefix(u.Path, "cascade[") {
			allowed, where = []string{"cascade"}, "the top level"
		}
		msg := fmt.Sprintf("%s: unknown key %q in %s; allowed keys are %s", u.Path, u.Key, where, strings.Join(allowed, ", "))
		if s := suggest.Closest(u.Key, allowed); s != "" {
			msg = fmt.Sprintf("%s: unknown key %q in %s; did you mean %q?", u.Path, u.Key, where, s)
		}
		add(u.Pos, msg)
	}
	if len(raw.Cascade) == 0 && len(errs) == 0 {
		add(tomlpos.Pos{Line: 1, Col: 1}, "no cascade in the file; each cascade is a [[cascade]] table (costwise eval --save-cascade writes them)")
	}
	out := make([]estimator.Cascade, 0, len(raw.Cascade))
	for i, r := range raw.Cascade {
		c, bad := decodeSpec(i, r, ix, add)
		if !bad {
			if err := c.Check(); err != nil {
				field, _, _ := strings.Cut(err.Error(), ":")
				add(specPos(ix, i, field), fmt.Sprintf("cascade %d: %v", i+1, err))
				bad = true
			}
		}
		if !bad {
			out = append(out, c)
		}
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(a, b int) bool {
			return errs[a].Line < errs[b].Line || errs[a].Line == errs[b].Line && errs[a].Col < errs[b].Col
		})
		return nil, errs
	}
	return out, nil
}

// specPos is where key of cascade i stands: its value, else (a missing
// key) the cascade's [[cascade]] header.
func specPos(ix *tomlpos.Index, i int, key string) tomlpos.Pos {
	path := fmt.Sprintf("cascade[%d]", i)
	if p := ix.Value(path + "." + key); p.IsValid() {
		return p
	}
	return ix.Key(path)
}

// decodeSpec converts the values of cascade i, reporting each wrong type
// or value through add; bad is true when anything was reported.
func decodeSpec(i int, r rawSpec, ix *tomlpos.Index, add func(tomlpos.Pos, string)) (c estimator.Cascade, bad bool) {
	at := func(key, format string, args ...any) {
		add(specPos(ix, i, key), fmt.Sprintf("cascade %d: %s: ", i+1, key)+fmt.Sprintf(format, args...))
		bad = true
	}
	str := func(key string, v any, required bool, what string) string {
		if v == nil {
			if required {
				at(key, "missing; add %s = %s", key, what)
			}
			return ""
		}
		s, ok := v.(string)
		if !ok {
			at(key, "must be a string, got %s; write %s = %s", tomlpos.TypeName(v), key, what)
		}
		return s
	}
	num := func(v any) (float64, bool) {
		switch x := v.(type) {
		case float64:
			return x, true
		case int64:
			return float64(x), true
		}
		return 0, false
	}
	nums := func(key string, v any, what string) []float64 {
		if v == nil {
			at(key, "missing; add %s = %s", key, what)
			return nil
		}
		list, ok := v.([]any)
		if !ok {
			at(key, "must be a list of numbers, got %s; write %s = %s", tomlpos.TypeName(v), key, what)
			return nil
		}
		out := make([]float64, 0, len(list))
		for k, e := range list {
			f, ok := num(e)
			if !ok {
				at(key, "entry %d is %s, not a number", k+1, tomlpos.TypeName(e))
				return nil
			}
			out = append(out, f)
		}
		return out
	}
	c.Task = str("task", r.Task, false, `"classification"`)
	c.Signal = str("signal", r.Signal, true, `"logprob" (or "validate", "self_check")`)
	c.Source = str("source", r.Source, false, `"outcomes.csv, test split (seed 1)"`)
	switch list, ok := r.Models.([]any); {
	case r.Models == nil:
		at("models", `missing; add models = ["cheap/model", "strong/model"], cheapest first`)
	case !ok:
		at("models", "must be a list of model IDs, got %s", tomlpos.TypeName(r.Models))
	default:
		seen := map[string]bool{}
		for k, e := range list {
			s, ok := e.(string)
			if !ok || s == "" {
				at("models", "entry %d must be a model ID (a non-empty string)", k+1)
				break
			}
			if seen[s] {
				at("models", "%q appears twice; each stage must be a different model", s)
				break
			}
			seen[s] = true
			c.Models = append(c.Models, s)
		}
	}
	c.Thresholds = nums("thresholds", r.Thresholds, "[0.72] (one per model but the last)")
	c.Reach = nums("reach", r.Reach, "[1.0, 0.34] (one share per model, the first 1)")
	switch q, ok := num(r.Quality); {
	case r.Quality == nil:
		at("quality", "missing; add quality = 0.91 (the cascade's mean quality on held-out rows)")
	case !ok:
		at("quality", "must be a number, got %s", tomlpos.TypeName(r.Quality))
	default:
		c.Quality = q
	}
	if r.Rows != nil {
		n, ok := r.Rows.(int64)
		switch {
		case !ok:
			at("rows", "must be a whole number, got %s", tomlpos.TypeName(r.Rows))
		case n < 0 || n > math.MaxInt32:
			at("rows", "%d is outside 0..%d", n, math.MaxInt32)
		default:
			c.Rows = int(n)
		}
	}
	return c, bad
}

// WriteSpecs writes cascades in the format ParseSpecs reads (a comment,
// then one [[cascade]] table each). Every cascade must pass Check; the
// output parses back to the same cascades.
func WriteSpecs(w io.Writer, cs []estimator.Cascade) error {
	if len(cs) == 0 {
		return errors.New("no cascade to write")
	}
	for k := range cs {
		if err := cs[k].Check(); err != nil {
			return fmt.Errorf("cascade %d (%s): %w", k+1, cs[k].ID(), err)
		}
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# Fitted cascades: give this file to --cascades. Quality and reach were measured")
	fmt.Fprintln(bw, "# on held-out rows (see source); keep signal the same as the M|confidence data.")
	for k := range cs {
		c := &cs[k]
		fmt.Fprintf(bw, "\n[[cascade]]\n")
		fmt.Fprintf(bw, "task = %s\n", tomlString(c.Task))
		quoted := make([]string, len(c.Models))
		for i, m := range c.Models {
			quoted[i] = tomlString(m)
		}
		fmt.Fprintf(bw, "models = [%s]\n", strings.Join(quoted, ", "))
		fmt.Fprintf(bw, "thresholds = %s\n", tomlFloats(c.Thresholds))
		fmt.Fprintf(bw, "signal = %s\n", tomlString(c.Signal))
		fmt.Fprintf(bw, "quality = %s\n", tomlFloat(c.Quality))
		fmt.Fprintf(bw, "reach = %s\n", tomlFloats(c.Reach))
		fmt.Fprintf(bw, "rows = %d\n", c.Rows)
		fmt.Fprintf(bw, "source = %s\n", tomlString(c.Source))
	}
	return bw.Flush()
}

// WriteSpecsFile writes cascades to path (see WriteSpecs), replacing the
// file.
func WriteSpecsFile(path string, cs []estimator.Cascade) error {
	var b strings.Builder
	if err := WriteSpecs(&b, cs); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// tomlFloat formats v as a TOML float that reads back as exactly v.
func tomlFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	case math.IsNaN(v):
		return "nan"
	}
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

func tomlFloats(vs []float64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = tomlFloat(v)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// tomlString quotes s as a TOML basic string. Invalid UTF-8 becomes U+FFFD.
func tomlString(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// SpecOptions describe a fitted cascade for NewSpec.
type SpecOptions struct {
	Task   string // the task whose nodes may use it; "" = any
	Signal string // estimator.SignalLogprob, SignalValidate or SignalSelfCheck
	Source string // where it was fitted and measured
	// Rename maps the table's model names to catalog IDs; a model not in
	// it keeps its name.
	Rename map[string]string
}

// NewSpec turns policy p, fitted on training rows, and its replay on the
// held-out rows (Evaluate(test, p)) into a cascade for the planner: Quality
// is held.Quality, Reach[k] is the share of held-out queries that no stage
// before k answered, Rows is held.Rows. p must have at least two models.
func NewSpec(p Policy, held Metrics, o SpecOptions) (estimator.Cascade, error) {
	if len(p.Models) < 2 {
		return estimator.Cascade{}, fmt.Errorf("the policy %s is a single model, not a cascade", p)
	}
	if len(held.Answered) != len(p.Models) {
		return estimator.Cascade{}, fmt.Errorf("the held-out metrics have %d stages but the policy %d models; replay the policy with Evaluate", len(held.Answered), len(p.Models))
	}
	c := estimator.Cascade{
		Task:       o.Task,
		Models:     make([]string, len(p.Models)),
		Thresholds: append([]float64(nil), p.Thresholds...),
		Signal:     o.Signal,
		Reach:      make([]float64, len(p.Models)),
		Quality:    held.Quality,
		Rows:       held.Rows,
		Source:     o.Source,
	}
	for k, m := range p.Models {
		c.Models[k] = m
		if id, ok := o.Rename[m]; ok {
			c.Models[k] = id
		}
	}
	answered := 0.0
	for k := range c.Reach {
		// Shares of a finite row count: round off the float sum's noise
		// (0.35 rather than 0.3500000000000001).
		c.Reach[k] = min(max(math.Round((1-answered)*1e12)/1e12, 0), 1)
		if k > 0 {
			c.Reach[k] = min(c.Reach[k], c.Reach[k-1]) // rounding must not make a later stage reach more
		}
		answered += held.Answered[k]
	}
	c.Reach[0] = 1
	if err := c.Check(); err != nil {
		return estimator.Cascade{}, err
	}
	return c, nil
}
