package provider

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// wireKind is a provider kind with its fake server.
type wireKind struct {
	name string
	kind Kind
	new  func(providertest.Script) *providertest.Server
	// base is the base_url the kind's client takes for srv.
	base func(srv *providertest.Server) string
	// reported is what the client should read back for usage u.
	reported func(u catalog.Usage) catalog.Usage
}

var wireKinds = []wireKind{
	{name: "openai", kind: KindOpenAI, new: providertest.NewOpenAIServer,
		base: func(s *providertest.Server) string { return s.BaseURL() }, reported: same},
	{name: "anthropic", kind: KindAnthropic, new: providertest.NewAnthropicServer,
		base: func(s *providertest.Server) string { return s.BaseURL() }, reported: same},
	{name: "ollama", kind: KindOllama, new: providertest.NewOllamaServer,
		base: func(s *providertest.Server) string { return s.URL },
		// Ollama reports two counts: prompt_eval_count and eval_count.
		reported: func(u catalog.Usage) catalog.Usage {
			return catalog.Usage{InputTokens: u.InputTokens + u.CacheReadTokens, OutputTokens: u.OutputTokens}
		}},
	{name: "googleai", kind: KindGoogleAI, new: providertest.NewGeminiServer,
		base: func(s *providertest.Server) string { return s.URL }, reported: same},
}

func same(u catalog.Usage) catalog.Usage { return u }

// newWireClient builds a client of k against srv; keyless for Ollama.
func newWireClient(t *testing.T, k wireKind, srv *providertest.Server) *client {
	t.Helper()
	cl := newTestClient(t, k.kind, srv, func(pc *ProviderConfig) {
		pc.BaseURL = k.base(srv)
		if k.kind == KindOllama {
			pc.APIKeyEnv = nil
		}
	})
	t.Cleanup(func() {
		for _, s := range cl.ring.slots {
			_ = s.close()
		}
	})
	return cl
}

// TestStreamWire streams an answer through each kind's real langchaingo
// client: OnChunk sees every piece in order while the upstream is still
// sending, and the usage the wire reported comes back as disjoint counts.
func TestStreamWire(t *testing.T) {
	const text = "alpha beta gamma delta epsilon" // 6 chunks of at most 5 bytes
	const delay = 40 * time.Millisecond
	usage := catalog.Usage{InputTokens: 1200, CacheReadTokens: 800, OutputTokens: 37}
	for _, k := range wireKinds {
		t.Run(k.name, func(t *testing.T) {
			srv := k.new(providertest.Script{"m-1": {{Text: text, Usage: &usage, ChunkDelay: delay}}})
			defer srv.Close()
			cl := newWireClient(t, k, srv)
			var got []string
			var firstAt time.Time
			start := time.Now()
			resp, err := cl.Call(context.Background(), Request{Model: "m-1", System: "Be brief.", Prompt: "Greek letters?", MaxTokens: 64, Stream: true,
				OnChunk: func(_ context.Context, chunk []byte) error {
					if firstAt.IsZero() {
						firstAt = time.Now()
					}
					got = append(got, string(chunk))
					return nil
				}})
			end := time.Now()
			require.NoError(t, err)
			assert.Equal(t, text, resp.Text)
			assert.Equal(t, []string{"alpha", " beta", " gamm", "a del", "ta ep", "silon"}, got, "chunks in the order sent")
			assert.Less(t, firstAt.Sub(start), end.Sub(start)-3*delay, "the first chunk arrived only near the end")
			assert.True(t, resp.UsageReported)
			assert.Equal(t, k.reported(usage), resp.Usage)

			calls := srv.Calls()
			require.Len(t, calls, 1)
			assert.True(t, calls[0].Stream)
			assert.Equal(t, "Be brief.", calls[0].System)
			assert.Equal(t, "Greek letters?", calls[0].Prompt)
			assert.Equal(t, 64, calls[0].MaxTokens)
		})
	}
}

