package executor_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/estimator/tokens"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// TestRunThroughRealClients runs the two-node workflow through the real
// provider clients (langchaingo over HTTP) against fake OpenAI and
// Anthropic servers, with one fault injected per case, and checks the
// escalation path, the recorded attempts, and that the run's cost is the
// servers' usage priced by the catalog, in the result and in the ledger.
func TestRunThroughRealClients(t *testing.T) {
	cat := loadCatalog(t)
	plan := planWorkflow(t, cat, itWorkflow)
	require.Equal(t, []string{"openai/cheap", "openai/mid", "anthropic/big", "anthropic/haiku"}, ladderOf(t, plan, "draft"),
		"the cases below assume this ladder")
	require.Equal(t, []string{"anthropic/haiku", "anthropic/big"}, ladderOf(t, plan, "polish"))

	const maxRetries = 2
	ok := func(model string) string { return model + " " + executor.OutcomeOK }
	times := func(n int, s string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	cases := []struct {
		name       string
		openai     providertest.Script // replaces the default replies of the models it names
		anthropic  providertest.Script
		rejectKey  bool // the OpenAI server rejects the configured key (401)
		wantStatus string
		wantDraft  []string // draft's attempts, "model outcome"
		wantPolish []string
		wantModel  string // the model whose draft was kept
		wantEsc    int    // draft's escalations
		check      func(t *testing.T, res *executor.Result, oa, an *providertest.Server)
	}{
		{
			name:       "429 with Retry-After then success on the same model",
			openai:     providertest.Script{"cheap": {{Status: 429, RetryAfter: "0.3"}, {Text: "tea"}}},
			wantStatus: executor.StatusSucceeded,
			wantDraft:  []string{"openai/cheap rate_limited", ok("openai/cheap")},
			wantPolish: []string{ok("anthropic/haiku")},
			wantModel:  "openai/cheap", wantEsc: 0,
			check: func(t *testing.T, res *executor.Result, _, _ *providertest.Server) {
				d := nodeByID(t, res, "draft")
				first, second := d.Attempts[0], d.Attempts[1]
				assert.False(t, first.MayHaveBilled, "a 429 is not billed")
				assert.Contains(t, first.Reason, "429")
				gap := second.Started.Sub(first.Started.Add(first.Latency))
				assert.GreaterOrEqual(t, gap, 290*time.Millisecond, "the retry waited for Retry-After (0.3 s), not the 1 ms backoff")
			},
		},
		{
			name:       "500 repeated past MaxRetries climbs to the next rung",
			openai:     providertest.Script{"cheap": {{Status: 500}}},
			wantStatus: executor.StatusSucceeded,
			wantDraft:  append(times(maxRetries+1, "openai/cheap error"), ok("openai/mid")),
			wantPolish: []string{ok("anthropic/haiku")},
			wantModel:  "openai/mid", wantEsc: 1,
			check: func(t *testing.T, res *executor.Result, _, _ *providertest.Server) {
				for _, a := range nodeByID(t, res, "draft").Attempts[:maxRetries+1] {
					assert.False(t, a.MayHaveBilled, "a plain 500 is not billed")
					assert.Contains(t, a.Reason, "HTTP 500")
				}
			},
		},
		{
			name:       "hang past timeout_s is a timeout that may have been billed",
			openai:     providertest.Script{"cheap": {{Hang: true}}},
			wantStatus: executor.StatusSucceeded,
			wantDraft:  append(times(maxRetries+1, "openai/cheap timeout"), ok("openai/mid")),
			wantPolish: []string{ok("anthropic/haiku")},
			wantModel:  "openai/mid", wantEsc: 1,
			check: func(t *testing.T, res *executor.Result, _, _ *providertest.Server) {
				for _, a := range nodeByID(t, res, "draft").Attempts[:maxRetries+1] {
					assert.True(t, a.MayHaveBilled, "the request was sent: it may have been billed")
					assert.Contains(t, a.Reason, "timeout_s")
					assert.Less(t, a.Latency, 3*time.Second, "the call gave up near timeout_s = 0.5")
				}
			},
		},
		{
			name:       "malformed JSON body is an error and escalates",
			openai:     providertest.Script{"cheap": {{Malformed: true}}},
			wantStatus: executor.StatusSucceeded,
			wantDraft:  append(times(maxRetries+1, "openai/cheap error"), ok("openai/mid")),
			wantPolish: []string{ok("anthropic/haiku")},
			wantModel:  "openai/mid", wantEsc: 1,
			check: func(t *testing.T, res *executor.Result, _, _ *providertest.Server) {
				for _, a := range nodeByID(t, res, "draft").Attempts[:maxRetries+1] {
					assert.True(t, a.MayHaveBilled, "the provider answered 200: it billed")
					assert.Zero(t, a.CostNano, "no usage was received")
				}
			},
		},
		{
			name:       "empty choices is an error and escalates",
			openai:     providertest.Script{"cheap": {{EmptyChoices: true}}},
			wantStatus: executor.StatusSucceeded,
			wantDraft:  append(times(maxRetries+1, "openai/cheap error"), ok("openai/mid")),
			wantPolish: []string{ok("anthropic/haiku")},
			wantModel:  "openai/mid", wantEsc: 1,
			check: func(t *testing.T, res *executor.Result, _, _ *providertest.Server) {
				for _, a := range nodeByID(t, res, "draft").Attempts[:maxRetries+1] {
					assert.True(t, a.MayHaveBilled)
					assert.Contains(t, a.Reason, "empty")
				}
			},
		},
		{
			name:       "missing usage is counted locally and flagged",
			openai:     providertest.Script{"cheap": {{NoUsage: true, Text: "green tea"}}},
			wantStatus: executor.StatusSucceeded,
			wantDraft:  []string{ok("openai/cheap")},
			wantPolish: []string{ok("anthropic/haiku")},
			wantModel:  "openai/cheap", wantEsc: 0,
			check: func(t *testing.T, res *executor.Result, _, _ *providertest.Server) {
				a := nodeByID(t, res, "draft").Attempts[0]
				assert.False(t, a.UsageReported)
				assert.Contains(t, a.Reason, "no usage")
				assert.Positive(t, a.Usage.InputTokens)
				assert.Equal(t, int64(2), a.Usage.OutputTokens, `"green tea" is two o200k tokens`)
				assert.Positive(t, a.CostNano, "an unreported usage is estimated, never free")
			},
		},
		{
			name:       "a failed validate rule escalates at once",
			openai:     providertest.Script{"cheap": {{Text: "NOT-AN-ANSWER"}}},
			wantStatus: executor.StatusSucceeded,
			wantDraft:  []string{"openai/cheap invalid", ok("openai/mid")},
			wantPolish: []string{ok("anthropic/haiku")},
			wantModel:  "openai/mid", wantEsc: 1,
			check: func(t *testing.T, res *executor.Result, oa, _ *providertest.Server) {
				a := nodeByID(t, res, "draft").Attempts[0]
				assert.Contains(t, a.Reason, "validate rule")
				assert.True(t, a.MayHaveBilled)
				assert.Positive(t, a.CostNano, "the rejected answer was paid for")
				assert.Len(t, oa.CallsFor("cheap"), 1, "an invalid answer is not retried on the same model")
				assert.Equal(t, "matcha", nodeByID(t, res, "draft").Output)
			},
		},
		{
			name: "context_length_exceeded moves to the first rung with a larger window",
			openai: providertest.Script{"cheap": {{Status: 400, ErrorCode: "context_length_exceeded",
				ErrorMessage: "This model's maximum context length is 1000 tokens. However, your messages resulted in 1210 tokens."}}},
			wantStatus: executor.StatusSucceeded,
			wantDraft:  []string{"openai/cheap context_length", ok("anthropic/big")},
			wantPolish: []string{ok("anthropic/haiku")},
			wantModel:  "anthropic/big", wantEsc: 1,
			check: func(t *testing.T, res *executor.Result, oa, _ *providertest.Server) {
				assert.Empty(t, oa.CallsFor("mid"), "openai/mid has the same 1000-token window: skipped")
				assert.Len(t, oa.CallsFor("cheap"), 1, "a context-length error is not retried")
				assert.False(t, nodeByID(t, res, "draft").Attempts[0].MayHaveBilled)
			},
		},
		{
			name:       "401 stops the run naming the provider, never the key",
			rejectKey:  true,
			wantStatus: executor.StatusFailed,
			wantDraft:  []string{"openai/cheap auth"},
			wantPolish: []string{},
			check: func(t *testing.T, res *executor.Result, oa, an *providertest.Server) {
				assert.Contains(t, res.Error, "openai")
				assert.Contains(t, res.Error, "api_key_env", "the message says what to fix")
				assert.Equal(t, executor.NodeSkipped, nodeByID(t, res, "polish").Status)
				assert.Len(t, oa.Calls(), 1, "an auth failure is neither retried nor escalated")
				assert.Empty(t, an.Calls())
			},
		},
		{
			name: "Anthropic cache read and creation tokens are priced",
			anthropic: providertest.Script{"haiku": {{Text: "Tea.",
				Usage: &catalog.Usage{InputTokens: 1000, CacheReadTokens: 5000, CacheWriteTokens: 2000, OutputTokens: 300}}}},
			wantStatus: executor.StatusSucceeded,
			wantDraft:  []string{ok("openai/cheap")},
			wantPolish: []string{ok("anthropic/haiku")},
			wantModel:  "openai/cheap", wantEsc: 0,
			check: func(t *testing.T, res *executor.Result, _, _ *providertest.Server) {
				a := nodeByID(t, res, "polish").Attempts[0]
				assert.Equal(t, catalog.Usage{InputTokens: 1000, CacheReadTokens: 5000, CacheWriteTokens: 2000, OutputTokens: 300}, a.Usage)
				// 1000 x $1 + 5000 x $0.10 + 2000 x $1.25 + 300 x $5, per million.
				assert.Equal(t, int64(5_500_000), a.CostNano)
				assert.Equal(t, int64(5_500_000), nodeByID(t, res, "polish").CostNano)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(openAIKeyEnv, openAIKey)
			t.Setenv(anthropicKeyEnv, anthropicKey)
			oaScript := providertest.Script{"cheap": {{Text: "tea"}}, "mid": {{Text: "matcha"}}}
			anScript := providertest.Script{"haiku": {{Text: "Tea."}}, "big": {{Text: "Matcha."}}}
			for m, rs := range tc.openai {
				oaScript[m] = rs
			}
			for m, rs := range tc.anthropic {
				anScript[m] = rs
			}
			oa := providertest.NewOpenAIServer(oaScript)
			defer oa.Close()
			an := providertest.NewAnthropicServer(anScript)
			defer an.Close()
			if tc.rejectKey {
				oa.AcceptKeys("sk-some-other-key-0000000000000000")
			}
			cfg := providerConfig(t, oa.BaseURL(), an.BaseURL(), 0.5)
			defer cfg.Close()
			l := openLedger(t)
			id := createRun(t, l, itWorkflow, plan, `{"topic": "tea"}`, 0)

			x := executor.New(cat, cfg, executor.LedgerRecorder{L: l},
				executor.Options{BackoffBase: time.Millisecond, MaxRetries: maxRetries, Seed: 1})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := x.Run(ctx, executor.Spec{RunID: id, Plan: plan, Inputs: map[string]string{"topic": "tea"}})
			require.NoError(t, err)
			require.NoError(t, l.FinishRun(id, ledger.RunStatus(res.Status)))

			assert.Equal(t, tc.wantStatus, res.Status, "error: %s", res.Error)
			draft, polish := nodeByID(t, res, "draft"), nodeByID(t, res, "polish")
			assert.Equal(t, tc.wantDraft, outcomes(draft))
			assert.Equal(t, tc.wantPolish, outcomes(polish))
			if tc.wantStatus == executor.StatusSucceeded {
				assert.Empty(t, res.Error)
				assert.Equal(t, tc.wantModel, draft.Model)
				assert.Equal(t, tc.wantEsc, draft.Escalations)
				assert.Equal(t, executor.NodeSucceeded, polish.Status)
				assert.Equal(t, "Polish this word: "+draft.Output, an.CallsFor(apiName(polish.Model))[0].Prompt,
					"polish's prompt is rendered from draft's kept output")
			}
			for _, c := range append(oa.Calls(), an.Calls()...) {
				assert.Contains(t, []string{openAIKey, anthropicKey}, c.Key, "the configured key was presented")
			}
			_, unpaid := checkAccounting(t, cat, res, l, map[string]*providertest.Server{"openai": oa, "anthropic": an}, itNodeOf)
			assert.Zero(t, unpaid, "every answer the servers billed is paid for")

			// No message anywhere carries a key.
			rec, err := l.Run(id)
			require.NoError(t, err)
			msgs := []string{res.Error}
			for _, n := range res.Nodes {
				for _, a := range n.Attempts {
					msgs = append(msgs, a.Reason)
				}
			}
			for _, n := range rec.Nodes {
				for _, a := range n.Attempts {
					msgs = append(msgs, a.Reason)
				}
			}
			for _, m := range msgs {
				assert.NotContains(t, m, openAIKey)
				assert.NotContains(t, m, anthropicKey)
			}
			if tc.check != nil {
				tc.check(t, res, oa, an)
			}
		})
	}
}

// itNodeOf tells which node of itWorkflow sent a request.
func itNodeOf(c providertest.Call) string {
	if strings.HasPrefix(c.Prompt, "Polish this word: ") {
		return "polish"
	}
	return "draft"
}

// raceWorkflow is n independent nodes on openai/cheap only.
func raceWorkflow(n int) string {
	var b strings.Builder
	b.WriteString("name = \"race\"\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "\n[[node]]\nid = \"n%02d\"\nprompt = \"Say hi to n%02d.\"\noutput_tokens = { mean = 10, p95 = 15, max = 20 }\nmodels = [\"openai/cheap\"]\n", i, i)
	}
	return b.String()
}

