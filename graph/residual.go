package graph

import (
	"regexp"
	"slices"
)

// DoneInputPrefix names the inputs that stand for finished nodes' outputs in
// a residual workflow: node "draft" becomes input "done__draft".
const DoneInputPrefix = "done__"

var doneRefRE = regexp.MustCompile(`\{\{\s*node\.([a-z0-9_-]+)\.output\s*\}\}`)

// Residual returns the workflow that is left once the nodes in done have
// run: their outputs become inputs (named DoneInputPrefix + id, with the
// actual output as their example text) and every reference to them is
// rewritten. Budget and policies are copied; the caller adjusts the budget
// to what remains. The result is validated.
func (w *Workflow) Residual(done map[string]string) (*Workflow, error) {
	r := &Workflow{Name: w.Name, Description: w.Description, File: w.File, Budget: w.Budget,
		Policies: slices.Clone(w.Policies), Inputs: slices.Clone(w.Inputs)}
	for _, n := range w.Nodes {
		if out, ok := done[n.ID]; ok {
			r.Inputs = append(r.Inputs, Input{Name: DoneInputPrefix + n.ID, Example: out})
		}
	}
	rewrite := func(s string) string {
		return doneRefRE.ReplaceAllStringFunc(s, func(m string) string {
			id := doneRefRE.FindStringSubmatch(m)[1]
			if _, ok := done[id]; ok {
				return "{{input." + DoneInputPrefix + id + "}}"
			}
			return m
		})
	}
	for _, n := range w.Nodes {
		if _, ok := done[n.ID]; ok {
			continue
		}
		c := *n
		c.System, c.Prompt = rewrite(n.System), rewrite(n.Prompt)
		c.DependsOn = nil
		for _, d := range n.DependsOn {
			if _, ok := done[d]; !ok {
				c.DependsOn = append(c.DependsOn, d)
			}
		}
		c.Refs = nil
		r.Nodes = append(r.Nodes, &c)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}
