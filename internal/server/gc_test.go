package server

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTuneGC(t *testing.T) {
	t.Run("sets the serving target and restores the old one", func(t *testing.T) {
		t.Setenv("GOGC", "")
		before := debug.SetGCPercent(123)
		defer debug.SetGCPercent(before)
		restore := TuneGC()
		assert.Equal(t, DefaultGCPercent, debug.SetGCPercent(DefaultGCPercent))
		restore()
		assert.Equal(t, 123, debug.SetGCPercent(123))
	})
	t.Run("GOGC in the environment wins", func(t *testing.T) {
		t.Setenv("GOGC", "150")
		before := debug.SetGCPercent(150)
		defer debug.SetGCPercent(before)
		TuneGC()()
		assert.Equal(t, 150, debug.SetGCPercent(150))
	})
}
