package executor_test

import (
	"context"
	"fmt"
	"os"

	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/provider"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// ExampleRouter runs langchaingo's GenerateFromSinglePrompt-style call
// through a Router: the cheapest model that meets the route's quality for
// the task answers, a failure escalates, and the cost comes back in
// GenerationInfo. A fake OpenAI-compatible server stands in for the
// provider.
func ExampleRouter() {
	cat, err := catalog.LoadTOML("example.toml", []byte(`
[[model]]
id = "openai/small"
provider = "openai"
tokenizer = "o200k_base"
input_per_mtok = 0.15
output_per_mtok = 0.60
context_window = 128000
modalities = ["text"]
[model.quality]
default = 0.70
code = 0.80

[[model]]
id = "openai/large"
provider = "openai"
tokenizer = "o200k_base"
input_per_mtok = 2.50
output_per_mtok = 10.0
context_window = 128000
modalities = ["text"]
[model.quality]
default = 0.90
code = 0.92
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	// The small model fails with HTTP 500 once; the large one answers.
	srv := providertest.NewOpenAIServer(providertest.Script{
		"small": {{Status: 500}},
		"large": {{Text: "func Add(a, b int) int { return a + b }", Usage: &catalog.Usage{InputTokens: 120, OutputTokens: 16}}},
	})
	defer srv.Close()
	os.Setenv("EXAMPLE_ROUTER_KEY", "sk-example-not-a-real-key-000000")
	defer os.Unsetenv("EXAMPLE_ROUTER_KEY")
	cfg, err := provider.ParseConfig("costwise.toml", []byte(fmt.Sprintf(`
[providers.openai]
api_key_env = "EXAMPLE_ROUTER_KEY"
base_url = %q
`, srv.BaseURL())))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cfg.Close()

	router, err := executor.NewRouter(cat, cfg, nil, executor.RouterOptions{
		Routes:     []executor.Route{{Name: "coding", Task: "code", MinQuality: 0.8, MaxCostUSD: 0.05}},
		MaxRetries: -1, // escalate at the first failure
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var model llms.Model = router
	resp, err := model.GenerateContent(context.Background(),
		[]llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "Write a function Add in Go.")})
	if err != nil {
		fmt.Println(err)
		return
	}
	info := resp.Choices[0].GenerationInfo
	fmt.Println(resp.Choices[0].Content)
	fmt.Println("route:", info[executor.InfoRoute], "task:", info[executor.InfoTask])
	fmt.Println("model:", info[executor.InfoModel], "escalations:", info[executor.InfoEscalations])
	fmt.Printf("cost: $%.6f (%d nano-USD), %d tokens\n", info[executor.InfoCostUSD], info[executor.InfoCostNano], info["TotalTokens"])
	// Output:
	// func Add(a, b int) int { return a + b }
	// route: coding task: code
	// model: openai/large escalations: 1
	// cost: $0.000460 (460000 nano-USD), 136 tokens
}
