package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// requireSDKEnv makes a missing Node.js or missing npm dependencies a
// failure instead of a skip; .ci/run sets it so that CI cannot pass
// without running the SDK tests.
const requireSDKEnv = "COSTWISE_REQUIRE_SDK"

// sdkDir returns the absolute path of tests/sdk, or skips (fails under
// COSTWISE_REQUIRE_SDK=1) when node or the npm dependencies are missing.
func sdkDir(t *testing.T) (node, dir string) {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv(requireSDKEnv) == "1" {
			t.Fatalf("cannot run the SDK tests: %s (%s=1 makes this a failure, not a skip)", msg, requireSDKEnv)
		}
		t.Skip("skipping the SDK tests: " + msg)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("cannot find the repository root from %s: %v", root, err)
	}
	dir = filepath.Join(root, "tests", "sdk")
	node, err = exec.LookPath("node")
	if err != nil {
		unavailable("node is not on PATH; install Node.js 20 or later to run them")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		unavailable("%s is missing; run (cd tests/sdk && npm ci) first", filepath.Join(dir, "node_modules"))
	}
	return node, dir
}

// sdkServerTOML routes "sdk-chat" to OpenAI models only, so the official
// SDKs talk to the gateway and the gateway to a fake OpenAI upstream:
// openai/large is the only OpenAI model with writing quality >= 0.9.
var sdkServerTOML = fmt.Sprintf(`
[[server.key]]
name = "sdk"
key_sha256 = %q

[[route]]
name = "sdk-chat"
task = "writing"
min_quality = 0.9
models = ["openai/*"]
max_cost_usd = 0.1
`, digest(clientKeyA))

