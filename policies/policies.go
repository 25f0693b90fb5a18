package policies

import (
	"fmt"
	"path"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/graph"
)

// Code separates the outcomes of a filter, as the Kubernetes scheduler's
// status codes do.
type Code int

// Status codes.
const (
	Success  Code = iota // the candidate or plan is acceptable
	Rejected             // the policy rejects it; another candidate or plan may pass
	Error                // the policy could not decide (a run-time error); treated as a rejection
)

// ReasonCode names why a candidate was removed. The estimator's feasibility
// codes (context_window, max_output, modality, capability, unknown_price)
// are passed through unchanged.
type ReasonCode string

// Reason codes of the policies package.
const (
	ReasonMinQuality ReasonCode = "min_quality" // quality below the node's min_quality
	ReasonRule       ReasonCode = "policy"      // a [[policy]] rule or a registered plugin rejected it
	ReasonRuleError  ReasonCode = "policy_error"
)

// Status is a filter's verdict. A nil *Status means Success.
type Status struct {
	Code   Code
	Reason ReasonCode
	Policy string // the plugin's name
	Msg    string
}

// OK reports whether s means success.
func (s *Status) OK() bool { return s == nil || s.Code == Success }

// Error formats the status for a person.
func (s *Status) Error() string {
	if s.OK() {
		return "ok"
	}
	return fmt.Sprintf("%s (%s): %s", s.Policy, s.Reason, s.Msg)
}

// Plugin is anything registered in a Set; it implements NodeFilter,
// PlanFilter or both.
type Plugin interface {
	Name() string
}

// NodeFilter removes node x model candidates.
type NodeFilter interface {
	Plugin
	FilterNode(n *graph.Node, ne *estimator.NodeEstimate, c *estimator.Candidate) *Status
}

// PlanFilter accepts or rejects a complete plan.
type PlanFilter interface {
	Plugin
	FilterPlan(p *Plan) *Status
}

// Plan is a complete assignment as plan filters see it.
type Plan struct {
	Workflow *graph.Workflow
	Choice   []*estimator.Candidate // by node index
	CostUSD  float64                // expected cost of a run
	LatencyS float64                // critical-path latency
	Success  float64                // product of node qualities
}

// Limits on rules, so that a hostile rule cannot hang the planner.
const (
	MaxRuleNodes = 2000    // AST nodes per rule
	MemoryBudget = 100_000 // expr VM memory units per evaluation
)

// Set is the ordered set of policies of a workflow.
type Set struct {
	node []NodeFilter
	plan []PlanFilter
	name map[string]bool
}

// Rejection records one candidate that a node filter removed.
type Rejection struct {
	Node   string
	Model  string
	Reason ReasonCode
	Policy string
	Msg    string
}

// Register adds a plugin; it must implement NodeFilter or PlanFilter and
// have a unique name.
func (s *Set) Register(p Plugin) error {
	if s.name == nil {
		s.name = map[string]bool{}
	}
	if s.name[p.Name()] {
		return fmt.Errorf("policies: a policy named %q is already registered", p.Name())
	}
	nf, isNode := p.(NodeFilter)
	pf, isPlan := p.(PlanFilter)
	if !isNode && !isPlan {
		return fmt.Errorf("policies: %q implements neither NodeFilter nor PlanFilter", p.Name())
	}
	s.name[p.Name()] = true
	if isNode {
		s.node = append(s.node, nf)
	}
	if isPlan {
		s.plan = append(s.plan, pf)
	}
	return nil
}

// FilterNode runs every node filter on a candidate and returns every
// rejection (empty when the candidate is acceptable).
//
// A cascade candidate (estimator.AddCascades) passes the built-in
// feasibility and min_quality filters on its own figures (its measured
// quality), and every other filter — rules and registered plugins — on each
// of its stages: a cascade may call every one of its models, so each must be
// allowed.
func (s *Set) FilterNode(n *graph.Node, ne *estimator.NodeEstimate, c *estimator.Candidate) []Rejection {
	var out []Rejection
	for _, f := range s.node {
		if c.Cascade == nil || isBuiltin(f) {
			if st := f.FilterNode(n, ne, c); !st.OK() {
				out = append(out, Rejection{Node: n.ID, Model: c.ID(), Reason: st.Reason, Policy: f.Name(), Msg: st.Msg})
			}
			continue
		}
		for _, stage := range c.Cascade.Stages {
			if st := f.FilterNode(n, ne, stage); !st.OK() {
				out = append(out, Rejection{Node: n.ID, Model: c.ID(), Reason: st.Reason, Policy: f.Name(),
					Msg: "stage " + stage.Model.ID + ": " + st.Msg})
				break
			}
		}
	}
	return out
}

// isBuiltin reports whether f judges a candidate by its own figures.
func isBuiltin(f NodeFilter) bool {
	switch f.(type) {
	case feasibility, minQuality:
		return true
	}
	return false
}

// FilterPlan runs every plan filter and returns the first rejection, or nil.
func (s *Set) FilterPlan(p *Plan) *Status {
	for _, f := range s.plan {
		if st := f.FilterPlan(p); !st.OK() {
			if st.Policy == "" {
				st.Policy = f.Name()
			}
			return st
		}
	}
	return nil
}

// HasPlanFilters reports whether any plan filter is registered.
func (s *Set) HasPlanFilters() bool { return len(s.plan) > 0 }

