package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/executor/provider"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// The gateway benchmarks measure the latency the gateway adds to a
// request: the same loopback upstream (an OpenAI chat completion) is
// called directly and through the gateway (auth, decoding, routing, the
// langchaingo client, the ledger in the mode named, metrics, the OpenAI
// response), by the same load generator with the same kind of client, and
// the difference of the latency percentiles is the overhead.
//
// A third path is the floor: a bare reverse proxy from the standard
// library (httputil.ReverseProxy, no auth, no routing, no accounting) in
// front of the same upstream, placed where the gateway is. What it adds
// over a direct call is what any Go gateway built on net/http pays on the
// machine for the extra loopback hop (a connection accepted, a request
// parsed, a second client call); what the gateway adds over the floor is
// its own work.
//
// Topology (procs=N in the name):
//
//   - procs=3: load generator (the benchmark), upstream and gateway are
//     three processes, as with wrk in front of a deployed gateway: each
//     has the machine's GOMAXPROCS, and the gateway's CPU per request is
//     read from its own process.
//   - procs=1: all three in the benchmark's process, sharing its
//     GOMAXPROCS Ps; the Go scheduler then hands work between the
//     generator's, the upstream's and the gateway's goroutines, which
//     costs them all (direct calls included) latency and CPU.
//
// Either way the generator is kept light: a fixed pool of workers started
// once, each with its own http.Client whose keep-alive connections stay
// open (no goroutine, connection or handshake per request), the most
// recently idle worker taking the next request; timing starts just before
// a request is sent and stops when its body has been read.

// benchTopologies are the procs=N values the benchmarks sweep.
var benchTopologies = []int{3, 1}

// ledgerModes are the gateway's recording modes the benchmarks compare:
// no ledger, the asynchronous ledger (the default) and synchronous writes.
var ledgerModes = []string{"none", "async", "sync"}

// BenchmarkGatewayOverhead is the closed-loop measurement: conc workers
// send b.N requests back to back, first directly, then through the floor
// proxy, then through the gateway. It reports p50 and p99 of each and the
// differences, in microseconds.
func BenchmarkGatewayOverhead(b *testing.B) {
	defer TuneGC()() // as costwise serve runs
	for _, procs := range benchTopologies {
		for _, mode := range ledgerModes {
			for _, conc := range []int{1, 4, 16} {
				b.Run(fmt.Sprintf("procs=%d/ledger=%s/conc=%d", procs, mode, conc), func(b *testing.B) {
					rig := newBenchRig(b, procs, mode)
					pool := newLoadPool(conc)
					defer pool.close()
					b.ResetTimer()
					dl, err := pool.closedLoop(rig.direct, b.N, conc)
					require.NoError(b, err)
					fl, err := pool.closedLoop(rig.floor, b.N, conc)
					require.NoError(b, err)
					gl, err := pool.closedLoop(rig.gateway, b.N, conc)
					require.NoError(b, err)
					b.StopTimer()
					report(b, dl, fl, gl)
					require.NoError(b, rig.check())
				})
			}
		}
	}
}

