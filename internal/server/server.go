package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/planner/cascade"
)

// Options configure a Server.
type Options struct {
	// Catalog lists the models clients may pin and the router ranks.
	Catalog *catalog.Catalog
	// Clients call the providers (a *provider.Config).
	Clients executor.Clients
	// Recorder, when set, records every request in the ledger. Unless
	// SyncLedger is set, its writes go through an
	// [executor.AsyncRouterRecorder]: off the request's critical path,
	// several requests per ledger transaction, written by Serve's graceful
	// shutdown (or Flush/Close), but lost — at most LedgerQueue answered
	// requests — if the process crashes.
	Recorder executor.RouterRecorder
	// SyncLedger writes each request's records before answering it, so
	// that no crash loses one: synchronous=FULL SQLite commits, two for a
	// request answered by its first call when Recorder is a
	// LedgerRecorder (it is then wrapped in an
	// [executor.SyncRouterRecorder]), one more per further call.
	SyncLedger bool
	// LedgerQueue bounds the asynchronous recorder's queue, in answered
	// requests (default 1024). A full queue slows requests down rather
	// than dropping records.
	LedgerQueue int
	// LedgerLinger is how long an answered request waits for others to
	// share its ledger transaction (default DefaultLedgerLinger; negative:
	// none). See executor.AsyncOptions.Linger.
	LedgerLinger time.Duration
	// Config holds keys and routes; nil means no keys and no routes.
	Config *Config
	// Workflows answers /v1/estimate, /v1/plan and /v1/preview; nil
	// answers them with 501.
	Workflows WorkflowService
	// Runs answers POST /v1/runs, GET /v1/runs[/{id}] and POST
	// /v1/runs/{id}/cancel; nil answers them with 501.
	Runs RunService
	// MaxRuns bounds the workflow runs executing at once (default
	// DefaultMaxRuns); POST /v1/runs answers 429 beyond it.
	MaxRuns int
	// Router tunes the router (retries, backoff, rungs); its Default,
	// Routes and DailyBudgetNano are set from Config.
	Router executor.RouterOptions
	// Registerer receives the metrics; nil uses a new registry of the
	// server's own (served at /metrics).
	Registry *prometheus.Registry
	// Logger logs failures; nil discards.
	Logger *slog.Logger
	// Now is the clock of per-key budgets and rate limits (default
	// time.Now).
	Now func() time.Time
	// BufferStreams answers stream requests only once the upstream call
	// has finished (all x-costwise-* headers, cost included, come first),
	// instead of passing chunks on as they arrive (see chat).
	BufferStreams bool
}

// DefaultLedgerLinger is Options.LedgerLinger's default: at 1,000
// requests/s about 5 requests share each ledger commit.
const DefaultLedgerLinger = 5 * time.Millisecond

// Server is the HTTP gateway. Create it with New; it is safe for
// concurrent use.
type Server struct {
	cat     *catalog.Catalog
	router  *executor.Router
	cfg     *Config
	wf      WorkflowService
	reg     *prometheus.Registry
	m       *metrics
	log     *slog.Logger
	now     func() time.Time
	routes  map[string]executor.Route
	handler http.Handler
	async   *executor.AsyncRouterRecorder // nil with SyncLedger or no recorder
	// simulated is Options.Router.Simulated: answers carry
	// x-costwise-simulated.
	simulated bool
	// spend reads a key's spend back from the ledger when its day starts
	// (nil: the recorder cannot; the day then starts at 0 in each process).
	spend  executor.OwnerSpend
	buffer bool // Options.BufferStreams

	mu    sync.Mutex
	state map[string]*keyState // by key name

	runs       RunService
	runSem     chan struct{} // one token per executing run
	runCtx     context.Context
	runCancel  context.CancelFunc
	runMu      sync.Mutex // guards runsClosed and runWG.Add
	runsClosed bool
	runWG      sync.WaitGroup
	runTab     runTable // the runs started here, by key
}

