package executor_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/estimator/tokens"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/executor/provider"
	"github.com/costwise/costwise/executor/provider/providertest"
	"github.com/costwise/costwise/graph"
	"github.com/costwise/costwise/planner"
	"github.com/costwise/costwise/policies"
)

// itCatalog has round prices (USD per million tokens, so one token at $1/M
// is exactly 1000 nano-USD). Node "draft" can use every model; its ladder is
// cheap (chosen: cheapest above min_quality), then the others by quality:
// mid (0.95, same 1000-token window as cheap), big (0.90), haiku (0.85).
// Node "polish" is restricted to anthropic/*: haiku, then big.
const itCatalog = `
[[model]]
id = "openai/cheap"
provider = "openai"
input_per_mtok = 1.0
output_per_mtok = 2.0
context_window = 1000
max_output_tokens = 500
modalities = ["text"]
ttft_s = 0.5
output_tokens_per_s = 100
[model.quality]
default = 0.80

[[model]]
id = "openai/mid"
provider = "openai"
input_per_mtok = 2.0
output_per_mtok = 8.0
context_window = 1000
max_output_tokens = 500
modalities = ["text"]
ttft_s = 0.5
output_tokens_per_s = 100
[model.quality]
default = 0.95

[[model]]
id = "anthropic/haiku"
provider = "anthropic"
input_per_mtok = 1.0
output_per_mtok = 5.0
cache_read_per_mtok = 0.1
cache_write_per_mtok = 1.25
context_window = 200000
max_output_tokens = 8000
modalities = ["text"]
ttft_s = 0.5
output_tokens_per_s = 100
[model.quality]
default = 0.85

[[model]]
id = "anthropic/big"
provider = "anthropic"
input_per_mtok = 3.0
output_per_mtok = 15.0
cache_read_per_mtok = 0.3
cache_write_per_mtok = 3.75
context_window = 200000
max_output_tokens = 8000
modalities = ["text"]
ttft_s = 0.5
output_tokens_per_s = 100
[model.quality]
default = 0.90
`

// itWorkflow: draft -> polish. draft's validate rule rejects an answer
// containing NOT-AN-ANSWER.
const itWorkflow = `
name = "it"

[inputs.topic]
example = "tea"

[[node]]
id = "draft"
prompt = "Write one word about {{input.topic}}."
output_tokens = { mean = 20, p95 = 40, max = 50 }
min_quality = 0.75
validate = 'not (output contains "NOT-AN-ANSWER")'

[[node]]
id = "polish"
depends_on = ["draft"]
system = "You polish single words."
prompt = "Polish this word: {{node.draft.output}}"
output_tokens = { mean = 20, p95 = 40, max = 50 }
min_quality = 0.75
models = ["anthropic/*"]
`

// Fake keys: long enough that the providers' masking shows only a part.
const (
	openAIKeyEnv    = "CW_IT_OPENAI_KEY"
	anthropicKeyEnv = "CW_IT_ANTHROPIC_KEY"
	openAIKey       = "sk-it-fake-openai-0123456789abcdef"
	anthropicKey    = "sk-ant-it-fake-9876543210fedcba"
)

func loadCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.LoadTOML("it-catalog.toml", []byte(itCatalog))
	require.NoError(t, err)
	return cat
}

// planWorkflow parses, estimates and plans a workflow against cat,
// offering the cascades to its nodes.
func planWorkflow(t testing.TB, cat *catalog.Catalog, src string, cascades ...estimator.Cascade) *planner.Result {
	t.Helper()
	w, err := graph.Parse("it.toml", []byte(src))
	require.NoError(t, err)
	e, err := estimator.New(cat, estimator.WithSamples(200), estimator.WithSeed(1))
	require.NoError(t, err)
	est, err := e.Estimate(w)
	require.NoError(t, err)
	_, err = est.AddCascades(cascades)
	require.NoError(t, err)
	set, err := policies.Compile(w)
	require.NoError(t, err)
	plan, err := planner.New(set, planner.Options{Timeout: 5 * time.Second, Alternatives: -1}).Plan(context.Background(), est)
	require.NoError(t, err)
	require.True(t, plan.Feasible, "the test workflow must have a feasible plan")
	return plan
}

