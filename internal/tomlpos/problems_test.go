package tomlpos

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestProblemsInFileOrder(t *testing.T) {
	ix := Build([]byte("a = 1\n[t]\nb = 2\n"))
	p := NewProblems("f.toml", ix)
	assert.NoError(t, p.Err())
	p.At("t.b", "too big")
	p.AtPos(Pos{Line: 1, Col: 1}, "a", "unknown")
	assert.EqualError(t, p.Err(), "f.toml:1:1: a: unknown\nf.toml:3:1: t.b: too big")
}
