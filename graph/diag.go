package graph

import (
	"fmt"
	"strings"
)

// Diagnostic is one problem found in a workflow, with where it stands.
type Diagnostic struct {
	File  string // the workflow's file name as given to Parse or Load
	Line  int    // 1-based; 0 when the problem has no position (a workflow built in code)
	Col   int    // 1-based byte column
	Node  string // the node's id, when the problem belongs to a node
	Field string // the key, e.g. "repeat.max" or "attachment[1].kind"
	Msg   string // what is wrong and what to do
}

// Error formats the diagnostic as "file:line:col: node "id": field: message".
func (d *Diagnostic) Error() string {
	var b strings.Builder
	b.WriteString(d.File)
	if d.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", d.Line, d.Col)
	}
	b.WriteString(": ")
	if d.Node != "" {
		fmt.Fprintf(&b, "node %q: ", d.Node)
	}
	if d.Field != "" {
		b.WriteString(d.Field)
		b.WriteString(": ")
	}
	b.WriteString(d.Msg)
	return b.String()
}

// Errors is every problem found in one workflow, in file order. It is the
// error type returned by Parse, Load and Validate.
type Errors []*Diagnostic

// Error joins the diagnostics, one per line.
func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, d := range e {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}