// TestStreamWireUnstreamed: a call without Stream gets the same usage.
// With a system prompt Gemini's Go client asks even these as a stream
// (streamGenerateContent), whose last chunk's usage counts.
func TestStreamWireUnstreamed(t *testing.T) {
	usage := catalog.Usage{InputTokens: 300, CacheReadTokens: 100, OutputTokens: 21}
	for _, k := range wireKinds {
		t.Run(k.name, func(t *testing.T) {
			srv := k.new(providertest.Script{"m-1": {{Text: "one two three four five", Usage: &usage}}})
			defer srv.Close()
			cl := newWireClient(t, k, srv)
			resp, err := cl.Call(context.Background(), Request{Model: "m-1", System: "Count.", Prompt: "count", MaxTokens: 16})
			require.NoError(t, err)
			assert.Equal(t, "one two three four five", resp.Text)
			assert.True(t, resp.UsageReported)
			assert.Equal(t, k.reported(usage), resp.Usage)
			calls := srv.Calls()
			require.Len(t, calls, 1)
			assert.Equal(t, "Count.", calls[0].System)
		})
	}
}

// TestStreamWireFaults: a stream cut in the middle, a failing OnChunk,
// and the services' error answers, through each kind's client.
func TestStreamWireFaults(t *testing.T) {
	t.Run("cut mid-stream", func(t *testing.T) {
		for _, k := range wireKinds {
			t.Run(k.name, func(t *testing.T) {
				srv := k.new(providertest.Script{"m-1": {{Text: "a long enough answer to cut", StreamCut: 2}}})
				defer srv.Close()
				cl := newWireClient(t, k, srv)
				var got []string
				e := callErr(t, cl, Request{Model: "m-1", Prompt: "go", Stream: true,
					OnChunk: func(_ context.Context, c []byte) error { got = append(got, string(c)); return nil }})
				assert.ErrorIs(t, e, ErrTransient, e.Error())
				assert.True(t, Retryable(e))
				assert.True(t, e.MayHaveBilled, "the provider ran the model before the cut")
				assert.Equal(t, "a long eno", strings.Join(got, ""), "the two chunks before the cut were passed on")
			})
		}
	})
	t.Run("OnChunk error aborts", func(t *testing.T) {
		for _, k := range wireKinds {
			t.Run(k.name, func(t *testing.T) {
				srv := k.new(providertest.Script{"m-1": {{Text: "a long enough answer"}}})
				defer srv.Close()
				cl := newWireClient(t, k, srv)
				stop := errors.New("client went away")
				n := 0
				_, err := cl.Call(context.Background(), Request{Model: "m-1", Prompt: "go", Stream: true,
					OnChunk: func(context.Context, []byte) error { n++; return stop }})
				require.Error(t, err)
				assert.Equal(t, 1, n, "no chunk after the error")
			})
		}
	})
	for _, tc := range []struct {
		name  string
		reply providertest.Reply
		want  error
		retry time.Duration
	}{
		{"rate limited", providertest.Reply{Status: 429, RetryAfter: "3"}, ErrRateLimited, 3 * time.Second},
		{"overloaded", providertest.Reply{Status: 503}, ErrTransient, 0},
		{"bad request", providertest.Reply{Status: 400, ErrorMessage: "bad option"}, ErrInvalidRequest, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range wireKinds[2:] {
				t.Run(k.name, func(t *testing.T) {
					srv := k.new(providertest.Script{"m-1": {tc.reply}})
					defer srv.Close()
					cl := newWireClient(t, k, srv)
					e := callErr(t, cl, Request{Model: "m-1", Prompt: "go", Stream: true})
					assert.ErrorIs(t, e, tc.want, e.Error())
					assert.Equal(t, tc.reply.Status, e.Status)
					assert.Equal(t, tc.retry, e.RetryAfter)
					if tc.reply.ErrorMessage != "" {
						assert.Contains(t, e.Error(), tc.reply.ErrorMessage)
					}
				})
			}
		})
	}
	t.Run("unknown model", func(t *testing.T) {
		for _, k := range wireKinds[2:] {
			t.Run(k.name, func(t *testing.T) {
				srv := k.new(providertest.Script{})
				defer srv.Close()
				cl := newWireClient(t, k, srv)
				e := callErr(t, cl, Request{Model: "nope", Prompt: "go", Stream: true})
				assert.ErrorIs(t, e, ErrInvalidRequest)
				assert.Equal(t, 404, e.Status)
				assert.Contains(t, e.Error(), "nope")
			})
		}
	})
}

