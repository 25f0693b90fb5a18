package catalog

import (
	"os"
	"testing"
)

// BenchmarkLoad measures parsing each catalog source once.
func BenchmarkLoad(b *testing.B) {
	sources := []struct {
		name string
		data func(b *testing.B) []byte
	}{
		{"default", func(b *testing.B) []byte { return defaultTOML }},
		{"litellm", func(b *testing.B) []byte {
			data, err := os.ReadFile(litellmPath)
			if err != nil {
				b.Skipf("LiteLLM price file not found at %s", litellmPath)
			}
			return data
		}},
	}
	for _, s := range sources {
		b.Run(s.name, func(b *testing.B) {
			data := s.data(b)
			c, err := Load(s.name, data)
			if err != nil || c.Len() == 0 {
				b.Fatalf("%s does not load: %v", s.name, err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := Load(s.name, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPrice(b *testing.B) {
	c, err := LoadTOML("prices.toml", mustRead(b, "testdata/prices.toml"))
	if err != nil {
		b.Fatal(err)
	}
	m, _ := c.Lookup("anthropic/claude-sonnet-4-5")
	u := Usage{InputTokens: 150_000, CacheReadTokens: 60_000, OutputTokens: 1000, ReasoningTokens: 500}
	if got := Price(m, u); !got.Complete() {
		b.Fatal("incomplete price")
	}
	b.ReportAllocs()
	for b.Loop() {
		Price(m, u)
	}
}

func mustRead(b *testing.B, p string) []byte {
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	return data
}
