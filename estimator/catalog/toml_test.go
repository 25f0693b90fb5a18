package catalog

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadTOMLValid(t *testing.T) {
	src := `
[[model]]
id = "openai/gpt-4.1-mini"
display_name = "GPT-4.1 mini"
source = "https://openai.com/api/pricing/"
as_of = "2025-11-01"
input_per_mtok = 0.40
output_per_mtok = 1.6
cache_read_per_mtok = 0.10
batch_discount = 0.5
context_window = 1047576
max_output_tokens = 32768
modalities = ["text", "image"]
tools = true
json_mode = true
ttft_s = 0.45
output_tokens_per_s = 110
tokenizer = "o200k_base"
image_tokens = "openai-patch"
image_patch_multiplier = 1.62

[[model.tier]]
above_tokens = 500000
input_per_mtok = 0.8

[[model.tier]]
above_tokens = 200000
input_per_mtok = 0.6

[model.service_tier.flex]
input_per_mtok = 0.20

[model.quality]
default = 0.7
code = 0.75

[model.quality_source]
code = "LiveCodeBench"

[[model]]
id = "anthropic/claude-haiku-4-5"
provider = "anthropic"
api_name = "claude-haiku-4-5-20251001"
as_of = 2025-10-15
input_per_mtok = 1
output_per_mtok = 5
`
	c, err := LoadTOML("t.toml", []byte(src))
	require.NoError(t, err)
	require.Equal(t, 2, c.Len())
	m := mustModel(t, c, "openai/gpt-4.1-mini")
	assert.Equal(t, "openai", m.Provider)
	assert.Equal(t, "gpt-4.1-mini", m.APIName)
	assert.Equal(t, time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC), m.AsOf)
	assert.Equal(t, RateOf(0.4), m.InputPerMTok)
	assert.Equal(t, RateOf(1.6), m.OutputPerMTok)
	assert.False(t, m.CacheWritePerMTok.Known, "omitted price must be unknown, not 0")
	assert.Equal(t, RateOf(0.5), m.BatchDiscount)
	assert.Equal(t, []Tier{
		{AboveTokens: 200000, Prices: Prices{InputPerMTok: RateOf(0.6)}},
		{AboveTokens: 500000, Prices: Prices{InputPerMTok: RateOf(0.8)}},
	}, m.Tiers, "tiers are sorted")
	assert.Equal(t, map[string]Prices{"flex": {InputPerMTok: RateOf(0.2)}}, m.ServiceTiers)
	assert.Equal(t, []string{"text", "image"}, m.Modalities)
	assert.Equal(t, []string{"text"}, m.OutputModalities, "default output modality")
	assert.Equal(t, 1.0, m.TokenRatio, "default token ratio")
	q, ok := m.QualityFor("code")
	assert.True(t, ok)
	assert.Equal(t, 0.75, q)
	q, _ = m.QualityFor("math")
	assert.Equal(t, 0.7, q, "falls back to default")
	assert.True(t, m.IsSet("input_per_mtok"))
	assert.False(t, m.IsSet("provider"), "provider derived from id, not written")

	h := mustModel(t, c, "anthropic/claude-haiku-4-5")
	assert.Equal(t, "claude-haiku-4-5-20251001", h.APIName)
	assert.Equal(t, time.Date(2025, 10, 15, 0, 0, 0, 0, time.UTC), h.AsOf)
	assert.Equal(t, RateOf(1), h.InputPerMTok, "integers are accepted as prices")
}