func TestGeminiWireUsage(t *testing.T) {
	const u1 = `"usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 2, "totalTokenCount": 52}`
	const u2 = `"usageMetadata": {"promptTokenCount": 50, "cachedContentTokenCount": 30, "candidatesTokenCount": 9, "thoughtsTokenCount": 40, "totalTokenCount": 99}`
	want := catalog.Usage{InputTokens: 20, CacheReadTokens: 30, OutputTokens: 9, ReasoningTokens: 40}
	for _, tc := range []struct {
		name, body string
		want       catalog.Usage
		ok         bool
	}{
		{"object", `{"candidates": [], ` + u2 + `}`, want, true},
		{"array, last usage wins", "[{" + u1 + "}\n,\r\n{" + u2 + "}]", want, true},
		{"array, usage on the first chunk only", "[{" + u1 + "},{\"candidates\": []}]", catalog.Usage{InputTokens: 50, OutputTokens: 2}, true},
		{"server-sent events", "data: {" + u1 + "}\r\n\r\ndata: {" + u2 + "}\r\n\r\n", want, true},
		{"cached above prompt is capped", `{"usageMetadata": {"promptTokenCount": 5, "cachedContentTokenCount": 9}}`, catalog.Usage{CacheReadTokens: 5}, true},
		{"negative counts", `{"usageMetadata": {"promptTokenCount": -5, "candidatesTokenCount": -1}}`, catalog.Usage{}, false},
		{"no usage", `[{"candidates": []}]`, catalog.Usage{}, false},
		{"cut array", "[{" + u1 + "},{", catalog.Usage{}, false},
		{"empty", "", catalog.Usage{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, ok := geminiWireUsage([]byte(tc.body))
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, u)
		})
	}
}

func FuzzGeminiWireUsage(f *testing.F) {
	for _, s := range []string{`{"usageMetadata": {"promptTokenCount": 5}}`, `[{"usageMetadata": {"candidatesTokenCount": 1e30}}]`,
		"data: {\"usageMetadata\": {\"thoughtsTokenCount\": 3}}\n\n", "[", "data:", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		u, ok := geminiWireUsage(body)
		require.GreaterOrEqual(t, u.InputTokens, int64(0))
		require.GreaterOrEqual(t, u.CacheReadTokens, int64(0))
		require.GreaterOrEqual(t, u.OutputTokens, int64(0))
		require.GreaterOrEqual(t, u.ReasoningTokens, int64(0))
		require.Equal(t, ok, u.PromptTokens() > 0 || u.OutputTokens+u.ReasoningTokens > 0)
	})
}

// Google refuses a wrong key with 400 INVALID_ARGUMENT "API key not valid":
// through the real client it is an auth failure, so the key rests like one
// refused with 401, and the key never appears in the error.
func TestGeminiWrongKeyIsAuth(t *testing.T) {
	k := wireKinds[3]
	srv := k.new(providertest.Script{"gemini-x": {{Text: "hi"}}})
	defer srv.Close()
	srv.AcceptKeys("some-other-key")
	cl := newWireClient(t, k, srv)
	e := callErr(t, cl, Request{Model: "gemini-x", Prompt: "go"})
	assert.ErrorIs(t, e, ErrAuth)
	assert.NotContains(t, e.Error(), keyA)
}