// New builds the server and its router; it fails, naming the route and
// field, when a route does not compile against the catalog.
func New(opts Options) (*Server, error) {
	if opts.Catalog == nil || opts.Clients == nil {
		return nil, errors.New("server: a catalog and provider clients are required")
	}
	cfg := opts.Config
	if cfg == nil {
		cfg = &Config{AutoMinQuality: DefaultAutoMinQuality, MaxBodyBytes: DefaultMaxBodyBytes}
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	ro := opts.Router
	ro.Default = executor.Route{Name: AutoModel, MinQuality: cfg.AutoMinQuality}
	if cfg.AutoClassifier != nil {
		ro.Default.Classifier = cfg.AutoClassifier
	}
	ro.Routes = append([]executor.Route{{Name: pinnedRoute}}, cfg.Routes...)
	ro.DailyBudgetNano = cfg.DailyBudgetNano
	for i, rt := range cfg.Routes {
		if _, clash := opts.Catalog.Lookup(rt.Name); clash {
			return nil, fmt.Errorf("server: %s: route[%d] %q has the name of a catalog model; rename the route", cfg.Path, i, rt.Name)
		}
		if c, ok := rt.Classifier.(*cascade.Classifier); ok {
			if err := classifierInCatalog(opts.Catalog, c); err != nil {
				return nil, fmt.Errorf("server: %s: route[%d] %q: %w", cfg.Path, i, rt.Name, err)
			}
		}
	}
	if cfg.AutoClassifier != nil {
		if err := classifierInCatalog(opts.Catalog, cfg.AutoClassifier); err != nil {
			return nil, fmt.Errorf("server: %s: server.auto_classifier: %w", cfg.Path, err)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rec := opts.Recorder
	if lr, ok := rec.(executor.LedgerRecorder); ok && opts.SyncLedger {
		rec = executor.NewSyncRouterRecorder(lr.L)
	}
	var async *executor.AsyncRouterRecorder
	if rec != nil && !opts.SyncLedger {
		linger := opts.LedgerLinger
		if linger == 0 {
			linger = DefaultLedgerLinger
		}
		async = executor.NewAsyncRouterRecorder(rec, executor.AsyncOptions{QueueSize: opts.LedgerQueue, Linger: linger,
			OnError: func(err error) { log.Error("ledger write failed", "err", err) }})
		rec = async
	}
	router, err := executor.NewRouter(opts.Catalog, opts.Clients, rec, ro)
	if err != nil {
		if async != nil {
			_ = async.Close(context.Background())
		}
		return nil, fmt.Errorf("server: %s: %w", cfg.Path, err)
	}
	spend, _ := rec.(executor.OwnerSpend)
	if async != nil {
		if _, ok := opts.Recorder.(executor.OwnerSpend); !ok {
			spend = nil
		}
	}
	s := &Server{cat: opts.Catalog, router: router, cfg: cfg, wf: opts.Workflows, reg: opts.Registry, spend: spend, simulated: ro.Simulated,
		log: log, now: opts.Now, routes: map[string]executor.Route{}, state: map[string]*keyState{}, async: async,
		buffer: opts.BufferStreams}
	if opts.MaxRuns <= 0 {
		opts.MaxRuns = DefaultMaxRuns
	}
	s.runs, s.runSem = opts.Runs, make(chan struct{}, opts.MaxRuns)
	s.runCtx, s.runCancel = context.WithCancel(context.Background())
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.routes[AutoModel] = ro.Default
	for _, rt := range cfg.Routes {
		s.routes[rt.Name] = rt
	}
	if s.m, err = newMetrics(s.reg); err != nil {
		if async != nil {
			_ = async.Close(context.Background())
		}
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.auth(s.chat))
	mux.HandleFunc("POST /v1/chat/plan", s.auth(s.chatPlan))
	mux.HandleFunc("GET /v1/models", s.auth(s.models))
	mux.HandleFunc("POST /v1/estimate", s.auth(s.workflow(kindEstimate)))
	mux.HandleFunc("POST /v1/plan", s.auth(s.workflow(kindPlan)))
	mux.HandleFunc("POST /v1/preview", s.auth(s.workflow(kindPreview)))
	mux.HandleFunc("POST /v1/runs", s.auth(s.startRun))
	mux.HandleFunc("GET /v1/runs/{id}", s.auth(s.getRun))
	mux.HandleFunc("GET /v1/runs", s.auth(s.listRuns))
	mux.HandleFunc("POST /v1/runs/{id}/cancel", s.auth(s.cancelRun))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "not_found",
			fmt.Sprintf("no endpoint %s %s; see POST /v1/chat/completions, GET /v1/models, POST /v1/estimate|plan|preview, POST /v1/runs, GET /v1/runs[/{id}], POST /v1/runs/{id}/cancel, GET /metrics, GET /healthz", r.Method, r.URL.Path))
	})
	s.handler = mux
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Router returns the router behind the chat endpoint.
func (s *Server) Router() *executor.Router { return s.router }

// Flush waits until every request answered so far is in the ledger (a
// no-op without the asynchronous recorder), or ctx is done.
func (s *Server) Flush(ctx context.Context) error {
	if s.async == nil {
		return nil
	}
	return s.async.Flush(ctx)
}

// closeLedger writes what the asynchronous recorder still holds and
// stops it. Requests answered later are recorded synchronously.
func (s *Server) closeLedger(ctx context.Context) error {
	if s.async == nil {
		return nil
	}
	return s.async.Close(ctx)
}

// ShutdownTimeout bounds how long Serve waits for in-flight requests.
const ShutdownTimeout = 2 * time.Minute

// Serve answers on ln until ctx is done, then stops accepting connections
// and waits (at most ShutdownTimeout) for in-flight requests to finish
// before it returns. It returns nil after a clean shutdown.
//
// Workflow runs started by POST /v1/runs execute in the background under
// a context that Serve cancels as soon as ctx is done: a run stops
// between calls (nodes not yet started are skipped, a call in flight is
// abandoned and recorded), and Serve waits for the runs to record what
// they did before it returns. An interrupted run keeps its ledger status
// "running" and its completed nodes; `costwise run --resume RUN_ID` on the
// same workflow text continues it without paying again for them.
//
// Last, Serve writes every queued ledger record (see Options.SyncLedger)
// and stops the recorder, so after a clean shutdown the ledger holds every
// answered request and can be closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	s.runMu.Lock()
	s.runsClosed = true
	s.runMu.Unlock()
	s.runCancel()
	err := hs.Shutdown(sctx)
	if rerr := s.closeRuns(sctx); rerr != nil && err == nil {
		err = rerr
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if cerr := s.closeLedger(sctx); cerr != nil && err == nil {
		err = fmt.Errorf("server: flushing the ledger: %w", cerr)
	}
	return err
}

// CheckBind refuses a non-loopback address when no key is configured:
// without keys anyone who can reach the port could spend the providers'
// money.
func CheckBind(addr string, keys int) error {
	if keys > 0 {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %v; give host:port, e.g. 127.0.0.1:8080", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to listen on %s without API keys: anyone who can reach it could spend your provider credit; add [[server.key]] tables to the config, or listen on a loopback address such as 127.0.0.1:8080", addr)
}

// keyState is a key's rate limiter and today's budget.
type keyState struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
	day    time.Time
	budget *executor.Budget
}

