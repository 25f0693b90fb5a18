package executor_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/estimator/tokens"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/executor/provider"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// rtCatalog has round prices (USD per million tokens) and task scores:
//
//	model             in    out   default code  classification json
//	openai/nano       0.1   0.4   0.60    0.50  0.90           yes
//	openai/mini       0.4   1.6   0.80    0.85  0.92           yes
//	openai/big        2     8     0.95    0.95  -              no
//	anthropic/haiku   1     5     0.85    0.88  -              no
//	anthropic/sonnet  3     15    0.93    0.96  -              no
const rtCatalog = `
[[model]]
id = "openai/nano"
provider = "openai"
tokenizer = "o200k_base"
input_per_mtok = 0.1
output_per_mtok = 0.4
cache_read_per_mtok = 0.025
context_window = 100000
max_output_tokens = 4000
modalities = ["text"]
json_mode = true
[model.quality]
default = 0.60
code = 0.50
classification = 0.90

[[model]]
id = "openai/mini"
provider = "openai"
tokenizer = "o200k_base"
input_per_mtok = 0.4
output_per_mtok = 1.6
context_window = 100000
max_output_tokens = 4000
modalities = ["text"]
json_mode = true
[model.quality]
default = 0.80
code = 0.85
classification = 0.92

[[model]]
id = "openai/big"
provider = "openai"
tokenizer = "o200k_base"
input_per_mtok = 2.0
output_per_mtok = 8.0
context_window = 100000
max_output_tokens = 4000
modalities = ["text"]
[model.quality]
default = 0.95
code = 0.95

[[model]]
id = "anthropic/haiku"
provider = "anthropic"
token_ratio = 1.25
input_per_mtok = 1.0
output_per_mtok = 5.0
context_window = 200000
max_output_tokens = 8000
modalities = ["text"]
[model.quality]
default = 0.85
code = 0.88

[[model]]
id = "anthropic/sonnet"
provider = "anthropic"
token_ratio = 1.25
input_per_mtok = 3.0
output_per_mtok = 15.0
context_window = 200000
max_output_tokens = 8000
modalities = ["text"]
[model.quality]
default = 0.93
code = 0.96
`

const (
	rtOpenAIEnv    = "CW_RT_OPENAI_KEY"
	rtAnthropicEnv = "CW_RT_ANTHROPIC_KEY"
	rtOpenAIKey    = "sk-rt-fake-openai-0123456789abcdef"
	rtAnthropicKey = "sk-ant-rt-fake-9876543210fedcba"
)

// rtEnv is a router test's world: the catalog, two fake providers behind
// the real clients, and a ledger.
type rtEnv struct {
	cat    *catalog.Catalog
	oa, an *providertest.Server
	cfg    *provider.Config
	l      *ledger.Ledger
	async  *executor.AsyncRouterRecorder // set by useAsync: routers record through it
}

// useAsync makes the env's routers record through an AsyncRouterRecorder
// (closed before the ledger).
func (e *rtEnv) useAsync(t *testing.T) {
	e.async = executor.NewAsyncRouterRecorder(executor.LedgerRecorder{L: e.l}, executor.AsyncOptions{QueueSize: 8,
		OnError: func(err error) { t.Errorf("async ledger write: %v", err) }})
	t.Cleanup(func() { require.NoError(t, e.async.Close(context.Background())) })
}

