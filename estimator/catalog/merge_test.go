package catalog

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMergeFieldByField(t *testing.T) {
	base := loadTestdata(t, "base.toml")
	over := loadTestdata(t, "override.toml")
	baseBefore := mustModel(t, base, "openai/gpt-4o").Clone()

	c := Merge(base, over)
	var ids []string
	for _, m := range c.Models() {
		ids = append(ids, m.ID)
	}
	assert.Equal(t, []string{"openai/gpt-4o", "anthropic/claude-haiku-4-5", "acme/fast-1"}, ids, "base order kept, new ids appended")

	m := mustModel(t, c, "openai/gpt-4o")
	assert.Equal(t, RateOf(12), m.OutputPerMTok, "overridden")
	assert.False(t, m.Tools, "overridden to false")
	assert.Equal(t, RateOf(2.5), m.InputPerMTok, "kept from base")
	assert.Equal(t, RateOf(1.25), m.CacheReadPerMTok, "kept from base")
	assert.Equal(t, "GPT-4o", m.DisplayName)
	assert.Equal(t, "https://openai.com/api/pricing/", m.Source)
	assert.Equal(t, int64(128000), m.ContextWindow)
	assert.Equal(t, []string{"text", "image"}, m.Modalities)
	assert.Equal(t, []Tier{{AboveTokens: 100000, Prices: Prices{InputPerMTok: RateOf(5)}}}, m.Tiers)
	assert.Equal(t, Prices{InputPerMTok: RateOf(1.25), OutputPerMTok: RateOf(6)}, m.ServiceTiers[ServiceBatch], "service tier merged rate by rate")
	assert.Equal(t, map[string]float64{"default": 0.7, "code": 0.81}, m.Quality, "quality merged per task kind")
	assert.True(t, m.IsSet("output_per_mtok") && m.IsSet("input_per_mtok"))

	assert.Equal(t, baseBefore, mustModel(t, base, "openai/gpt-4o"), "Merge does not modify its inputs")
	assert.Equal(t, RateOf(10), mustModel(t, base, "openai/gpt-4o").OutputPerMTok)

	n := mustModel(t, c, "acme/fast-1")
	assert.Equal(t, "acme", n.Provider)
	assert.Equal(t, RateOf(0.1), n.InputPerMTok)

	// Merging a LiteLLM-style import keeps what LiteLLM does not know.
	imp, err := LoadLiteLLM("l.json", []byte(`{"gpt-4o": {"litellm_provider": "openai", "mode": "chat", "output_cost_per_token": 1.1e-05}}`))
	require.NoError(t, err)
	c2 := Merge(c, imp)
	m2 := mustModel(t, c2, "openai/gpt-4o")
	assert.Equal(t, RateOf(11), m2.OutputPerMTok)
	assert.Equal(t, RateOf(2.5), m2.InputPerMTok)
	assert.Equal(t, []string{"text", "image"}, m2.Modalities, "LiteLLM entry without capability keys leaves modalities alone")
	assert.Equal(t, 0.81, m2.Quality["code"])
	assert.Len(t, c2.Reports(), 1)

	assert.Equal(t, 2, Merge(nil, base).Len())
	assert.Equal(t, 2, Merge(base, nil).Len())
}

func TestLoadFiles(t *testing.T) {
	c, err := LoadFiles([]string{"testdata/base.toml", "testdata/override.toml"}, false)
	require.NoError(t, err)
	assert.Equal(t, 3, c.Len())
	assert.Equal(t, RateOf(12), mustModel(t, c, "openai/gpt-4o").OutputPerMTok)

	_, err = LoadFiles([]string{"testdata/invalid.toml", "testdata/missing.toml"}, false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `testdata/invalid.toml:6:1: model "openai/gpt-4o": cache_reed_per_mtok: unknown key`)
	assert.Contains(t, err.Error(), "testdata/missing.toml: cannot read catalog: no such file or directory")

	c, err = LoadFiles(nil, false)
	require.NoError(t, err)
	assert.Equal(t, 0, c.Len())

	d, err := Default()
	require.NoError(t, err)
	dir := t.TempDir()
	p := filepath.Join(dir, "o.toml")
	require.NoError(t, os.WriteFile(p, []byte("[[model]]\nid = \"acme/new\"\ninput_per_mtok = 1\n"), 0o644))
	c, err = LoadFiles([]string{p}, true)
	require.NoError(t, err)
	assert.Equal(t, d.Len()+1, c.Len())
}

func TestCatalogFilters(t *testing.T) {
	c := loadTestdata(t, "prices.toml")
	var ids []string
	for _, m := range c.ByProvider("openai") {
		ids = append(ids, m.ID)
	}
	assert.Equal(t, []string{"openai/gpt-4o", "openai/gpt-4.1", "openai/o3", "openai/gpt-4o-audio-preview"}, ids)
	ms, err := c.Match("*/gemini-*")
	require.NoError(t, err)
	require.Len(t, ms, 2)
	_, err = c.Match("[")
	assert.Error(t, err)
	b := loadTestdata(t, "base.toml")
	require.Len(t, b.ByTask("code"), 1)
	assert.Empty(t, b.ByTask("math"))
	assert.Len(t, c.Filter(func(m *Model) bool { return len(m.Tiers) > 0 }), 3)
}