// auth checks the bearer key and its rate limit. With no keys configured
// every request is let through as the key "anonymous".
func (s *Server) auth(next func(http.ResponseWriter, *http.Request, *Key)) http.HandlerFunc {
	anon := &Key{Name: "anonymous"}
	return func(w http.ResponseWriter, r *http.Request) {
		if len(s.cfg.Keys) == 0 {
			next(w, r, anon)
			return
		}
		h := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="costwise"`)
			writeError(w, http.StatusUnauthorized, "invalid_request_error", "missing_api_key",
				"missing API key; send it as the header Authorization: Bearer KEY")
			s.m.rejected.WithLabelValues("unauthorized").Inc()
			return
		}
		k, ok := s.cfg.match(strings.TrimSpace(tok))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="costwise", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key",
				"incorrect API key; check the key, or ask the operator to add its SHA-256 to [[server.key]]")
			s.m.rejected.WithLabelValues("unauthorized").Inc()
			return
		}
		if wait, ok := s.allow(k); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeError(w, http.StatusTooManyRequests, "requests", "rate_limit_exceeded",
				fmt.Sprintf("key %q is limited to %d requests per minute; retry after %.1f s", k.Name, k.RPM, wait.Seconds()))
			s.m.rejected.WithLabelValues("rate_limited").Inc()
			return
		}
		next(w, r, k)
	}
}

func (s *Server) keyState(k *Key) *keyState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.state[k.Name]
	if !ok {
		st = &keyState{tokens: float64(k.RPM), last: s.now()}
		s.state[k.Name] = st
	}
	return st
}

// allow takes one request from the key's bucket (capacity RPM, refilled at
// RPM per minute), or says how long until one is available.
func (s *Server) allow(k *Key) (time.Duration, bool) {
	if k.RPM <= 0 {
		return 0, true
	}
	st := s.keyState(k)
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	rate := float64(k.RPM) / 60 // per second
	if el := now.Sub(st.last).Seconds(); el > 0 {
		st.tokens = math.Min(float64(k.RPM), st.tokens+el*rate)
	}
	st.last = now
	if st.tokens >= 1 {
		st.tokens--
		return 0, true
	}
	return time.Duration((1 - st.tokens) / rate * float64(time.Second)), false
}

// dayBudget returns the key's budget for today (nil without a cap). A
// day's budget starts from what the ledger says the key spent since UTC
// midnight (its chat requests and workflow runs), so that a restart does
// not give a key its day again; an error reading it is returned, and the
// next request tries again.
func (s *Server) dayBudget(k *Key) (*executor.Budget, time.Time, error) {
	now := s.now().UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if k.BudgetNanoPerDay <= 0 {
		return nil, day, nil
	}
	st := s.keyState(k)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.budget == nil || !st.day.Equal(day) {
		var spent int64
		if s.spend != nil {
			var err error
			if spent, err = s.spend.SpentBy(k.Name, day); err != nil {
				return nil, day, fmt.Errorf("reading key %q's spend today from the ledger: %w", k.Name, err)
			}
		}
		st.day, st.budget = day, executor.NewBudget(k.BudgetNanoPerDay, spent)
	}
	return st.budget, day, nil
}

// models answers GET /v1/models: the catalog's models, then the routes.
func (s *Server) models(w http.ResponseWriter, _ *http.Request, _ *Key) {
	type architecture struct {
		InputModalities  []string `json:"input_modalities"`
		OutputModalities []string `json:"output_modalities"`
	}
	type pricing struct {
		Prompt     string `json:"prompt"`     // USD per input token
		Completion string `json:"completion"` // USD per output token
	}
	// A model's entry is OpenAI's, with the catalog's facts a client
	// chooses by, in OpenRouter's names.
	type model struct {
		ID                  string        `json:"id"`
		Object              string        `json:"object"`
		Created             int64         `json:"created"`
		OwnedBy             string        `json:"owned_by"`
		Kind                string        `json:"costwise_kind"` // "model" or "route"
		ContextLength       int64         `json:"context_length,omitempty"`
		Architecture        *architecture `json:"architecture,omitempty"`
		Pricing             *pricing      `json:"pricing,omitempty"`
		SupportedParameters []string      `json:"supported_parameters,omitempty"`
	}
	out := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, m := range s.cat.Models() {
		if m.Deprecated {
			continue
		}
		e := model{ID: m.ID, Object: "model", OwnedBy: m.Provider, Kind: "model", ContextLength: m.ContextWindow,
			Architecture:        &architecture{InputModalities: orText(m.Modalities), OutputModalities: orText(m.OutputModalities)},
			SupportedParameters: []string{"max_tokens", "temperature", "stop"}}
		if m.InputPerMTok.Known && m.OutputPerMTok.Known {
			e.Pricing = &pricing{Prompt: strconv.FormatFloat(m.InputPerMTok.Value/1e6, 'g', -1, 64),
				Completion: strconv.FormatFloat(m.OutputPerMTok.Value/1e6, 'g', -1, 64)}
		}
		if m.Tools {
			e.SupportedParameters = append(e.SupportedParameters, "tools", "tool_choice")
		}
		if m.JSONMode {
			e.SupportedParameters = append(e.SupportedParameters, "response_format", "structured_outputs")
		}
		out.Data = append(out.Data, e)
	}
	names := make([]string, 0, len(s.routes))
	for n := range s.routes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out.Data = append(out.Data, model{ID: n, Object: "model", OwnedBy: "costwise", Kind: "route"})
	}
	writeJSONBody(w, http.StatusOK, out)
}

// orText is a catalog's modalities, text when it lists none.
func orText(mods []string) []string {
	if len(mods) == 0 {
		return []string{"text"}
	}
	return mods
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with OpenAI's error format.
func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSONBody(w, status, ErrorBody{Error: ErrorDetail{Message: msg, Type: typ, Code: code}})
}

// readBody reads a size-limited body; it answers 413 or 400 itself and
// returns false on failure.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large",
				fmt.Sprintf("the request body is larger than %d bytes; send a shorter prompt or smaller pictures (the operator sets the limit with [server] max_body_bytes)", mbe.Limit))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_body", "reading the request body: "+err.Error())
		return nil, false
	}
	return body, true
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// metaInt reads an int from GenerationInfo.
func metaInt(info map[string]any, key string) int {
	switch v := info[key].(type) {
	case int:
		return v
	case int64:
		return int(v)
	case float64:
		return int(v)
	}
	return 0
}

func metaString(info map[string]any, key string) string {
	s, _ := info[key].(string)
	return s
}

// callOptionsFor returns the router options selecting the request's model.
func (s *Server) callOptionsFor(model string) (route string, opts []llms.CallOption, ok bool) {
	if _, isRoute := s.routes[model]; isRoute {
		return model, []llms.CallOption{executor.WithRoute(model)}, true
	}
	if _, isModel := s.cat.Lookup(model); isModel {
		return pinnedRoute, []llms.CallOption{executor.WithRoute(pinnedRoute), llms.WithModel(model)}, true
	}
	return "", nil, false
}

// classifierInCatalog checks that every model a classifier routes to is a
// catalog model.
func classifierInCatalog(cat *catalog.Catalog, c *cascade.Classifier) error {
	for _, m := range c.Models {
		if _, known := cat.Lookup(m); !known {
			return fmt.Errorf("its classifier routes to %q, which is not in the catalog; train it on catalog IDs (costwise eval --map NAME=ID)", m)
		}
	}
	return nil
}
