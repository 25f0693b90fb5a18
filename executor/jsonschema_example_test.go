package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/provider"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// ExampleWithJSONSchema asks for structured output: the cheap model's
// answer does not match the schema, so the call escalates to the next
// model, whose answer does. A fake OpenAI-compatible server stands in for
// the provider.
func ExampleWithJSONSchema() {
	cat, err := catalog.LoadTOML("example.toml", []byte(`
[[model]]
id = "openai/small"
provider = "openai"
tokenizer = "o200k_base"
input_per_mtok = 0.15
output_per_mtok = 0.60
json_mode = true
[model.quality]
default = 0.80

[[model]]
id = "openai/large"
provider = "openai"
tokenizer = "o200k_base"
input_per_mtok = 2.50
output_per_mtok = 10.0
json_mode = true
[model.quality]
default = 0.90
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := providertest.NewOpenAIServer(providertest.Script{
		"small": {{Text: `{"city": "Rome", "population": "many"}`}},
		"large": {{Text: `{"city": "Rome", "population": 2748109}`}},
	})
	defer srv.Close()
	os.Setenv("EXAMPLE_SCHEMA_KEY", "sk-example-not-a-real-key-000000")
	defer os.Unsetenv("EXAMPLE_SCHEMA_KEY")
	cfg, err := provider.ParseConfig("costwise.toml", []byte(fmt.Sprintf("[providers.openai]\napi_key_env = \"EXAMPLE_SCHEMA_KEY\"\nbase_url = %q\n", srv.BaseURL())))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cfg.Close()
	router, err := executor.NewRouter(cat, cfg, nil, executor.RouterOptions{MaxRetries: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	schema := json.RawMessage(`{"type": "object", "required": ["city", "population"],
		"properties": {"city": {"type": "string"}, "population": {"type": "integer"}}}`)
	resp, err := router.GenerateContent(context.Background(),
		[]llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "The capital of Italy and its population, as JSON.")},
		executor.WithJSONSchema("capital", schema, true))
	if err != nil {
		fmt.Println(err)
		return
	}
	info := resp.Choices[0].GenerationInfo
	fmt.Println(resp.Choices[0].Content)
	fmt.Println("model:", info[executor.InfoModel], "escalations:", info[executor.InfoEscalations])
	// Output:
	// {"city": "Rome", "population": 2748109}
	// model: openai/large escalations: 1
}
