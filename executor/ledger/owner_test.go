package ledger

import (
	"path/filepath"
	"testing"
	"time"

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
			runs, more, err := l.RunsOwnedBy(tc.owner, tc.limit, "")
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

func TestSpentSince(t *testing.T) {
	l := openTest(t, Options{}) // fakeClock: runs created 1 ms apart from t0
	for i, r := range []struct {
		id, wf string
		cost   int64
		sim    bool
	}{
		{"r_1", "router:chat", 100, false}, {"r_2", "support-triage", 1000, false}, {"r_3", "router:chat", 20, false},
		{"r_4", "router:auto", 3, false}, {"r_5", "routerless", 7000, false},
		{"r_6", "router:chat", 50000, true}, // simulated: nothing real was spent
	} {
		_, err := l.CreateRun(NewRun{ID: r.id, WorkflowName: r.wf, Simulated: r.sim, Owner: "team-a", Nodes: []PlannedNode{{ID: "n"}}})
		require.NoError(t, err, i)
		_, err = l.RecordAttempt(Attempt{RunID: r.id, NodeID: "n", Model: "m", Outcome: OutcomeOK, CostNano: r.cost})
		require.NoError(t, err)
	}
	for _, tc := range []struct {
		prefix string
		since  time.Time
		want   int64
	}{
		{"router:", t0, 123},
		{"router:", t0.Add(-time.Hour), 123},
		{"router:", t0.Add(time.Hour), 0},
		{"", t0, 8123},
		{"support", t0, 1000},
	} {
		got, err := l.SpentSince(tc.prefix, tc.since)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "%q since %s", tc.prefix, tc.since)
	}
	// Runs created later than since only: r_1 was created at t0.
	got, err := l.SpentSince("router:", t0.Add(time.Nanosecond))
	require.NoError(t, err)
	assert.Equal(t, int64(23), got)
	got, err = l.SpentBy("team-a", t0)
	require.NoError(t, err)
	assert.Equal(t, int64(8123), got, "every real run of the owner; not the simulated one")
	got, err = l.SpentBy("team-b", t0)
	require.NoError(t, err)
	assert.Zero(t, got)
}
