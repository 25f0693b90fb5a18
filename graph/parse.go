package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/costwise/costwise/internal/suggest"
	"github.com/costwise/costwise/internal/tomlpos"
)

// Load reads, parses and validates the workflow file at path. Inputs given
// as `file = "..."` are read relative to the workflow's directory.
func Load(path string) (*Workflow, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read the workflow: %v", unwrapPathErr(err))}}
	}
	w, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	if errs := w.readInputFiles(); len(errs) > 0 {
		return nil, errs
	}
	return w, nil
}

// Parse decodes and validates a workflow from data; name is used in
// diagnostics. Parse never touches the file system: inputs given as
// `file = "..."` keep an empty Text (Load reads them).
func Parse(name string, data []byte) (*Workflow, error) {
	var f fileWorkflow
	md, err := toml.NewDecoder(strings.NewReader(string(data))).Decode(&f)
	if err != nil {
		return nil, Errors{decodeDiagnostic(name, data, err)}
	}
	ix := tomlpos.Build(data)
	w := &Workflow{File: name, src: ix}
	var diags Errors
	for _, u := range ix.Undecoded(md) {
		if p := stripIdx(u.Path); strings.HasPrefix(p, "node.output_tokens.") || strings.HasPrefix(p, "node.output_schema.") {
			continue // decoded by hand (decodeTokenHint reports its own keys), or free-form (a JSON schema)
		}
		diags = append(diags, &Diagnostic{File: name, Line: u.Pos.Line, Col: u.Pos.Col, Field: u.Path,
			Msg: fmt.Sprintf("unknown key %q; %s", u.Key, suggestKey(u.Path))})
	}
	diags = append(diags, f.into(w)...)
	if err := w.Validate(); err != nil {
		var verrs Errors
		if errors.As(err, &verrs) {
			diags = append(diags, verrs...)
		}
	}
	if len(diags) > 0 {
		sortDiagnostics(diags)
		return nil, diags
	}
	return w, nil
}

// The file layer: pointers tell an omitted key from a zero.
type fileWorkflow struct {
	Name        *string              `toml:"name"`
	Description string               `toml:"description"`
	Inputs      map[string]fileInput `toml:"inputs"`
	Budget      *fileBudget          `toml:"budget"`
	Policy      []filePolicy         `toml:"policy"`
	Node        []fileNode           `toml:"node"`
}

type fileInput struct {
	Description string  `toml:"description"`
	Tokens      *int    `toml:"tokens"`
	Example     *string `toml:"example"`
	File        *string `toml:"file"`
}

type fileBudget struct {
	MaxCostUSD  *float64 `toml:"max_cost_usd"`
	MaxLatencyS *float64 `toml:"max_latency_s"`
	MinSuccess  *float64 `toml:"min_success"`
}

type filePolicy struct {
	Name        string `toml:"name"`
	Scope       string `toml:"scope"`
	Rule        string `toml:"rule"`
	Description string `toml:"description"`
}

type fileNode struct {
	ID                string           `toml:"id"`
	Task              *string          `toml:"task"`
	Description       string           `toml:"description"`
	DependsOn         []string         `toml:"depends_on"`
	System            string           `toml:"system"`
	Prompt            string           `toml:"prompt"`
	InputTokens       *int             `toml:"input_tokens"`
	OutputTokens      any              `toml:"output_tokens"`
	MinQuality        *float64         `toml:"min_quality"`
	Models            []string         `toml:"models"`
	When              *float64         `toml:"when"`
	RunIf             string           `toml:"run_if"`
	Repeat            *fileRepeat      `toml:"repeat"`
	Validate          string           `toml:"validate"`
	CachePrefixTokens *int             `toml:"cache_prefix_tokens"`
	Requires          []string         `toml:"requires"`
	OutputSchema      any              `toml:"output_schema"`
	Attachment        []fileAttachment `toml:"attachment"`
}

type fileRepeat struct {
	Mean       *float64 `toml:"mean"`
	Max        *int     `toml:"max"`
	History    bool     `toml:"history"`
	TurnTokens *int     `toml:"turn_tokens"`
	Until      string   `toml:"until"`
}

type fileAttachment struct {
	Kind    string  `toml:"kind"`
	Count   *int    `toml:"count"`
	Width   int     `toml:"width"`
	Height  int     `toml:"height"`
	Detail  string  `toml:"detail"`
	Seconds float64 `toml:"seconds"`
	Pages   int     `toml:"pages"`
	Tokens  int     `toml:"tokens"`
}