// raceNodeOf tells which node of raceWorkflow sent a request.
func raceNodeOf(c providertest.Call) string {
	return strings.TrimSuffix(strings.TrimPrefix(c.Prompt, "Say hi to "), ".")
}

// reservationOf is the executor's reservation for a node of raceWorkflow on
// openai/cheap: the prompt counted with the model's tokenizer or the upper
// end of its provider's estimate band, plus 9 tokens of chat framing, and
// the node's max output, priced.
func reservationOf(t testing.TB, m *catalog.Model, prompt string, maxOut int64) (catalog.Usage, int64) {
	t.Helper()
	var in int
	if m.Tokenizer != "" {
		n, err := tokens.Count(tokens.Encoding(m.Tokenizer), "\n"+prompt)
		require.NoError(t, err)
		in = n
	} else {
		rule := tokens.RuleForProvider(m.Provider)
		if m.TokenRatio > 0 {
			rule.Ratio = m.TokenRatio
		}
		c, err := tokens.CountText(rule, "\n"+prompt)
		require.NoError(t, err)
		in = c.High()
	}
	u := catalog.Usage{InputTokens: int64(in) + 9, OutputTokens: maxOut}
	return u, catalog.Price(m, u).NanoUSD()
}

// TestBudgetRaceThroughRealClients: 20 independent nodes run at once with a
// budget that allows about 10 calls. The run never spends more than the
// budget plus one call's settlement error (actual - reserved), stops with
// budget_exhausted, and the ledger agrees with the result.
func TestBudgetRaceThroughRealClients(t *testing.T) {
	const nodes = 20
	cat := loadCatalog(t)
	src := raceWorkflow(nodes)
	plan := planWorkflow(t, cat, src)
	cheap, _ := cat.Lookup("openai/cheap")
	var reserveUsage catalog.Usage
	var reserve int64
	for i := 1; i <= nodes; i++ {
		u, r := reservationOf(t, cheap, fmt.Sprintf("Say hi to n%02d.", i), 20)
		if r > reserve {
			reserveUsage, reserve = u, r
		}
	}
	budget := 10*reserve + reserve/2

	cases := []struct {
		name  string
		extra int64 // input tokens the provider bills beyond the reservation
		delay time.Duration
	}{
		{name: "actual equals the reservation, slow calls", delay: 300 * time.Millisecond},
		{name: "actual equals the reservation, fast calls"},
		{name: "actual above the reservation, fast calls", extra: 40},
		{name: "actual above the reservation, slow calls", extra: 40, delay: 300 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(openAIKeyEnv, openAIKey)
			t.Setenv(anthropicKeyEnv, anthropicKey)
			billed := reserveUsage
			billed.InputTokens += tc.extra
			oa := providertest.NewOpenAIServer(providertest.Script{"cheap": {{Text: "hi", Usage: &billed, Delay: tc.delay}}})
			defer oa.Close()
			an := providertest.NewAnthropicServer(providertest.Script{})
			defer an.Close()
			cfg := providerConfig(t, oa.BaseURL(), an.BaseURL(), 10)
			defer cfg.Close()
			l := openLedger(t)
			id := createRun(t, l, src, plan, "", budget)

			x := executor.New(cat, cfg, executor.LedgerRecorder{L: l},
				executor.Options{Concurrency: nodes, BackoffBase: time.Millisecond, Seed: 1})
			res, err := x.Run(context.Background(), executor.Spec{RunID: id, Plan: plan, BudgetNan: budget})
			require.NoError(t, err)
			require.NoError(t, l.FinishRun(id, ledger.RunStatus(res.Status)))

			actual := catalog.Price(cheap, billed).NanoUSD()
			settlementErr := max(0, actual-reserve)
			assert.Equal(t, executor.StatusBudgetExhausted, res.Status)
			assert.Contains(t, res.Error, "budget exhausted")
			// Every call in flight can overrun its reservation: the spend is
			// bounded by the budget plus the settlement error of each paid call.
			assert.LessOrEqual(t, res.CostNano, budget+int64(nodes)*settlementErr,
				"spent %d nano-USD with a budget of %d (reservation %d, actual %d per call)", res.CostNano, budget, reserve, actual)

			var okCalls, refused, dropped int
			for _, n := range res.Nodes {
				for _, a := range n.Attempts {
					switch {
					case a.Outcome == executor.OutcomeOK:
						okCalls++
					case a.Outcome == executor.OutcomeBudget:
						refused++
					case abandoned(a) && a.MayHaveBilled:
						dropped++
					}
				}
			}
			assert.Positive(t, refused, "some call was refused by the budget")
			assert.LessOrEqual(t, okCalls, int(budget/reserve), "no more calls were paid than the budget holds")
			assert.Equal(t, int64(okCalls)*actual, res.CostNano, "the paid calls are exactly the ok attempts")
			assert.LessOrEqual(t, res.CostNano, budget+int64(okCalls)*settlementErr)
			t.Logf("reservation %d, actual %d, budget %d: %d paid, %d refused, %d abandoned in flight (may have been billed, charged 0), spent %d",
				reserve, actual, budget, okCalls, refused, dropped, res.CostNano)
			_, unpaid := checkAccounting(t, cat, res, l, map[string]*providertest.Server{"openai": oa, "anthropic": an}, raceNodeOf)
			rec, err := l.Run(id)
			require.NoError(t, err)
			assert.Equal(t, ledger.RunBudgetExhausted, rec.Status)

			t.Run("calls in flight within the budget are not abandoned", func(t *testing.T) {
				assert.Zero(t, dropped, "calls sent, then abandoned, that the provider may bill")
				assert.Zero(t, unpaid, "answers the server billed but the run recorded at $0")
			})
		})
	}
}