// providerConfig writes the [providers.*] tables for the two fake servers
// and parses them with the real ParseConfig.
func providerConfig(t testing.TB, openaiURL, anthropicURL string, openaiTimeoutS float64) *provider.Config {
	t.Helper()
	src := fmt.Sprintf(`
[providers.openai]
api_key_env = %q
base_url = %q
timeout_s = %v

[providers.anthropic]
api_key_env = %q
base_url = %q
timeout_s = 10
`, openAIKeyEnv, openaiURL, openaiTimeoutS, anthropicKeyEnv, anthropicURL)
	cfg, err := provider.ParseConfig("it-config.toml", []byte(src))
	require.NoError(t, err)
	return cfg
}

// createRun records the run in the ledger as the CLI does.
func createRun(t testing.TB, l *ledger.Ledger, src string, plan *planner.Result, inputs string, budgetNano int64) string {
	t.Helper()
	var nodes []ledger.PlannedNode
	for _, a := range plan.Assignments {
		nodes = append(nodes, ledger.PlannedNode{ID: a.Node, Task: plan.Workflow.Nodes[a.Index].Task, PredictedCostUSD: a.Candidate.Cost.Mean})
	}
	id, err := l.CreateRun(ledger.NewRun{WorkflowName: plan.Workflow.Name, WorkflowFile: "it.toml",
		WorkflowHash: ledger.HashWorkflow([]byte(src)), Inputs: []byte(inputs), BudgetMaxNano: budgetNano,
		PredictedMeanUSD: plan.Totals.Cost.Mean, PredictedP95USD: plan.Totals.Cost.P95, Nodes: nodes})
	require.NoError(t, err)
	return id
}

func openLedger(t testing.TB) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// ladderOf returns the plan's ladder for a node.
func ladderOf(t testing.TB, plan *planner.Result, node string) []string {
	t.Helper()
	for _, a := range plan.Assignments {
		if a.Node == node {
			return a.Ladder
		}
	}
	t.Fatalf("node %q has no assignment", node)
	return nil
}

// apiName is the upstream name of a catalog id ("openai/cheap" -> "cheap").
func apiName(id string) string {
	_, name, _ := strings.Cut(id, "/")
	return name
}

// localUsage is what the client counts for a call whose response carried no
// usage: the chat prompt and the answer, with o200k_base.
func localUsage(t testing.TB, c providertest.Call, answer string) catalog.Usage {
	t.Helper()
	var msgs []tokens.Message
	if c.System != "" {
		msgs = append(msgs, tokens.Message{Role: "system", Content: c.System})
	}
	msgs = append(msgs, tokens.Message{Role: "user", Content: c.Prompt})
	in, err := tokens.CountChat(tokens.O200kBase, msgs)
	require.NoError(t, err)
	out, err := tokens.Count(tokens.O200kBase, answer)
	require.NoError(t, err)
	return catalog.Usage{InputTokens: int64(in), OutputTokens: int64(out)}
}

// neverSent reports whether an attempt was stopped by the budget before it
// was sent.
func neverSent(a executor.Attempt) bool { return a.Outcome == executor.OutcomeBudget }

// abandoned reports whether an attempt was given up because the run's
// context was cancelled (e.g. another node exhausted the budget); its
// request may or may not have reached the server.
func abandoned(a executor.Attempt) bool {
	return a.Outcome == executor.OutcomeError && strings.Contains(a.Reason, "call abandoned")
}

// answered reports whether an attempt outcome means the provider answered
// (the call is priced from its usage).
func answered(outcome string) bool {
	return outcome == executor.OutcomeOK || outcome == executor.OutcomeInvalid
}

