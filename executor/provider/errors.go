package provider

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors say what the executor may do after a failed call. Every
// error returned by [Client.Call] is an [*Error] whose Kind is one of these
// (or nil when the caller's own context ended); test with errors.Is.
var (
	// ErrRateLimited: the provider (HTTP 429) or every configured key is
	// resting. Retry after [RetryAfter]; nothing was billed.
	ErrRateLimited = errors.New("rate limited")
	// ErrTransient: 5xx, connection reset or refused, malformed, empty or
	// truncated response. Retrying the same call may succeed; check
	// Error.MayHaveBilled before counting the spend as zero.
	ErrTransient = errors.New("transient provider failure")
	// ErrTimeout: the call exceeded the provider's timeout_s (or HTTP 408).
	ErrTimeout = errors.New("timed out")
	// ErrContextLength: the prompt (plus max tokens) exceeds the model's
	// context window. Retrying the same model is pointless; use a model with
	// a larger window or a shorter prompt.
	ErrContextLength = errors.New("prompt exceeds the model's context length")
	// ErrAuth: the key was rejected (401/403), is missing from the
	// environment, or its account has no quota left. Not retryable.
	ErrAuth = errors.New("authentication failed")
	// ErrInvalidRequest: any other 4xx (unknown model, bad parameter) or a
	// request that could not be built. Not retryable as is.
	ErrInvalidRequest = errors.New("invalid request")
)

// Error describes a failed call. It never contains an API key.
type Error struct {
	Provider string // provider name as configured, e.g. "openai"
	Model    string // upstream model name
	// Kind is the sentinel (ErrRateLimited, ...) or nil when the caller's
	// context was cancelled or hit its own deadline.
	Kind error
	// Status is the HTTP status the provider answered with; 0 when no
	// response status was received (network failure, timeout) or the
	// failure came after a 200 (malformed body, truncated stream).
	Status int
	// RetryAfter is how long to wait before retrying: the provider's
	// Retry-After header, or the shortest rest of the keys; 0 = unknown.
	RetryAfter time.Duration
	// MayHaveBilled is true when the request reached the provider and may
	// have been processed (timeout after sending, truncated stream,
	// malformed body after 200, 502/504), false when it surely was not
	// billed (connection refused, 429, 401, 400, ...).
	MayHaveBilled bool
	// Err is the underlying cause, with any key value removed.
	Err error
}

// Error formats the failure as "provider model: kind (HTTP n, retry after
// d): cause".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	if e.Model != "" {
		b.WriteString(" ")
		b.WriteString(e.Model)
	}
	b.WriteString(": ")
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	} else {
		b.WriteString("call abandoned")
	}
	var extra []string
	if e.Status != 0 {
		extra = append(extra, "HTTP "+strconv.Itoa(e.Status))
	}
	if e.RetryAfter > 0 {
		extra = append(extra, "retry after "+e.RetryAfter.String())
	}
	if e.MayHaveBilled {
		extra = append(extra, "may have been billed")
	}
	if len(extra) > 0 {
		b.WriteString(" (" + strings.Join(extra, ", ") + ")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Is reports whether target is e's sentinel kind.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the same call may succeed if tried again
// (possibly after [RetryAfter]): rate limits, transient failures and
// timeouts.
func Retryable(err error) bool {
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrTransient) || errors.Is(err, ErrTimeout)
}

// RetryAfter returns how long the provider asked callers to wait, or 0 when
// err carries no such hint.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// MayHaveBilled reports whether the failed call may still have been billed
// (see Error.MayHaveBilled). Errors that are not *Error report false.
func MayHaveBilled(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.MayHaveBilled
}

// defaultRest is how long a rate-limited key rests when the provider sent
// no Retry-After.
const defaultRest = 30 * time.Second

// maxRetryAfter caps absurd Retry-After values.
const maxRetryAfter = time.Hour

// parseRetryAfter reads Retry-After (delta-seconds or HTTP date) and the
// non-standard retry-after-ms header some OpenAI-compatible services send.
// It returns 0 when neither is present or parseable.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	if ms := strings.TrimSpace(h.Get("Retry-After-Ms")); ms != "" {
		if v, err := strconv.ParseFloat(ms, 64); err == nil && v > 0 && v < float64(maxRetryAfter/time.Millisecond) {
			return time.Duration(v * float64(time.Millisecond))
		}
	}
	return parseRetryAfterValue(h.Get("Retry-After"), now)
}

