package provider_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor/provider"
	"github.com/costwise/costwise/executor/provider/providertest"
)

func Example() {
	// A fake OpenAI endpoint: the first call is rate limited, the second
	// answers with cached and reasoning tokens.
	srv := providertest.NewOpenAIServer(providertest.Script{
		"gpt-5-mini": {
			{Status: 429, RetryAfter: "20"},
			{Text: "42", Usage: &catalog.Usage{InputTokens: 180, CacheReadTokens: 1024, OutputTokens: 2, ReasoningTokens: 64}},
		},
	})
	defer srv.Close()
	os.Setenv("EXAMPLE_KEY_1", "sk-example-one")
	os.Setenv("EXAMPLE_KEY_2", "sk-example-two")

	cfg, err := provider.ParseConfig("costwise.toml", []byte(`
[providers.openai]
api_key_env = ["EXAMPLE_KEY_1", "EXAMPLE_KEY_2"]
base_url = "`+srv.BaseURL()+`"
timeout_s = 30
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cfg.Close()
	cl, err := cfg.Client("openai")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := cl.Call(context.Background(), provider.Request{Model: "gpt-5-mini", Prompt: "6*7?", MaxTokens: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Text, "via", resp.KeyEnv)
	u := resp.Usage
	fmt.Println("input", u.InputTokens, "cached", u.CacheReadTokens, "output", u.OutputTokens, "reasoning", u.ReasoningTokens, "reported", resp.UsageReported)

	// Both keys now rest: the client answers without calling.
	srv.Push("gpt-5-mini", providertest.Reply{Status: 429, RetryAfter: "20"})
	_, err = cl.Call(context.Background(), provider.Request{Model: "gpt-5-mini", Prompt: "again"})
	fmt.Println(errors.Is(err, provider.ErrRateLimited), provider.Retryable(err), provider.MayHaveBilled(err))
	// Output:
	// 42 via EXAMPLE_KEY_2
	// input 180 cached 1024 output 2 reasoning 64 reported true
	// true true false
}
