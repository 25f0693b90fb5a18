package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// BenchmarkGatewayOverhead measures the latency the gateway adds to a
// request: the same loopback upstream is called directly (one OpenAI
// request over HTTP) and through the gateway (auth, decoding, routing,
// the langchaingo client, optionally the ledger, the OpenAI response),
// b.N times each at several concurrency levels. It reports p50 and p99 of
// both and their difference, in microseconds.
func BenchmarkGatewayOverhead(b *testing.B) {
	cfg := fmt.Sprintf("[[server.key]]\nname = \"bench\"\nkey_sha256 = %q\n", digest(clientKeyA))
	for _, mode := range ledgerModes {
		for _, conc := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("ledger=%s/conc=%d", mode, conc), func(b *testing.B) {
				direct, gateway, flush := benchPaths(b, cfg, mode)
				b.ResetTimer()
				dl := measure(b, b.N, conc, direct)
				gl := measure(b, b.N, conc, gateway)
				b.StopTimer()
				report(b, dl, gl)
				require.NoError(b, flush())
			})
		}
	}
}

// ledgerModes are the gateway's recording modes the benchmarks compare.
var ledgerModes = []string{"none", "async", "sync"}

// BenchmarkGatewayRate measures the gateway's overhead under an open-loop
// load: requests are started at a fixed rate (each on its own goroutine,
// whether or not earlier ones have finished) for a fixed duration, first
// directly against the loopback upstream, then through the gateway. It
// reports p50 and p99 of both and their difference, in microseconds, and
// the requests the load generator started late (more than 1 ms behind
// schedule). b.N is ignored: run it with -benchtime 1x.
func BenchmarkGatewayRate(b *testing.B) {
	cfg := fmt.Sprintf("[[server.key]]\nname = \"bench\"\nkey_sha256 = %q\n", digest(clientKeyA))
	const dur = 2 * time.Second
	for _, mode := range ledgerModes {
		for _, rps := range []int{1000} {
			b.Run(fmt.Sprintf("ledger=%s/rps=%d", mode, rps), func(b *testing.B) {
				direct, gateway, flush := benchPaths(b, cfg, mode)
				b.ResetTimer()
				dl, dlate := openLoop(b, rps, dur, direct)
				gl, glate := openLoop(b, rps, dur, gateway)
				b.StopTimer()
				report(b, dl, gl)
				b.ReportMetric(float64(dlate+glate), "late-starts")
				fstart := time.Now()
				require.NoError(b, flush())
				b.ReportMetric(float64(time.Since(fstart).Milliseconds()), "flush-ms")
			})
		}
	}
}

// benchPaths builds a gateway recording in mode ("none", "async" or
// "sync") and returns a direct upstream call, the same call through the
// gateway, and a function that flushes the ledger and checks that it holds
// every gateway request. Both paths are checked before they are returned.
func benchPaths(b *testing.B, cfg, mode string) (direct, gateway func() (time.Duration, error), flush func() error) {
	u := catalog.Usage{InputTokens: 20, OutputTokens: 2}
	e := newEnv(b, providertest.Script{"small": {{Text: "ok", Usage: &u}}}, providertest.Script{}, cfg, func(o *Options) {
		switch mode {
		case "none":
			o.Recorder = nil
		case "sync":
			o.SyncLedger = true
		}
	})
	ts := httptest.NewServer(e.srv.Handler())
	b.Cleanup(ts.Close)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.Cleanup(hc.CloseIdleConnections)
	var sent atomic.Int64
	do := func(url, key, body string) (time.Duration, error) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			return d, fmt.Errorf("status %d", resp.StatusCode)
		}
		return d, err
	}
	direct = func() (time.Duration, error) {
		return do(e.oa.BaseURL()+"/chat/completions", oaKey, `{"model": "small", "messages": [{"role": "user", "content": "Say ok."}]}`)
	}
	gateway = func() (time.Duration, error) {
		sent.Add(1)
		return do(ts.URL+"/v1/chat/completions", clientKeyA, `{"model": "openai/small", "messages": [{"role": "user", "content": "Say ok."}]}`)
	}
	// Validity before timing: both paths answer, and the gateway answers
	// with the pinned model.
	_, err := direct()
	require.NoError(b, err)
	resp, body := post(b, ts.URL+"/v1/chat/completions", clientKeyA, `{"model": "openai/small", "messages": [{"role": "user", "content": "Say ok."}]}`)
	require.Equal(b, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(b, "openai/small", resp.Header.Get("x-costwise-model"))
	sent.Add(1)
	flush = func() error {
		if err := e.srv.Flush(context.Background()); err != nil {
			return err
		}
		if mode == "none" {
			return nil
		}
		runs, err := e.l.Runs(0)
		if err != nil {
			return err
		}
		if int64(len(runs)) != sent.Load() {
			return fmt.Errorf("ledger holds %d runs for %d gateway requests", len(runs), sent.Load())
		}
		return nil
	}
	return direct, gateway, flush
}

// report adds the latency metrics of direct (dl) and gateway (gl) calls.
func report(b *testing.B, dl, gl []time.Duration) {
	d50, d99 := pct(dl, 50), pct(dl, 99)
	g50, g99 := pct(gl, 50), pct(gl, 99)
	b.ReportMetric(us(d50), "direct-p50-us")
	b.ReportMetric(us(d99), "direct-p99-us")
	b.ReportMetric(us(g50), "gateway-p50-us")
	b.ReportMetric(us(g99), "gateway-p99-us")
	b.ReportMetric(us(g50-d50), "overhead-p50-us")
	b.ReportMetric(us(g99-d99), "overhead-p99-us")
}

// openLoop starts call at rps per second for dur, each on its own
// goroutine, and returns the latencies and how many calls started more
// than 1 ms behind schedule.
func openLoop(b *testing.B, rps int, dur time.Duration, call func() (time.Duration, error)) ([]time.Duration, int) {
	n := int(dur.Seconds() * float64(rps))
	lat := make([]time.Duration, n)
	interval := time.Second / time.Duration(rps)
	var failed atomic.Value
	var wg sync.WaitGroup
	late := 0
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		} else if -d > time.Millisecond {
			late++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := call()
			if err != nil {
				failed.Store(err)
			}
			lat[i] = d
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return lat, late
}

// measure runs n calls on conc workers and returns their latencies.
func measure(b *testing.B, n, conc int, call func() (time.Duration, error)) []time.Duration {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				d, err := call()
				if err != nil {
					failed.Store(err)
					return
				}
				lat[i] = d
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return lat
}

func pct(lat []time.Duration, p int) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