// BenchmarkGatewayRate is the open-loop measurement: requests are started
// at a fixed rate whether or not earlier ones have finished (each by an
// idle worker of the pool), in alternating slices of rateSlice, direct,
// then through the floor proxy, then through the gateway, rateSlices
// times, so that all three see the same background load of a shared
// machine. After each gateway slice the
// ledger is flushed (its time is reported as flush-ms, outside the
// latencies), so that its writes are not charged to the next direct
// slice.
//
// It reports p50 and p99 of each and the differences, in microseconds;
// gw-cpu-us/req, the gateway's CPU time per request, its ledger writes
// included (procs=3: its process's; procs=1: the process's CPU per
// request in the gateway slices minus that in the direct slices); the
// requests the generator started more than 1 ms late; and those that
// found every worker busy. b.N is ignored: run it with -benchtime 1x.
//
// The sync mode cannot keep up with 1,000 requests/s (two fsynced
// commits per request, and SQLite's work for them); it is run at a rate it
// can sustain.
func BenchmarkGatewayRate(b *testing.B) {
	defer TuneGC()() // as costwise serve runs
	for _, procs := range benchTopologies {
		for _, mode := range ledgerModes {
			rps := 1000
			if mode == "sync" {
				rps = 100
			}
			b.Run(fmt.Sprintf("procs=%d/ledger=%s/rps=%d", procs, mode, rps), func(b *testing.B) {
				rig := newBenchRig(b, procs, mode)
				pool := newLoadPool(64)
				defer pool.close()
				n := int(rateSlice.Seconds() * float64(rps))
				var dl, fl, gl []time.Duration
				var dcpu, gcpu, gwcpu, flushTime time.Duration
				var late, busy int
				b.ResetTimer()
				for range rateSlices {
					c0 := processCPU(os.Getpid())
					lat, lt, bz, err := pool.openLoop(rig.direct, rps, n)
					require.NoError(b, err)
					dl, late, busy = append(dl, lat...), late+lt, busy+bz
					c0f := processCPU(os.Getpid())
					lat, lt, bz, err = pool.openLoop(rig.floor, rps, n)
					require.NoError(b, err)
					fl, late, busy = append(fl, lat...), late+lt, busy+bz
					c1, w1 := processCPU(os.Getpid()), rig.gatewayCPU()
					lat, lt, bz, err = pool.openLoop(rig.gateway, rps, n)
					require.NoError(b, err)
					gl, late, busy = append(gl, lat...), late+lt, busy+bz
					f := time.Now()
					require.NoError(b, rig.flush())
					flushTime += time.Since(f)
					c2, w2 := processCPU(os.Getpid()), rig.gatewayCPU()
					dcpu, gcpu, gwcpu = dcpu+c0f-c0, gcpu+c2-c1, gwcpu+w2-w1
				}
				b.StopTimer()
				report(b, dl, fl, gl)
				switch {
				case procs > 1:
					b.ReportMetric(us(gwcpu)/float64(len(gl)), "gw-cpu-us/req")
				case dcpu > 0:
					b.ReportMetric((us(gcpu)-us(dcpu))/float64(len(gl)), "gw-cpu-us/req")
				}
				b.ReportMetric(float64(late), "late-starts")
				b.ReportMetric(float64(busy), "pool-busy")
				b.ReportMetric(float64(flushTime.Milliseconds()), "flush-ms")
				require.NoError(b, rig.check())
			})
		}
	}
}

// The open-loop schedule: rateSlices slices of rateSlice per path.
const (
	rateSlices = 4
	rateSlice  = 500 * time.Millisecond
)

// benchRig is an upstream, a gateway and a bare reverse proxy (the floor)
// in front of it, and the three ways to ask the upstream the same
// question.
type benchRig struct {
	direct, floor, gateway target
	// flush writes the gateway's ledger.
	flush func() error
	// gatewayCPU is the gateway process's CPU time so far (0 in-process).
	gatewayCPU func() time.Duration
	// ledgerRuns returns the runs in the gateway's ledger (-1: none).
	ledgerRuns func() (int64, error)
	sent       *atomic.Int64 // gateway requests sent
	mode       string
}

