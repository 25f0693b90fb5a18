package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/estimator/tokens"
	"github.com/costwise/costwise/executor/provider/providertest"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return string(b)
}

// A real OpenAI body: prompt_tokens includes the cached tokens and
// completion_tokens the reasoning tokens; both are split out.
func TestOpenAIRealBodyUsage(t *testing.T) {
	srv := providertest.NewOpenAIServer(providertest.Script{"o4-mini": {{RawBody: readTestdata(t, "openai_chat_completion.json")}}})
	defer srv.Close()
	cl := newTestClient(t, KindOpenAI, srv, nil)
	temp := 0.3
	resp, err := cl.Call(context.Background(), Request{Model: "o4-mini", System: "Be terse.", Prompt: "What is 6*7?", MaxTokens: 500, JSON: true, Temperature: &temp})
	require.NoError(t, err)
	assert.Equal(t, "The answer is 42.", resp.Text)
	assert.Equal(t, "stop", resp.FinishReason)
	assert.True(t, resp.UsageReported)
	assert.Equal(t, catalog.Usage{InputTokens: 1234 - 1024, CacheReadTokens: 1024, OutputTokens: 300 - 256, ReasoningTokens: 256}, resp.Usage)
	assert.Equal(t, "CW_TEST_KEY_A", resp.KeyEnv)

	calls := srv.Calls()
	require.Len(t, calls, 1)
	c := calls[0]
	assert.Equal(t, "o4-mini", c.Model)
	assert.Equal(t, keyA, c.Key)
	assert.Equal(t, "Be terse.", c.System)
	assert.Equal(t, "What is 6*7?", c.Prompt)
	assert.Equal(t, 500, c.MaxTokens)
	assert.True(t, c.JSON)
	assert.False(t, c.Stream)
}

func TestAnthropicRealBodyUsage(t *testing.T) {
	srv := providertest.NewAnthropicServer(providertest.Script{"claude-sonnet-4-5": {{RawBody: readTestdata(t, "anthropic_message.json")}}})
	defer srv.Close()
	cl := newTestClient(t, KindAnthropic, srv, nil)
	resp, err := cl.Call(context.Background(), Request{Model: "claude-sonnet-4-5", System: "sys", Prompt: "Hi", MaxTokens: 64})
	require.NoError(t, err)
	assert.Equal(t, "Hello! How can I help?", resp.Text)
	assert.Equal(t, "end_turn", resp.FinishReason)
	// Anthropic's input_tokens already excludes cache reads and writes.
	assert.Equal(t, catalog.Usage{InputTokens: 21, CacheWriteTokens: 1888, CacheReadTokens: 3072, OutputTokens: 12}, resp.Usage)
	c := srv.Calls()[0]
	assert.Equal(t, keyA, c.Key)
	assert.Equal(t, "2023-06-01", c.Header.Get("Anthropic-Version"))
	assert.Equal(t, "sys", c.System)
	assert.Equal(t, "Hi", c.Prompt)
	assert.Equal(t, 64, c.MaxTokens)
}

// Scripted usage goes through the wire format and back, JSON and SSE, for
// both protocols.
func TestUsageRoundTrip(t *testing.T) {
	oa := catalog.Usage{InputTokens: 700, CacheReadTokens: 300, OutputTokens: 40, ReasoningTokens: 60}
	an := catalog.Usage{InputTokens: 50, CacheReadTokens: 2000, CacheWriteTokens: 1000, OutputTokens: 120}
	text := "The quick brown fox jumps over the lazy dog — twice, ünïcödé."
	for _, tc := range []struct {
		name   string
		kind   Kind
		stream bool
		usage  catalog.Usage
		finish string
	}{
		{"openai json", KindOpenAI, false, oa, "stop"},
		{"openai sse", KindOpenAI, true, oa, "stop"},
		{"anthropic json", KindAnthropic, false, an, "end_turn"},
		{"anthropic sse", KindAnthropic, true, an, "end_turn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.usage
			script := providertest.Script{"m": {{Text: text, Usage: &u}}}
			srv := providertest.NewOpenAIServer(script)
			if tc.kind == KindAnthropic {
				srv = providertest.NewAnthropicServer(script)
			}
			defer srv.Close()
			cl := newTestClient(t, tc.kind, srv, nil)
			resp, err := cl.Call(context.Background(), Request{Model: "m", Prompt: "go", MaxTokens: 100, Stream: tc.stream})
			require.NoError(t, err)
			assert.Equal(t, text, resp.Text)
			assert.Equal(t, tc.usage, resp.Usage)
			assert.True(t, resp.UsageReported)
			assert.Equal(t, tc.finish, resp.FinishReason)
			c := srv.Calls()[0]
			assert.Equal(t, tc.stream, c.Stream)
			assert.Equal(t, tc.usage, c.Usage, "server records what it reported")
			if tc.kind == KindOpenAI && tc.stream {
				assert.True(t, c.IncludeUsage, "langchaingo asks for stream usage")
			}
		})
	}
}