// parseRetryAfterValue parses one Retry-After value.
func parseRetryAfterValue(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 || secs != secs {
			return 0
		}
		if secs >= maxRetryAfter.Seconds() {
			return maxRetryAfter
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d <= 0 {
			return 0
		}
		return min(d, maxRetryAfter)
	}
	return 0
}

// apiError is what a provider's error body says, in the union of the
// OpenAI ({"error": {"message", "type", "code", "param"}}), Anthropic
// ({"type": "error", "error": {"type", "message"}}), Google
// ({"error": {"code": 400, "message", "status"}}) and Ollama
// ({"error": "message"}) formats.
type apiError struct {
	Message string
	Type    string
	Code    string
}

// parseErrorBody extracts the error fields from a provider error body. It
// never fails: unknown shapes yield a zero apiError (or the raw text as the
// message when it is short and not JSON).
func parseErrorBody(body []byte) apiError {
	var doc struct {
		Error json.RawMessage `json:"error"`
		Type  string          `json:"type"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Error) == 0 {
		return apiError{}
	}
	var s string
	if json.Unmarshal(doc.Error, &s) == nil {
		return apiError{Message: s}
	}
	var obj struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
		Status  string          `json:"status"`
	}
	if json.Unmarshal(doc.Error, &obj) != nil {
		return apiError{}
	}
	out := apiError{Message: obj.Message, Type: obj.Type}
	if out.Type == "" {
		out.Type = obj.Status
	}
	if len(obj.Code) > 0 {
		var cs string
		if json.Unmarshal(obj.Code, &cs) == nil {
			out.Code = cs
		} else {
			out.Code = strings.Trim(string(obj.Code), `"`)
		}
	}
	return out
}

// contextLengthPhrases are phrases providers use when a prompt is too long
// for the model (OpenAI, Anthropic, Google, Mistral, vLLM, Ollama).
var contextLengthPhrases = []string{
	"context_length_exceeded",
	"context length",
	"maximum context",
	"context window",
	"prompt is too long",
	"input is too long",
	"too many tokens",
	"exceeds the maximum number of tokens",
	"maximum number of tokens",
	"reduce the length",
	"string_above_max_length",
}

// isContextLength reports whether an error body describes a prompt that is
// too long.
func isContextLength(ae apiError) bool {
	s := strings.ToLower(ae.Code + " " + ae.Type + " " + ae.Message)
	for _, p := range contextLengthPhrases {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// statusKind maps an HTTP error status and body to a sentinel and whether
// the call may have been billed.
func statusKind(status int, ae apiError) (kind error, billed bool) {
	code := strings.ToLower(ae.Code + " " + ae.Type)
	switch {
	case status == http.StatusTooManyRequests:
		// OpenAI answers 429 insufficient_quota when the account is out of
		// credit: waiting does not help, the key is unusable.
		if strings.Contains(code, "insufficient_quota") || strings.Contains(code, "billing") {
			return ErrAuth, false
		}
		return ErrRateLimited, false
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ErrAuth, false
	case status == http.StatusRequestTimeout:
		return ErrTimeout, false
	case status == http.StatusRequestEntityTooLarge:
		return ErrContextLength, false
	case status >= 400 && status < 500:
		if isContextLength(ae) {
			return ErrContextLength, false
		}
		// Google answers a wrong key with 400 INVALID_ARGUMENT, "API key
		// not valid" (reason API_KEY_INVALID): an auth failure, so the key
		// is retired like one rejected with 401.
		if strings.Contains(strings.ToLower(ae.Message), "api key not valid") || strings.Contains(code, "api_key_invalid") {
			return ErrAuth, false
		}
		if strings.Contains(code, "rate_limit") {
			return ErrRateLimited, false
		}
		return ErrInvalidRequest, false
	case status == http.StatusBadGateway || status == http.StatusGatewayTimeout:
		// A gateway lost the upstream: the model may have run to the end.
		return ErrTransient, true
	default: // 5xx, Anthropic 529 overloaded
		if status == http.StatusServiceUnavailable && isContextLength(ae) {
			return ErrContextLength, false
		}
		return ErrTransient, false
	}
}

// scrubbed is an error whose message had key values removed.
type scrubbed struct{ msg string }

func (s scrubbed) Error() string { return s.msg }

// redact returns err unchanged when its message holds none of the secrets,
// or an error with the secrets replaced by "[redacted]" (dropping the
// chain, which could otherwise reveal them).
func redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	hit := false
	for _, s := range secrets {
		if len(s) >= 4 && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
			hit = true
		}
	}
	if !hit {
		return err
	}
	return scrubbed{msg}
}
