package executor

import (
	"encoding/json"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// OutputEnv is what a node's validate rule sees.
type OutputEnv struct {
	Output    string `expr:"output"`
	Iteration int    `expr:"iteration"` // 1-based loop iteration
}

// OutputRule is a compiled validate (or repeat until) rule.
type OutputRule struct {
	src  string
	prog *vm.Program
}

// CompileOutputRule compiles an expr rule over the output with the helper
// json_valid(s) and expr's built-ins: len, trim, lower, upper, and the
// operators contains, startsWith, endsWith, matches (a regular expression),
// in.
func CompileOutputRule(src string) (*OutputRule, error) {
	prog, err := expr.Compile(src, expr.Env(OutputEnv{}), expr.AsBool(), expr.MaxNodes(2000),
		expr.Function("json_valid", func(args ...any) (any, error) {
			return json.Valid([]byte(strings.TrimSpace(args[0].(string)))), nil
		}, new(func(string) bool)),
	)
	if err != nil {
		return nil, err
	}
	return &OutputRule{src: src, prog: prog}, nil
}

// Check evaluates the rule; a run-time error counts as a failed check.
func (r *OutputRule) Check(output string, iteration int) (bool, error) {
	machine := vm.VM{MemoryBudget: 1_000_000}
	out, err := machine.Run(r.prog, OutputEnv{Output: output, Iteration: iteration})
	if err != nil {
		return false, err
	}
	ok, _ := out.(bool)
	return ok, nil
}

// String returns the rule's source.
func (r *OutputRule) String() string { return r.src }