// Without usage from the provider the client counts locally and says so.
func TestMissingUsageCountedLocally(t *testing.T) {
	for _, kind := range []Kind{KindOpenAI, KindAnthropic} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s stream=%v", kind, stream), func(t *testing.T) {
				script := providertest.Script{"m": {{Text: "forty two", NoUsage: true}}}
				srv := providertest.NewOpenAIServer(script)
				if kind == KindAnthropic {
					srv = providertest.NewAnthropicServer(script)
				}
				defer srv.Close()
				cl := newTestClient(t, kind, srv, nil)
				req := Request{Model: "m", System: "You answer questions.", Prompt: "What is six times seven?", MaxTokens: 10, Stream: stream}
				resp, err := cl.Call(context.Background(), req)
				require.NoError(t, err)
				assert.False(t, resp.UsageReported)
				in, err := tokens.CountChat(tokens.O200kBase, []tokens.Message{{Role: "system", Content: req.System}, {Role: "user", Content: req.Prompt}})
				require.NoError(t, err)
				out, err := tokens.Count(tokens.O200kBase, "forty two")
				require.NoError(t, err)
				assert.Equal(t, catalog.Usage{InputTokens: int64(in), OutputTokens: int64(out)}, resp.Usage)
				assert.False(t, srv.Calls()[0].UsageReported)
			})
		}
	}
}

