package graph

import (
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var (
	idRE    = regexp.MustCompile(`^[a-z0-9_-]+$`)
	taskRE  = regexp.MustCompile(`^[a-z0-9_]+$`)
	inputRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// Limits on attachments: larger values are typos, not inputs.
const (
	maxAttachmentCount = 10_000
	maxImageSide       = 100_000
	maxMediaSeconds    = 24 * 3600
	maxPages           = 100_000
)

// Validate checks every rule of the workflow format and, when the workflow is
// valid, builds its DAG (topological order, predecessors, successors). It
// returns Errors listing every problem, in file order. Load and Parse call
// it; call it yourself on a Workflow built in code.
func (w *Workflow) Validate() error {
	v := &validator{w: w}
	v.workflow()
	v.inputs()
	v.policies()
	v.nodes()
	if len(v.diags) > 0 {
		sortDiagnostics(v.diags)
		return v.diags
	}
	return nil
}

type validator struct {
	w     *Workflow
	diags Errors
	ids   map[string]int
}

// diag makes a diagnostic at the TOML path (e.g. "node[2].when"), or without
// a position for a workflow built in code.
func (w *Workflow) diag(tomlPath, node, field, msg string) *Diagnostic {
	d := &Diagnostic{File: w.File, Node: node, Field: field, Msg: msg}
	if w.src != nil {
		p := w.src.Key(tomlPath)
		if !p.IsValid() {
			p = Pos{Line: 1, Col: 1} // a required key that is missing altogether
		}
		d.Line, d.Col = p.Line, p.Col
	}
	if d.File == "" {
		d.File = "<workflow>"
	}
	return d
}

func (v *validator) add(tomlPath, node, field, format string, args ...any) {
	v.diags = append(v.diags, v.w.diag(tomlPath, node, field, fmt.Sprintf(format, args...)))
}

func (v *validator) workflow() {
	w := v.w
	if strings.TrimSpace(w.Name) == "" {
		v.add("name", "", "name", "is required: give the workflow a name, e.g. name = \"support-triage\"")
	}
	b := w.Budget
	if b.MaxCostUSD < 0 || math.IsNaN(b.MaxCostUSD) || math.IsInf(b.MaxCostUSD, 0) {
		v.add("budget.max_cost_usd", "", "budget.max_cost_usd", "must be a positive number of USD, got %v", b.MaxCostUSD)
	}
	if b.MaxLatencyS < 0 || math.IsNaN(b.MaxLatencyS) || math.IsInf(b.MaxLatencyS, 0) {
		v.add("budget.max_latency_s", "", "budget.max_latency_s", "must be a positive number of seconds, got %v", b.MaxLatencyS)
	}
	if !(b.MinSuccess >= 0 && b.MinSuccess <= 1) {
		v.add("budget.min_success", "", "budget.min_success", "must be a probability in [0, 1], got %v", b.MinSuccess)
	}
	if len(w.Nodes) == 0 {
		v.add("", "", "node", "the workflow has no [[node]]; add at least one step")
	}
}

func (v *validator) inputs() {
	seen := map[string]bool{}
	for _, in := range v.w.Inputs {
		p := "inputs." + in.Name
		switch {
		case !inputRE.MatchString(in.Name):
			v.add(p, "", p, "input names may use only letters, digits, '_' and '-'")
		case seen[in.Name]:
			v.add(p, "", p, "duplicate input name")
		}
		seen[in.Name] = true
		if in.Tokens < 0 || in.Tokens > MaxTokens {
			v.add(p+".tokens", "", p+".tokens", "must be between 0 and %d, got %d", MaxTokens, in.Tokens)
		}
	}
}

func (v *validator) policies() {
	seen := map[string]int{}
	for i, p := range v.w.Policies {
		base := "policy[" + strconv.Itoa(i) + "]"
		field := func(k string) string { return fmt.Sprintf("policy[%d].%s", i, k) }
		if strings.TrimSpace(p.Name) == "" {
			v.add(base+".name", "", field("name"), "is required: name the policy so that its rejections can be explained")
		} else if j, dup := seen[p.Name]; dup {
			v.add(base+".name", "", field("name"), "duplicate policy name %q (also policy[%d])", p.Name, j)
		} else {
			seen[p.Name] = i
		}
		if p.Scope != ScopeNode && p.Scope != ScopePlan {
			v.add(base+".scope", "", field("scope"), "must be %q or %q, got %q", ScopeNode, ScopePlan, p.Scope)
		}
		if strings.TrimSpace(p.Rule) == "" {
			v.add(base+".rule", "", field("rule"), "is required: an expr-lang expression that is true when the policy holds")
		}
	}
}

func (v *validator) nodes() {
	w := v.w
	v.ids = map[string]int{}
	for i, n := range w.Nodes {
		base := "node[" + strconv.Itoa(i) + "]"
		switch {
		case n.ID == "":
			v.add(base, "", fmt.Sprintf("node[%d].id", i), "is required: a unique id of lowercase letters, digits, '_' and '-'")
		case !idRE.MatchString(n.ID):
			v.add(base+".id", n.ID, "id", "may use only lowercase letters, digits, '_' and '-'")
		default:
			if j, dup := v.ids[n.ID]; dup {
				v.add(base+".id", n.ID, "id", "duplicate node id (first defined at %s)", w.posOf(j))
			} else {
				v.ids[n.ID] = i
			}
		}
		v.node(base, n)
	}
	v.buildDAG()
}

func (w *Workflow) posOf(i int) string {
	if p := w.Nodes[i].Pos; p.IsValid() {
		return "line " + strconv.Itoa(p.Line)
	}
	return "node[" + strconv.Itoa(i) + "]"
}

func (v *validator) node(base string, n *Node) {
	id := n.ID
	if !taskRE.MatchString(n.Task) {
		v.add(base+".task", id, "task", "must be a task kind such as %s", strings.Join(TaskKinds, ", "))
	}
	if strings.TrimSpace(n.Prompt) == "" {
		v.add(base, id, "prompt", "is required: the prompt template sent to the model")
	}
	v.tokens(base+".input_tokens", id, "input_tokens", n.InputTokens)
	v.tokens(base+".cache_prefix_tokens", id, "cache_prefix_tokens", n.CachePrefixTokens)
	if n.InputTokens > 0 && n.CachePrefixTokens > n.InputTokens {
		v.add(base+".cache_prefix_tokens", id, "cache_prefix_tokens", "(%d) exceeds input_tokens (%d): the cached prefix is part of the prompt", n.CachePrefixTokens, n.InputTokens)
	}
	v.outputTokens(base+".output_tokens", id, n.OutputTokens)
	if !(n.MinQuality >= 0 && n.MinQuality <= 1) {
		v.add(base+".min_quality", id, "min_quality", "must be in [0, 1], got %v", n.MinQuality)
	}
	if !(n.When >= 0 && n.When <= 1) {
		v.add(base+".when", id, "when", "is a probability and must be in [0, 1], got %v", n.When)
	}
	v.repeat(base+".repeat", id, n.Repeat)
	for k, g := range n.Models {
		if _, err := path.Match(g, ""); err != nil || strings.TrimSpace(g) == "" {
			v.add(base+".models", id, fmt.Sprintf("models[%d]", k), "bad glob %q: use * and ? over model ids such as \"openai/gpt-4o*\"", g)
		}
	}
	if len(n.OutputSchema) > 0 && !slices.Contains(n.Requires, RequireJSON) {
		n.Requires = append(slices.Clone(n.Requires), RequireJSON) // a schema implies JSON mode
	}
	for _, r := range n.Requires {
		if r != RequireTools && r != RequireJSON && r != RequireReasoning {
			v.add(base+".requires", id, "requires", "unknown capability %q; use %q, %q or %q", r, RequireTools, RequireJSON, RequireReasoning)
		}
	}
	for k, a := range n.Attachments {
		v.attachment(fmt.Sprintf("%s.attachment[%d]", base, k), id, fmt.Sprintf("attachment[%d]", k), a)
	}
	refs, problems := parseTemplate(n.System + "\n" + n.Prompt)
	n.Refs = refs
	for _, p := range problems {
		v.add(base+".prompt", id, "prompt", "%s", p)
	}
	for _, r := range refs {
		if r.Kind == RefInput && v.w.Input(r.Name) == nil {
			v.add(base+".prompt", id, "prompt", "%s names an input that is not declared; add [inputs.%s]", r, r.Name)
		}
	}
}

func (v *validator) tokens(tomlPath, id, field string, n int) {
	if n < 0 || n > MaxTokens {
		v.add(tomlPath, id, field, "must be between 0 and %d tokens, got %d", MaxTokens, n)
	}
}

func (v *validator) outputTokens(p, id string, h TokenHint) {
	switch {
	case !(h.Mean >= 0 && h.Mean <= MaxTokens):
		v.add(p, id, "output_tokens", "mean must be between 0 and %d tokens, got %v", MaxTokens, h.Mean)
	case !(h.P95 >= 0 && h.P95 <= MaxTokens):
		v.add(p, id, "output_tokens", "p95 must be between 0 and %d tokens, got %v", MaxTokens, h.P95)
	case h.Max < 0 || h.Max > MaxTokens:
		v.add(p, id, "output_tokens", "max must be between 0 and %d tokens, got %d", MaxTokens, h.Max)
	case h.P95 > 0 && h.P95 < h.Mean:
		v.add(p, id, "output_tokens", "p95 (%v) is less than mean (%v)", h.P95, h.Mean)
	case h.Max > 0 && float64(h.Max) < max(h.Mean, h.P95):
		v.add(p, id, "output_tokens", "max (%d) is less than mean or p95 (%v)", h.Max, max(h.Mean, h.P95))
	}
}

func (v *validator) repeat(p, id string, r Repeat) {
	if r == (Repeat{}) {
		return
	}
	switch {
	case !(r.Mean >= 1 && r.Mean <= MaxRepeat):
		v.add(p+".mean", id, "repeat.mean", "must be between 1 and %d iterations, got %v", MaxRepeat, r.Mean)
	case r.Max < 1 || r.Max > MaxRepeat:
		v.add(p+".max", id, "repeat.max", "must be between 1 and %d iterations, got %d", MaxRepeat, r.Max)
	case float64(r.Max) < r.Mean:
		v.add(p+".max", id, "repeat.max", "(%d) is less than repeat.mean (%v)", r.Max, r.Mean)
	case r.TurnTokens < 0 || r.TurnTokens > MaxTokens:
		v.add(p+".turn_tokens", id, "repeat.turn_tokens", "must be between 0 and %d tokens, got %d", MaxTokens, r.TurnTokens)
	}
}

func (v *validator) attachment(p, id, field string, a Attachment) {
	bad := func(k, format string, args ...any) {
		v.add(p+"."+k, id, field+"."+k, format, args...)
	}
	if a.Count < 1 || a.Count > maxAttachmentCount {
		bad("count", "must be between 1 and %d, got %d", maxAttachmentCount, a.Count)
	}
	notFor := func(k string, set bool) {
		if set {
			bad(k, "does not apply to %s attachments; remove it", a.Kind)
		}
	}
	switch a.Kind {
	case KindImage:
		if a.Width < 1 || a.Width > maxImageSide || a.Height < 1 || a.Height > maxImageSide {
			bad("width", "an image needs width and height in pixels between 1 and %d, got %dx%d", maxImageSide, a.Width, a.Height)
		}
		if a.Detail != DetailLow && a.Detail != DetailHigh && a.Detail != DetailAuto {
			bad("detail", "must be %q, %q or %q, got %q", DetailLow, DetailHigh, DetailAuto, a.Detail)
		}
		notFor("seconds", a.Seconds != 0)
		notFor("pages", a.Pages != 0)
		notFor("tokens", a.Tokens != 0)
	case KindAudio, KindVideo:
		if !(a.Seconds > 0 && a.Seconds <= maxMediaSeconds) {
			bad("seconds", "%s needs seconds between 0 and %d, got %v", a.Kind, maxMediaSeconds, a.Seconds)
		}
		notFor("width", a.Width != 0 || a.Height != 0)
		notFor("detail", a.Detail != "")
		notFor("pages", a.Pages != 0)
		notFor("tokens", a.Tokens != 0)
	case KindDocument:
		switch {
		case a.Pages == 0 && a.Tokens == 0:
			bad("pages", "a document needs pages = N or tokens = N")
		case a.Pages != 0 && a.Tokens != 0:
			bad("pages", "give pages or tokens, not both")
		case a.Pages < 0 || a.Pages > maxPages:
			bad("pages", "must be between 1 and %d, got %d", maxPages, a.Pages)
		case a.Tokens < 0 || a.Tokens > MaxTokens:
			bad("tokens", "must be between 1 and %d, got %d", MaxTokens, a.Tokens)
		}
		notFor("width", a.Width != 0 || a.Height != 0)
		notFor("detail", a.Detail != "")
		notFor("seconds", a.Seconds != 0)
	default:
		bad("kind", "unknown attachment kind %q; use %q, %q, %q or %q", a.Kind, KindImage, KindAudio, KindVideo, KindDocument)
	}
}