// newBenchRig starts an upstream and a gateway recording in mode ("none",
// "async" or "sync"), in the benchmark's process (procs 1) or each in its
// own (procs 3), and checks both paths once before anything is timed:
// each answers 200, the gateway with the pinned model.
func newBenchRig(b *testing.B, procs int, mode string) *benchRig {
	rig := &benchRig{gatewayCPU: func() time.Duration { return 0 }}
	var upstream, gateway, floor string
	if procs == 1 {
		up := newBenchUpstream()
		b.Cleanup(up.Close)
		upstream = up.BaseURL()
		floor = startFloorProxy(b, up.URL)
		gw := startBenchGateway(b, upstream, mode, b.TempDir())
		gateway = gw.url
		rig.flush = func() error { return gw.srv.Flush(context.Background()) }
		rig.ledgerRuns = gw.runs
	} else {
		up := startBenchChild(b, "upstream", "")
		upstream = up.url
		floor = startBenchChild(b, "floor", upstream).url
		gw := startBenchChild(b, "gateway", upstream, append(strings.Fields(os.Getenv(benchGatewayEnv)), benchLedgerEnv+"="+mode)...)
		gateway = gw.url
		rig.flush = func() error { _, err := gw.command("flush"); return err }
		rig.ledgerRuns = func() (int64, error) {
			s, err := gw.command("runs")
			if err != nil {
				return 0, err
			}
			return strconv.ParseInt(s, 10, 64)
		}
		rig.gatewayCPU = func() time.Duration { return processCPU(gw.cmd.Process.Pid) }
	}
	var sent atomic.Int64
	rig.direct = target{url: upstream + "/chat/completions", key: oaKey,
		body: []byte(`{"model": "small", "messages": [{"role": "user", "content": "Say ok."}]}`)}
	rig.floor = rig.direct
	rig.floor.url = floor + "/v1/chat/completions"
	rig.gateway = target{url: gateway + "/v1/chat/completions", key: clientKeyA, sent: &sent,
		body: []byte(`{"model": "openai/small", "messages": [{"role": "user", "content": "Say ok."}]}`)}

	hc := newBenchClient()
	defer hc.CloseIdleConnections()
	_, err := rig.direct.call(hc)
	require.NoError(b, err)
	_, err = rig.floor.call(hc)
	require.NoError(b, err)
	resp, body := post(b, rig.gateway.url, clientKeyA, string(rig.gateway.body))
	require.Equal(b, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(b, "openai/small", resp.Header.Get("x-costwise-model"))
	require.Contains(b, string(body), `"content":"ok"`)
	sent.Add(1)
	rig.sent = &sent
	rig.mode = mode
	return rig
}

// check flushes the ledger and checks that it holds one run per gateway
// request sent.
func (r *benchRig) check() error {
	if err := r.flush(); err != nil {
		return err
	}
	if r.mode == "none" {
		return nil
	}
	n, err := r.ledgerRuns()
	if err != nil {
		return err
	}
	if n != r.sent.Load() {
		return fmt.Errorf("ledger holds %d runs for %d gateway requests", n, r.sent.Load())
	}
	return nil
}

// newBenchUpstream is the fake OpenAI endpoint: every request for model
// "small" is answered "ok" with 20 prompt and 2 completion tokens.
func newBenchUpstream() *providertest.Server {
	u := catalog.Usage{InputTokens: 20, OutputTokens: 2}
	return providertest.NewOpenAIServer(providertest.Script{"small": {{Text: "ok", Usage: &u}}})
}

// startFloorProxy serves a bare reverse proxy to origin (the upstream's
// root URL) on loopback, as it comes from the standard library but for a
// connection pool as large as the gateway's; it stops with tb. It returns
// its URL.
func startFloorProxy(tb testing.TB, origin string) string {
	tb.Helper()
	u, err := url.Parse(origin)
	require.NoError(tb, err)
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	rp.Transport = tr
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	hs := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	tb.Cleanup(func() {
		_ = hs.Close()
		tr.CloseIdleConnections()
	})
	return "http://" + ln.Addr().String()
}

// benchGateway is a gateway serving on loopback.
type benchGateway struct {
	srv *Server
	l   *ledger.Ledger // nil in mode "none"
	url string
}

func (g *benchGateway) runs() (int64, error) {
	if g.l == nil {
		return -1, nil
	}
	runs, err := g.l.Runs(0)
	return int64(len(runs)), err
}

// startBenchGateway starts a gateway in front of the OpenAI-protocol
// upstream at base (its /v1 URL), with one API key (clientKeyA), the test
// catalog and a ledger in dir recorded in mode; it stops with tb.
func startBenchGateway(tb testing.TB, base, mode, dir string) *benchGateway {
	tb.Helper()
	if os.Getenv(oaEnv) == "" {
		tb.(interface{ Setenv(k, v string) }).Setenv(oaEnv, oaKey)
	}
	src := fmt.Sprintf(`
[providers.openai]
api_key_env = %q
base_url = %q
timeout_s = 5

[[server.key]]
name = "bench"
key_sha256 = %q
`, oaEnv, base, digest(clientKeyA))
	cat, err := catalog.LoadTOML("test-catalog.toml", []byte(testCatalog))
	require.NoError(tb, err)
	pcfg, err := provider.ParseConfig("costwise.toml", []byte(src))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = pcfg.Close() })
	scfg, err := ParseConfig("costwise.toml", []byte(src))
	require.NoError(tb, err)
	g := &benchGateway{}
	opts := Options{Catalog: cat, Clients: pcfg, Config: scfg, Registry: prometheus.NewRegistry(),
		Router: executor.RouterOptions{MaxRetries: -1, BackoffBase: time.Millisecond}}
	if mode != "none" {
		g.l, err = ledger.Open(filepath.Join(dir, "ledger.db"))
		require.NoError(tb, err)
		tb.Cleanup(func() { _ = g.l.Close() })
		opts.Recorder, opts.SyncLedger = executor.LedgerRecorder{L: g.l}, mode == "sync"
	}
	g.srv, err = New(opts)
	require.NoError(tb, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.srv.Serve(ctx, ln) }()
	tb.Cleanup(func() {
		cancel()
		require.NoError(tb, <-done)
	})
	g.url = "http://" + ln.Addr().String()
	return g
}

