package graph

import (
	"encoding/json"

	"github.com/costwise/costwise/internal/tomlpos"
)

// Task kinds that the default catalog rates every model on. A node may name
// another kind when a user catalog rates it; the estimator falls back to
// TaskDefault for a model that has no rating for the node's kind.
const (
	TaskDefault        = "default"
	TaskClassification = "classification"
	TaskExtraction     = "extraction"
	TaskSummarization  = "summarization"
	TaskWriting        = "writing"
	TaskCode           = "code"
	TaskReasoning      = "reasoning"
	TaskMath           = "math"
	TaskVision         = "vision"
	TaskLongContext    = "long_context"
)

// TaskKinds lists the standard task kinds in a stable order.
var TaskKinds = []string{
	TaskDefault, TaskClassification, TaskExtraction, TaskSummarization, TaskWriting,
	TaskCode, TaskReasoning, TaskMath, TaskVision, TaskLongContext,
}

// Attachment kinds.
const (
	KindImage    = "image"
	KindAudio    = "audio"
	KindVideo    = "video"
	KindDocument = "document"
)

// Image detail levels.
const (
	DetailAuto = "auto"
	DetailLow  = "low"
	DetailHigh = "high"
)

// Capabilities a node may require of its model.
const (
	RequireTools     = "tools"
	RequireJSON      = "json"
	RequireReasoning = "reasoning"
)

// Policy scopes.
const (
	ScopeNode = "node"
	ScopePlan = "plan"
)

// MaxTokens bounds every token count in a workflow: no model reads or writes
// more in one call, so a larger number is a typo.
const MaxTokens = 10_000_000

// MaxRepeat bounds repeat.max: an agent loop of more iterations is a typo or
// needs a different design.
const MaxRepeat = 10_000

// Workflow is a multi-step LLM workflow: inputs, limits, rules and a DAG of
// nodes. Load and Parse return a validated Workflow; a Workflow built in code
// must be validated with Validate before its DAG methods are used.
type Workflow struct {
	Name        string
	Description string
	File        string   // file name used in diagnostics; directory for input files
	Inputs      []Input  // in file order (TOML tables are unordered; sorted by name)
	Budget      Budget   // zero fields mean "no limit"
	Policies    []Policy // in file order
	Nodes       []*Node  // in file order; a node's index is its position here

	src   *tomlpos.Index // nil for workflows built in code
	dag   *dag
	index map[string]int
}

// Input is a run-time input with a hint of its size. Exactly one of Tokens,
// Example and File is set.
type Input struct {
	Name        string
	Description string
	Tokens      int    // explicit size in tokens
	Example     string // a representative text, counted by the estimator
	File        string // a file holding a representative text, relative to the workflow file
	Text        string // File's contents, read by Load/Parse (empty when the file is missing)
}

// Budget holds the limits on one run. A zero field means no limit.
type Budget struct {
	MaxCostUSD  float64 // expected cost of the run, USD
	MaxLatencyS float64 // critical-path latency, seconds
	MinSuccess  float64 // probability that every node succeeds, (0,1]
}

// Policy is an extra rule written in expr-lang. The policies package compiles
// and evaluates it; graph only checks its shape.
type Policy struct {
	Name        string
	Scope       string // ScopeNode or ScopePlan
	Rule        string
	Description string
	RulePos     Pos // where the rule's text starts in the file (for error carets)
}

// Pos is a position in a workflow file; the zero Pos means "unknown".
type Pos = tomlpos.Pos

// Node is one step of the workflow: one LLM call, or a loop of calls.
type Node struct {
	ID           string
	Task         string // task kind; TaskDefault when omitted
	Description  string
	DependsOn    []string
	System       string // optional system prompt
	Prompt       string // template with {{input.NAME}} and {{node.ID.output}}
	InputTokens  int    // explicit prompt size; 0 = count from the prompt
	OutputTokens TokenHint
	MinQuality   float64 // 0 = no minimum
	Models       []string
	When         float64 // probability that the node runs, for estimation; 1 unless set
	RunIf        string  // expr over input.NAME and node.ID.output deciding at run time whether the node runs
	Repeat       Repeat
	Validate     string // expr rule over the output, checked by the executor
	// OutputSchema is a JSON Schema (as JSON) the output must match: the
	// node then requires JSON mode, and the executor checks every answer
	// against it, escalating one that does not match.
	OutputSchema      json.RawMessage
	CachePrefixTokens int
	Requires          []string
	Attachments       []Attachment

	// Refs are the template references in System and Prompt, in order of
	// first appearance, without duplicates.
	Refs []Ref
	// Pos is where the node's [[node]] header stands.
	Pos Pos
}

// TokenHint is a node's expected output size. Mean is always set once the
// node is valid; P95 and Max are 0 when the user gave no more than a number.
type TokenHint struct {
	Mean float64
	P95  float64
	Max  int
}

// IsZero reports whether no hint was given.
func (h TokenHint) IsZero() bool { return h == TokenHint{} }

// Repeat describes an agent loop: the node runs Mean times on average and at
// most Max times. With History, iteration k resends the previous k-1 turns:
// each turn is the model's output plus TurnTokens of new input (tool results,
// observations). The zero Repeat means a single call.
type Repeat struct {
	Mean       float64
	Max        int
	History    bool
	TurnTokens int
	Until      string // expr over output and iteration: the loop stops when it holds
}

// Iterations returns the expected number of calls (1 without a loop).
func (r Repeat) Iterations() float64 {
	if r.Mean <= 0 {
		return 1
	}
	return r.Mean
}

// Attachment is a multimodal input of a node.
type Attachment struct {
	Kind    string // KindImage, KindAudio, KindVideo or KindDocument
	Count   int    // how many such attachments; 1 unless set
	Width   int    // image: pixels
	Height  int    // image: pixels
	Detail  string // image: DetailLow, DetailHigh or DetailAuto
	Seconds float64
	Pages   int // document
	Tokens  int // document: explicit size in tokens
}

// RefKind says what a template reference points at.
type RefKind int

// Reference kinds.
const (
	RefInput RefKind = iota + 1 // {{input.NAME}}
	RefNode                     // {{node.ID.output}}
)

// Ref is one template reference.
type Ref struct {
	Kind RefKind
	Name string // the input's name or the node's id
}

// String renders the reference as it is written in a template.
func (r Ref) String() string {
	if r.Kind == RefNode {
		return "{{node." + r.Name + ".output}}"
	}
	return "{{input." + r.Name + "}}"
}

// Node returns the node with the given id, or nil.
func (w *Workflow) Node(id string) *Node {
	if i, ok := w.NodeIndex(id); ok {
		return w.Nodes[i]
	}
	return nil
}

// NodeIndex returns the index of the node with the given id.
func (w *Workflow) NodeIndex(id string) (int, bool) {
	if w.index == nil {
		for i, n := range w.Nodes {
			if n.ID == id {
				return i, true
			}
		}
		return 0, false
	}
	i, ok := w.index[id]
	return i, ok
}

// Input returns the input with the given name, or nil.
func (w *Workflow) Input(name string) *Input {
	for i := range w.Inputs {
		if w.Inputs[i].Name == name {
			return &w.Inputs[i]
		}
	}
	return nil
}

// KeyPos returns where a key stands in the workflow's file, by its TOML path
// with array indices ("node[2].validate", "budget.max_cost_usd"), or the
// position of its nearest written ancestor; the zero Pos for a workflow
// built in code.
func (w *Workflow) KeyPos(path string) Pos {
	if w.src == nil {
		return Pos{}
	}
	return w.src.Key(path)
}
