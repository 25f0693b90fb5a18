package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/executor/provider"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// A small catalog: for writing, openai/small is cheapest but below 0.9;
// anthropic/mid is the cheapest at or above 0.9; openai/large is best.
// The two better ones call tools, have a JSON mode and take images.
const testCatalog = `
[[model]]
id = "openai/small"
provider = "openai"
tokenizer = "o200k_base"
input_per_mtok = 0.15
output_per_mtok = 0.60
context_window = 128000
max_output_tokens = 4000
modalities = ["text"]
[model.quality]
default = 0.80
writing = 0.80

[[model]]
id = "anthropic/mid"
provider = "anthropic"
tools = true
json_mode = true
token_ratio = 1.2
input_per_mtok = 1.0
output_per_mtok = 5.0
context_window = 200000
max_output_tokens = 4000
modalities = ["text", "image"]
image_tokens = "anthropic"
[model.quality]
default = 0.91
writing = 0.92

[[model]]
id = "openai/large"
provider = "openai"
tools = true
json_mode = true
tokenizer = "o200k_base"
input_per_mtok = 2.5
output_per_mtok = 10.0
context_window = 128000
max_output_tokens = 4000
modalities = ["text", "image"]
image_tokens = "openai-tile"
image_base_tokens = 85
image_tile_tokens = 170
[model.quality]
default = 0.95
writing = 0.96
`

const (
	oaEnv      = "CW_SRV_OPENAI_KEY"
	anEnv      = "CW_SRV_ANTHROPIC_KEY"
	oaKey      = "sk-srv-fake-openai-0123456789abcdef"
	anKey      = "sk-ant-srv-fake-9876543210fedcba"
	clientKeyA = "cw-client-key-team-a-000000000001"
	clientKeyB = "cw-client-key-team-b-000000000002"
)

func digest(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

// env is a test gateway: fake upstreams behind the real provider clients,
// a ledger and the server.
type env struct {
	cat    *catalog.Catalog
	oa, an *providertest.Server
	l      *ledger.Ledger
	srv    *Server
	reg    *prometheus.Registry
}

// serverTOML is the [server] and [[route]] part used unless a test gives
// its own.
var serverTOML = fmt.Sprintf(`
[[server.key]]
name = "team-a"
key_sha256 = %q
budget_usd_per_day = 5.0

[[server.key]]
name = "team-b"
key_sha256 = %q
rpm = 2

[[route]]
name = "cheap-chat"
task = "writing"
min_quality = 0.9
models = ["openai/*", "anthropic/*"]
max_cost_usd = 0.1
`, digest(clientKeyA), digest(clientKeyB))

func newEnv(t testing.TB, oaScript, anScript providertest.Script, serverCfg string, mod func(*Options)) *env {
	t.Helper()
	se := t.(interface{ Setenv(k, v string) }) // *testing.T and *testing.B
	se.Setenv(oaEnv, oaKey)
	se.Setenv(anEnv, anKey)
	cat, err := catalog.LoadTOML("test-catalog.toml", []byte(testCatalog))
	require.NoError(t, err)
	e := &env{cat: cat, oa: providertest.NewOpenAIServer(oaScript), an: providertest.NewAnthropicServer(anScript)}
	t.Cleanup(e.oa.Close)
	t.Cleanup(e.an.Close)
	src := fmt.Sprintf(`
[providers.openai]
api_key_env = %q
base_url = %q
timeout_s = 5

[providers.anthropic]
api_key_env = %q
base_url = %q
timeout_s = 5
%s`, oaEnv, e.oa.BaseURL(), anEnv, e.an.BaseURL(), serverCfg)
	pcfg, err := provider.ParseConfig("costwise.toml", []byte(src))
	require.NoError(t, err)
	t.Cleanup(func() { _ = pcfg.Close() })
	scfg, err := ParseConfig("costwise.toml", []byte(src))
	require.NoError(t, err)
	e.l, err = ledger.Open(filepath.Join(t.TempDir(), "ledger.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.l.Close() })
	e.reg = prometheus.NewRegistry()
	opts := Options{Catalog: cat, Clients: pcfg, Recorder: executor.LedgerRecorder{L: e.l}, Config: scfg, Registry: e.reg,
		Router: executor.RouterOptions{MaxRetries: -1, BackoffBase: time.Millisecond}}
	if mod != nil {
		mod(&opts)
	}
	e.srv, err = New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.srv.Close(context.Background()) }) // before the ledger closes
	return e
}

// price is what usage u costs on model id, in USD.
func (e *env) price(t testing.TB, id string, u catalog.Usage) catalog.Cost {
	t.Helper()
	m, ok := e.cat.Lookup(id)
	require.True(t, ok, id)
	return catalog.Price(m, u)
}