// Each case is one invalid file; want lists every problem's full text.
func TestLoadTOMLErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"syntax error", "[[model]]\nid = \"a/b\ninput_per_mtok = 1\n",
			[]string{`x.toml:2:10: TOML syntax error: strings cannot contain newlines; fix the file's syntax`}},
		{"unknown key with suggestion", "[[model]]\nid = \"openai/x\"\ninput_per_mtk = 1\n",
			[]string{`x.toml:3:1: model "openai/x": input_per_mtk: unknown key; did you mean "input_per_mtok"?`}},
		{"unknown key without suggestion", "[[model]]\nid = \"openai/x\"\ncolour = \"red\"\n",
			[]string{`x.toml:3:1: model "openai/x": colour: unknown key; see estimator/catalog/README.md for the keys`}},
		{"unknown top-level key", "version = 2\n[[model]]\nid = \"openai/x\"\n",
			[]string{`x.toml:1:1: unknown top-level key "version"; a catalog holds only [[model]] entries`}},
		{"model not an array", "[model]\nid = \"openai/x\"\n",
			[]string{`x.toml:1:1: model must be an array of tables: write each entry under a [[model]] header`}},
		{"negative price", "[[model]]\nid = \"openai/x\"\noutput_per_mtok = -1.5\n",
			[]string{`x.toml:3:1: model "openai/x": output_per_mtok: price -1.5 is negative; omit the key when the price is unknown, write 0 only when it is free`}},
		{"price of wrong type", "[[model]]\nid = \"openai/x\"\ninput_per_mtok = \"0.4\"\n",
			[]string{`x.toml:3:1: model "openai/x": input_per_mtok: must be a number, not a string`}},
		{"nan price", "[[model]]\nid = \"openai/x\"\ninput_per_mtok = nan\n",
			[]string{`x.toml:3:1: model "openai/x": input_per_mtok: must be a finite number`}},
		{"quality out of range", "[[model]]\nid = \"openai/x\"\n[model.quality]\ndefault = 0.5\ncode = 1.2\n",
			[]string{`x.toml:5:1: model "openai/x": quality.code: 1.2 is outside [0, 1]`}},
		{"quality kind not an identifier", "[[model]]\nid = \"openai/x\"\nquality = { \"Code Gen\" = 0.5 }\n",
			[]string{`x.toml:3:13: model "openai/x": quality.Code Gen: task kinds are lower-case identifiers (e.g. code, long_context)`}},
		{"duplicate id", "[[model]]\nid = \"openai/x\"\n\n[[model]]\nid = \"openai/x\"\n",
			[]string{`x.toml:5:1: model "openai/x": id: duplicate id; first defined at line 2; merge the two entries or rename one`}},
		{"missing id", "[[model]]\nprovider = \"openai\"\ninput_per_mtok = 1\n",
			[]string{`x.toml:1:1: model #1: id: missing; every [[model]] needs id = "provider/name"`}},
		{"id without provider", "[[model]]\nid = \"gpt-4o\"\n",
			[]string{`x.toml:2:1: model "gpt-4o": id: "gpt-4o" is not of the form "provider/name"`}},
		{"provider mismatch", "[[model]]\nid = \"openai/x\"\nprovider = \"azure\"\n",
			[]string{`x.toml:3:1: model "openai/x": provider: "azure" does not match the id's prefix "openai"; ids are "provider/name"`}},
		{"empty provider", "[[model]]\nid = \"openai/x\"\nprovider = \"\"\n",
			[]string{`x.toml:3:1: model "openai/x": provider: must not be empty`}},
		{"bad date", "[[model]]\nid = \"openai/x\"\nas_of = \"2025-13-01\"\n",
			[]string{`x.toml:3:1: model "openai/x": as_of: "2025-13-01" is not a date; write YYYY-MM-DD`}},
		{"date with time", "[[model]]\nid = \"openai/x\"\nas_of = 2025-11-01T10:00:00Z\n",
			[]string{`x.toml:3:1: model "openai/x": as_of: must be a date without time of day; write YYYY-MM-DD`}},
		{"batch discount out of range", "[[model]]\nid = \"openai/x\"\nbatch_discount = 1.5\n",
			[]string{`x.toml:3:1: model "openai/x": batch_discount: 1.5 is outside (0, 1]; it multiplies token prices for batch calls (0.5 = half price)`}},
		{"bad enum and modality", "[[model]]\nid = \"openai/x\"\ntokenizer = \"p50k\"\nmodalities = [\"text\", \"smell\"]\n",
			[]string{
				`x.toml:3:1: model "openai/x": tokenizer: "p50k" is not one of o200k_base, cl100k_base`,
				`x.toml:4:1: model "openai/x": modalities: "smell" is not one of text, image, audio, video, document`,
			}},
		{"count of wrong type and negative", "[[model]]\nid = \"openai/x\"\ncontext_window = 1.5e6\nmax_output_tokens = -1\n",
			[]string{
				`x.toml:3:1: model "openai/x": context_window: must be an integer, not a float`,
				`x.toml:4:1: model "openai/x": max_output_tokens: -1 is negative`,
			}},
		{"max output above context", "[[model]]\nid = \"openai/x\"\ncontext_window = 1000\nmax_output_tokens = 2000\n",
			[]string{`x.toml:4:1: model "openai/x": max_output_tokens: 2000 exceeds context_window 1000`}},
		{"tier problems", "[[model]]\nid = \"openai/x\"\n[[model.tier]]\ninput_per_mtok = 1\n[[model.tier]]\nabove_tokens = 0\n[[model.tier]]\nabove_tokens = 10\ninput_pr_mtok = 2\n",
			[]string{
				`x.toml:3:1: model "openai/x": tier[0].above_tokens: missing; a tier needs above_tokens (the prompt size above which its rates apply)`,
				`x.toml:6:1: model "openai/x": tier[1].above_tokens: must be > 0; base prices go at the top level of the model`,
				`x.toml:9:1: model "openai/x": tier[2].input_pr_mtok: unknown key; did you mean "input_per_mtok"?`,
			}},
		{"duplicate tier threshold", "[[model]]\nid = \"openai/x\"\n[[model.tier]]\nabove_tokens = 10\n[[model.tier]]\nabove_tokens = 10\n",
			[]string{`x.toml:6:1: model "openai/x": tier[1].above_tokens: another tier already starts above 10 tokens`}},
		{"service tier problems", "[[model]]\nid = \"openai/x\"\n[model.service_tier.turbo]\ninput_per_mtok = 1\n[model.service_tier.flex]\ninput_per_mtok = -1\n",
			[]string{
				`x.toml:3:1: model "openai/x": service_tier.turbo: unknown service tier "turbo"; use one of batch, flex, priority`,
				`x.toml:6:1: model "openai/x": service_tier.flex.input_per_mtok: price -1 is negative; omit the key when the price is unknown, write 0 only when it is free`,
			}},
		{"every problem in a file is reported", "[[model]]\nid = \"openai/x\"\ninput_per_mtok = -1\n\n[[model]]\ninput_per_mtok = 1\n\n[[model]]\nid = \"openai/y\"\n[model.quality]\ndefault = 2\n",
			[]string{
				`x.toml:3:1: model "openai/x": input_per_mtok: price -1 is negative; omit the key when the price is unknown, write 0 only when it is free`,
				`x.toml:5:1: model #2: id: missing; every [[model]] needs id = "provider/name"`,
				`x.toml:11:1: model "openai/y": quality.default: 2 is outside [0, 1]`,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadTOML("x.toml", []byte(tc.src))
			require.Error(t, err)
			assert.Nil(t, c)
			var es Errors
			require.True(t, errors.As(err, &es), "error type %T", err)
			got := make([]string, len(es))
			for i, e := range es {
				got[i] = e.Error()
				assert.Equal(t, "x.toml", e.File)
			}
			assert.Equal(t, tc.want, got)
			assert.Equal(t, strings.Join(tc.want, "\n"), err.Error())
		})
	}
}