// checkAccounting checks a finished run against what the fake servers saw
// and what the ledger holds:
//
//   - each attempt of a node on a model is one request the server for that
//     model received from that node (nodeOf tells which), in the same order;
//     attempts stopped by the budget are not requests, and an abandoned last
//     attempt may or may not have reached the server;
//   - an answered attempt costs catalog.Price of the usage the server
//     reported (or, when it reported none, of the client's local count);
//     every other attempt costs 0;
//   - Result.CostNano, the sum of the attempts, the ledger's spent and the
//     sum of the ledger's attempts are equal, to the nano-dollar, and the
//     ledger holds the same attempts with the same outcomes and costs.
//
// It returns the expected total, and unpaid: the priced usage of requests
// the server answered but the run had abandoned (recorded at 0).
func checkAccounting(t *testing.T, cat *catalog.Catalog, res *executor.Result, l *ledger.Ledger, servers map[string]*providertest.Server,
	nodeOf func(providertest.Call) string) (want, unpaid int64) {
	t.Helper()
	type key struct{ model, node string }
	sent := map[key][]executor.Attempt{}
	var sum int64
	for _, n := range res.Nodes {
		var nodeSum int64
		for _, a := range n.Attempts {
			nodeSum += a.CostNano
			if neverSent(a) {
				assert.Zero(t, a.CostNano, "a call that was never sent costs nothing")
				continue
			}
			sent[key{a.Model, n.ID}] = append(sent[key{a.Model, n.ID}], a)
		}
		assert.Equal(t, nodeSum, n.CostNano, "node %s: cost is the sum of its attempts", n.ID)
		sum += nodeSum
	}
	for _, m := range cat.Models() {
		srv := servers[m.Provider]
		require.NotNil(t, srv, "no fake server for provider %s", m.Provider)
		received := map[string][]providertest.Call{}
		for _, c := range srv.CallsFor(apiName(m.ID)) {
			received[nodeOf(c)] = append(received[nodeOf(c)], c)
		}
		for _, n := range res.Nodes {
			calls, atts := received[n.ID], sent[key{m.ID, n.ID}]
			delete(received, n.ID)
			if k := len(atts) - 1; k >= 0 && abandoned(atts[k]) && len(calls) == k {
				// Abandoned before the server recorded the request.
				assert.Zero(t, atts[k].CostNano)
				atts = atts[:k]
			}
			require.Len(t, atts, len(calls), "node %s, model %s: one attempt per request the server received", n.ID, m.ID)
			for k, c := range calls {
				a := atts[k]
				var exp int64
				switch {
				case c.UsageReported && abandoned(a):
					// The server answered (and would bill) but the run had
					// already given the call up: recorded at 0.
					assert.Zero(t, a.CostNano)
					unpaid += catalog.Price(m, c.Usage).NanoUSD()
					continue
				case c.UsageReported:
					require.True(t, answered(a.Outcome), "node %s, model %s, call %d: the server answered with usage but the attempt is %s (%s)", n.ID, m.ID, k, a.Outcome, a.Reason)
					assert.True(t, a.UsageReported)
					assert.Equal(t, c.Usage, a.Usage, "node %s, model %s, call %d: usage as the server reported it", n.ID, m.ID, k)
					exp = catalog.Price(m, c.Usage).NanoUSD()
				case answered(a.Outcome):
					assert.False(t, a.UsageReported, "node %s, model %s, call %d: the server reported no usage", n.ID, m.ID, k)
					answer := c.Reply.Text
					if answer == "" {
						answer = "ok"
					}
					u := localUsage(t, c, answer)
					assert.Equal(t, u, a.Usage, "node %s, model %s, call %d: usage counted locally", n.ID, m.ID, k)
					exp = catalog.Price(m, u).NanoUSD()
				}
				assert.Equal(t, exp, a.CostNano, "node %s, model %s, call %d (%s): cost", n.ID, m.ID, k, a.Outcome)
				want += exp
			}
		}
		assert.Empty(t, received, "model %s: requests from no node of the run", m.ID)
	}
	assert.Equal(t, want, sum, "the attempts cost what the servers' usage prices to")
	assert.Equal(t, want, res.CostNano, "Result.CostNano is the sum of the attempts")

	rec, err := l.Run(res.RunID)
	require.NoError(t, err)
	var ledgerSum int64
	for _, ln := range rec.Nodes {
		var nr *executor.NodeResult
		for _, n := range res.Nodes {
			if n.ID == ln.NodeID {
				nr = n
			}
		}
		require.NotNil(t, nr, "ledger node %s is in the result", ln.NodeID)
		require.Len(t, ln.Attempts, len(nr.Attempts), "node %s: the ledger holds every attempt", ln.NodeID)
		for k, la := range ln.Attempts {
			a := nr.Attempts[k]
			assert.Equal(t, a.Model, la.Model)
			assert.Equal(t, a.Outcome, string(la.Outcome))
			assert.Equal(t, a.CostNano, la.CostNano)
			assert.Equal(t, a.UsageReported, la.UsageReported)
			assert.Equal(t, a.MayHaveBilled, la.MayHaveBilled)
			assert.Equal(t, a.Usage, executor.UsageOf(la.Usage), "node %s attempt %d: usage round-trips through the ledger", ln.NodeID, k)
			if la.Outcome != ledger.OutcomeOK {
				assert.NotEmpty(t, la.Reason, "a failed attempt says why")
			}
			ledgerSum += la.CostNano
		}
		if nr.Status != "" {
			assert.Equal(t, nr.Status, string(ln.Status), "node %s status in the ledger", ln.NodeID)
		}
		if nr.Status == executor.NodeSucceeded {
			assert.Equal(t, nr.Model, ln.FinalModel)
			assert.Equal(t, nr.Output, ln.Output)
		}
	}
	assert.Empty(t, rec.InFlight, "no call is left in flight after a run")
	assert.Equal(t, res.CostNano, rec.SpentNano, "the ledger's spent equals Result.CostNano")
	assert.Equal(t, rec.SpentNano, ledgerSum, "the ledger's spent equals the sum of its attempts")
	require.NoError(t, l.Check())
	return want, unpaid
}

