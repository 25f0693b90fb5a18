package provider

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{"seconds", http.Header{"Retry-After": {"7"}}, 7 * time.Second},
		{"fractional", http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{"http date", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		{"past date", http.Header{"Retry-After": {now.Add(-time.Minute).Format(http.TimeFormat)}}, 0},
		{"ms header wins", http.Header{"Retry-After": {"7"}, "Retry-After-Ms": {"250"}}, 250 * time.Millisecond},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0},
		{"negative", http.Header{"Retry-After": {"-3"}}, 0},
		{"capped", http.Header{"Retry-After": {"99999999"}}, maxRetryAfter},
		{"none", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, parseRetryAfter(tc.h, now))
		})
	}
}

func TestParseErrorBody(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       apiError
		ctxLen     bool
	}{
		{"openai", `{"error": {"message": "This model's maximum context length is 8192 tokens.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}`,
			apiError{Message: "This model's maximum context length is 8192 tokens.", Type: "invalid_request_error", Code: "context_length_exceeded"}, true},
		{"anthropic", `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}`,
			apiError{Message: "prompt is too long: 208310 tokens > 200000 maximum", Type: "invalid_request_error"}, true},
		{"google", `{"error": {"code": 400, "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}`,
			apiError{Message: "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", Type: "INVALID_ARGUMENT", Code: "400"}, true},
		{"ollama", `{"error":"model \"llama9\" not found, try pulling it first"}`, apiError{Message: `model "llama9" not found, try pulling it first`}, false},
		{"not json", `<html>502 Bad Gateway</html>`, apiError{}, false},
		{"null code", `{"error": {"message": "Rate limit reached", "type": "requests", "code": null}}`, apiError{Message: "Rate limit reached", Type: "requests"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseErrorBody([]byte(tc.body))
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.ctxLen, isContextLength(got))
		})
	}
}

func TestStatusKind(t *testing.T) {
	for _, tc := range []struct {
		status int
		ae     apiError
		kind   error
		billed bool
	}{
		{429, apiError{}, ErrRateLimited, false},
		{429, apiError{Code: "insufficient_quota"}, ErrAuth, false},
		{401, apiError{}, ErrAuth, false},
		{403, apiError{}, ErrAuth, false},
		{408, apiError{}, ErrTimeout, false},
		{413, apiError{}, ErrContextLength, false},
		{400, apiError{Code: "context_length_exceeded"}, ErrContextLength, false},
		{400, apiError{Message: "bad temperature"}, ErrInvalidRequest, false},
		{400, apiError{Message: "API key not valid. Please pass a valid API key.", Type: "INVALID_ARGUMENT", Code: "400"}, ErrAuth, false},
		{404, apiError{}, ErrInvalidRequest, false},
		{422, apiError{Type: "rate_limit_error"}, ErrRateLimited, false},
		{500, apiError{}, ErrTransient, false},
		{502, apiError{}, ErrTransient, true},
		{504, apiError{}, ErrTransient, true},
		{529, apiError{}, ErrTransient, false},
	} {
		kind, billed := statusKind(tc.status, tc.ae)
		assert.Equal(t, tc.kind, kind, "status %d %+v", tc.status, tc.ae)
		assert.Equal(t, tc.billed, billed, "status %d", tc.status)
	}
}

func TestRedact(t *testing.T) {
	err := redact(assertErr("bad key sk-123456789 and again sk-123456789"), "sk-123456789")
	assert.Equal(t, "bad key [redacted] and again [redacted]", err.Error())
	orig := assertErr("no secret here")
	assert.Same(t, orig, redact(orig, "sk-123456789"))
	assert.Nil(t, redact(nil, "x"))
}

type testErr struct{ s string }

func (e *testErr) Error() string { return e.s }

func assertErr(s string) error { return &testErr{s} }

// FuzzErrorBody feeds arbitrary bodies and headers to the error parsers:
// they must not panic, and classification must be total.
func FuzzErrorBody(f *testing.F) {
	f.Add(400, []byte(`{"error": {"code": "context_length_exceeded", "message": "too long"}}`), "5")
	f.Add(529, []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(429, []byte(`{"error": "x"}`), "1e400")
	f.Fuzz(func(t *testing.T, status int, body []byte, retry string) {
		ae := parseErrorBody(body)
		if status < 400 || status > 599 {
			status = 400 + (status%200+200)%200
		}
		kind, _ := statusKind(status, ae)
		if kind == nil {
			t.Fatalf("no kind for %d", status)
		}
		d := parseRetryAfter(http.Header{"Retry-After": {retry}, "Retry-After-Ms": {strings.TrimSpace(retry)}}, time.Now())
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("retry after %v out of range for %q", d, retry)
		}
	})
}
