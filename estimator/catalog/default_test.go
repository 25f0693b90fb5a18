package catalog

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultCatalog(t *testing.T) {
	if len(defaultTOML) == 0 {
		t.Skip("data/default.toml is empty: the embedded default catalog has not been written yet")
	}
	c, err := Default()
	require.NoError(t, err)
	require.Positive(t, c.Len())
	c2, err := Default()
	require.NoError(t, err)
	assert.Same(t, c, c2, "parsed once")
	for _, m := range c.Models() {
		assert.NotEmpty(t, m.Source, m.ID)
		assert.False(t, m.AsOf.IsZero(), m.ID)
		assert.True(t, m.InputPerMTok.Known && m.OutputPerMTok.Known, "%s: default models state input and output prices", m.ID)
		_, ok := m.QualityFor("default")
		assert.True(t, ok, "%s: default models have a default quality", m.ID)
	}
}