// Environment of the benchmark's child processes.
const (
	benchRoleEnv     = "COSTWISE_BENCH_ROLE"
	benchUpstreamEnv = "COSTWISE_BENCH_UPSTREAM"
	benchLedgerEnv   = "COSTWISE_BENCH_LEDGER"
	// benchProfileEnv, when set in the benchmark's environment, makes each
	// child write a CPU profile to its value + "." + role.
	benchProfileEnv = "COSTWISE_BENCH_CPUPROFILE"
	// benchGatewayEnv, when set, holds NAME=VALUE settings (space
	// separated) for the gateway process only, e.g. "GOGC=400".
	benchGatewayEnv = "COSTWISE_BENCH_GATEWAY_ENV"
)

// benchChild is an upstream or gateway process of a procs=3 benchmark. It
// prints "url URL", then answers commands on its stdin, one per line,
// with one line: "flush" (write the ledger) -> "ok", "runs" -> the runs in
// the ledger; it exits when its stdin closes.
type benchChild struct {
	cmd *exec.Cmd
	url string
	in  io.WriteCloser
	out *bufio.Reader
	mu  sync.Mutex
}

// startBenchChild starts the test binary as a child in role; it stops
// with b.
func startBenchChild(b *testing.B, role, upstream string, env ...string) *benchChild {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), append(env, benchRoleEnv+"="+role, benchUpstreamEnv+"="+upstream, oaEnv+"="+oaKey)...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(b, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, cmd.Start())
	c := &benchChild{cmd: cmd, in: in, out: bufio.NewReader(stdout)}
	b.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Wait()
	})
	line, err := c.out.ReadString('\n')
	require.NoError(b, err, "the %s process did not start", role)
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "url ")
	require.True(b, ok, "the %s process said %q", role, line)
	c.url = url
	return c
}

// command sends one command and returns the answer.
func (c *benchChild) command(cmd string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.in, cmd+"\n"); err != nil {
		return "", err
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		return "", err
	}
	ans, ok := strings.CutPrefix(strings.TrimSpace(line), "ok ")
	if !ok {
		return "", fmt.Errorf("%s: %s", cmd, line)
	}
	return ans, nil
}