// into copies the file layer into w, applying defaults. It reports what only
// the file layer can see: keys given explicitly with a meaningless zero, and
// output_tokens of the wrong shape.
func (f *fileWorkflow) into(w *Workflow) Errors {
	var diags Errors
	bad := func(path, node, field, msg string) {
		diags = append(diags, w.diag(path, node, field, msg))
	}
	if f.Name != nil {
		w.Name = *f.Name
	}
	w.Description = f.Description

	names := make([]string, 0, len(f.Inputs))
	for n := range f.Inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fi := f.Inputs[n]
		in := Input{Name: n, Description: fi.Description}
		set := 0
		if fi.Tokens != nil {
			in.Tokens, set = *fi.Tokens, set+1
		}
		if fi.Example != nil {
			in.Example, set = *fi.Example, set+1
		}
		if fi.File != nil {
			in.File, set = *fi.File, set+1
		}
		if set != 1 {
			bad("inputs."+n, "", "inputs."+n, "give exactly one size hint: tokens = N, example = \"text\" or file = \"path\"")
		}
		w.Inputs = append(w.Inputs, in)
	}

	if b := f.Budget; b != nil {
		for _, l := range []struct {
			key string
			v   *float64
			dst *float64
		}{{"max_cost_usd", b.MaxCostUSD, &w.Budget.MaxCostUSD}, {"max_latency_s", b.MaxLatencyS, &w.Budget.MaxLatencyS}, {"min_success", b.MinSuccess, &w.Budget.MinSuccess}} {
			if l.v == nil {
				continue
			}
			if *l.v == 0 && l.key != "min_success" {
				bad("budget."+l.key, "", "budget."+l.key, "must be > 0; omit the key for no limit")
			}
			*l.dst = *l.v
		}
	}

	for i, p := range f.Policy {
		w.Policies = append(w.Policies, Policy{Name: p.Name, Scope: p.Scope, Rule: p.Rule, Description: p.Description,
			RulePos: w.src.Value("policy[" + strconv.Itoa(i) + "].rule")})
	}

	for i, fn := range f.Node {
		base := "node[" + strconv.Itoa(i) + "]"
		n := &Node{
			ID: fn.ID, Task: TaskDefault, Description: fn.Description, DependsOn: fn.DependsOn,
			System: fn.System, Prompt: fn.Prompt, Models: fn.Models, When: 1, RunIf: fn.RunIf, Validate: fn.Validate,
			Requires: fn.Requires, Pos: w.src.Key(base),
		}
		if fn.Task != nil {
			n.Task = *fn.Task
		}
		if fn.OutputSchema != nil {
			// A TOML table is JSON-encodable; the executor compiles it.
			if _, ok := fn.OutputSchema.(map[string]any); !ok {
				bad(base+".output_schema", fn.ID, "output_schema", fmt.Sprintf("is %s; give a table, the JSON Schema its output must match, e.g. { type = \"object\", required = [\"label\"] }", tomlpos.TypeName(fn.OutputSchema)))
			} else if b, err := json.Marshal(fn.OutputSchema); err != nil {
				bad(base+".output_schema", fn.ID, "output_schema", "cannot be read as JSON: "+err.Error())
			} else {
				n.OutputSchema = b
			}
		}
		if fn.InputTokens != nil {
			n.InputTokens = *fn.InputTokens
		}
		if fn.CachePrefixTokens != nil {
			n.CachePrefixTokens = *fn.CachePrefixTokens
		}
		if fn.MinQuality != nil {
			n.MinQuality = *fn.MinQuality
		}
		if fn.When != nil {
			n.When = *fn.When
		}
		if r := fn.Repeat; r != nil {
			n.Repeat.History = r.History
			n.Repeat.Until = r.Until
			if r.TurnTokens != nil {
				n.Repeat.TurnTokens = *r.TurnTokens
			}
			if r.Mean == nil {
				bad(base+".repeat", fn.ID, "repeat.mean", "is required in a repeat table: the expected number of iterations")
			} else {
				n.Repeat.Mean = *r.Mean
			}
			switch {
			case r.Max != nil:
				n.Repeat.Max = *r.Max
			case r.Mean != nil && *r.Mean >= 1 && *r.Mean <= MaxRepeat:
				n.Repeat.Max = int(math.Ceil(*r.Mean))
			}
		}
		hint, msg := decodeTokenHint(fn.OutputTokens)
		if msg != "" {
			bad(base+".output_tokens", fn.ID, "output_tokens", msg)
		}
		n.OutputTokens = hint
		for _, fa := range fn.Attachment {
			a := Attachment{Kind: fa.Kind, Count: 1, Width: fa.Width, Height: fa.Height, Detail: fa.Detail,
				Seconds: fa.Seconds, Pages: fa.Pages, Tokens: fa.Tokens}
			if fa.Count != nil {
				a.Count = *fa.Count
			}
			if a.Kind == KindImage && a.Detail == "" {
				a.Detail = DetailAuto
			}
			n.Attachments = append(n.Attachments, a)
		}
		w.Nodes = append(w.Nodes, n)
	}
	return diags
}

