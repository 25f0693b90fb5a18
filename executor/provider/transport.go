package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// observation records, for one call, what happened on the wire underneath
// the langchaingo client: langchaingo flattens HTTP and network errors into
// strings (and hides net errors entirely), so classification reads this
// instead. One observation per Call; safe for the concurrent callbacks of
// net/http.
type observation struct {
	endMarker []byte // stream end marker to look for in a 200 body; nil = none

	mu       sync.Mutex
	attempts int         // round trips started
	wrote    bool        // the request was fully written to a connection
	rtErr    error       // transport error of the last round trip
	status   int         // status of the last response
	header   http.Header // headers of the last response
	errBody  []byte      // start of the body of a non-2xx response
	bodyErr  error       // error reading a 2xx body (other than EOF)
	sawEnd   bool        // endMarker was seen in a 2xx body
	tail     []byte      // last bytes read, to find a marker split across reads
	bodyRead int64       // bytes of 2xx body read

	// logprobs asks an OpenAI chat completion for token log-probabilities
	// (langchaingo has no option for it): the request body gains
	// "logprobs" (and "top_logprobs"), and the 2xx body is kept in
	// captured for parseLogProbs.
	logprobs    bool
	topLogprobs int
	captured    []byte
	// fields are set in an OpenAI chat completion's JSON body, replacing
	// what langchaingo wrote (a JSON schema's response_format).
	fields map[string]json.RawMessage
	// capture keeps the 2xx body in captured without asking for
	// log-probabilities (Gemini usage).
	capture bool
}

// maxCaptured bounds the response body kept for log-probabilities.
const maxCaptured = 8 << 20

// capturedBody returns the kept 2xx body (of the last round trip).
func (o *observation) capturedBody() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.captured
}

type obsKey struct{}

func withObservation(ctx context.Context, o *observation) context.Context {
	return context.WithValue(ctx, obsKey{}, o)
}

func observationFrom(ctx context.Context) *observation {
	o, _ := ctx.Value(obsKey{}).(*observation)
	return o
}

// wireFacts is a copy of what an observation recorded.
type wireFacts struct {
	attempts int
	wrote    bool
	rtErr    error
	status   int
	header   http.Header
	errBody  []byte
	bodyErr  error
	sawEnd   bool
	bodyRead int64
}

// snapshot returns a copy of the fields classification reads.
func (o *observation) snapshot() wireFacts {
	o.mu.Lock()
	defer o.mu.Unlock()
	return wireFacts{
		attempts: o.attempts, wrote: o.wrote, rtErr: o.rtErr, status: o.status,
		header: o.header, errBody: o.errBody, bodyErr: o.bodyErr, sawEnd: o.sawEnd, bodyRead: o.bodyRead,
	}
}

// maxErrBody bounds how much of an error response is kept.
const maxErrBody = 64 << 10

// transport wraps a RoundTripper: it fills the call's observation and,
// when header is set, adds a key header (for clients whose libraries drop
// the key when given an http.Client).
type transport struct {
	base        http.RoundTripper
	headerName  string
	headerValue string
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.headerName != "" {
		req = req.Clone(req.Context())
		req.Header.Set(t.headerName, t.headerValue)
	}
	o := observationFrom(req.Context())
	if o == nil {
		return t.base.RoundTrip(req)
	}
	o.mu.Lock()
	o.attempts++
	o.captured = o.captured[:0]
	o.mu.Unlock()
	if (o.logprobs || len(o.fields) > 0) && req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/chat/completions") {
		set := o.fields
		if o.logprobs {
			set = maps.Clone(set)
			if set == nil {
				set = map[string]json.RawMessage{}
			}
			set["logprobs"] = json.RawMessage("true")
			if o.topLogprobs > 0 {
				set["top_logprobs"] = json.RawMessage(strconv.Itoa(o.topLogprobs))
			}
		}
		var err error
		if req, err = withFields(req, set); err != nil {
			return nil, err
		}
	}
	trace := &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				o.mu.Lock()
				o.wrote = true
				o.mu.Unlock()
			}
		},
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := t.base.RoundTrip(req)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.rtErr = err
		return nil, err
	}
	o.status = resp.StatusCode
	o.header = resp.Header.Clone()
	if resp.StatusCode >= 300 {
		head, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
		o.errBody = head
		if rerr != nil {
			o.bodyErr = rerr
		}
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body = &watchedBody{rc: resp.Body, o: o}
	return resp, nil
}

// withFields returns req with set's fields set in its JSON body.
func withFields(req *http.Request, set map[string]json.RawMessage) (*http.Request, error) {
	if req.Body == nil {
		return req, nil
	}
	raw, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("adding %s to the request: %w", strings.Join(slices.Sorted(maps.Keys(set)), ", "), err)
	}
	maps.Copy(body, set)
	out, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(out)), int64(len(out))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(out)), nil }
	return req, nil
}

// parseLogProbs reads the first choice's token log-probabilities from an
// OpenAI chat completion body; nil when it has none.
func parseLogProbs(body []byte) []TokenLogProb {
	var r struct {
		Choices []struct {
			LogProbs *struct {
				Content []struct {
					Token       string  `json:"token"`
					LogProb     float64 `json:"logprob"`
					TopLogProbs []struct {
						Token   string  `json:"token"`
						LogProb float64 `json:"logprob"`
					} `json:"top_logprobs"`
				} `json:"content"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	if json.Unmarshal(body, &r) != nil || len(r.Choices) == 0 || r.Choices[0].LogProbs == nil {
		return nil
	}
	var out []TokenLogProb
	for _, c := range r.Choices[0].LogProbs.Content {
		t := TokenLogProb{Token: c.Token, LogProb: c.LogProb}
		for _, a := range c.TopLogProbs {
			t.Top = append(t.Top, TokenAlt{Token: a.Token, LogProb: a.LogProb})
		}
		out = append(out, t)
	}
	return out
}

// watchedBody records read errors and stream end markers of a 2xx body.
type watchedBody struct {
	rc io.ReadCloser
	o  *observation
}

func (w *watchedBody) Read(p []byte) (int, error) {
	n, err := w.rc.Read(p)
	o := w.o
	o.mu.Lock()
	o.bodyRead += int64(n)
	if (o.logprobs || o.capture) && n > 0 && len(o.captured)+n <= maxCaptured {
		o.captured = append(o.captured, p[:n]...)
	}
	if len(o.endMarker) > 0 && !o.sawEnd && n > 0 {
		o.tail = append(o.tail, p[:n]...)
		if bytes.Contains(o.tail, o.endMarker) {
			o.sawEnd = true
			o.tail = nil
		} else if keep := len(o.endMarker) - 1; len(o.tail) > keep {
			o.tail = append(o.tail[:0], o.tail[len(o.tail)-keep:]...)
		}
	}
	if err != nil && !errors.Is(err, io.EOF) && o.bodyErr == nil {
		o.bodyErr = err
	}
	o.mu.Unlock()
	return n, err
}

func (w *watchedBody) Close() error { return w.rc.Close() }