// TestBenchChild is not a test: it is the upstream or gateway process of
// a procs=3 benchmark (see benchChild).
func TestBenchChild(t *testing.T) {
	role := os.Getenv(benchRoleEnv)
	if role == "" {
		t.Skip("child process of the gateway benchmarks")
	}
	if path := os.Getenv(benchProfileEnv); path != "" {
		f, err := os.Create(path + "." + role)
		require.NoError(t, err)
		require.NoError(t, pprof.StartCPUProfile(f))
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	var gw *benchGateway
	switch role {
	case "upstream":
		up := newBenchUpstream()
		defer up.Close()
		fmt.Printf("url %s\n", up.BaseURL())
	case "floor":
		u, ok := strings.CutSuffix(os.Getenv(benchUpstreamEnv), "/v1")
		require.True(t, ok, "upstream URL %q", os.Getenv(benchUpstreamEnv))
		fmt.Printf("url %s\n", startFloorProxy(t, u))
	case "gateway":
		defer TuneGC()() // as costwise serve runs
		gw = startBenchGateway(t, os.Getenv(benchUpstreamEnv), os.Getenv(benchLedgerEnv), t.TempDir())
		fmt.Printf("url %s\n", gw.url)
	default:
		t.Fatalf("unknown role %q", role)
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch cmd := sc.Text(); {
		case gw != nil && cmd == "flush":
			if err := gw.srv.Flush(context.Background()); err != nil {
				fmt.Printf("error %v\n", err)
				continue
			}
			fmt.Println("ok flushed")
		case gw != nil && cmd == "runs":
			if err := gw.srv.Flush(context.Background()); err != nil {
				fmt.Printf("error %v\n", err)
				continue
			}
			n, err := gw.runs()
			if err != nil {
				fmt.Printf("error %v\n", err)
				continue
			}
			fmt.Printf("ok %d\n", n)
		default:
			fmt.Printf("error unknown command %q\n", cmd)
		}
	}
}

// target is one kind of request.
type target struct {
	url, key string
	body     []byte
	sent     *atomic.Int64 // counts requests sent, when set
}

// newBenchClient is a load-generator client: its own connection pool,
// keep-alive, no compression.
func newBenchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2, DisableCompression: true, IdleConnTimeout: time.Minute}}
}

// call sends one request and returns the time from just before it was
// sent to the end of its body.
func (t target) call(hc *http.Client) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodPost, t.url, bytes.NewReader(t.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+t.key)
	req.Header.Set("Content-Type", "application/json")
	if t.sent != nil {
		t.sent.Add(1)
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: status %d", t.url, resp.StatusCode)
	}
	return d, err
}

// loadPool is a fixed pool of load-generator workers, each with its own
// client and keep-alive connections, started once per benchmark. The
// worker that became idle last takes the next job (a stack, as
// http.Transport reuses its most recent idle connection), so that at a
// low rate the same warm connection and goroutines serve every request.
type loadPool struct {
	mu   sync.Mutex
	cond *sync.Cond
	idle []chan loadJob // the stack of idle workers' inboxes
	all  []chan loadJob
	wg   sync.WaitGroup
}

// loadJob is one request for a worker: its latency goes to *out, a
// failure to *fail.
type loadJob struct {
	t    target
	out  *time.Duration
	fail *atomic.Value
	done *sync.WaitGroup
}

func newLoadPool(size int) *loadPool {
	p := &loadPool{}
	p.cond = sync.NewCond(&p.mu)
	for range size {
		in := make(chan loadJob, 1)
		p.all = append(p.all, in)
		p.idle = append(p.idle, in)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			hc := newBenchClient()
			defer hc.CloseIdleConnections()
			for j := range in {
				d, err := j.t.call(hc)
				if err != nil {
					j.fail.Store(err)
				}
				*j.out = d
				p.mu.Lock()
				p.idle = append(p.idle, in)
				p.mu.Unlock()
				p.cond.Signal()
				j.done.Done()
			}
		}()
	}
	return p
}