// outcomes lists a node's attempts as "model outcome".
func outcomes(n *executor.NodeResult) []string {
	out := make([]string, len(n.Attempts))
	for i, a := range n.Attempts {
		out[i] = a.Model + " " + a.Outcome
	}
	return out
}

func nodeByID(t testing.TB, res *executor.Result, id string) *executor.NodeResult {
	t.Helper()
	for _, n := range res.Nodes {
		if n != nil && n.ID == id {
			return n
		}
	}
	t.Fatalf("node %q is not in the result", id)
	return nil
}

// runOnOpenAI runs plan (of the workflow src) through the real clients
// against a fake OpenAI server answering with script (Anthropic answers
// nothing), recording in a fresh ledger. It returns the result, the server
// and the ledger with the run's id; the run is finished in the ledger.
func runOnOpenAI(t *testing.T, cat *catalog.Catalog, src string, plan *planner.Result, script providertest.Script,
	opts executor.Options) (*executor.Result, *providertest.Server, *ledger.Ledger, string) {
	t.Helper()
	res, oa, _, l, id := runOnFakes(t, cat, src, plan, script, providertest.Script{}, opts)
	return res, oa, l, id
}

// runOnFakes is runOnOpenAI with a script for each fake server.
func runOnFakes(t *testing.T, cat *catalog.Catalog, src string, plan *planner.Result, oaScript, anScript providertest.Script,
	opts executor.Options) (*executor.Result, *providertest.Server, *providertest.Server, *ledger.Ledger, string) {
	t.Helper()
	t.Setenv(openAIKeyEnv, openAIKey)
	t.Setenv(anthropicKeyEnv, anthropicKey)
	oa := providertest.NewOpenAIServer(oaScript)
	t.Cleanup(oa.Close)
	an := providertest.NewAnthropicServer(anScript)
	t.Cleanup(an.Close)
	cfg := providerConfig(t, oa.BaseURL(), an.BaseURL(), 5)
	t.Cleanup(func() { _ = cfg.Close() })
	l := openLedger(t)
	id := createRun(t, l, src, plan, `{}`, 0)
	if opts.BackoffBase == 0 {
		opts.BackoffBase = time.Millisecond
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	res, err := executor.New(cat, cfg, executor.LedgerRecorder{L: l}, opts).Run(context.Background(), executor.Spec{RunID: id, Plan: plan})
	require.NoError(t, err)
	require.NoError(t, l.FinishRun(id, ledger.RunStatus(res.Status)))
	return res, oa, an, l, id
}