// Crash safety: a child process (this test binary, re-executed) runs a
// four-node chain against a slow fake server and is killed with SIGKILL
// while the third node's call is in flight; the run is then resumed here.
const (
	helperEnv      = "COSTWISE_IT_HELPER"
	helperLedger   = "COSTWISE_IT_LEDGER"
	helperRunID    = "COSTWISE_IT_RUN_ID"
	helperOpenAI   = "COSTWISE_IT_OPENAI_URL"
	crashNodeDelay = 400 * time.Millisecond
)

const crashWorkflow = `
name = "chain"

[[node]]
id = "s1"
prompt = "Step 1: start."
output_tokens = { mean = 10, p95 = 15, max = 20 }
models = ["openai/cheap"]

[[node]]
id = "s2"
depends_on = ["s1"]
prompt = "Step 2: continue from {{node.s1.output}}."
output_tokens = { mean = 10, p95 = 15, max = 20 }
models = ["openai/cheap"]

[[node]]
id = "s3"
depends_on = ["s2"]
prompt = "Step 3: continue from {{node.s2.output}}."
output_tokens = { mean = 10, p95 = 15, max = 20 }
models = ["openai/cheap"]

[[node]]
id = "s4"
depends_on = ["s3"]
prompt = "Step 4: continue from {{node.s3.output}}."
output_tokens = { mean = 10, p95 = 15, max = 20 }
models = ["openai/cheap"]
`

