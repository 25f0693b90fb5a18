package catalog

import (
	"os"
	"testing"
)

func FuzzLoadTOML(f *testing.F) {
	for _, name := range []string{"testdata/prices.toml", "testdata/base.toml", "testdata/override.toml", "testdata/invalid.toml"} {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("[[model]]\nid = \"a/b\"\n[[model.tier]]\nabove_tokens = 1\n[model.service_tier.flex]\ninput_per_mtok = 1\n"))
	f.Add([]byte("model = 3"))
	f.Add([]byte("[[model]]\nquality = {a = 1, b = \"x\"}\nmodalities = [1, [2]]\nas_of = 1979-05-27\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := LoadTOML("fuzz.toml", data)
		if err == nil {
			for _, m := range c.Models() {
				if m.ID == "" {
					t.Fatal("model without id")
				}
				Price(m, Usage{InputTokens: 1000, OutputTokens: 10, CacheReadTokens: 5, Batch: true})
			}
		} else if err.Error() == "" {
			t.Fatal("empty error text")
		}
	})
}

func FuzzLoadLiteLLM(f *testing.F) {
	f.Add([]byte(`{"gpt-4o": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 2.5e-06, "input_cost_per_token_above_128k_tokens": "5e-06"}}`))
	f.Add([]byte(`{"q": {"litellm_provider": "dashscope", "mode": "chat", "tiered_pricing": [{"range": [0, 10], "input_cost_per_token": 1e-06}, {"range": [10, 20]}]}}`))
	f.Add([]byte(`{"a": [], "b": null, "c": {"mode": 1}, "sample_spec": {}}`))
	f.Add([]byte(`{"x": {"litellm_provider": "", "mode": "chat", "max_tokens": 1e300}}`))
	f.Add([]byte("\xef\xbb\xbf{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := LoadLiteLLM("fuzz.json", data)
		if err != nil {
			return
		}
		for _, m := range c.Models() {
			Price(m, Usage{InputTokens: 300_000, OutputTokens: 10, ServiceTier: ServiceFlex})
		}
	})
}