func TestFaults(t *testing.T) {
	type want struct {
		kind       error
		status     int
		billed     bool
		retryAfter time.Duration
		retryable  bool
		msg        string // substring of the error message
	}
	for _, tc := range []struct {
		name    string
		kind    Kind
		reply   providertest.Reply
		stream  bool
		timeout time.Duration
		want    want
	}{
		{"openai 429 retry-after", KindOpenAI, providertest.Reply{Status: 429, RetryAfter: "7"}, false, 0,
			want{ErrRateLimited, 429, false, 7 * time.Second, true, "rate_limit_exceeded"}},
		{"openai 429 insufficient quota", KindOpenAI, providertest.Reply{Status: 429, ErrorType: "insufficient_quota", ErrorCode: "insufficient_quota", ErrorMessage: "You exceeded your current quota"}, false, 0,
			want{ErrAuth, 429, false, 0, false, "quota"}},
		{"openai 500", KindOpenAI, providertest.Reply{Status: 500}, false, 0,
			want{ErrTransient, 500, false, 0, true, "server had an error"}},
		{"openai 503 retry-after", KindOpenAI, providertest.Reply{Status: 503, RetryAfter: "3"}, false, 0,
			want{ErrTransient, 503, false, 3 * time.Second, true, ""}},
		{"openai 504 gateway", KindOpenAI, providertest.Reply{Status: 504}, false, 0,
			want{ErrTransient, 504, true, 0, true, ""}},
		{"openai hang past timeout", KindOpenAI, providertest.Reply{Hang: true}, false, 300 * time.Millisecond,
			want{ErrTimeout, 0, true, 0, true, "timeout"}},
		{"openai hang past timeout sse", KindOpenAI, providertest.Reply{Hang: true}, true, 300 * time.Millisecond,
			want{ErrTimeout, 0, true, 0, true, "timeout"}},
		{"openai malformed json", KindOpenAI, providertest.Reply{Malformed: true}, false, 0,
			want{ErrTransient, 0, true, 0, true, "malformed"}},
		{"openai empty choices", KindOpenAI, providertest.Reply{EmptyChoices: true}, false, 0,
			want{ErrTransient, 0, true, 0, true, "empty"}},
		{"openai 401", KindOpenAI, providertest.Reply{Status: 401}, false, 0,
			want{ErrAuth, 401, false, 0, false, "invalid_api_key"}},
		{"openai 403", KindOpenAI, providertest.Reply{Status: 403}, false, 0,
			want{ErrAuth, 403, false, 0, false, ""}},
		{"openai 400 context length", KindOpenAI, providertest.Reply{Status: 400, ErrorCode: "context_length_exceeded",
			ErrorMessage: "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens. Please reduce the length of the messages."}, false, 0,
			want{ErrContextLength, 400, false, 0, false, "context_length_exceeded"}},
		{"openai 400 other", KindOpenAI, providertest.Reply{Status: 400, ErrorMessage: "Invalid value for 'temperature'"}, false, 0,
			want{ErrInvalidRequest, 400, false, 0, false, "temperature"}},
		{"openai connection reset", KindOpenAI, providertest.Reply{Reset: true}, false, 0,
			want{ErrTransient, 0, true, 0, true, ""}},
		{"openai stream cut", KindOpenAI, providertest.Reply{Text: "a long answer that will be cut", StreamCut: 2}, true, 0,
			want{ErrTransient, 0, true, 0, true, ""}},
		{"anthropic 429", KindAnthropic, providertest.Reply{Status: 429, RetryAfter: "12"}, false, 0,
			want{ErrRateLimited, 429, false, 12 * time.Second, true, "Too Many Requests"}},
		{"anthropic 529 overloaded", KindAnthropic, providertest.Reply{Status: 529, ErrorMessage: "Overloaded"}, false, 0,
			want{ErrTransient, 529, false, 0, true, "Overloaded"}},
		{"anthropic prompt too long", KindAnthropic, providertest.Reply{Status: 400, ErrorMessage: "prompt is too long: 208310 tokens > 200000 maximum"}, false, 0,
			want{ErrContextLength, 400, false, 0, false, "prompt is too long"}},
		{"anthropic 401", KindAnthropic, providertest.Reply{Status: 401, ErrorMessage: "invalid x-api-key"}, false, 0,
			want{ErrAuth, 401, false, 0, false, "invalid x-api-key"}},
		{"anthropic hang", KindAnthropic, providertest.Reply{Hang: true}, false, 300 * time.Millisecond,
			want{ErrTimeout, 0, true, 0, true, ""}},
		{"anthropic malformed", KindAnthropic, providertest.Reply{Malformed: true}, false, 0,
			want{ErrTransient, 0, true, 0, true, ""}},
		{"anthropic empty content", KindAnthropic, providertest.Reply{EmptyChoices: true}, false, 0,
			want{ErrTransient, 0, true, 0, true, ""}},
		{"anthropic stream cut", KindAnthropic, providertest.Reply{Text: "a long answer that will be cut", StreamCut: 2}, true, 0,
			want{ErrTransient, 0, true, 0, true, ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := providertest.Script{"m": {tc.reply}}
			srv := providertest.NewOpenAIServer(script)
			if tc.kind == KindAnthropic {
				srv = providertest.NewAnthropicServer(script)
			}
			defer srv.Close()
			cl := newTestClient(t, tc.kind, srv, func(pc *ProviderConfig) {
				if tc.timeout > 0 {
					pc.Timeout = tc.timeout
				}
			})
			start := time.Now()
			e := callErr(t, cl, Request{Model: "m", Prompt: "hello", MaxTokens: 50, Stream: tc.stream})
			assert.Less(t, time.Since(start), 4*time.Second)
			assert.ErrorIs(t, e, tc.want.kind)
			assert.Equal(t, tc.want.status, e.Status, "status")
			assert.Equal(t, tc.want.billed, e.MayHaveBilled, "MayHaveBilled")
			assert.Equal(t, tc.want.retryAfter, RetryAfter(e), "RetryAfter")
			assert.Equal(t, tc.want.retryable, Retryable(e), "Retryable")
			assert.Equal(t, tc.want.billed, MayHaveBilled(e))
			assert.Equal(t, string(tc.kind), e.Provider)
			assert.Equal(t, "m", e.Model)
			assert.Contains(t, e.Error(), tc.want.msg)
			assert.NotContains(t, e.Error(), keyA)
			assert.Len(t, srv.Calls(), 1, "no hidden retries on one key")
		})
	}
}

