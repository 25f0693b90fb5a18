package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseConfig(t *testing.T) {
	src := `
[providers.openai]
api_key_env = "OPENAI_API_KEY"

[server]
auto_min_quality = 0.8
budget_usd_per_day = 20

[[server.key]]
name = "team-a"
key_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
budget_usd_per_day = 5.0
rpm = 600

[[route]]
name = "cheap-chat"
task = "writing"
min_quality = 0.9
models = ["openai/*", "anthropic/*"]
max_cost_usd = 0.01
`
	cfg, err := ParseConfig("costwise.toml", []byte(src))
	require.NoError(t, err)
	require.Len(t, cfg.Keys, 1)
	k := cfg.Keys[0]
	assert.Equal(t, "team-a", k.Name)
	assert.Equal(t, int64(5_000_000_000), k.BudgetNanoPerDay)
	assert.Equal(t, 600, k.RPM)
	got, ok := cfg.match("test") // sha256("test") = 9f86d0...
	require.True(t, ok)
	assert.Equal(t, "team-a", got.Name)
	_, ok = cfg.match("Test")
	assert.False(t, ok)
	assert.Equal(t, 0.8, cfg.AutoMinQuality)
	assert.Equal(t, int64(20e9), cfg.DailyBudgetNano)
	require.Len(t, cfg.Routes, 1)
	r := cfg.Routes[0]
	assert.Equal(t, "cheap-chat", r.Name)
	assert.Equal(t, "writing", r.Task)
	assert.Equal(t, 0.9, r.MinQuality)
	assert.Equal(t, []string{"openai/*", "anthropic/*"}, r.Models)
	assert.Equal(t, 0.01, r.MaxCostUSD)

	empty, err := ParseConfig("p.toml", []byte("[providers.openai]\napi_key_env = \"K\"\n"))
	require.NoError(t, err)
	assert.Empty(t, empty.Keys)
	assert.Equal(t, DefaultAutoMinQuality, empty.AutoMinQuality)
	assert.Equal(t, int64(DefaultMaxBodyBytes), empty.MaxBodyBytes)
}

// TestParseConfigErrors checks every problem is reported with file:line:col,
// in file order, against testdata/bad-config.golden.
func TestParseConfigErrors(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "bad-config.toml"))
	require.NoError(t, err)
	_, err = ParseConfig("bad-config.toml", src)
	require.Error(t, err)
	got := err.Error() + "\n"
	golden := filepath.Join("testdata", "bad-config.golden")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), got)
	assert.NotContains(t, got, "sk-live-pasted-key", "a key pasted by mistake is never echoed")

	for _, tc := range []struct{ name, src, want string }{
		{"syntax", "[[server.key]\nname = 1", "bad.toml:2:13: TOML syntax error"},
		{"type", "[[server.key]]\nrpm = \"many\"", "check the types"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("bad.toml", []byte(tc.src))
			require.Error(t, err)
			assert.True(t, strings.Contains(err.Error(), tc.want), err.Error())
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join(t.TempDir(), "none.toml"))
	require.NoError(t, err)
	assert.Empty(t, cfg.Keys)
}