// TestHelperProcess is the child of TestCrashAndResume; it does nothing
// unless run by it.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("only run as the child process of TestCrashAndResume")
	}
	cat := loadCatalog(t)
	plan := planWorkflow(t, cat, crashWorkflow)
	cfg := providerConfig(t, os.Getenv(helperOpenAI), "http://127.0.0.1:1/v1", 30)
	l, err := ledger.Open(os.Getenv(helperLedger))
	require.NoError(t, err)
	x := executor.New(cat, cfg, executor.LedgerRecorder{L: l}, executor.Options{BackoffBase: time.Millisecond, Seed: 1})
	_, err = x.Run(context.Background(), executor.Spec{RunID: os.Getenv(helperRunID), Plan: plan})
	require.NoError(t, err)
	t.Fatal("the child should have been killed before the run finished")
}

func TestCrashAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	cat := loadCatalog(t)
	plan := planWorkflow(t, cat, crashWorkflow)
	t.Setenv(openAIKeyEnv, openAIKey)
	t.Setenv(anthropicKeyEnv, anthropicKey)
	oa := providertest.NewOpenAIServer(providertest.Script{"cheap": {{Text: "done", Delay: crashNodeDelay}}})
	defer oa.Close()
	l := openLedger(t)
	id := createRun(t, l, crashWorkflow, plan, "", 0)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperLedger+"="+l.Path(), helperRunID+"="+id,
		helperOpenAI+"="+oa.BaseURL(), openAIKeyEnv+"="+openAIKey, anthropicKeyEnv+"="+anthropicKey)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// Kill the child once two nodes are done and the third one's call is
	// in flight (announced in the ledger and received by the server).
	deadline := time.After(60 * time.Second)
	var inFlight []ledger.InFlightCall
