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