// Compile builds a workflow's policy set: the estimator's feasibility, the
// nodes' min_quality and every [[policy]] rule. Rules that do not compile
// are reported together, each with file:line:col, the rule's name and a
// caret snippet.
func Compile(w *graph.Workflow) (*Set, error) {
	s := &Set{}
	_ = s.Register(feasibility{})
	_ = s.Register(minQuality{})
	var errs graph.Errors
	for i, p := range w.Policies {
		r, err := CompileRule(p.Name, p.Scope, p.Rule)
		if err != nil {
			errs = append(errs, ruleDiagnostic(w, i, err))
			continue
		}
		if err := s.Register(r.Plugin()); err != nil {
			errs = append(errs, &graph.Diagnostic{File: w.File, Line: p.RulePos.Line, Col: p.RulePos.Col, Field: fmt.Sprintf("policy[%d].name", i), Msg: err.Error()})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// ruleDiagnostic places an expr compile error in the workflow file: the
// rule's position plus the error's offset inside the rule.
func ruleDiagnostic(w *graph.Workflow, i int, err error) *graph.Diagnostic {
	p := w.Policies[i]
	d := &graph.Diagnostic{File: w.File, Line: p.RulePos.Line, Col: p.RulePos.Col, Field: fmt.Sprintf("policy[%d].rule", i)}
	msg := err.Error()
	if fe, ok := err.(*file.Error); ok {
		if d.Line > 0 {
			if fe.Line <= 1 {
				d.Col = p.RulePos.Col + 1 + fe.Column // +1 for the opening quote
			} else {
				d.Line += fe.Line - 1
				d.Col = fe.Column + 1
			}
		}
		msg = envNames.Replace(fe.Message) + fe.Snippet
	}
	if d.Line == 0 {
		d.File = w.File
	}
	d.Msg = fmt.Sprintf("rule %q does not compile: %s", p.Name, msg)
	return d
}

// envNames turns Go type names in expr's messages into the names rules use.
var envNames = strings.NewReplacer("type policies.ModelInfo", "model", "type policies.NodeInfo", "node",
	"type policies.EstInfo", "est", "type policies.PlanInfo", "plan", "policies.ModelInfo", "model")

// Rule is a compiled expr-lang policy.
type Rule struct {
	name    string
	scope   string
	source  string
	program *vm.Program
}

// CompileRule compiles one rule for the scope ("node" or "plan") with the
// scope's typed environment; the result must be a bool.
func CompileRule(name, scope, source string) (*Rule, error) {
	var env any
	switch scope {
	case graph.ScopeNode:
		env = NodeEnv{}
	case graph.ScopePlan:
		env = PlanEnv{}
	default:
		return nil, fmt.Errorf("scope must be %q or %q, got %q", graph.ScopeNode, graph.ScopePlan, scope)
	}
	opts := []expr.Option{expr.Env(env), expr.AsBool(), expr.MaxNodes(MaxRuleNodes)}
	for _, h := range helperFuncs() {
		opts = append(opts, expr.Function(h.name, h.fn, h.types...))
	}
	prog, err := expr.Compile(source, opts...)
	if err != nil {
		return nil, err
	}
	return &Rule{name: name, scope: scope, source: source, program: prog}, nil
}

// Name returns the rule's name.
func (r *Rule) Name() string { return r.name }

// eval runs the rule on env within the memory budget.
func (r *Rule) eval(env any) (bool, error) {
	machine := vm.VM{MemoryBudget: MemoryBudget}
	out, err := machine.Run(r.program, env)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

func (r *Rule) verdict(ok bool, err error) *Status {
	switch {
	case err != nil:
		return &Status{Code: Error, Reason: ReasonRuleError, Policy: r.name, Msg: fmt.Sprintf("rule failed: %v", firstLine(err.Error()))}
	case !ok:
		return &Status{Code: Rejected, Reason: ReasonRule, Policy: r.name, Msg: fmt.Sprintf("rule %s is false", r.source)}
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// nodeRule and planRule give a Rule exactly one of the two filter methods.
type nodeRule struct{ *Rule }
type planRule struct{ *Rule }

// FilterNode evaluates a node rule.
func (r nodeRule) FilterNode(n *graph.Node, ne *estimator.NodeEstimate, c *estimator.Candidate) *Status {
	return r.verdict(r.eval(NodeEnvOf(n, ne, c)))
}

// FilterPlan evaluates a plan rule.
func (r planRule) FilterPlan(p *Plan) *Status {
	return r.verdict(r.eval(PlanEnvOf(p.Workflow, p.Choice, p.CostUSD, p.LatencyS, p.Success)))
}

// Plugin returns the rule as a NodeFilter or PlanFilter, per its scope.
func (r *Rule) Plugin() Plugin {
	if r.scope == graph.ScopeNode {
		return nodeRule{r}
	}
	return planRule{r}
}

// feasibility passes the estimator's physical feasibility through.
type feasibility struct{}

func (feasibility) Name() string { return "feasibility" }

func (feasibility) FilterNode(_ *graph.Node, _ *estimator.NodeEstimate, c *estimator.Candidate) *Status {
	if c.Feasible || len(c.Reasons) == 0 {
		return nil
	}
	r := c.Reasons[0]
	msgs := make([]string, len(c.Reasons))
	for i, x := range c.Reasons {
		msgs[i] = x.Detail
	}
	return &Status{Code: Rejected, Reason: ReasonCode(r.Code), Msg: strings.Join(msgs, "; ")}
}

// minQuality applies the node's min_quality.
type minQuality struct{}

func (minQuality) Name() string { return "min_quality" }

func (minQuality) FilterNode(n *graph.Node, _ *estimator.NodeEstimate, c *estimator.Candidate) *Status {
	if n.MinQuality > 0 && c.Quality < n.MinQuality {
		return &Status{Code: Rejected, Reason: ReasonMinQuality, Msg: fmt.Sprintf("quality %.3f (%s) is below min_quality %.3f", c.Quality, c.QualitySource, n.MinQuality)}
	}
	return nil
}

func pathMatch(pattern, s string) (bool, error) { return path.Match(pattern, s) }
