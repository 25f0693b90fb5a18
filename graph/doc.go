// Package graph loads a costwise workflow (workflow.toml) into a validated
// directed acyclic graph of steps.
//
// A [Workflow] holds the run's inputs, budget, policies and nodes exactly as
// the user wrote them, with defaults applied; [Workflow.Validate] checks every
// rule of the format and reports every problem it finds as a [Diagnostic]
// that names the file, line:col and node. A valid workflow also carries its
// DAG: a topological order computed once, predecessors and successors by
// node index, and [Workflow.LongestPath] for the critical path under any
// per-node weights. [Workflow.WriteDOT] and [Workflow.WriteMermaid] export it.
//
// Boundary: graph knows the format and the shape of the run, nothing about
// models, prices or tokens. It does not count tokens (the estimator does), it
// does not compile policy rules or validate expressions (the policies package
// and the executor do); it checks only what can be checked from the file.
package graph