// decodeTokenHint accepts a number or a {mean, p95, max} table.
func decodeTokenHint(v any) (TokenHint, string) {
	const shape = "give a number of tokens, or a table { mean = 20, p95 = 40, max = 64 }"
	switch t := v.(type) {
	case nil:
		return TokenHint{}, ""
	case int64:
		return TokenHint{Mean: float64(t)}, ""
	case float64:
		return TokenHint{Mean: t}, ""
	case map[string]any:
		var h TokenHint
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := number(t[k])
			if !ok {
				return TokenHint{}, fmt.Sprintf("%s must be a number; %s", k, shape)
			}
			switch k {
			case "mean":
				h.Mean = f
			case "p95":
				h.P95 = f
			case "max":
				if f != math.Trunc(f) || math.Abs(f) > MaxTokens*10 {
					return TokenHint{}, "max must be a whole number of tokens"
				}
				h.Max = int(f)
			default:
				return TokenHint{}, fmt.Sprintf("unknown key %q; %s", k, shape)
			}
		}
		if _, ok := t["mean"]; !ok {
			return TokenHint{}, "mean is required; " + shape
		}
		return h, ""
	default:
		return TokenHint{}, fmt.Sprintf("has type %s; %s", tomlTypeName(v), shape)
	}
}

func number(v any) (float64, bool) {
	switch t := v.(type) {
	case int64:
		return float64(t), true
	case float64:
		return t, true
	}
	return 0, false
}

func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case []any, []map[string]any:
		return "array"
	case map[string]any:
		return "table"
	}
	return fmt.Sprintf("%T", v)
}

var lineRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// decodeDiagnostic turns a BurntSushi error into a Diagnostic with a position.
func decodeDiagnostic(name string, data []byte, err error) *Diagnostic {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := pe.Message
		if pe.Usage != "" {
			msg += " (" + strings.TrimSpace(strings.SplitN(pe.Usage, "\n", 2)[0]) + ")"
		}
		return &Diagnostic{File: name, Line: pe.Position.Line, Col: max(pe.Position.Col, 1), Msg: "TOML syntax: " + msg}
	}
	// Type mismatches come as "toml: line N (last key "a.b"): message".
	if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		d := &Diagnostic{File: name, Line: line, Col: 1, Field: m[2], Msg: friendlyTypeError(m[3])}
		ix := tomlpos.Build(data)
		if p, ok := ix.FindOnLine(m[2], line); ok {
			d.Col = p.Col
		}
		return d
	}
	return &Diagnostic{File: name, Line: 1, Col: 1, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
}

var typeRE = regexp.MustCompile(`incompatible types: TOML value has type (\S+); destination has type (\S+)`)

func friendlyTypeError(msg string) string {
	m := typeRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	want := strings.TrimPrefix(m[2], "*")
	switch {
	case strings.HasPrefix(want, "int"):
		want = "a whole number"
	case strings.HasPrefix(want, "float"):
		want = "a number"
	case want == "string":
		want = "a string"
	case want == "bool":
		want = "true or false"
	case strings.HasPrefix(want, "[]") || strings.HasPrefix(want, "slice"):
		want = "an array"
	default:
		want = "a table"
	}
	return fmt.Sprintf("has type %s, must be %s", m[1], want)
}

var knownKeys = map[string][]string{
	"":                {"name", "description", "inputs", "budget", "policy", "node"},
	"inputs.*":        {"description", "tokens", "example", "file"},
	"budget":          {"max_cost_usd", "max_latency_s", "min_success"},
	"policy":          {"name", "scope", "rule", "description"},
	"node":            {"id", "task", "description", "depends_on", "system", "prompt", "input_tokens", "output_tokens", "min_quality", "models", "when", "run_if", "repeat", "validate", "cache_prefix_tokens", "requires", "attachment"},
	"node.repeat":     {"mean", "max", "history", "turn_tokens", "until"},
	"node.attachment": {"kind", "count", "width", "height", "detail", "seconds", "pages", "tokens"},
}

// suggestKey says what keys are allowed where an unknown key stands, with the
// closest one first when it looks like a typo.
func suggestKey(path string) string {
	stripped := strings.Split(stripIdx(path), ".")
	key := stripped[len(stripped)-1]
	table := strings.Join(stripped[:len(stripped)-1], ".")
	if strings.HasPrefix(table, "inputs.") {
		table = "inputs.*"
	}
	allowed, ok := knownKeys[table]
	if !ok {
		return "remove it"
	}
	if best := suggest.Closest(key, allowed); best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "allowed keys here: " + strings.Join(allowed, ", ")
}

func stripIdx(p string) string {
	return idxRE.ReplaceAllString(p, "")
}

var idxRE = regexp.MustCompile(`\[\d+\]`)

// readInputFiles loads inputs given as files, relative to the workflow.
func (w *Workflow) readInputFiles() Errors {
	var diags Errors
	dir := filepath.Dir(w.File)
	for i := range w.Inputs {
		in := &w.Inputs[i]
		if in.File == "" {
			continue
		}
		p := in.File
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			diags = append(diags, w.diag("inputs."+in.Name+".file", "", "inputs."+in.Name+".file",
				fmt.Sprintf("cannot read %s: %v; give a path relative to the workflow file", p, unwrapPathErr(err))))
			continue
		}
		in.Text = string(data)
	}
	return diags
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func sortDiagnostics(d Errors) {
	sort.SliceStable(d, func(i, j int) bool {
		if d[i].Line != d[j].Line {
			return d[i].Line < d[j].Line
		}
		return d[i].Col < d[j].Col
	})
}