func TestLoadTOMLErrorFields(t *testing.T) {
	_, err := LoadTOML("f.toml", []byte("[[model]]\nid = \"openai/x\"\n\n[[model.tier]]\nabove_tokens = 5\noutput_per_mtok = -2\n"))
	var es Errors
	require.True(t, errors.As(err, &es))
	require.Len(t, es, 1)
	assert.Equal(t, Error{File: "f.toml", Line: 6, Col: 1, Model: "openai/x", Field: "tier[0].output_per_mtok",
		Msg: "price -2 is negative; omit the key when the price is unknown, write 0 only when it is free"}, *es[0])
	var one *Error
	require.True(t, errors.As(err, &one), "single problems are reachable with errors.As")
}

func TestLoadDefaultProvenanceRequired(t *testing.T) {
	_, err := loadTOML("d.toml", []byte("[[model]]\nid = \"openai/x\"\ninput_per_mtok = 1\n"), true)
	require.Error(t, err)
	assert.Equal(t, `d.toml:1:1: model "openai/x": source: missing; the default catalog must say where its prices came from (a URL)`+"\n"+
		`d.toml:1:1: model "openai/x": as_of: missing; the default catalog must date its prices ("YYYY-MM-DD")`, err.Error())
}

func TestLoadTOMLGolden(t *testing.T) {
	src, err := os.ReadFile("testdata/invalid.toml")
	require.NoError(t, err)
	_, lerr := LoadTOML("testdata/invalid.toml", src)
	require.Error(t, lerr)
	if os.Getenv("UPDATE_GOLDEN") != "" {
		require.NoError(t, os.WriteFile("testdata/invalid.golden", []byte(lerr.Error()+"\n"), 0o644))
	}
	want, err := os.ReadFile("testdata/invalid.golden")
	require.NoError(t, err)
	assert.Equal(t, string(want), lerr.Error()+"\n")
}

func TestLoadEmptyCatalog(t *testing.T) {
	c, err := LoadTOML("empty.toml", []byte("# nothing yet\n"))
	require.NoError(t, err)
	assert.Equal(t, 0, c.Len())
}
