package planner

// Dominance memo for the search. A search node at depth d is fully described,
// for its future, by its cost, its sum of w and the finish times of the
// "frontier": assigned positions that still have an open successor. If a
// node A at depth d was explored completely and a later node B at the same
// depth has cost, w and every frontier finish time at least A's, every
// completion of B is also a completion of A that costs no less, so B cannot
// beat the incumbent (which only improved since A was explored) and is cut.
// The memo is not used with Accept, which may reject A's completions while
// accepting B's. It keeps a bounded ring of labels per depth.

const memoLabels = 32 // labels kept per depth

type label struct {
	cost, w float64
	f       []float64
}

type memo struct {
	frontier [][]int32 // frontier positions per depth
	labels   [][]label
	next     []int
}

func newMemo(in *instance) *memo {
	n := in.n
	m := &memo{frontier: make([][]int32, n+1), labels: make([][]label, n+1), next: make([]int, n+1)}
	last := make([]int, n) // last successor position of every position
	for d := 0; d < n; d++ {
		last[d] = -1
		for _, s := range in.succs[d] {
			last[d] = max(last[d], int(s))
		}
	}
	for d := 1; d <= n; d++ {
		for p := 0; p < d; p++ {
			if last[p] >= d {
				m.frontier[d] = append(m.frontier[d], int32(p))
			}
		}
	}
	return m
}

// dominated reports whether a stored label at depth d dominates the state.
func (m *memo) dominated(d int, cost, w float64, finish []float64) bool {
	fr := m.frontier[d]
outer:
	for i := range m.labels[d] {
		l := &m.labels[d][i]
		if l.cost > cost || l.w > w {
			continue
		}
		for k, p := range fr {
			if l.f[k] > finish[p] {
				continue outer
			}
		}
		return true
	}
	return false
}

// store records a completely explored state at depth d.
func (m *memo) store(d int, cost, w float64, finish []float64) {
	fr := m.frontier[d]
	if len(m.labels[d]) < memoLabels {
		m.labels[d] = append(m.labels[d], label{f: make([]float64, len(fr))})
	}
	l := &m.labels[d][m.next[d]]
	m.next[d] = (m.next[d] + 1) % memoLabels
	l.cost, l.w = cost, w
	for k, p := range fr {
		l.f[k] = finish[p]
	}
}
