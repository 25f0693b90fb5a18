package ledger

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunsOwnedBy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := OpenWith(path, Options{Now: fakeClock()})
	require.NoError(t, err)
	for _, r := range []struct{ id, owner string }{
		{"r_a1", "team-a"}, {"r_b1", "team-b"}, {"r_a2", "team-a"}, {"r_none", ""}, {"r_a3", "team-a"},
	} {
		_, err := l.CreateRun(NewRun{ID: r.id, WorkflowName: "wf", Owner: r.owner})
		require.NoError(t, err)
	}
	// A routed request written in a batch keeps its owner too.
	_, err = l.RecordRuns([]CompletedRun{{Run: NewRun{ID: "r_b2", WorkflowName: "router", Owner: "team-b"}, Status: RunSucceeded}})
	require.NoError(t, err)
	require.NoError(t, l.Close())

	l, err = OpenWith(path, Options{}) // the owners outlive the process
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Close()) }()
	ids := func(runs []Run) (out []string) {
		for _, r := range runs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, tc := range []struct {
		owner    string
		limit    int
		want     []string
		wantMore bool
	}{
		{"team-a", 0, []string{"r_a3", "r_a2", "r_a1"}, false},
		{"team-a", 2, []string{"r_a3", "r_a2"}, true},
		{"team-a", 3, []string{"r_a3", "r_a2", "r_a1"}, false},
		{"team-b", 0, []string{"r_b2", "r_b1"}, false},
		{"", 0, nil, false},
		{"team-c", 5, nil, false},
	} {
		t.Run(tc.owner, func(t *testing.T) {
			runs, more, err := l.RunsOwnedBy(tc.owner, tc.limit)
			require.NoError(t, err)
			assert.Equal(t, tc.want, ids(runs))
			assert.Equal(t, tc.wantMore, more)
			for _, r := range runs {
				assert.Equal(t, tc.owner, r.Owner)
			}
		})
	}
	rec, err := l.Run("r_a1")
	require.NoError(t, err)
	assert.Equal(t, "team-a", rec.Owner)
	rec, err = l.Run("r_none")
	require.NoError(t, err)
	assert.Empty(t, rec.Owner)
}
