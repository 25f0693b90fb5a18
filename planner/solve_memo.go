package planner

import "math"

// Dominance memo for the search. A search node at depth d is fully described,
// for its future, by its cost, its sum of w and the release times rel(v) of
// the "frontier": open positions v with an assigned predecessor (rel(v) is
// the latest finish among them; v cannot start earlier, and nothing else
// about the prefix's timing constrains the open part, since every assigned
// node already met the latency cap with its fastest tail). If a node A at
// depth d was explored completely and a later node B at the same depth has
// cost, w and every frontier release time at least A's, every completion of
// B is also a completion of A that costs no less, so B cannot beat the
// incumbent (which only improved since A was explored) and is cut. Release
// times dominate far more often than the finish times of the individual
// predecessors would: only the latest predecessor of each open node counts.
// The memo is not used with Accept, which may reject A's completions while
// accepting B's. It keeps a bounded ring of labels per depth, and stops
// checking (and storing) at a depth where it rarely cuts anything, since a
// check costs about as much as a search node. Without a latency cap the
// release times do not matter and the frontier is empty.

const (
	memoLabels = 32   // labels kept per depth
	memoTrial  = 4096 // checks per depth before its hit rate is judged
	memoMinHit = 16   // keep a depth when at least 1 in memoMinHit checks cuts
)

type label struct {
	cost, w float64
	f       []float64
}

type memo struct {
	frontier [][]int32 // frontier (open positions with an assigned pred) per depth
	labels   [][]label
	next     []int
	checks   []int64 // per depth: checks made and states cut
	hits     []int64
}

func newMemo(in *instance) *memo {
	n := in.n
	m := &memo{frontier: make([][]int32, n+1), labels: make([][]label, n+1), next: make([]int, n+1),
		checks: make([]int64, n+1), hits: make([]int64, n+1)}
	first := make([]int, n) // first predecessor position of every position
	for v := 0; v < n; v++ {
		first[v] = v
		for _, p := range in.preds[v] {
			first[v] = min(first[v], int(p))
		}
	}
	for d := 1; d <= n && !math.IsInf(in.capL, 1); d++ {
		for v := d; v < n; v++ {
			if first[v] < d {
				m.frontier[d] = append(m.frontier[d], int32(v))
			}
		}
	}
	return m
}

// useless reports whether depth d has been given up on.
func (m *memo) useless(d int) bool {
	return m.checks[d] >= memoTrial && m.hits[d]*memoMinHit < m.checks[d]
}

// dominated reports whether a stored label at depth d dominates the state;
// rel holds the release times by position.
func (m *memo) dominated(d int, cost, w float64, rel []float64) bool {
	if m.useless(d) {
		return false
	}
	m.checks[d]++
	fr := m.frontier[d]
outer:
	for i := range m.labels[d] {
		l := &m.labels[d][i]
		if l.cost > cost || l.w > w {
			continue
		}
		for k, p := range fr {
			if l.f[k] > rel[p] {
				continue outer
			}
		}
		m.hits[d]++
		return true
	}
	return false
}

// store records a completely explored state at depth d.
func (m *memo) store(d int, cost, w float64, rel []float64) {
	if m.useless(d) {
		return
	}
	fr := m.frontier[d]
	if len(m.labels[d]) < memoLabels {
		m.labels[d] = append(m.labels[d], label{f: make([]float64, len(fr))})
	}
	l := &m.labels[d][m.next[d]]
	m.next[d] = (m.next[d] + 1) % memoLabels
	l.cost, l.w = cost, w
	for k, p := range fr {
		l.f[k] = rel[p]
	}
}