// TestSDKClients runs tests/sdk/sdk.test.mjs — the official openai npm
// package and the Vercel AI SDK — against the gateway serving on a
// loopback port, with a fake OpenAI upstream behind it.
func TestSDKClients(t *testing.T) {
	node, dir := sdkDir(t)
	const answer = "Maples blush, then let go."
	usage := catalog.Usage{InputTokens: 40, OutputTokens: 7}
	e := newEnv(t,
		providertest.Script{"large": {{Text: answer, Usage: &usage}}, "small": {{Text: "wrong model"}}},
		providertest.Script{}, sdkServerTOML, nil)
	want := e.price(t, "openai/large", usage)
	// Requests that offer tools get a call of get_weather for the city
	// the user named, then a text answer to the tool's result.
	const toolAnswer = "It is 21C and sunny in Rome."
	const imageAnswer = "One grey pixel."
	toolUsage := catalog.Usage{InputTokens: 90, OutputTokens: 15}
	wantTool := e.price(t, "openai/large", toolUsage)
	e.oa.Respond(func(c providertest.Call) (providertest.Reply, bool) {
		switch {
		case c.JSON && strings.Contains(c.Prompt, "capital of Italy"):
			return providertest.Reply{Text: `{"city":"Rome"}`, Usage: &toolUsage}, true
		case len(c.Messages) == 1 && len(c.Messages[0].Images) == 1 && strings.HasPrefix(c.Messages[0].Images[0], "data:image/png;base64,"):
			return providertest.Reply{Text: imageAnswer, Usage: &toolUsage}, true
		case len(c.Tools) == 0 || len(c.Messages) == 0:
			return providertest.Reply{}, false
		case c.Messages[len(c.Messages)-1].Role == "tool":
			return providertest.Reply{Text: toolAnswer, Usage: &toolUsage}, true
		case strings.Contains(c.Prompt, "Rome"):
			return providertest.Reply{ToolCalls: []providertest.ToolCall{{ID: fmt.Sprintf("call_%d", len(e.oa.Calls())), Name: "get_weather",
				Arguments: `{"city":"Rome"}`}}, Usage: &toolUsage}, true
		}
		return providertest.Reply{}, false
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			assert.NoError(t, err, "gateway shutdown")
		case <-time.After(10 * time.Second):
			t.Error("the gateway did not shut down within 10s")
		}
	})
	baseURL := "http://" + ln.Addr().String() + "/v1"

	// A quick probe so that a gateway failure is reported as such, not
	// as eight failing SDK tests.
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	if out, err := exec.Command(node, "--version").Output(); err == nil {
		t.Logf("node %s", strings.TrimSpace(string(out)))
	}
	runCtx, stop := context.WithTimeout(context.Background(), 2*time.Minute)
	defer stop()
	cmd := exec.CommandContext(runCtx, node, "--test", "tests/sdk/")
	cmd.Dir = filepath.Dir(filepath.Dir(dir)) // the repository root
	cmd.Env = append(os.Environ(),
		"BASE_URL="+baseURL,
		"API_KEY="+clientKeyA,
		"SDK_MODEL=sdk-chat",
		"SDK_EXPECT_MODEL=openai/large",
		"SDK_EXPECT_TEXT="+answer,
		"SDK_EXPECT_PROMPT_TOKENS=40",
		"SDK_EXPECT_COMPLETION_TOKENS=7",
		"SDK_EXPECT_COST_USD="+strconv.FormatFloat(float64(want.NanoUSD())/1e9, 'g', -1, 64),
		"SDK_EXPECT_TOOL_ANSWER="+toolAnswer,
		"SDK_EXPECT_IMAGE_ANSWER="+imageAnswer,
		"NO_COLOR=1",
	)
	out, err := cmd.CombinedOutput()
	if errors.Is(runCtx.Err(), context.DeadlineExceeded) {
		t.Fatalf("node --test tests/sdk/ did not finish within 2 minutes:\n%s", out)
	}
	if err != nil {
		t.Fatalf("node --test tests/sdk/ failed (%v):\n%s", err, out)
	}
	t.Logf("node --test tests/sdk/:\n%s", out)
	// node --test exits 0 when it finds no test file; make sure it ran them.
	require.Contains(t, string(out), "# pass ", "no TAP summary in node's output")
	require.Contains(t, string(out), "# fail 0", "node reported failures")
	require.NotContains(t, string(out), "# pass 0", "node ran no tests")

	// Five SDK calls succeed (openai: plain, stream with usage, stream
	// without; AI SDK: generateText, streamText), five with tools
	// (openai: a call and the answer to its result, a streamed call; AI
	// SDK: a call and the answer to its result) and two with a JSON schema
	// (openai, AI SDK generateObject); the error paths never reach the
	// upstream. Each went to openai/large with the provider's
	// key and is in the ledger at the catalog price.
	calls := e.oa.Calls()
	var plain, withTools, structured, pictures int
	for _, c := range calls {
		assert.Equal(t, "large", c.Model)
		assert.Equal(t, oaKey, c.Key, "the provider's key, not the client's, goes upstream")
		if len(c.Messages) > 0 && len(c.Messages[0].Images) > 0 {
			pictures++
			continue
		}
		if c.JSON {
			structured++
			assert.Contains(t, string(c.JSONSchema), `"city"`, "the schema reaches the upstream")
			continue
		}
		if len(c.Tools) > 0 {
			withTools++
			assert.Equal(t, []string{"get_weather"}, c.Tools)
			assert.False(t, c.Stream, "a request with tools is not streamed from the upstream")
			continue
		}
		plain++
		assert.Equal(t, "Be brief.", c.System)
		assert.Equal(t, "Write a haiku about autumn.", c.Prompt)
	}
	assert.Equal(t, 5, plain, "upstream calls without tools")
	assert.Equal(t, 5, withTools, "upstream calls with tools")
	assert.Equal(t, 2, structured, "upstream calls with a JSON schema (the bad schema never left)")
	assert.Equal(t, 2, pictures, "upstream calls with a picture")
	assert.Empty(t, e.an.Calls())
	runs, err := e.l.Runs(0)
	require.NoError(t, err)
	require.Len(t, runs, 14, "ledger runs")
	spent := map[int64]int{}
	for _, r := range runs {
		assert.Equal(t, "router:sdk-chat", r.WorkflowName)
		spent[r.SpentNano]++
	}
	assert.Equal(t, map[int64]int{want.NanoUSD(): 5, wantTool.NanoUSD(): 9}, spent)
}
