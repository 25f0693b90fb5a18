package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor/provider"
	"github.com/costwise/costwise/executor/provider/providertest"
	"github.com/costwise/costwise/internal/server"
)

// Example runs the gateway in front of a fake OpenAI-compatible upstream
// and sends it an OpenAI chat request naming a route: the cheapest model
// meeting the route answers, and the headers say which and at what cost.
func Example() {
	cat, _ := catalog.LoadTOML("catalog.toml", []byte(`
[[model]]
id = "openai/small"
provider = "openai"
tokenizer = "o200k_base"
input_per_mtok = 0.15
output_per_mtok = 0.60
modalities = ["text"]
[model.quality]
default = 0.70

[[model]]
id = "openai/large"
provider = "openai"
tokenizer = "o200k_base"
input_per_mtok = 2.50
output_per_mtok = 10.0
modalities = ["text"]
[model.quality]
default = 0.90
`))
	upstream := providertest.NewOpenAIServer(providertest.Script{
		"large": {{Text: "Paris.", Usage: &catalog.Usage{InputTokens: 1000, OutputTokens: 100}}},
	})
	defer upstream.Close()
	os.Setenv("EXAMPLE_GATEWAY_OPENAI_KEY", "sk-example-not-a-real-key")
	defer os.Unsetenv("EXAMPLE_GATEWAY_OPENAI_KEY")

	src := []byte(fmt.Sprintf(`
[providers.openai]
api_key_env = "EXAMPLE_GATEWAY_OPENAI_KEY"
base_url = %q

[[route]]
name = "good-answers"
min_quality = 0.85
`, upstream.BaseURL()))
	pcfg, err := provider.ParseConfig("costwise.toml", src)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pcfg.Close()
	scfg, err := server.ParseConfig("costwise.toml", src)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := server.New(server.Options{Catalog: cat, Clients: pcfg, Config: scfg})
	if err != nil {
		fmt.Println(err)
		return
	}
	gw := httptest.NewServer(srv.Handler())
	defer gw.Close()

	resp, err := http.Post(gw.URL+"/v1/chat/completions", "application/json", strings.NewReader(
		`{"model": "good-answers", "messages": [{"role": "user", "content": "Capital of France?"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("x-costwise-model"), "$"+resp.Header.Get("x-costwise-cost-usd"))
	// Output: 200 openai/large $0.0035
}