// submit gives j to the most recently idle worker, waiting for one if all
// are busy (then it reports busy).
func (p *loadPool) submit(j loadJob) (busy bool) {
	p.mu.Lock()
	for len(p.idle) == 0 {
		busy = true
		p.cond.Wait()
	}
	in := p.idle[len(p.idle)-1]
	p.idle = p.idle[:len(p.idle)-1]
	p.mu.Unlock()
	in <- j
	return busy
}

func (p *loadPool) close() {
	for _, in := range p.all {
		close(in)
	}
	p.wg.Wait()
}

// openLoop starts n calls of t at rps per second, each as soon as it is
// due, on an idle worker. It returns their latencies, how many started
// more than 1 ms behind schedule and how many found no idle worker (and
// waited for one; the pool is then too small for the rate).
func (p *loadPool) openLoop(t target, rps, n int) (lat []time.Duration, late, busy int, err error) {
	lat = make([]time.Duration, n)
	interval := time.Second / time.Duration(rps)
	var fail atomic.Value
	var done sync.WaitGroup
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		} else if -d > time.Millisecond {
			late++
		}
		done.Add(1)
		if p.submit(loadJob{t: t, out: &lat[i], fail: &fail, done: &done}) {
			busy++
		}
	}
	done.Wait()
	if e, _ := fail.Load().(error); e != nil {
		return nil, 0, 0, e
	}
	return lat, late, busy, nil
}

// closedLoop runs n calls of t on conc workers, each sending its next
// request when the previous one has been answered.
func (p *loadPool) closedLoop(t target, n, conc int) ([]time.Duration, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var fail atomic.Value
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() { // a driver: it hands its worker the next call
			defer wg.Done()
			var done sync.WaitGroup
			for {
				i := int(next.Add(1)) - 1
				if i >= n || fail.Load() != nil {
					return
				}
				done.Add(1)
				p.submit(loadJob{t: t, out: &lat[i], fail: &fail, done: &done})
				done.Wait()
			}
		}()
	}
	wg.Wait()
	if e, _ := fail.Load().(error); e != nil {
		return nil, e
	}
	return lat, nil
}

// report adds the latency metrics of direct (dl), floor proxy (fl) and
// gateway (gl) calls: overhead-* is the gateway's over a direct call,
// floor-overhead-* the bare proxy's, above-floor-* the gateway's over the
// proxy's.
func report(b *testing.B, dl, fl, gl []time.Duration) {
	d50, d99 := pct(dl, 50), pct(dl, 99)
	f50, f99 := pct(fl, 50), pct(fl, 99)
	g50, g99 := pct(gl, 50), pct(gl, 99)
	b.ReportMetric(us(d50), "direct-p50-us")
	b.ReportMetric(us(d99), "direct-p99-us")
	b.ReportMetric(us(g50), "gateway-p50-us")
	b.ReportMetric(us(g99), "gateway-p99-us")
	b.ReportMetric(us(g50-d50), "overhead-p50-us")
	b.ReportMetric(us(g99-d99), "overhead-p99-us")
	b.ReportMetric(us(f50-d50), "floor-overhead-p50-us")
	b.ReportMetric(us(f99-d99), "floor-overhead-p99-us")
	b.ReportMetric(us(g50-f50), "above-floor-p50-us")
	b.ReportMetric(float64(g50)/float64(d50), "ratio-p50")
	b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "gomaxprocs")
}

func pct(lat []time.Duration, p int) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// processCPU is the CPU time (user and system) process pid has used, from
// /proc/PID/stat in clock ticks of 10 ms; 0 where there is no /proc.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	// After the command name: state, ppid, ... utime is field 14, stime 15.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if errors.Join(err1, err2) != nil {
		return 0
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}
