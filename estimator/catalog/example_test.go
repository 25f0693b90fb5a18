package catalog_test

import (
	"fmt"

	"github.com/costwise/costwise/estimator/catalog"
)

func ExamplePrice() {
	cat, err := catalog.LoadTOML("models.toml", []byte(`
[[model]]
id = "anthropic/claude-sonnet-4-5"
input_per_mtok = 3.0
output_per_mtok = 15.0
cache_read_per_mtok = 0.30
cache_write_per_mtok = 3.75

[[model.tier]]
above_tokens = 200000
input_per_mtok = 6.0
output_per_mtok = 22.5
cache_read_per_mtok = 0.60
cache_write_per_mtok = 7.50
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	m, _ := cat.Lookup("anthropic/claude-sonnet-4-5")
	cost := catalog.Price(m, catalog.Usage{
		InputTokens:        4000,
		CacheReadTokens:    30000,
		OutputTokens:       800,
		AudioInputTokens:   0,
		CacheWrite1hTokens: 1000, // no 1-hour cache-write rate in this catalog
	})
	for _, l := range cost.Lines {
		fmt.Printf("%-10s %6.0f tokens x $%5.2f/M = $%.6f\n", l.Component, l.Quantity, l.Rate, l.USD)
	}
	for _, u := range cost.Unknown {
		fmt.Printf("unknown: %s (%s)\n", u.Component, u.Reason)
	}
	fmt.Printf("total $%.6f = %d nano-USD\n", cost.TotalUSD, cost.NanoUSD())
	// Output:
	// input        4000 tokens x $ 3.00/M = $0.012000
	// cache_read  30000 tokens x $ 0.30/M = $0.009000
	// output        800 tokens x $15.00/M = $0.012000
	// unknown: cache_write_1h (anthropic/claude-sonnet-4-5 has no cache_write_1h_per_mtok)
	// total $0.033000 = 33000000 nano-USD
}

func ExampleLoadTOML() {
	_, err := catalog.LoadTOML("my-models.toml", []byte(`[[model]]
id = "acme/fast-1"
input_per_mtok = 0.2
output_per_mtk = 0.8

[model.quality]
default = 1.3
`))
	fmt.Println(err)
	// Output:
	// my-models.toml:4:1: model "acme/fast-1": output_per_mtk: unknown key; did you mean "output_per_mtok"?
	// my-models.toml:7:1: model "acme/fast-1": quality.default: 1.3 is outside [0, 1]
}

func ExampleMerge() {
	base, _ := catalog.LoadTOML("base.toml", []byte(`[[model]]
id = "openai/gpt-4o"
input_per_mtok = 2.5
output_per_mtok = 10.0`))
	over, _ := catalog.LoadTOML("over.toml", []byte(`[[model]]
id = "openai/gpt-4o"
output_per_mtok = 12.0`))
	m, _ := catalog.Merge(base, over).Lookup("openai/gpt-4o")
	fmt.Println(m.InputPerMTok, m.OutputPerMTok, m.CacheReadPerMTok)
	// Output: 2.5 12 unknown
}
