package server

import (
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
	u := catalog.Usage{InputTokens: 20, OutputTokens: 2}
	for _, withLedger := range []bool{false, true} {
		for _, conc := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("ledger=%v/conc=%d", withLedger, conc), func(b *testing.B) {
				e := newEnv(b, providertest.Script{"small": {{Text: "ok", Usage: &u}}}, providertest.Script{}, cfg, func(o *Options) {
					if !withLedger {
						o.Recorder = nil
					}
				})
				ts := httptest.NewServer(e.srv.Handler())
				defer ts.Close()
				hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
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
				direct := func() (time.Duration, error) {
					return do(e.oa.BaseURL()+"/chat/completions", oaKey, `{"model": "small", "messages": [{"role": "user", "content": "Say ok."}]}`)
				}
				gateway := func() (time.Duration, error) {
					return do(ts.URL+"/v1/chat/completions", clientKeyA, `{"model": "openai/small", "messages": [{"role": "user", "content": "Say ok."}]}`)
				}
				// Validity before timing: both paths answer, and the gateway
				// answers with the pinned model.
				_, err := direct()
				require.NoError(b, err)
				resp, body := post(b, ts.URL+"/v1/chat/completions", clientKeyA, `{"model": "openai/small", "messages": [{"role": "user", "content": "Say ok."}]}`)
				require.Equal(b, http.StatusOK, resp.StatusCode, string(body))
				require.Equal(b, "openai/small", resp.Header.Get("x-costwise-model"))

				b.ResetTimer()
				dl := measure(b, b.N, conc, direct)
				gl := measure(b, b.N, conc, gateway)
				b.StopTimer()
				d50, d99 := pct(dl, 50), pct(dl, 99)
				g50, g99 := pct(gl, 50), pct(gl, 99)
				b.ReportMetric(us(d50), "direct-p50-us")
				b.ReportMetric(us(d99), "direct-p99-us")
				b.ReportMetric(us(g50), "gateway-p50-us")
				b.ReportMetric(us(g99), "gateway-p99-us")
				b.ReportMetric(us(g50-d50), "overhead-p50-us")
				b.ReportMetric(us(g99-d99), "overhead-p99-us")
			})
		}
	}
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
