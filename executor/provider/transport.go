package provider

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
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
	o.mu.Unlock()
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
