package graph

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	dgraph "github.com/dominikbraun/graph"

	"github.com/costwise/costwise/internal/suggest"
)

// dag is the validated shape of a workflow, by node index.
type dag struct {
	order []int   // topological order, ties broken by file order
	rank  []int   // rank[i] = position of node i in order
	preds [][]int // direct predecessors, ascending
	succs [][]int // direct successors, ascending
}

// buildDAG checks dependencies (unknown ids, duplicates, cycles) with
// dominikbraun/graph, computes the topological order once, and checks that
// every {{node.ID.output}} reference names an upstream node.
func (v *validator) buildDAG() {
	w := v.w
	g := dgraph.New(dgraph.StringHash, dgraph.Directed(), dgraph.PreventCycles())
	for id := range v.ids {
		_ = g.AddVertex(id) // ids are unique here
	}
	depErr := false
	for i, n := range w.Nodes {
		if _, ok := v.ids[n.ID]; !ok || v.ids[n.ID] != i {
			continue // invalid or duplicate id: reported already
		}
		base := "node[" + strconv.Itoa(i) + "].depends_on"
		seen := map[string]bool{}
		for _, dep := range n.DependsOn {
			switch {
			case dep == n.ID:
				v.add(base, n.ID, "depends_on", "dependency cycle: %s -> %s; a node cannot depend on itself", n.ID, n.ID)
				depErr = true
				continue
			case seen[dep]:
				v.add(base, n.ID, "depends_on", "lists %q twice", dep)
				continue
			}
			seen[dep] = true
			if _, ok := v.ids[dep]; !ok {
				v.add(base, n.ID, "depends_on", "unknown node %q%s", dep, suggestID(dep, v.ids))
				depErr = true
				continue
			}
			err := g.AddEdge(dep, n.ID)
			if errors.Is(err, dgraph.ErrEdgeCreatesCycle) {
				v.add(base, n.ID, "depends_on", "dependency cycle: %s; remove one of these dependencies", cycleText(g, dep, n.ID))
				depErr = true
			}
		}
	}
	if depErr || len(v.diags) > 0 {
		return
	}
	d, err := newDAG(w, g, v.ids)
	if err != nil {
		v.add("", "", "depends_on", "%v", err)
		return
	}
	v.upstreamRefs(d)
	if len(v.diags) == 0 {
		w.dag = d
		w.index = v.ids
	}
}

// cycleText names the cycle that the edge dep -> id would close, starting
// at id: "c -> a -> b -> c".
func cycleText(g dgraph.Graph[string, string], dep, id string) string {
	path, err := dgraph.ShortestPath(g, id, dep) // id ... dep; dep -> id closes it
	if err != nil || len(path) == 0 {
		return dep + " -> " + id + " -> ... -> " + dep
	}
	return strings.Join(append(path, id), " -> ")
}

func suggestID(id string, ids map[string]int) string {
	names := make([]string, 0, len(ids))
	for k := range ids {
		names = append(names, k)
	}
	if best := suggest.Closest(id, names); best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return "; depends_on lists the ids of other [[node]] tables"
}

func newDAG(w *Workflow, g dgraph.Graph[string, string], ids map[string]int) (*dag, error) {
	n := len(w.Nodes)
	order, err := dgraph.StableTopologicalSort(g, func(a, b string) bool { return ids[a] < ids[b] })
	if err != nil {
		return nil, err
	}
	d := &dag{order: make([]int, n), rank: make([]int, n), preds: make([][]int, n), succs: make([][]int, n)}
	for r, id := range order {
		d.order[r] = ids[id]
		d.rank[ids[id]] = r
	}
	adj, err := g.AdjacencyMap()
	if err != nil {
		return nil, err
	}
	for from, tos := range adj {
		i := ids[from]
		for to := range tos {
			j := ids[to]
			d.succs[i] = append(d.succs[i], j)
			d.preds[j] = append(d.preds[j], i)
		}
	}
	for i := range n {
		slices.Sort(d.succs[i])
		slices.Sort(d.preds[i])
	}
	return d, nil
}

