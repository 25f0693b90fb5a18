package graph_test

import (
	"fmt"
	"os"

	"github.com/costwise/costwise/graph"
)

// Parse a workflow and walk it in topological order.
func ExampleParse() {
	src := `
name = "triage"
[inputs.ticket]
tokens = 600

[[node]]
id = "draft"
depends_on = ["classify"]
prompt = "Reply to {{input.ticket}} as a {{node.classify.output}} ticket"

[[node]]
id = "classify"
task = "classification"
prompt = "Classify {{input.ticket}}"
`
	w, err := graph.Parse("triage.toml", []byte(src))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, i := range w.Order() {
		n := w.Nodes[i]
		fmt.Println(n.ID, n.Task, n.Refs)
	}
	// Output:
	// classify classification [{{input.ticket}}]
	// draft default [{{input.ticket}} {{node.classify.output}}]
}

// Every problem is reported at once, each with file:line:col.
func ExampleParse_errors() {
	src := `
name = "broken"
[[node]]
id = "a"
depends_on = ["b"]
prompt = "x"
when = 1.5

[[node]]
id = "b"
depends_on = ["a"]
prompt = "{{input.missing}}"
colour = "red"
`
	_, err := graph.Parse("broken.toml", []byte(src))
	fmt.Println(err)
	// Output:
	// broken.toml:7:1: node "a": when: is a probability and must be in [0, 1], got 1.5
	// broken.toml:11:1: node "b": depends_on: dependency cycle: b -> a -> b; remove one of these dependencies
	// broken.toml:12:1: node "b": prompt: {{input.missing}} names an input that is not declared; add [inputs.missing]
	// broken.toml:13:1: node[1].colour: unknown key "colour"; allowed keys here: id, task, description, depends_on, system, prompt, input_tokens, output_tokens, min_quality, models, when, run_if, repeat, validate, cache_prefix_tokens, requires, attachment
}

// The critical path of a workflow under per-node latencies.
func ExampleWorkflow_LongestPath() {
	w := &graph.Workflow{Name: "fan", Nodes: []*graph.Node{
		{ID: "split", Prompt: "x", Task: "default", When: 1},
		{ID: "left", Prompt: "x", Task: "default", When: 1, DependsOn: []string{"split"}},
		{ID: "right", Prompt: "x", Task: "default", When: 1, DependsOn: []string{"split"}},
		{ID: "merge", Prompt: "x", Task: "default", When: 1, DependsOn: []string{"left", "right"}},
	}}
	if err := w.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	seconds, path := w.LongestPath([]float64{1, 4, 2, 1})
	for _, i := range path {
		fmt.Print(w.Nodes[i].ID, " ")
	}
	fmt.Println(seconds)
	_ = w.WriteMermaid(os.Stdout, nil)
	// Output:
	// split left merge 6
	// flowchart LR
	//   n0["split<br/>default"]
	//   n1["left<br/>default"]
	//   n2["right<br/>default"]
	//   n3["merge<br/>default"]
	//   n0 --> n1
	//   n0 --> n2
	//   n1 --> n3
	//   n2 --> n3
}
