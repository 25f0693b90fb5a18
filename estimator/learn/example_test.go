package learn_test

import (
	"fmt"
	"time"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/estimator/learn"
)

// Fit the calls of one model on one task, then blend them into the catalog.
func Example() {
	cat, err := catalog.LoadTOML("models.toml", []byte(`
[[model]]
id = "openai/gpt-4.1-mini"
provider = "openai"
input_per_mtok = 0.40
output_per_mtok = 1.60
ttft_s = 0.5
output_tokens_per_s = 100
[model.quality]
default = 0.70
extraction = 0.90
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var obs []learn.Observation
	for i := range 40 {
		tokens := int64(200 + 10*(i%5))
		obs = append(obs, learn.Observation{
			Task: "extraction", Model: "openai/gpt-4.1-mini",
			Time:         now.Add(-time.Duration(i) * time.Hour),
			OK:           i%4 != 0, // one call in four fails validation
			Escalated:    i%8 == 0,
			InputTokens:  1500,
			OutputTokens: tokens,
			Latency:      time.Duration(float64(time.Second) * (0.8 + float64(tokens)/50)),
			CostNano:     1500*400 + tokens*1600,
		})
	}
	m := learn.Fit(obs, now, learn.Options{Catalog: cat})
	s, _ := m.Lookup("extraction", "openai/gpt-4.1-mini")
	fmt.Printf("calls %d, weight %.1f; success %.3f (catalog %.2f, observed %.3f), 90%% in [%.2f, %.2f]\n",
		s.Calls, s.Weight, s.Success, s.Prior, s.Observed, s.SuccessLow, s.SuccessHigh)
	fmt.Printf("output tokens p50 %.0f p95 %.0f, latency p50 %v, $%.6f per success, re-routed %.0f%%\n",
		s.OutputTokensP50, s.OutputTokensP95, s.LatencyP50, s.CostPerSuccessUSD, 100*s.RerouteRate)

	blended, sources := m.Blend(cat)
	bm, _ := blended.Lookup("openai/gpt-4.1-mini")
	fmt.Printf("quality[extraction] %.3f: %s\n", bm.Quality["extraction"], bm.QualitySource["extraction"])
	// Every call here returned about 220 tokens, so the observations pin
	// the latency at 220 tokens but not the intercept: the catalog's time
	// to first token stays and the speed moves to fit.
	fmt.Printf("ttft %.2fs, %.1f tokens/s (observations' share %.0f%%)\n", bm.TTFTSeconds, bm.OutputTokensPerSecond,
		100*sources.For("openai/gpt-4.1-mini", learn.FieldTTFT).Share())
	fmt.Println("quality[default]:", sources.For("openai/gpt-4.1-mini", "quality.default"))
	// Output:
	// calls 40, weight 36.9; success 0.781 (catalog 0.90, observed 0.748), 90% in [0.68, 0.87]
	// output tokens p50 220 p95 240, latency p50 5.2s, $0.001272 per success, re-routed 13%
	// quality[extraction] 0.781: blend of catalog 0.9 (weight 10) and 40 calls (weight 36.9, observed 0.7485)
	// ttft 0.50s, 50.0 tokens/s (observations' share 79%)
	// quality[default]: catalog
}

// Drift compares the last window of calls with the one before.
func ExampleDrift() {
	end := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var obs []learn.Observation
	for i := range 200 {
		before := i < 100
		ok := i%10 != 0 // 90% before
		if !before {
			ok = i%10 < 6 // 60% now
		}
		obs = append(obs, learn.Observation{
			Task: "code", Model: "anthropic/claude-haiku-4-5",
			Time:         end.Add(-time.Duration(199-i) * 10 * time.Minute),
			OK:           ok,
			OutputTokens: 300, Latency: 2 * time.Second, CostNano: 1_000_000,
		})
	}
	for _, a := range learn.Drift(obs, 1000*time.Minute, learn.Thresholds{End: end}) {
		fmt.Println(a.Metric, a.Message)
	}
	// Output:
	// success code on anthropic/claude-haiku-4-5: success 90% -> 60% (z = -4.9, 100 vs 100 calls)
}
