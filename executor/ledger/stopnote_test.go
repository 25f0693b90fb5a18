package ledger

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNoteStop(t *testing.T) {
	l := openTest(t, Options{})
	id := mustRun(t, l, "r_stop", "wf", false, "n")
	const note = "cancelled over HTTP; resume with costwise run --resume r_stop"
	require.NoError(t, l.NoteStop(id, note))

	rec, err := l.Run(id)
	require.NoError(t, err)
	assert.Equal(t, RunRunning, rec.Status, "a stopped run stays resumable")
	assert.Equal(t, note, rec.StopNote)
	list, err := l.Runs(10)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, note, list[0].StopNote)

	_, err = l.ResumeRun(id, HashWorkflow([]byte("wf")))
	require.NoError(t, err)
	rec, err = l.Run(id)
	require.NoError(t, err)
	assert.Empty(t, rec.StopNote, "resuming clears the note")

	require.NoError(t, l.NoteStop(id, note))
	require.NoError(t, l.FinishRun(id, RunFailed))
	rec, err = l.Run(id)
	require.NoError(t, err)
	assert.Empty(t, rec.StopNote, "a finished run has no stop note")

	err = l.NoteStop(id, note)
	assert.ErrorIs(t, err, ErrInvalid, "only a running run can be noted")
	assert.ErrorIs(t, l.NoteStop("r_nope", note), ErrNotFound)
}

// A planned cascade's escalation (an answer set aside with its confidence)
// is counted but is not a re-route, and self-check calls are not answers.
func TestRerouteRatesCascades(t *testing.T) {
	l := openTest(t, Options{})
	id := mustRun(t, l, "r_cas", "wf", false, "n", "m")
	conf, yes := 0.3, 0.9
	for _, a := range []Attempt{
		{NodeID: "n", Model: "small", Outcome: OutcomeInvalid, Confidence: &conf}, // set aside by the cascade
		{NodeID: "n", Model: "big", Outcome: OutcomeOK},
		{NodeID: "m", Model: "small", Outcome: OutcomeOK, Confidence: &yes},
		{NodeID: "m", Model: "small", Outcome: OutcomeOK, Purpose: PurposeSelfCheck, Confidence: &yes},
		{NodeID: "m", Model: "small", Outcome: OutcomeInvalid}, // failed validation: a re-route
		{NodeID: "m", Model: "big", Outcome: OutcomeOK},
	} {
		a.RunID = id
		_, err := l.RecordAttempt(a)
		require.NoError(t, err)
	}
	rates, err := l.RerouteRates(0)
	require.NoError(t, err)
	got := map[string]Reroute{}
	for _, r := range rates {
		got[r.NodeID+"/"+r.Model] = r
	}
	assert.Equal(t, Reroute{WorkflowName: "wf", NodeID: "n", Model: "small", Calls: 1, Escalated: 1, Planned: 1, Rate: 0}, got["n/small"])
	assert.Equal(t, Reroute{WorkflowName: "wf", NodeID: "m", Model: "small", Calls: 2, Escalated: 1, Planned: 0, Rate: 0.5}, got["m/small"],
		"the self-check is not an answer")
}