poll:
	for {
		select {
		case err := <-exited:
			t.Fatalf("the child exited before it was killed: %v\n%s", err, out.String())
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("the child made no progress\n%s", out.String())
		case <-time.After(10 * time.Millisecond):
		}
		done, err := l.CompletedNodes(id)
		require.NoError(t, err)
		rec, err := l.Run(id)
		require.NoError(t, err)
		if len(done) == 2 && len(rec.InFlight) == 1 && len(oa.Calls()) == 3 {
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			inFlight = rec.InFlight
			break poll
		}
		require.Less(t, len(done), 3, "the poll missed its window")
	}
	err := <-exited
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "the child was killed")
	assert.Equal(t, "signal: killed", ee.Error())
	require.Equal(t, "s3", inFlight[0].NodeID)
	require.Positive(t, inFlight[0].EstimateNano)

	// The file survived the kill.
	require.NoError(t, l.Check(), "PRAGMA integrity_check and spent == sum of attempts after SIGKILL")

	// Resume: the in-flight call becomes an interrupted attempt charged at
	// its estimate; completed nodes are not run again.
	rec, err := l.ResumeRun(id, ledger.HashWorkflow([]byte(crashWorkflow)))
	require.NoError(t, err)
	var interrupted []ledger.Attempt
	for _, n := range rec.Nodes {
		for _, a := range n.Attempts {
			if a.Outcome == ledger.OutcomeInterrupted {
				interrupted = append(interrupted, a)
			}
		}
	}
	require.Len(t, interrupted, 1)
	assert.Equal(t, inFlight[0].EstimateNano, interrupted[0].CostNano, "the interrupted call is charged at its estimate")
	assert.True(t, interrupted[0].MayHaveBilled)
	assert.False(t, interrupted[0].UsageReported)
	done, err := l.CompletedNodes(id)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"s1": "done", "s2": "done"}, done)

	cfg := providerConfig(t, oa.BaseURL(), "http://127.0.0.1:1/v1", 30)
	defer cfg.Close()
	x := executor.New(cat, cfg, executor.LedgerRecorder{L: l}, executor.Options{BackoffBase: time.Millisecond, Seed: 1})
	res, err := x.Run(context.Background(), executor.Spec{RunID: id, Plan: plan, Spent: rec.SpentNano, Done: done})
	require.NoError(t, err)
	require.NoError(t, l.FinishRun(id, ledger.RunStatus(res.Status)))
	assert.Equal(t, executor.StatusSucceeded, res.Status, res.Error)

	// Completed nodes were not called again; the interrupted node was.
	callsPerStep := map[string]int{}
	for _, c := range oa.Calls() {
		step, _, _ := strings.Cut(c.Prompt, ":")
		callsPerStep[step]++
	}
	assert.Equal(t, map[string]int{"Step 1": 1, "Step 2": 1, "Step 3": 2, "Step 4": 1}, callsPerStep)
	for _, n := range res.Nodes {
		resumed := n.ID == "s1" || n.ID == "s2"
		assert.Equal(t, resumed, n.Resumed, n.ID)
		if resumed {
			assert.Empty(t, n.Attempts, "node %s was not run again", n.ID)
		}
	}

	// The final cost is every call the server billed, priced, plus the
	// interrupted call at its estimate; result and ledger agree.
	var want int64
	cheap, _ := cat.Lookup("openai/cheap")
	for _, c := range oa.Calls() {
		if c.UsageReported {
			want += catalog.Price(cheap, c.Usage).NanoUSD()
		}
	}
	want += interrupted[0].CostNano
	final, err := l.Run(id)
	require.NoError(t, err)
	var ledgerSum int64
	for _, n := range final.Nodes {
		assert.Equal(t, ledger.NodeSucceeded, n.Status, n.NodeID)
		for _, a := range n.Attempts {
			ledgerSum += a.CostNano
		}
	}
	assert.Equal(t, want, res.CostNano, "the run's cost is every billed call plus the interrupted one")
	assert.Equal(t, want, final.SpentNano)
	assert.Equal(t, want, ledgerSum)
	assert.Equal(t, ledger.RunSucceeded, final.Status)
	assert.Empty(t, final.InFlight)
	require.NoError(t, l.Check())
}