func TestUnknownModelAndRefused(t *testing.T) {
	srv := providertest.NewOpenAIServer(providertest.Script{})
	cl := newTestClient(t, KindOpenAI, srv, nil)
	e := callErr(t, cl, Request{Model: "gpt-nope", Prompt: "x"})
	assert.ErrorIs(t, e, ErrInvalidRequest)
	assert.Equal(t, http.StatusNotFound, e.Status)
	assert.Contains(t, e.Error(), "model_not_found")

	srv.Close() // now nothing listens there
	// A fresh client has no kept-alive connection to write into.
	cl = newTestClient(t, KindOpenAI, srv, nil)
	e = callErr(t, cl, Request{Model: "gpt-nope", Prompt: "x"})
	assert.ErrorIs(t, e, ErrTransient)
	assert.False(t, e.MayHaveBilled, "connection refused: nothing was sent")
	assert.Zero(t, e.Status)
}

func TestCallerCancellation(t *testing.T) {
	srv := providertest.NewOpenAIServer(providertest.Script{"m": {{Hang: true}}})
	defer srv.Close()
	cl := newTestClient(t, KindOpenAI, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := cl.Call(ctx, Request{Model: "m", Prompt: "x"})
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.False(t, Retryable(err))
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Nil(t, e.Kind)
	assert.True(t, e.MayHaveBilled, "the request had been sent")
}

func TestAuthErrorNeverShowsKey(t *testing.T) {
	// A server that echoes the whole key back in its error message.
	srv := providertest.NewOpenAIServer(providertest.Script{"m": {{Status: 401, ErrorCode: "invalid_api_key", ErrorMessage: "Incorrect API key provided: " + keyA}}})
	defer srv.Close()
	cl := newTestClient(t, KindOpenAI, srv, nil)
	e := callErr(t, cl, Request{Model: "m", Prompt: "x"})
	assert.ErrorIs(t, e, ErrAuth)
	assert.NotContains(t, e.Error(), keyA)
	assert.NotContains(t, fmt.Sprintf("%+v %#v", e, e.Err), keyA)
	assert.Contains(t, e.Error(), "[redacted]")
	// The retired key is not tried again.
	e = callErr(t, cl, Request{Model: "m", Prompt: "x"})
	assert.ErrorIs(t, e, ErrAuth)
	assert.Len(t, srv.Calls(), 1)
	assert.NotContains(t, e.Error(), keyA)
}

func TestMissingKeyEnv(t *testing.T) {
	t.Setenv("CW_TEST_UNSET_KEY", "")
	cfg := &Config{Path: "costwise.toml", Providers: map[string]ProviderConfig{
		"openai": {Name: "openai", Kind: KindOpenAI, APIKeyEnv: []string{"CW_TEST_UNSET_KEY"}},
	}}
	_, err := cfg.Client("openai")
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrAuth)
	assert.Contains(t, err.Error(), `"openai"`)
	assert.Contains(t, err.Error(), "CW_TEST_UNSET_KEY")

	_, err = cfg.Client("mistral")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "[providers.mistral]")

	// The variable is read at call time: unset after construction fails
	// the call with the same message.
	srv := providertest.NewOpenAIServer(providertest.Script{"m": {{}}})
	defer srv.Close()
	cl := newTestClient(t, KindOpenAI, srv, nil)
	require.NoError(t, os.Unsetenv("CW_TEST_KEY_A"))
	e := callErr(t, cl, Request{Model: "m", Prompt: "x"})
	assert.ErrorIs(t, e, ErrAuth)
	assert.Contains(t, e.Error(), "CW_TEST_KEY_A is not set")
	assert.Empty(t, srv.Calls())
}

func TestKeyChangeRebuildsClient(t *testing.T) {
	srv := providertest.NewOpenAIServer(providertest.Script{"m": {{}}})
	defer srv.Close()
	cl := newTestClient(t, KindOpenAI, srv, nil)
	_, err := cl.Call(context.Background(), Request{Model: "m", Prompt: "x"})
	require.NoError(t, err)
	t.Setenv("CW_TEST_KEY_A", keyB)
	_, err = cl.Call(context.Background(), Request{Model: "m", Prompt: "x"})
	require.NoError(t, err)
	calls := srv.Calls()
	assert.Equal(t, keyA, calls[0].Key)
	assert.Equal(t, keyB, calls[1].Key)
}