// upstreamRefs checks that each {{node.ID.output}} names an ancestor.
func (v *validator) upstreamRefs(d *dag) {
	w := v.w
	anc := d.ancestors()
	for i, n := range w.Nodes {
		for _, r := range n.Refs {
			if r.Kind != RefNode {
				continue
			}
			j, ok := v.ids[r.Name]
			switch {
			case !ok:
				v.add("node["+strconv.Itoa(i)+"].prompt", n.ID, "prompt", "%s names an unknown node%s", r, suggestID(r.Name, v.ids))
			case j == i:
				v.add("node["+strconv.Itoa(i)+"].prompt", n.ID, "prompt", "%s refers to the node's own output", r)
			case !anc[i].has(j):
				v.add("node["+strconv.Itoa(i)+"].prompt", n.ID, "prompt", "%s is not upstream of %q; add %q to depends_on", r, n.ID, r.Name)
			}
		}
	}
}

// bitset is a set of node indices.
type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) set(i int)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i int) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitset) union(o bitset) {
	for k := range b {
		b[k] |= o[k]
	}
}

// ancestors returns, for every node, the set of nodes upstream of it.
func (d *dag) ancestors() []bitset {
	n := len(d.order)
	anc := make([]bitset, n)
	for _, i := range d.order {
		anc[i] = newBitset(n)
		for _, p := range d.preds[i] {
			anc[i].set(p)
			anc[i].union(anc[p])
		}
	}
	return anc
}

// Order returns the node indices in topological order; ties keep file order.
// The slice is shared: do not modify it. It is nil until Validate succeeds.
func (w *Workflow) Order() []int {
	if w.dag == nil {
		return nil
	}
	return w.dag.order
}

// Preds returns the direct predecessors of node i, ascending. Shared slice.
func (w *Workflow) Preds(i int) []int { return w.dag.preds[i] }

// Succs returns the direct successors of node i, ascending. Shared slice.
func (w *Workflow) Succs(i int) []int { return w.dag.succs[i] }

// Upstream reports whether node j is upstream of node i (a transitive
// predecessor).
func (w *Workflow) Upstream(i, j int) bool {
	if w.dag == nil || i == j {
		return false
	}
	// Walk back from i; the DAG is small next to the work done per node.
	seen := newBitset(len(w.Nodes))
	stack := append([]int(nil), w.dag.preds[i]...)
	for len(stack) > 0 {
		k := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if k == j {
			return true
		}
		if !seen.has(k) && w.dag.rank[k] > w.dag.rank[j] {
			seen.set(k)
			stack = append(stack, w.dag.preds[k]...)
		}
	}
	return false
}

// LongestPath returns the length of the longest path through the DAG when
// node i weighs weights[i], and the path's node indices from source to sink.
// It is the run's critical-path latency when the weights are latencies.
func (w *Workflow) LongestPath(weights []float64) (float64, []int) {
	d := w.dag
	if d == nil || len(weights) != len(w.Nodes) || len(w.Nodes) == 0 {
		return 0, nil
	}
	finish := make([]float64, len(w.Nodes))
	from := make([]int, len(w.Nodes))
	best := -1
	for _, i := range d.order {
		from[i] = -1
		start := 0.0
		for _, p := range d.preds[i] {
			if finish[p] > start || from[i] < 0 {
				start, from[i] = max(start, finish[p]), p
			}
		}
		finish[i] = start + weights[i]
		if best < 0 || finish[i] > finish[best] {
			best = i
		}
	}
	var path []int
	for k := best; k >= 0; k = from[k] {
		path = append(path, k)
	}
	for a, b := 0, len(path)-1; a < b; a, b = a+1, b-1 {
		path[a], path[b] = path[b], path[a]
	}
	return finish[best], path
}
