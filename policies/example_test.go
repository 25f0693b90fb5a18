package policies_test

import (
	"fmt"

	"github.com/costwise/costwise/graph"
	"github.com/costwise/costwise/policies"
)

// A rule that does not compile is reported at load with its position in the
// workflow file and a caret under the mistake.
func ExampleCompile() {
	src := `name = "w"
[[policy]]
name = "approved-providers"
scope = "node"
rule = 'model.provider in ["openai", "anthropic"] && model.qualty.code > 0.8'

[[node]]
id = "a"
prompt = "Write a function"
`
	w, err := graph.Parse("workflow.toml", []byte(src))
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = policies.Compile(w)
	fmt.Println(err)
	// Output:
	// workflow.toml:5:60: policy[0].rule: rule "approved-providers" does not compile: model has no field qualty
	//  | model.provider in ["openai", "anthropic"] && model.qualty.code > 0.8
	//  | ...................................................^
}

// Compile a rule once and evaluate it on many candidates.
func ExampleCompileRule() {
	r, err := policies.CompileRule("cheap-enough", "node", `est.cost_usd <= 0.01 || model.quality.code >= 0.9`)
	fmt.Println(r.Name(), err)
	// Output: cheap-enough <nil>
}