func TestKeyRotation(t *testing.T) {
	envs := []string{"CW_TEST_KEY_A", "CW_TEST_KEY_B"}
	t.Run("429 moves to the next key", func(t *testing.T) {
		srv := providertest.NewOpenAIServer(providertest.Script{"m": {{Status: 429, RetryAfter: "60"}, {Text: "ok"}}})
		defer srv.Close()
		cl := newTestClient(t, KindOpenAI, srv, nil, envs...)
		resp, err := cl.Call(context.Background(), Request{Model: "m", Prompt: "x"})
		require.NoError(t, err)
		assert.Equal(t, "CW_TEST_KEY_B", resp.KeyEnv)
		calls := srv.Calls()
		require.Len(t, calls, 2)
		assert.Equal(t, keyA, calls[0].Key)
		assert.Equal(t, keyB, calls[1].Key)
		// Key A rests for 60 s: the next calls all use B.
		for range 3 {
			resp, err = cl.Call(context.Background(), Request{Model: "m", Prompt: "x"})
			require.NoError(t, err)
			assert.Equal(t, "CW_TEST_KEY_B", resp.KeyEnv)
		}
	})
	t.Run("all keys resting", func(t *testing.T) {
		srv := providertest.NewOpenAIServer(providertest.Script{"m": {{Status: 429, RetryAfter: "60"}, {Status: 429, RetryAfter: "5"}}})
		defer srv.Close()
		cl := newTestClient(t, KindOpenAI, srv, nil, envs...)
		e := callErr(t, cl, Request{Model: "m", Prompt: "x"})
		assert.ErrorIs(t, e, ErrRateLimited)
		assert.False(t, e.MayHaveBilled)
		// The shortest rest: key B's 5 s, not key A's 60 s.
		assert.Greater(t, e.RetryAfter, 4*time.Second)
		assert.LessOrEqual(t, e.RetryAfter, 5*time.Second)
		require.Len(t, srv.Calls(), 2)
		// While both rest nothing is sent.
		e = callErr(t, cl, Request{Model: "m", Prompt: "x"})
		assert.ErrorIs(t, e, ErrRateLimited)
		assert.Contains(t, e.Error(), "all 2 keys")
		assert.Greater(t, e.RetryAfter, 3*time.Second)
		assert.LessOrEqual(t, e.RetryAfter, 5*time.Second)
		assert.Len(t, srv.Calls(), 2)
	})
	t.Run("429 without retry-after rests 30s", func(t *testing.T) {
		srv := providertest.NewOpenAIServer(providertest.Script{"m": {{Status: 429}}})
		defer srv.Close()
		cl := newTestClient(t, KindOpenAI, srv, nil)
		e := callErr(t, cl, Request{Model: "m", Prompt: "x"})
		assert.ErrorIs(t, e, ErrRateLimited)
		assert.Greater(t, e.RetryAfter, 29*time.Second)
		assert.LessOrEqual(t, e.RetryAfter, defaultRest)
	})
	t.Run("401 retires a key", func(t *testing.T) {
		srv := providertest.NewAnthropicServer(providertest.Script{"m": {{Text: "fine"}}})
		defer srv.Close()
		srv.AcceptKeys(keyB)
		cl := newTestClient(t, KindAnthropic, srv, nil, envs...)
		for range 4 {
			resp, err := cl.Call(context.Background(), Request{Model: "m", Prompt: "x"})
			require.NoError(t, err)
			assert.Equal(t, "CW_TEST_KEY_B", resp.KeyEnv)
		}
		calls := srv.Calls()
		require.Len(t, calls, 5, "key A tried once, then retired")
		assert.Equal(t, keyA, calls[0].Key)
		for _, c := range calls[1:] {
			assert.Equal(t, keyB, c.Key)
		}
	})
	t.Run("all keys rejected", func(t *testing.T) {
		srv := providertest.NewOpenAIServer(providertest.Script{"m": {{}}})
		defer srv.Close()
		srv.AcceptKeys("sk-some-other-key-0000000000")
		cl := newTestClient(t, KindOpenAI, srv, nil, envs...)
		e := callErr(t, cl, Request{Model: "m", Prompt: "x"})
		assert.ErrorIs(t, e, ErrAuth)
		assert.Equal(t, 401, e.Status)
		e = callErr(t, cl, Request{Model: "m", Prompt: "x"})
		assert.ErrorIs(t, e, ErrAuth)
		assert.Contains(t, e.Error(), "every key")
		assert.Len(t, srv.Calls(), 2)
		for _, k := range []string{keyA, keyB} {
			assert.NotContains(t, e.Error(), k)
		}
	})
	t.Run("round robin", func(t *testing.T) {
		srv := providertest.NewOpenAIServer(providertest.Script{"m": {{}}})
		defer srv.Close()
		cl := newTestClient(t, KindOpenAI, srv, nil, envs...)
		for range 4 {
			_, err := cl.Call(context.Background(), Request{Model: "m", Prompt: "x"})
			require.NoError(t, err)
		}
		var keys []string
		for _, c := range srv.Calls() {
			keys = append(keys, c.Key)
		}
		assert.Equal(t, []string{keyA, keyB, keyA, keyB}, keys)
	})
}

