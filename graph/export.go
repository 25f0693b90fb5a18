package graph

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Annotation adds to a node's picture in DOT and Mermaid exports: extra label
// lines (the chosen model and its cost, say) and a fill colour ("#rrggbb").
type Annotation struct {
	Lines []string
	Fill  string
}

// Annotator returns the annotation of node i; nil annotates nothing.
type Annotator func(i int) Annotation

// describe returns the label lines every export shows for a node.
func (n *Node) describe() []string {
	lines := []string{n.ID, n.Task}
	var extra []string
	if n.When < 1 {
		extra = append(extra, "when "+strconv.FormatFloat(n.When, 'g', 3, 64))
	}
	if n.Repeat.Mean > 0 {
		loop := fmt.Sprintf("repeat %s (max %d)", strconv.FormatFloat(n.Repeat.Mean, 'g', 3, 64), n.Repeat.Max)
		if n.Repeat.History {
			loop += " +history"
		}
		extra = append(extra, loop)
	}
	for _, a := range n.Attachments {
		extra = append(extra, fmt.Sprintf("%dx %s", a.Count, a.Kind))
	}
	if len(extra) > 0 {
		lines = append(lines, strings.Join(extra, ", "))
	}
	return lines
}

// WriteDOT writes the workflow as a Graphviz digraph: one box per node in
// topological order, an edge per dependency (dashed into branches that run
// with probability below 1).
func (w *Workflow) WriteDOT(out io.Writer, ann Annotator) error {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", dotID(w.Name))
	b.WriteString("  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", fontname=\"Helvetica\"];\n")
	for _, i := range w.Order() {
		n := w.Nodes[i]
		lines := n.describe()
		fill := ""
		if ann != nil {
			a := ann(i)
			lines = append(lines, a.Lines...)
			fill = a.Fill
		}
		esc := make([]string, len(lines))
		for k, l := range lines {
			esc[k] = dotEscape(l)
		}
		fmt.Fprintf(&b, "  %s [label=\"%s\"", dotID(n.ID), strings.Join(esc, `\n`))
		if fill != "" {
			fmt.Fprintf(&b, ", fillcolor=%q", fill)
		}
		b.WriteString("];\n")
	}
	for _, i := range w.Order() {
		for _, s := range w.Succs(i) {
			fmt.Fprintf(&b, "  %s -> %s", dotID(w.Nodes[i].ID), dotID(w.Nodes[s].ID))
			if w.Nodes[s].When < 1 {
				fmt.Fprintf(&b, " [style=dashed, label=\"p=%s\"]", strconv.FormatFloat(w.Nodes[s].When, 'g', 3, 64))
			}
			b.WriteString(";\n")
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(out, b.String())
	return err
}

// WriteMermaid writes the workflow as a Mermaid flowchart (left to right).
func (w *Workflow) WriteMermaid(out io.Writer, ann Annotator) error {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	var styles []string
	for _, i := range w.Order() {
		n := w.Nodes[i]
		lines := n.describe()
		if ann != nil {
			a := ann(i)
			lines = append(lines, a.Lines...)
			if a.Fill != "" {
				styles = append(styles, fmt.Sprintf("  style %s fill:%s", mermaidID(i), a.Fill))
			}
		}
		esc := make([]string, len(lines))
		for k, l := range lines {
			esc[k] = mermaidEscape(l)
		}
		fmt.Fprintf(&b, "  %s[\"%s\"]\n", mermaidID(i), strings.Join(esc, "<br/>"))
	}
	for _, i := range w.Order() {
		for _, s := range w.Succs(i) {
			arrow := "-->"
			if w.Nodes[s].When < 1 {
				arrow = "-. p=" + strconv.FormatFloat(w.Nodes[s].When, 'g', 3, 64) + " .->"
			}
			fmt.Fprintf(&b, "  %s %s %s\n", mermaidID(i), arrow, mermaidID(s))
		}
	}
	for _, s := range styles {
		b.WriteString(s + "\n")
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// dotID quotes an identifier for DOT.
func dotID(s string) string { return `"` + dotEscape(s) + `"` }

func dotEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// mermaidID names node i in Mermaid by index: node ids may contain '-' and
// words such as "end" that its parser reads as syntax; the label shows the id.
func mermaidID(i int) string { return "n" + strconv.Itoa(i) }

func mermaidEscape(s string) string {
	return strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;").Replace(s)
}