func newRTEnv(t *testing.T, oaScript, anScript providertest.Script) *rtEnv {
	t.Helper()
	t.Setenv(rtOpenAIEnv, rtOpenAIKey)
	t.Setenv(rtAnthropicEnv, rtAnthropicKey)
	cat, err := catalog.LoadTOML("rt-catalog.toml", []byte(rtCatalog))
	require.NoError(t, err)
	e := &rtEnv{cat: cat, oa: providertest.NewOpenAIServer(oaScript), an: providertest.NewAnthropicServer(anScript)}
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
`, rtOpenAIEnv, e.oa.BaseURL(), rtAnthropicEnv, e.an.BaseURL())
	e.cfg, err = provider.ParseConfig("rt-config.toml", []byte(src))
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.cfg.Close() })
	e.l = openLedger(t)
	return e
}

func (e *rtEnv) router(t *testing.T, opts executor.RouterOptions) *executor.Router {
	t.Helper()
	if opts.BackoffBase == 0 {
		opts.BackoffBase = time.Millisecond
	}
	var rec executor.RouterRecorder = executor.LedgerRecorder{L: e.l}
	if e.async != nil {
		rec = e.async
	}
	r, err := executor.NewRouter(e.cat, e.cfg, rec, opts)
	require.NoError(t, err)
	return r
}

// price is what usage u costs on model id, in nano-USD.
func (e *rtEnv) price(t *testing.T, id string, u catalog.Usage) int64 {
	t.Helper()
	m, ok := e.cat.Lookup(id)
	require.True(t, ok, id)
	return catalog.Price(m, u).NanoUSD()
}

func human(text string) []llms.MessageContent {
	return []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, text)}
}

func ladderIDs(p *executor.RoutePlan) []string {
	out := make([]string, len(p.Ladder))
	for i, c := range p.Ladder {
		out[i] = c.Model
	}
	return out
}

func u(in, out int64) *catalog.Usage { return &catalog.Usage{InputTokens: in, OutputTokens: out} }

// allOK answers every model of the catalog.
func allOK() (providertest.Script, providertest.Script) {
	return providertest.Script{"nano": {{Text: `{"nano": "hi"}`, Usage: u(50, 5)}}, "mini": {{Text: "mini says hi", Usage: u(50, 5)}},
			"big": {{Text: "big says hi", Usage: u(50, 5)}}},
		providertest.Script{"haiku": {{Text: "haiku says hi", Usage: u(50, 5)}}, "sonnet": {{Text: "sonnet says hi", Usage: u(50, 5)}}}
}

// newRTEnvOK is an environment where every model answers.
func newRTEnvOK(t *testing.T) *rtEnv {
	t.Helper()
	oa, an := allOK()
	return newRTEnv(t, oa, an)
}

func TestRouterChoosesCheapestForRoute(t *testing.T) {
	cases := []struct {
		name       string
		routes     []executor.Route
		def        executor.Route
		prompt     string
		opts       []llms.CallOption
		wantTask   string
		wantSource string
		wantRoute  string
		wantLadder []string
	}{
		{
			name:     "default route takes the cheapest model; the ladder follows by quality",
			prompt:   "Say hello.",
			wantTask: "default", wantSource: "heuristic", wantRoute: "default",
			wantLadder: []string{"openai/nano", "openai/big", "anthropic/sonnet"},
		},
		{
			name:     "a task route's min_quality skips models that score too low for the task",
			routes:   []executor.Route{{Name: "coding", Task: "code", MinQuality: 0.85}},
			prompt:   "Please refactor this:\n```go\nfunc f() {}\n```",
			wantTask: "code", wantSource: "heuristic", wantRoute: "coding",
			wantLadder: []string{"openai/mini", "anthropic/sonnet", "openai/big"},
		},
		{
			name:     "the task from metadata wins over the heuristic",
			routes:   []executor.Route{{Name: "coding", Task: "code", MinQuality: 0.85}},
			prompt:   "Say hello.",
			opts:     []llms.CallOption{executor.WithTask("code")},
			wantTask: "code", wantSource: "metadata", wantRoute: "coding",
			wantLadder: []string{"openai/mini", "anthropic/sonnet", "openai/big"},
		},
		{
			name:     "a route named in metadata lends its task",
			routes:   []executor.Route{{Name: "labels", Task: "classification", MinQuality: 0.9}},
			prompt:   "Tea or coffee?",
			opts:     []llms.CallOption{llms.WithMetadata(map[string]any{"other": 1}), executor.WithRoute("labels")},
			wantTask: "classification", wantSource: "route", wantRoute: "labels",
			// big and sonnet have no classification score: their default
			// scores (0.95, 0.93) count; haiku's 0.85 does not pass.
			wantLadder: []string{"openai/nano", "openai/big", "anthropic/sonnet"},
		},
		{
			name:     "providers filter",
			def:      executor.Route{Providers: []string{"anthropic"}},
			prompt:   "Say hello.",
			wantTask: "default", wantSource: "heuristic", wantRoute: "default",
			wantLadder: []string{"anthropic/haiku", "anthropic/sonnet"},
		},
		{
			name:     "model globs",
			def:      executor.Route{Name: "pricey", Models: []string{"openai/b*", "anthropic/s*"}},
			prompt:   "Say hello.",
			wantTask: "default", wantSource: "heuristic", wantRoute: "pricey",
			wantLadder: []string{"openai/big", "anthropic/sonnet"},
		},
		{
			// Default output 300 tokens, reserved 1200: sonnet's worst case
			// is 1200 x $15/M = $0.018 > $0.01, big's $0.0096 fits.
			name:     "the per-request cap drops models whose worst case exceeds it",
			def:      executor.Route{MaxCostUSD: 0.01, MinQuality: 0.9},
			prompt:   "Say hello.",
			wantTask: "default", wantSource: "heuristic", wantRoute: "default",
			wantLadder: []string{"openai/big"},
		},
		{
			name:     "a pinned model restricts the choice",
			prompt:   "Say hello.",
			opts:     []llms.CallOption{llms.WithModel("anthropic/haiku")},
			wantTask: "default", wantSource: "heuristic", wantRoute: "default",
			wantLadder: []string{"anthropic/haiku"},
		},
		{
			name:     "JSON mode admits only models that offer it",
			prompt:   "Give me a JSON object.",
			opts:     []llms.CallOption{llms.WithJSONMode()},
			wantTask: "default", wantSource: "heuristic", wantRoute: "default",
			wantLadder: []string{"openai/nano", "openai/mini"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newRTEnvOK(t)
			r := e.router(t, executor.RouterOptions{Routes: tc.routes, Default: tc.def})
			p, err := r.Plan(human(tc.prompt), tc.opts...)
			require.NoError(t, err)
			assert.Equal(t, tc.wantTask, p.Task)
			assert.Equal(t, tc.wantSource, p.TaskSource)
			assert.Equal(t, tc.wantRoute, p.Route)
			assert.Equal(t, tc.wantLadder, ladderIDs(p))
			assert.LessOrEqual(t, len(p.Rejected)+len(p.Ladder), e.cat.Len())
			for _, x := range p.Rejected {
				assert.NotContains(t, tc.wantLadder, x.Model)
				assert.NotEmpty(t, x.Detail)
			}
			for _, c := range p.Ladder[1:] {
				assert.GreaterOrEqual(t, c.PredictedUSD, p.Ladder[0].PredictedUSD)
			}

			resp, err := r.GenerateContent(context.Background(), human(tc.prompt), tc.opts...)
			require.NoError(t, err)
			first := p.Ladder[0]
			assert.Equal(t, first.Model, resp.Choices[0].GenerationInfo[executor.InfoModel])
			srv := e.oa
			if first.Provider == "anthropic" {
				srv = e.an
			}
			calls := srv.CallsFor(strings.TrimPrefix(first.Model, first.Provider+"/"))
			require.Len(t, calls, 1, "one request to the chosen model")
			assert.Equal(t, tc.prompt, calls[0].Prompt)
			assert.Equal(t, first.MaxTokens, calls[0].MaxTokens, "the output cap that the reservation assumed is sent")
		})
	}
}

// TestRouterPricesThePrompt checks the ranking numbers against catalog.Price
// and the tokenizer: exact o200k for OpenAI, token_ratio 1.25 with the
// provider's +-15% band for Anthropic.
func TestRouterPricesThePrompt(t *testing.T) {
	e := newRTEnvOK(t)
	r := e.router(t, executor.RouterOptions{MaxRungs: 10})
	prompt := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 40)
	p, err := r.Plan([]llms.MessageContent{llms.TextParts(llms.ChatMessageTypeSystem, "Be brief."), llms.TextParts(llms.ChatMessageTypeHuman, prompt)},
		llms.WithMaxTokens(100))
	require.NoError(t, err)
	n, err := tokens.Count(tokens.O200kBase, "Be brief.\n"+prompt)
	require.NoError(t, err)
	assert.Equal(t, n, p.PromptTokens)
	assert.Equal(t, 100, p.ExpectedOutput, "the task default (300) capped by MaxTokens")
	require.Len(t, p.Ladder, 5)
	for _, c := range p.Ladder {
		m, _ := e.cat.Lookup(c.Model)
		in, high := int64(n)+9, int64(n)+9
		if c.Provider == "anthropic" {
			// The catalog's token_ratio, the provider's default band.
			est := tokens.TokenCount{Tokens: int(math.Ceil(float64(n)*1.25 - 1e-9)), RelErr: 0.15}
			in, high = int64(est.Tokens)+9, int64(est.High())+9
		}
		assert.Equal(t, in, c.InputTokens, c.Model)
		assert.Equal(t, 100, c.MaxTokens, c.Model)
		assert.InDelta(t, catalog.Price(m, catalog.Usage{InputTokens: in, OutputTokens: 100}).TotalUSD, c.PredictedUSD, 1e-15, c.Model)
		assert.Equal(t, catalog.Price(m, catalog.Usage{InputTokens: high, OutputTokens: 100}).NanoUSD(), c.ReserveNano, c.Model)
	}
}

func TestRouterEscalates(t *testing.T) {
	ok := func(text string) providertest.Reply { return providertest.Reply{Text: text, Usage: u(40, 4)} }
	cases := []struct {
		name      string
		route     executor.Route
		opts      []llms.CallOption
		oa, an    providertest.Script
		rejectKey bool
		want      string // model that answers
		wantText  string
		wantEsc   int
		wantAtts  []string // model outcome
		paid      map[string]int
	}{
		{
			name: "HTTP 500 is retried, then the next rung answers",
			oa:   providertest.Script{"nano": {{Status: 500}}, "big": {ok("big answer")}},
			want: "openai/big", wantText: "big answer", wantEsc: 1,
			wantAtts: []string{"openai/nano error", "openai/nano error", "openai/nano error", "openai/big ok"},
			paid:     map[string]int{"openai/big": 1},
		},
		{
			name: "a 500 then success stays on the same model",
			oa:   providertest.Script{"nano": {{Status: 500}, ok("second try")}},
			want: "openai/nano", wantText: "second try", wantEsc: 0,
			wantAtts: []string{"openai/nano error", "openai/nano ok"},
			paid:     map[string]int{"openai/nano": 1},
		},
		{
			name:  "an answer the validate rule rejects escalates at once, and is paid for",
			route: executor.Route{Validate: `output contains "tea"`},
			oa:    providertest.Script{"nano": {ok("coffee")}, "big": {ok("green tea")}},
			want:  "openai/big", wantText: "green tea", wantEsc: 1,
			wantAtts: []string{"openai/nano invalid", "openai/big ok"},
			paid:     map[string]int{"openai/nano": 1, "openai/big": 1},
		},
		{
			name: "invalid JSON in JSON mode escalates",
			opts: []llms.CallOption{llms.WithJSONMode()},
			oa:   providertest.Script{"nano": {ok("not json")}, "mini": {ok(`{"ok": true}`)}},
			want: "openai/mini", wantText: `{"ok": true}`, wantEsc: 1,
			wantAtts: []string{"openai/nano invalid", "openai/mini ok"},
			paid:     map[string]int{"openai/nano": 1, "openai/mini": 1},
		},
		{
			name:      "a rejected key skips the provider's other rungs",
			rejectKey: true,
			an:        providertest.Script{"sonnet": {ok("sonnet answer")}},
			want:      "anthropic/sonnet", wantText: "sonnet answer", wantEsc: 1,
			wantAtts: []string{"openai/nano auth", "anthropic/sonnet ok"},
			paid:     map[string]int{"anthropic/sonnet": 1},
		},
		{
			name: "stop words cut the answer locally",
			opts: []llms.CallOption{llms.WithStopWords([]string{"\nObservation:"})},
			oa:   providertest.Script{"nano": {ok("Action: search\nObservation: made up")}},
			want: "openai/nano", wantText: "Action: search", wantEsc: 0,
			wantAtts: []string{"openai/nano ok"},
			paid:     map[string]int{"openai/nano": 1},
		},
	}
	for _, tc := range cases {
		for _, async := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/async=%v", tc.name, async), func(t *testing.T) {
				e := newRTEnv(t, tc.oa, tc.an)
				if async {
					e.useAsync(t)
				}
				if tc.rejectKey {
					e.oa.AcceptKeys("sk-some-other-key-0000000000000000")
				}
				r := e.router(t, executor.RouterOptions{Default: tc.route, MaxRetries: 2})
				resp, err := r.GenerateContent(context.Background(), human("Say hello."), tc.opts...)
				require.NoError(t, err)
				if async {
					require.NoError(t, e.async.Flush(context.Background()))
				}
				ch := resp.Choices[0]
				assert.Equal(t, tc.wantText, ch.Content)
				info := ch.GenerationInfo
				assert.Equal(t, tc.want, info[executor.InfoModel])
				assert.Equal(t, tc.wantEsc, info[executor.InfoEscalations])
				assert.Equal(t, len(tc.wantAtts), info[executor.InfoAttempts])

				var want int64
				for id, n := range tc.paid {
					want += int64(n) * e.price(t, id, catalog.Usage{InputTokens: 40, OutputTokens: 4})
				}
				assert.Equal(t, want, info[executor.InfoCostNano], "the request costs every paid answer, rejected ones included")

				rec, err := e.l.Run(info[executor.InfoRunID].(string))
				require.NoError(t, err)
				require.Len(t, rec.Nodes, 1)
				var got []string
				for _, a := range rec.Nodes[0].Attempts {
					got = append(got, a.Model+" "+string(a.Outcome))
				}
				assert.Equal(t, tc.wantAtts, got, "the ledger holds every attempt in order")
				assert.Equal(t, want, rec.SpentNano)
				assert.Equal(t, ledger.RunSucceeded, rec.Status)
				assert.Equal(t, tc.want, rec.Nodes[0].FinalModel)
				assert.Equal(t, tc.wantText, rec.Nodes[0].Output)
				assert.Empty(t, rec.InFlight)
				require.NoError(t, e.l.Check())
			})
		}
	}
}

func TestRouterEveryRungFails(t *testing.T) {
	e := newRTEnv(t, providertest.Script{"nano": {{Status: 400, ErrorMessage: "bad parameter"}}, "big": {{Status: 503}}},
		providertest.Script{"sonnet": {{Status: 500}}})
	r := e.router(t, executor.RouterOptions{MaxRetries: -1})
	_, err := r.GenerateContent(context.Background(), human("Say hello."))
	require.Error(t, err)
	assert.ErrorIs(t, err, provider.ErrTransient, "the last error is kept")
	assert.Contains(t, err.Error(), "every model of the ladder failed")
	runs, err := e.l.Runs(0)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	assert.Equal(t, ledger.RunFailed, runs[0].Status)
	assert.Equal(t, 3, runs[0].Attempts)
	assert.Equal(t, "router:default", runs[0].WorkflowName)
}

func TestRouterBudgets(t *testing.T) {
	// One "Say hello." call on nano reserves (prompt + 9) x $0.1/M + 1200 x
	// $0.4/M, about 481,000 nano-USD; it is billed 50 x 0.1 + 5 x 0.4 =
	// 7000 nano-USD.
	t.Run("the daily budget refuses a call before it is sent", func(t *testing.T) {
		e := newRTEnvOK(t)
		r := e.router(t, executor.RouterOptions{DailyBudgetNano: 100})
		_, err := r.GenerateContent(context.Background(), human("Say hello."))
		var be *executor.ErrBudgetExhausted
		require.ErrorAs(t, err, &be)
		assert.Equal(t, int64(100), be.Limit)
		assert.Empty(t, e.oa.Calls(), "nothing was sent")
		assert.Empty(t, e.an.Calls(), "nothing was sent")
		runs, err := e.l.Runs(0)
		require.NoError(t, err)
		require.Len(t, runs, 1)
		assert.Equal(t, ledger.RunBudgetExhausted, runs[0].Status)
		assert.Zero(t, runs[0].SpentNano)
	})

	t.Run("the day's spend carries over a restart", func(t *testing.T) {
		e := newRTEnvOK(t)
		r := e.router(t, executor.RouterOptions{DailyBudgetNano: 1_000_000})
		resp, err := r.GenerateContent(context.Background(), human("Say hello."))
		require.NoError(t, err)
		assert.Equal(t, int64(7000), resp.Choices[0].GenerationInfo[executor.InfoCostNano], "50 x $0.1/M + 5 x $0.4/M")
		plan, err := r.Plan(human("Say hello."))
		require.NoError(t, err)
		reserve := plan.Ladder[0].ReserveNano

		// Restarted routers read today's 7000 back from the ledger: a
		// budget of reserve + 6999 refuses the next call, reserve + 7000
		// admits it.
		_, err = e.router(t, executor.RouterOptions{DailyBudgetNano: reserve + 6999}).GenerateContent(context.Background(), human("Say hello."))
		var be *executor.ErrBudgetExhausted
		require.ErrorAs(t, err, &be)
		assert.Equal(t, int64(7000), be.Spent, "today's spend is read back from the ledger")
		assert.Len(t, e.oa.Calls(), 1, "the refused call was not sent")
		_, err = e.router(t, executor.RouterOptions{DailyBudgetNano: reserve + 7000}).GenerateContent(context.Background(), human("Say hello."))
		require.NoError(t, err)
	})

	t.Run("a new day starts a new budget", func(t *testing.T) {
		e := newRTEnvOK(t)
		now := time.Date(2026, 11, 3, 23, 0, 0, 0, time.UTC)
		var mu sync.Mutex
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		r, err := executor.NewRouter(e.cat, e.cfg, nil, executor.RouterOptions{Now: clock, DailyBudgetNano: 1, BackoffBase: time.Millisecond})
		require.NoError(t, err)
		plan, err := r.Plan(human("Say hello."))
		require.NoError(t, err)
		r, err = executor.NewRouter(e.cat, e.cfg, nil, executor.RouterOptions{Now: clock, DailyBudgetNano: plan.Ladder[0].ReserveNano, BackoffBase: time.Millisecond})
		require.NoError(t, err)
		_, err = r.GenerateContent(context.Background(), human("Say hello."))
		require.NoError(t, err)
		_, err = r.GenerateContent(context.Background(), human("Say hello."))
		var be *executor.ErrBudgetExhausted
		require.ErrorAs(t, err, &be, "7000 spent + a full reservation exceeds the budget")
		mu.Lock()
		now = now.Add(24 * time.Hour)
		mu.Unlock()
		_, err = r.GenerateContent(context.Background(), human("Say hello."))
		require.NoError(t, err, "the next day has its whole budget")
	})

	t.Run("the per-request cap stops escalation", func(t *testing.T) {
		e := newRTEnv(t, providertest.Script{"nano": {{Text: "coffee", Usage: u(50, 1300)}}, "mini": {{Text: "tea", Usage: u(50, 5)}}}, nil)
		route := executor.Route{Validate: `output contains "tea"`, Models: []string{"openai/nano", "openai/mini"}}
		plan, err := e.router(t, executor.RouterOptions{Default: route}).Plan(human("Say hello."))
		require.NoError(t, err)
		require.Equal(t, []string{"openai/nano", "openai/mini"}, ladderIDs(plan))
		// The cap admits both models, but after nano's rejected answer
		// (5000 + 520000 nano-USD) mini's reservation no longer fits.
		capNano := plan.Ladder[1].ReserveNano + 100
		route.MaxCostUSD = float64(capNano) / 1e9
		r := e.router(t, executor.RouterOptions{Default: route})
		_, err = r.GenerateContent(context.Background(), human("Say hello."))
		var be *executor.ErrBudgetExhausted
		require.ErrorAs(t, err, &be)
		assert.Contains(t, err.Error(), "per-request cap")
		assert.Empty(t, e.oa.CallsFor("mini"), "mini was never sent")
		runs, err := e.l.Runs(0)
		require.NoError(t, err)
		require.Len(t, runs, 1)
		assert.Equal(t, ledger.RunBudgetExhausted, runs[0].Status)
		assert.Equal(t, int64(525_000), runs[0].SpentNano)
		assert.Equal(t, capNano, runs[0].BudgetMaxNano)
		assert.Equal(t, 2, runs[0].Attempts, "nano invalid, mini refused by the budget")
	})
}

func TestRouterGenerationInfo(t *testing.T) {
	e := newRTEnv(t, providertest.Script{"nano": {{Text: "Hello!", Usage: &catalog.Usage{InputTokens: 30, CacheReadTokens: 10, OutputTokens: 7, ReasoningTokens: 3}}}}, nil)
	r := e.router(t, executor.RouterOptions{})
	resp, err := r.GenerateContent(context.Background(), human("Say hello."), executor.WithTask("writing"))
	require.NoError(t, err)
	require.Len(t, resp.Choices, 1)
	ch := resp.Choices[0]
	assert.Equal(t, "Hello!", ch.Content)
	assert.Equal(t, "stop", ch.StopReason)
	info := ch.GenerationInfo
	// OpenAI reports prompt_tokens = 40 (10 cached), completion_tokens = 10
	// (3 reasoning); the ledger keeps them disjoint.
	wantUsage := catalog.Usage{InputTokens: 30, CacheReadTokens: 10, OutputTokens: 7, ReasoningTokens: 3}
	cost := e.price(t, "openai/nano", wantUsage)
	assert.Equal(t, 40, info["PromptTokens"])
	assert.Equal(t, 10, info["CompletionTokens"])
	assert.Equal(t, 50, info["TotalTokens"])
	assert.Equal(t, 3, info["ReasoningTokens"])
	assert.Equal(t, "openai/nano", info[executor.InfoModel])
	assert.Equal(t, cost, info[executor.InfoCostNano])
	assert.InDelta(t, float64(cost)/1e9, info[executor.InfoCostUSD], 1e-18)
	assert.Equal(t, 0, info[executor.InfoEscalations])
	assert.Equal(t, 1, info[executor.InfoAttempts])
	assert.Equal(t, "writing", info[executor.InfoTask])
	assert.Equal(t, "default", info[executor.InfoRoute])

	rec, err := e.l.Run(info[executor.InfoRunID].(string))
	require.NoError(t, err)
	assert.Equal(t, "router:default", rec.WorkflowName)
	assert.Equal(t, "writing", rec.Nodes[0].Task, "the node carries the task kind for learning")
	assert.Equal(t, cost, rec.SpentNano)
	require.Len(t, rec.Nodes[0].Attempts, 1)
	assert.Equal(t, wantUsage, executor.UsageOf(rec.Nodes[0].Attempts[0].Usage))
	obs, err := e.l.Observations(time.Time{})
	require.NoError(t, err)
	require.Len(t, obs, 1, "the routed call is an observation for the learn package")
}

// TestRouterIsALangchaingoModel runs the router through langchaingo's own
// helpers and checks what reached the provider.
func TestRouterIsALangchaingoModel(t *testing.T) {
	e := newRTEnv(t, providertest.Script{"nano": {{Text: "Paris", Usage: u(20, 1)}}}, nil)
	var m llms.Model = e.router(t, executor.RouterOptions{})
	ctx := context.Background()

	out, err := llms.GenerateFromSinglePrompt(ctx, m, "What is the capital of France?")
	require.NoError(t, err)
	assert.Equal(t, "Paris", out)

	//lint:ignore SA1019 chains written against the older API still call Call; the Router must answer it
	out, err = m.Call(ctx, "And of Italy?")
	require.NoError(t, err)
	assert.Equal(t, "Paris", out, "the script repeats its last reply")

	var streamed []string
	resp, err := m.GenerateContent(ctx, []llms.MessageContent{
		llms.TextParts(llms.ChatMessageTypeSystem, "You answer in one word."),
		llms.TextParts(llms.ChatMessageTypeHuman, "Capital of France?"),
		llms.TextParts(llms.ChatMessageTypeAI, "Paris"),
		llms.TextParts(llms.ChatMessageTypeHuman, "Are you sure?"),
	}, llms.WithStreamingFunc(func(_ context.Context, chunk []byte) error { streamed = append(streamed, string(chunk)); return nil }))
	require.NoError(t, err)
	assert.Equal(t, []string{"Paris"}, streamed)
	assert.Equal(t, "Paris", resp.Choices[0].Content)
	calls := e.oa.CallsFor("nano")
	require.Len(t, calls, 3)
	assert.Equal(t, "What is the capital of France?", calls[0].Prompt)
	assert.Equal(t, "You answer in one word.", calls[2].System)
	assert.Equal(t, []providertest.Message{{Role: "user", Text: "Capital of France?"}, {Role: "assistant", Text: "Paris"},
		{Role: "user", Text: "Are you sure?"}}, calls[2].Messages, "a conversation goes out as its messages")
}

func TestRouterRefusesWhatItCannotDo(t *testing.T) {
	e := newRTEnvOK(t)
	r := e.router(t, executor.RouterOptions{Routes: []executor.Route{{Name: "strict", MinQuality: 0.99}}})
	ctx := context.Background()
	cases := []struct {
		name string
		msgs []llms.MessageContent
		opts []llms.CallOption
		want string
	}{
		{"image to text-only models", []llms.MessageContent{{Role: llms.ChatMessageTypeHuman, Parts: []llms.ContentPart{llms.ImageURLContent{URL: "http://x/y.png"}}}}, nil,
			"rejected 5 by modality (e.g. openai/nano: the call sends images, and the catalog does not list image input for this model)"},
		{"audio part", []llms.MessageContent{{Role: llms.ChatMessageTypeHuman, Parts: []llms.ContentPart{llms.BinaryContent{MIMEType: "audio/wav", Data: []byte("RIFF")}}}}, nil,
			"audio/wav data; the router sends text, images and tool calls only"},
		{"image from the assistant", []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "hi"),
			{Role: llms.ChatMessageTypeAI, Parts: []llms.ContentPart{llms.ImageURLContent{URL: "http://x/y.png"}}}}, nil, "images go in user messages only"},
		{"no messages", nil, nil, "no user message"},
		{"functions", human("hi"), []llms.CallOption{llms.WithFunctions([]llms.FunctionDefinition{{Name: "f"}})}, "give them as tools"},
		{"tools no model calls", human("hi"), []llms.CallOption{llms.WithTools([]llms.Tool{{Type: "function", Function: &llms.FunctionDefinition{Name: "f"}}})},
			"rejected 5 by tools (e.g. openai/nano: the call offers tools, and the catalog does not list tool calling for this model)"},
		{"unknown route", human("hi"), []llms.CallOption{executor.WithRoute("nope")}, `route "nope", which is not configured; routes: default, strict`},
		{"unknown task", human("hi"), []llms.CallOption{executor.WithTask("poetry")}, "unknown task kind"},
		{"task of the wrong type", human("hi"), []llms.CallOption{llms.WithMetadata(map[string]any{executor.MetaTask: 3})}, "is a int; give a string"},
		{"nothing qualifies", human("hi"), []llms.CallOption{executor.WithRoute("strict")}, "no catalog model qualifies; rejected 5 by quality"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.GenerateContent(ctx, tc.msgs, tc.opts...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	assert.Empty(t, e.oa.Calls())
	runs, err := e.l.Runs(0)
	require.NoError(t, err)
	assert.Empty(t, runs, "a call refused before routing leaves no run")
}

func TestNewRouterChecksRoutes(t *testing.T) {
	e := newRTEnvOK(t)
	cases := []struct {
		name string
		opts executor.RouterOptions
		want string
	}{
		{"bad glob", executor.RouterOptions{Routes: []executor.Route{{Name: "a", Models: []string{"openai/["}}}}, `routes[0] "a": models[0]: bad glob`},
		{"quality above 1", executor.RouterOptions{Routes: []executor.Route{{Name: "a", MinQuality: 1.5}}}, "min_quality: 1.5 is not between 0 and 1"},
		{"negative cap", executor.RouterOptions{Default: executor.Route{MaxCostUSD: -1}}, `default route "default": max_cost_usd`},
		{"unnamed", executor.RouterOptions{Routes: []executor.Route{{}}}, "routes[0]: name is empty"},
		{"duplicate", executor.RouterOptions{Routes: []executor.Route{{Name: "a"}, {Name: "a"}}}, `routes[1]: name "a" is used twice`},
		{"clash with default", executor.RouterOptions{Routes: []executor.Route{{Name: "default"}}}, `name "default" is used twice`},
		{"unknown task", executor.RouterOptions{Routes: []executor.Route{{Name: "a", Task: "poetry"}}}, `task: unknown task kind "poetry"`},
		{"bad validate", executor.RouterOptions{Routes: []executor.Route{{Name: "a", Validate: "output +"}}}, "validate: does not compile"},
		{"negative daily budget", executor.RouterOptions{DailyBudgetNano: -1}, "daily budget -1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := executor.NewRouter(e.cat, e.cfg, nil, tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestClassifyTask(t *testing.T) {
	cases := []struct{ prompt, want string }{
		{"Say hello.", "default"},
		{"Why is the sky blue?", "default"},
		{"Fix this:\n```\nx = 1\n```", "code"},
		{"def f(x):\n    return x", "code"},
		{"Write a function that reverses a list.", "code"},
		{"I got this traceback, what does it mean?", "code"},
		{"Classify this review as positive or negative: great tea.", "classification"},
		{"Label each sentence with its language.", "classification"},
		{"What is the sentiment of this tweet?", "classification"},
		{"Summarize the meeting notes below.", "summarization"},
		{"TL;DR please", "summarization"},
		{"Extract the invoice number from this email.", "extraction"},
		{strings.Repeat("word ", 100_001), "long_context"},
	}
	for _, tc := range cases {
		t.Run(tc.want+"/"+tc.prompt[:min(len(tc.prompt), 30)], func(t *testing.T) {
			assert.Equal(t, tc.want, executor.ClassifyTask(tc.prompt))
		})
	}
}

// TestRouterConcurrentBudget runs many calls at once against a daily budget
// that fits only some: the refused ones send nothing, the spend never
// exceeds the budget, and the ledger accounts for every call.
func TestRouterConcurrentBudget(t *testing.T) {
	e := newRTEnv(t, providertest.Script{"nano": {{Text: "hi", Usage: u(50, 5), Delay: 5 * time.Millisecond}}}, nil)
	r0 := e.router(t, executor.RouterOptions{})
	plan, err := r0.Plan(human("Say hello."))
	require.NoError(t, err)
	reserve := plan.Ladder[0].ReserveNano
	budget := 4*reserve + reserve/2
	r := e.router(t, executor.RouterOptions{DailyBudgetNano: budget, Default: executor.Route{Models: []string{"openai/nano"}}})

	const n = 16
	var okCount, refused atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := r.GenerateContent(context.Background(), human("Say hello."))
			var be *executor.ErrBudgetExhausted
			switch {
			case err == nil:
				okCount.Add(1)
			case errors.As(err, &be):
				refused.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(n), okCount.Load()+refused.Load())
	assert.GreaterOrEqual(t, okCount.Load(), int64(4), "four reservations always fit")
	assert.Equal(t, int(okCount.Load()), len(e.oa.Calls()), "refused calls are never sent")
	runs, err := e.l.Runs(0)
	require.NoError(t, err)
	var spent int64
	for _, s := range runs {
		spent += s.SpentNano
	}
	assert.Equal(t, okCount.Load()*7000, spent, "each answered call is billed 50 x $0.1/M + 5 x $0.4/M = 7000 nano-USD")
	assert.LessOrEqual(t, spent, budget)
	require.NoError(t, e.l.Check())
}
