package executor

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/costwise/costwise/executor/provider"
	"github.com/costwise/costwise/graph"
)

// Rules are a workflow's run-time rules, compiled once: each node's
// validate rule, output schema, repeat.until rule and run_if condition.
type Rules struct {
	validate map[string]*OutputRule
	schema   map[string]*answerSchema
	until    map[string]*OutputRule
	runIf    map[string]*vm.Program
}

// RunIfEnv is what a run_if condition sees: the run's inputs and, for every
// upstream node, its output and whether it ran.
type RunIfEnv struct {
	Input map[string]string        `expr:"input"`
	Node  map[string]NodeOutputEnv `expr:"node"`
}

// NodeOutputEnv is an upstream node as run_if sees it.
type NodeOutputEnv struct {
	Output string `expr:"output"`
	Ran    bool   `expr:"ran"`
}

// schemaName is a node's id as a response_format schema name (letters,
// digits, _ and -).
func schemaName(id string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, id)
}

// CompileRules compiles every node's validate, repeat.until and run_if rule
// and its output schema; errors name the file, the node and the field.
func CompileRules(w *graph.Workflow) (*Rules, error) {
	r := &Rules{validate: map[string]*OutputRule{}, schema: map[string]*answerSchema{}, until: map[string]*OutputRule{}, runIf: map[string]*vm.Program{}}
	var errs graph.Errors
	bad := func(i int, n *graph.Node, field string, err error) {
		p := w.KeyPos(fmt.Sprintf("node[%d].%s", i, field))
		errs = append(errs, &graph.Diagnostic{File: w.File, Line: p.Line, Col: p.Col, Node: n.ID, Field: field,
			Msg: "does not compile: " + err.Error()})
	}
	for i, n := range w.Nodes {
		if n.Validate != "" {
			rule, err := CompileOutputRule(n.Validate)
			if err != nil {
				bad(i, n, "validate", err)
			}
			r.validate[n.ID] = rule
		}
		if len(n.OutputSchema) > 0 {
			compiled, err := compileSchema(n.OutputSchema)
			if err != nil {
				bad(i, n, "output_schema", err)
			}
			r.schema[n.ID] = &answerSchema{spec: &provider.JSONSchema{Name: schemaName(n.ID), Schema: n.OutputSchema}, compiled: compiled}
		}
		if n.Repeat.Until != "" {
			rule, err := CompileOutputRule(n.Repeat.Until)
			if err != nil {
				bad(i, n, "repeat.until", err)
			}
			r.until[n.ID] = rule
		}
		if n.RunIf != "" {
			prog, err := expr.Compile(n.RunIf, expr.Env(RunIfEnv{}), expr.AsBool(), expr.MaxNodes(2000))
			if err != nil {
				bad(i, n, "run_if", err)
			}
			r.runIf[n.ID] = prog
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

// runs decides whether a node runs: its run_if when it has one; otherwise it
// always runs (`when` is a probability for estimation only).
func (r *Rules) runs(id string, inputs, outputs map[string]string) (bool, error) {
	prog := r.runIf[id]
	if prog == nil {
		return true, nil
	}
	env := RunIfEnv{Input: inputs, Node: make(map[string]NodeOutputEnv, len(outputs))}
	for k, v := range outputs {
		env.Node[k] = NodeOutputEnv{Output: v, Ran: true}
	}
	machine := vm.VM{MemoryBudget: 1_000_000}
	out, err := machine.Run(prog, env)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("run_if returned %s, not a bool", strconv.Quote(fmt.Sprint(out)))
	}
	return b, nil
}
