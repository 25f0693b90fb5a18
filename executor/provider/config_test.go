package provider

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestParseConfig(t *testing.T) {
	cfg, err := LoadConfig("testdata/config.toml")
	require.NoError(t, err)
	assert.Equal(t, map[string]ProviderConfig{
		"openai": {Name: "openai", Kind: KindOpenAI, APIKeyEnv: []string{"OPENAI_API_KEY"}, BaseURL: "https://api.openai.com/v1",
			Timeout: 60 * time.Second, MaxRetries: 3, RPM: 500, TPM: 200000},
		"anthropic": {Name: "anthropic", Kind: KindAnthropic, APIKeyEnv: []string{"ANTHROPIC_KEY_1", "ANTHROPIC_KEY_2"},
			Timeout: 90500 * time.Millisecond, MaxRetries: DefaultMaxRetries},
		"deepseek": {Name: "deepseek", Kind: KindOpenAI, APIKeyEnv: []string{"DEEPSEEK_API_KEY"}, BaseURL: "https://api.deepseek.com/v1",
			Timeout: DefaultTimeout, MaxRetries: DefaultMaxRetries},
		"local": {Name: "local", Kind: KindOllama, BaseURL: "http://localhost:11434", Timeout: DefaultTimeout, MaxRetries: DefaultMaxRetries},
	}, cfg.Providers)
	assert.Equal(t, "testdata/config.toml", cfg.Path)
}

// Every problem of a bad file is reported with file:line:col; the golden
// file holds the exact messages.
func TestParseConfigErrorsGolden(t *testing.T) {
	_, err := LoadConfig("testdata/bad_config.toml")
	require.Error(t, err)
	got := err.Error() + "\n"
	assert.NotContains(t, got, "sk-proj-abcdef0123456789", "a key pasted into api_key_env is never echoed")
	golden := filepath.Join("testdata", "bad_config.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), got)
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"syntax", "[providers.openai]\nkind = \n", "c.toml:2:"},
		{"type", "[providers.openai]\ntimeout_s = \"60\"\n", "c.toml: "},
		{"unknown key", "[providers.openai]\napi_key_env = \"K\"\nretries = 2\n", "c.toml:3:1: providers.openai.retries: unknown key \"retries\""},
		{"missing kind", "[providers.together]\napi_key_env = \"K\"\n", "c.toml:1:1: providers.together: missing kind"},
		{"missing key env", "[providers.openai]\n", "missing api_key_env; add api_key_env = \"OPENAI_API_KEY\""},
		{"empty key list", "[providers.openai]\napi_key_env = []\n", "c.toml:2:1: providers.openai.api_key_env: the list is empty"},
		{"duplicate key env", "[providers.openai]\napi_key_env = [\"K\", \"K\"]\n", "variable K is listed twice"},
		{"zero timeout", "[providers.openai]\napi_key_env = \"K\"\ntimeout_s = 0\n", "c.toml:3:1: providers.openai.timeout_s: must be between 0 and 86400 seconds (got 0)"},
		{"credentials in url", "[providers.openai]\napi_key_env = \"K\"\nbase_url = \"https://u:p@x.com/v1\"\n", "must not carry credentials"},
		{"bad tpm", "[providers.openai]\napi_key_env = \"K\"\ntpm = -1\n", "c.toml:3:1: providers.openai.tpm: must be >= 0 (got -1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("c.toml", []byte(tc.src))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseConfigIgnoresOtherTables(t *testing.T) {
	cfg, err := ParseConfig("c.toml", []byte("[server]\nnew_key = 1\n[[route]]\nanything = \"x\"\n"))
	require.NoError(t, err)
	assert.Empty(t, cfg.Providers)
}

func TestDefaultConfigPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("XDG_CONFIG_HOME", "/xdg")
	assert.Equal(t, filepath.Join("/xdg", "costwise", "config.toml"), DefaultConfigPath())
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "/home/u")
	assert.Equal(t, filepath.Join("/home/u", ".config", "costwise", "config.toml"), DefaultConfigPath())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "costwise.toml"), nil, 0o644))
	assert.Equal(t, "costwise.toml", DefaultConfigPath())
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "nope.toml"))
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "does not exist"), err.Error())
}

func FuzzParseConfig(f *testing.F) {
	for _, name := range []string{"testdata/config.toml", "testdata/bad_config.toml"} {
		b, err := os.ReadFile(name)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte("[providers.x]\nkind = \"openai\"\napi_key_env = [\"A\", \"B\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("f.toml", data)
		if err != nil {
			if cfg != nil {
				t.Fatal("config and error")
			}
			if !strings.HasPrefix(err.Error(), "f.toml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for name, pc := range cfg.Providers {
			if !validKind(pc.Kind) || pc.Timeout <= 0 || pc.RPM < 0 || pc.TPM < 0 || pc.MaxRetries < 0 {
				t.Fatalf("invalid provider %s accepted: %+v", name, pc)
			}
			if pc.Kind != KindOllama && len(pc.APIKeyEnv) == 0 {
				t.Fatalf("provider %s without keys accepted", name)
			}
		}
	})
}
