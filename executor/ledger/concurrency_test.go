package ledger

import (
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConcurrentRecording has 50 goroutines record attempts on one run
// (half through BeginAttempt) while others read; spent must be exact and
// every sequence number used exactly once.
func TestConcurrentRecording(t *testing.T) {
	const goroutines, perG = 50, 20
	l := openTest(t, Options{Synchronous: SyncNormal})
	var nodes []string
	for g := 0; g < goroutines; g++ {
		nodes = append(nodes, fmt.Sprintf("n%02d", g))
	}
	id := mustRun(t, l, "", "wf", false, nodes...)

	var wg sync.WaitGroup
	errs := make(chan error, goroutines*perG+goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				a := Attempt{RunID: id, NodeID: nodes[g], Model: "m", Outcome: OutcomeOK, CostNano: int64(g*1000 + i)}
				if i%2 == 0 {
					seq, err := l.BeginAttempt(CallStart{RunID: id, NodeID: nodes[g], Model: "m", EstimateNano: 5})
					if err != nil {
						errs <- err
						return
					}
					a.Seq = seq
				}
				if _, err := l.RecordAttempt(a); err != nil {
					errs <- err
					return
				}
				if i%5 == 0 { // readers alongside writers
					if _, err := l.Runs(10); err != nil {
						errs <- err
					}
					if _, err := l.Run(id); err != nil {
						errs <- err
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	var want int64
	for g := 0; g < goroutines; g++ {
		for i := 0; i < perG; i++ {
			want += int64(g*1000 + i)
		}
	}
	rec, err := l.Run(id)
	require.NoError(t, err)
	assert.Equal(t, want, rec.SpentNano)
	assert.Empty(t, rec.InFlight)
	var seqs []int
	var sum int64
	for _, n := range rec.Nodes {
		assert.Len(t, n.Attempts, perG, n.NodeID)
		for _, a := range n.Attempts {
			seqs = append(seqs, int(a.Seq))
			sum += a.CostNano
		}
	}
	assert.Equal(t, want, sum)
	sort.Ints(seqs)
	for i, s := range seqs {
		require.Equal(t, i+1, s, "sequence numbers are 1..N without gaps or repeats")
	}
	require.NoError(t, l.Check())
}