func TestConcurrentCallsThroughConfig(t *testing.T) {
	srv := providertest.NewOpenAIServer(providertest.Script{"m": {{Text: "ok", Usage: &catalog.Usage{InputTokens: 3, OutputTokens: 1}}}})
	defer srv.Close()
	t.Setenv("CW_TEST_KEY_A", keyA)
	t.Setenv("CW_TEST_KEY_B", keyB)
	cfg, err := ParseConfig("costwise.toml", []byte(fmt.Sprintf(`
[providers.openai]
api_key_env = ["CW_TEST_KEY_A", "CW_TEST_KEY_B"]
base_url = %q
rpm = 6000
tpm = 1000000
`, srv.BaseURL())))
	require.NoError(t, err)
	defer cfg.Close()
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := cfg.Client("openai")
			if err != nil {
				errs <- err
				return
			}
			resp, err := cl.Call(context.Background(), Request{Model: "m", Prompt: fmt.Sprint("q", i), Stream: i%2 == 0})
			if err == nil && resp.Usage.InputTokens != 3 {
				err = fmt.Errorf("usage %+v", resp.Usage)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, srv.Calls(), n)
	a, _ := cfg.Client("openai")
	b, _ := cfg.Client("openai")
	assert.Same(t, a, b, "clients are cached")
}

func TestRequestValidation(t *testing.T) {
	srv := providertest.NewOpenAIServer(providertest.Script{"m": {{}}})
	defer srv.Close()
	cl := newTestClient(t, KindOpenAI, srv, nil)
	e := callErr(t, cl, Request{Prompt: "x"})
	assert.ErrorIs(t, e, ErrInvalidRequest)
	e = callErr(t, cl, Request{Model: "m", Prompt: "x", MaxTokens: -1})
	assert.ErrorIs(t, e, ErrInvalidRequest)
	assert.Empty(t, srv.Calls())
}

func TestClientRateLimitWaitsAndHonoursContext(t *testing.T) {
	srv := providertest.NewOpenAIServer(providertest.Script{"m": {{}}})
	defer srv.Close()
	cl := newTestClient(t, KindOpenAI, srv, func(pc *ProviderConfig) { pc.RPM = 1 })
	_, err := cl.Call(context.Background(), Request{Model: "m", Prompt: "x"})
	require.NoError(t, err)
	// The bucket is empty for the next minute.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = cl.Call(ctx, Request{Model: "m", Prompt: "x"})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrTimeout)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, MayHaveBilled(err))
	assert.Len(t, srv.Calls(), 1)
}

func TestErrorFormatting(t *testing.T) {
	e := &Error{Provider: "openai", Model: "gpt-4o", Kind: ErrRateLimited, Status: 429, RetryAfter: 2 * time.Second, Err: errors.New("slow down")}
	assert.Equal(t, "openai gpt-4o: rate limited (HTTP 429, retry after 2s): slow down", e.Error())
	assert.True(t, errors.Is(e, ErrRateLimited))
	assert.False(t, errors.Is(e, ErrTransient))
	wrapped := fmt.Errorf("node summarize: %w", e)
	assert.True(t, Retryable(wrapped))
	assert.Equal(t, 2*time.Second, RetryAfter(wrapped))
	assert.False(t, Retryable(errors.New("other")))
	assert.Zero(t, RetryAfter(errors.New("other")))
	e2 := &Error{Provider: "anthropic", Kind: ErrTransient, MayHaveBilled: true, Err: errors.New("cut")}
	assert.Equal(t, "anthropic: transient provider failure (may have been billed): cut", e2.Error())
	assert.True(t, strings.HasPrefix((&Error{Provider: "x", Err: context.Canceled}).Error(), "x: call abandoned"))
}
