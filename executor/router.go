package executor

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/estimator/tokens"
	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/executor/provider"
	"github.com/costwise/costwise/graph"
)

// A Router is a langchaingo [llms.Model] that routes every call to the
// cheapest catalog model meeting the call's route, so that any langchaingo
// chain or agent runs through costwise.
//
// Per call it:
//
//  1. reads the messages: system messages are joined into one system
//     prompt; the others are sent as a conversation of user and assistant
//     messages in their order (a tool result as a user message that begins
//     "[tool]"); the task is classified and the prompt counted on the
//     conversation as one "[user]" / "[assistant]" transcript;
//  2. decides the task kind: the call's metadata key [MetaTask] (see
//     [WithTask]), else the route's Task, else [ClassifyTask] of the text;
//  3. picks the route: the one named by [MetaRoute] (see [WithRoute]), else
//     the first of RouterOptions.Routes whose Task is the call's task, else
//     RouterOptions.Default;
//  4. prices every catalog model with [catalog.Price] for the estimated
//     prompt (o200k_base count, exact for OpenAI tokenizers, times the
//     model's token ratio otherwise, plus chat framing) and the expected
//     output (the task's [estimator.DefaultOutputTokens], at most the
//     call's MaxTokens), keeps those that pass the route (model globs,
//     providers, quality for the task >= MinQuality, context window, text
//     input and output, complete prices, a configured provider, JSON mode
//     when asked, worst-case cost within MaxCostUSD), and builds a ladder:
//     the cheapest first, then the others by quality, highest first, at
//     most RouterOptions.MaxRungs rungs;
//  5. climbs the ladder as the executor does: transient failures are
//     retried on the same model with exponential backoff and full jitter
//     (at least Retry-After); then the next rung. An answer rejected by the
//     route's Validate rule, or not valid JSON in JSON mode, escalates at
//     once; a context-length error skips to a rung with a larger window; an
//     authentication error skips the provider's remaining rungs; any other
//     error moves to the next rung;
//  6. reserves each attempt's worst-case cost (prompt upper band, output
//     cap) from the request's budget (MaxCostUSD) and the router's daily
//     budget before sending it, and settles the actual cost after, so
//     concurrent calls never overspend either budget by more than the
//     settlement error of the calls in flight. A rung that no longer fits
//     what is left of the request's cap is skipped (a cheaper one below
//     may fit); a call the daily budget refuses ends the request with
//     [*ErrBudgetExhausted];
//  7. records the request in the ledger, if a recorder is given.
//
// # Streaming
//
// A call with llms.WithStreamingFunc streams from the rung being tried:
// the provider call asks for server-sent events and every chunk goes to
// the streaming function as it arrives (after the WithStreamStart
// function, told the rung's model). A rung that fails before its first
// chunk is retried and escalated as above; once a chunk has gone out the
// answer cannot be withdrawn, so a failure ends the call with
// [ErrStreamBroken]. Routes with Validate, JSON mode and stop words need
// the whole answer before accepting it: such calls are buffered, and the
// streaming function gets the accepted answer in one piece.
//
// # Ledger
//
// Each request is one run of one node, durable as a workflow run: the run
// is named RouterWorkflowPrefix + the route's name, its node
// [RouterNodeID] carries the task kind (so the estimator's learn package
// and the planner's reroute statistics see routed calls like any node), and
// every attempt is announced before it is sent and recorded after, the
// accepted one together with the node's result. A request therefore never
// needs resuming: a crash leaves at most one in-flight call, which
// [ledger.Ledger.ResumeRun] charges at its reservation like any other.
// Per-request runs rather than one run per session keep each request's
// spend, escalations and status separate, and leave nothing open when the
// process ends. These guarantees hold for a synchronous recorder such as
// [LedgerRecorder]; an [AsyncRouterRecorder] takes the writes off the
// request's path and trades them for a bounded loss on a crash (see it).
//
// # Daily budget
//
// RouterOptions.DailyBudgetNano is enforced per UTC day. On the first call
// of a day the router reads that day's spend back from the recorder
// ([RouterRecorder.SpentSince]), so a restarted process continues where
// the previous one stopped.
//
// # Response
//
// The answer is the single choice of the [llms.ContentResponse]. Its
// GenerationInfo holds langchaingo's usual PromptTokens, CompletionTokens
// and TotalTokens (int) for the accepted call, and the costwise keys
// [InfoModel] (catalog id), [InfoCostUSD] (float64) and [InfoCostNano]
// (int64) — what the whole request cost, failed paid attempts included —
// [InfoEscalations] (int), [InfoAttempts] (int), [InfoTask], [InfoRoute]
// and, when recorded, [InfoRunID].
//
// [Router.Plan] shows the decision (task, route, ladder with predicted
// and reserved costs, and why every other model was left out) without
// calling anything.
//
// Tools: a call with llms.WithTools goes only to models the catalog lists
// with tools = true; the tools' definitions are counted in the prompt;
// assistant messages' tool calls and tool results are sent as such; the
// model's tool calls come back in the choice's ToolCalls (the route's
// validate rule and JSON mode judge text answers only); such a call is
// not streamed from the provider (the streaming function gets the text,
// if any, in one piece) and takes no cascade.
//
// Images: llms.ImageURLContent (a data: or http(s) URL, with OpenAI's
// detail) and image llms.BinaryContent parts of user messages go only to
// models the catalog lists with image input, each priced with the model's
// image rule: at its size when the router can read it (a PNG, JPEG or GIF
// data: URL), else at the most the rule bills for a picture a provider
// keeps. OpenAI-protocol providers get URLs as they are; the others take
// data: URLs only (costwise fetches no URL for a caller). With Clients
// that know each provider's kind (a *provider.Config), models whose
// provider would refuse the call (provider.Kind.Refuses: a remote picture
// off OpenAI's protocol, a tool choice Anthropic's and Gemini's clients
// drop, tools through Ollama) are left out when the call is ranked
// (reason provider_kind); other Clients let such a rung fail unsent, and
// the ladder moves on.
//
// Structured output: a call with [WithJSONSchema] is in JSON mode, and an
// answer that does not match the schema escalates like one a validate rule
// rejects (see WithJSONSchema).
//
// Limits: text and images only (audio and other binary parts are refused
// with an error; so are the deprecated llms.WithFunctions); stop words are applied to the answer locally (the provider is
// not asked to stop, so the tokens after a stop word are paid for); a
// streaming function receives the whole answer as one chunk; one choice
// per call. A Router is safe for concurrent use.
type Router struct {
	cat     *catalog.Catalog
	clients Clients
	rec     RouterRecorder
	opts    RouterOptions
	def     *route
	byName  map[string]*route
	order   []*route

	mu    sync.Mutex
	rng   *rand.Rand
	day   time.Time
	daily *Budget
}

// Route is a routing policy: which models may answer a call and how much
// one request may cost.
type Route struct {
	// Name identifies the route (WithRoute) and names its ledger runs.
	Name string
	// Task is the task kind of the calls this route serves: a call whose
	// task is Task takes this route, and a call routed here by name without
	// a task of its own is of this kind. "" serves no task by itself.
	Task string
	// MinQuality is the lowest catalog quality score, for the call's task,
	// that a model may have (0..1). A model without a score for the task or
	// "default" is admitted only when MinQuality is 0.
	MinQuality float64
	// Models are path.Match globs over catalog ids ("openai/*"); empty
	// admits every model.
	Models []string
	// MaxCostUSD caps one request: every attempt, escalations included, is
	// reserved from it, and a model whose single worst-case call exceeds it
	// is never tried. 0 = no cap.
	MaxCostUSD float64
	// Providers admits only models of these providers; empty admits all.
	Providers []string
	// Validate is an optional rule over the answer, in the syntax of a
	// workflow node's validate (an expr over output, with json_valid, len,
	// trim, contains, matches ...). A rejected answer escalates.
	//
	// A streamed call (llms.WithStreamingFunc) on a route with Validate is
	// buffered: the answer is checked first and passed to the streaming
	// function in one piece, because text already sent cannot be
	// withdrawn. The same holds for JSON mode and stop words.
	Validate string
	// Classifier, when set, picks the first rung from the prompt: the
	// cheapest model it predicts will answer well enough
	// (cascade.Classifier, trained by `costwise eval --classifier` on
	// outcome tables whose models are catalog IDs). The ladder then climbs
	// the other admitted models, best first. A pick the route does not
	// admit falls back to the cheapest admitted model.
	Classifier PromptClassifier
}

// PromptClassifier chooses a model for a prompt.
type PromptClassifier interface {
	Route(prompt string) (model string, probs []float64)
}

// RouterOptions tune a Router.
type RouterOptions struct {
	// NoConversationCache stops the router from asking Anthropic to cache
	// a conversation that is a follow-up (two user messages or more): by
	// default such a call puts a cache breakpoint on its last user message
	// (provider.Request.CacheLastTurn), so that the next turn reads the
	// whole prefix at the cache-read rate; the call itself pays the
	// cache-write rate on what is new, and is reserved at it.
	NoConversationCache bool
	// Simulated marks every routed request's run as simulated in the
	// ledger (the clients are an executor.Simulator): spend read-backs
	// and learning leave them out.
	Simulated bool
	// Default serves calls that name no route and whose task no route of
	// Routes serves. Its zero value admits every model; its name defaults
	// to "default".
	Default Route
	// Routes are selected by name (WithRoute) or by task.
	Routes []Route
	// DailyBudgetNano caps the router's spend per UTC day, in nano-USD;
	// 0 = none.
	DailyBudgetNano int64
	// Cascades are fitted cascades (costwise eval --save-cascade) a call
	// of their task may use: when one's expected cost (each stage's price
	// for the call weighted by its measured reach) is below the cheapest
	// model that meets the route and its measured quality meets the
	// route's min_quality, the ladder starts with its stages, each but the
	// last gated by its confidence threshold. Its stages need not meet
	// min_quality themselves. Signals: logprob, validate (the route's
	// validate rule) and self_check (a short second call, paid and
	// recorded). A call whose route picks by classifier ignores them.
	Cascades    []estimator.Cascade
	MaxRetries  int           // retries of a transient failure on one model (default 3; negative = none)
	BackoffBase time.Duration // first retry delay (default 500 ms), doubled each retry, with full jitter
	BackoffMax  time.Duration // cap on one delay (default 30 s)
	MaxRungs    int           // models in a call's ladder (default 3)
	Seed        uint64        // jitter seed
	// Now is the clock that decides the budget day (default time.Now).
	Now func() time.Time
}

func (o RouterOptions) withDefaults() RouterOptions {
	retryDefaults(&o.MaxRetries, &o.BackoffBase, &o.BackoffMax)
	if o.MaxRungs <= 0 {
		o.MaxRungs = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Default.Name == "" {
		o.Default.Name = "default"
	}
	return o
}

// Metadata keys a call may set (llms.WithMetadata, or WithTask/WithRoute).
const (
	MetaTask  = "costwise_task"  // the call's task kind, e.g. "code"
	MetaRoute = "costwise_route" // the name of the route to take
)

// GenerationInfo keys the Router adds to its answer.
const (
	InfoModel       = "costwise_model"         // catalog id of the model that answered (string)
	InfoCostUSD     = "costwise_cost_usd"      // cost of the whole request in USD (float64)
	InfoCostNano    = "costwise_cost_nano_usd" // cost of the whole request in nano-USD (int64)
	InfoEscalations = "costwise_escalations"   // rungs climbed (int)
	InfoAttempts    = "costwise_attempts"      // provider calls made, retries included (int)
	InfoTask        = "costwise_task"          // the task kind used (string)
	InfoRoute       = "costwise_route"         // the route taken (string)
	InfoRunID       = "costwise_run_id"        // the ledger run of the request (string; absent without a recorder)
)

// RouterWorkflowPrefix starts the workflow name of every routed request's
// ledger run; RouterNodeID is the id of its one node.
const (
	RouterWorkflowPrefix = "router:"
	RouterNodeID         = "call"
)

// WithTask sets the call's task kind (metadata key MetaTask), keeping any
// other metadata.
func WithTask(task string) llms.CallOption { return withMeta(MetaTask, task) }

// WithRoute names the route a call takes (metadata key MetaRoute), keeping
// any other metadata.
func WithRoute(name string) llms.CallOption { return withMeta(MetaRoute, name) }

// MetaOwner is the metadata key of WithOwner's name.
const MetaOwner = "costwise_owner"

// WithOwner records the call's run as owner's (RoutedCall.Owner): the
// gateway passes the API key's name, so that the key's day of spend can be
// read back from the ledger after a restart.
func WithOwner(owner string) llms.CallOption { return withMeta(MetaOwner, owner) }

// MetaLogProbs is the metadata key of WithLogProbs's number of
// alternatives.
const MetaLogProbs = "costwise_logprobs"

// InfoLogProbs is the GenerationInfo key of the answer's token
// log-probabilities ([]provider.TokenLogProb), set when the call asked for
// them (WithLogProbs) and the model that answered gave them: OpenAI-protocol
// providers, for calls that are not streamed.
const InfoLogProbs = "costwise_logprobs"

// WithLogProbs asks for the answer's token log-probabilities with top
// alternatives per token (0..20); see InfoLogProbs.
func WithLogProbs(top int) llms.CallOption { return withMeta(MetaLogProbs, min(max(top, 0), 20)) }

// MetaSampling is the metadata key of WithSampling's settings.
const MetaSampling = "costwise_sampling"

// WithSampling sets a call's sampling parameters exactly: a nil field is
// unset, a zero one is sent as zero. Without it the router takes
// llms.WithTopP, WithSeed, WithFrequencyPenalty and WithPresencePenalty,
// where zero means unset. Each goes to the providers that take it (see
// provider.Sampling).
func WithSampling(s provider.Sampling) llms.CallOption { return withMeta(MetaSampling, s) }

// samplingOf is the call's sampling: WithSampling's, else langchaingo's
// options that are set.
func samplingOf(co *llms.CallOptions) provider.Sampling {
	if s, ok := co.Metadata[MetaSampling].(provider.Sampling); ok {
		return s
	}
	var s provider.Sampling
	if co.TopP != 0 {
		s.TopP = &co.TopP
	}
	if co.Seed != 0 {
		s.Seed = &co.Seed
	}
	if co.FrequencyPenalty != 0 {
		s.FrequencyPenalty = &co.FrequencyPenalty
	}
	if co.PresencePenalty != 0 {
		s.PresencePenalty = &co.PresencePenalty
	}
	return s
}

// MetaStreamStart is the metadata key of WithStreamStart's function.
const MetaStreamStart = "costwise_stream_start"

// StreamStart describes the rung whose answer a streamed call is about to
// pass to its streaming function: from then on the call cannot escalate.
type StreamStart struct {
	Model       string // catalog id of the rung streaming
	Escalations int    // rungs climbed before it
	RunID       string // ledger run id ("" without a recorder)
}

// WithStreamStart sets a function the router calls once, just before the
// first chunk of a streamed call reaches the streaming function (a
// gateway sends its response headers there). It is not called when no
// text is streamed.
func WithStreamStart(fn func(StreamStart)) llms.CallOption { return withMeta(MetaStreamStart, fn) }

// ErrStreamBroken is returned (wrapped) when a streamed call failed after
// its first chunk reached the streaming function: the text sent cannot be
// withdrawn, so the router does not escalate.
var ErrStreamBroken = errors.New("the stream broke after its first chunk; a streamed answer cannot escalate")

// streamState follows one streamed call through the ladder.
type streamState struct {
	fn      func(context.Context, []byte) error
	start   func(StreamStart)
	runID   string
	started bool // a chunk reached fn: no more escalation
}

// begin reports the rung to the stream-start function once.
func (ss *streamState) begin(model string, esc int) {
	if ss.started {
		return
	}
	ss.started = true
	if ss.start != nil {
		ss.start(StreamStart{Model: model, Escalations: esc, RunID: ss.runID})
	}
}

func withMeta(key string, value any) llms.CallOption {
	return func(o *llms.CallOptions) {
		m := make(map[string]any, len(o.Metadata)+1)
		for k, v := range o.Metadata {
			m[k] = v
		}
		m[key] = value
		o.Metadata = m
	}
}

// RoutedCall describes a request about to be recorded.
type RoutedCall struct {
	// ID is the run id to use; "" lets the recorder make one.
	ID           string
	Route        string
	Task         string
	PredictedUSD float64 // expected cost on the first rung
	BudgetNano   int64   // the route's per-request cap (0 = none)
	// Owner is who the request is charged to (WithOwner; the gateway's API
	// key), recorded with its run ("" for none).
	Owner string
	// Simulated marks the run as a simulation (RouterOptions.Simulated).
	Simulated bool
}

// RouterRecorder persists routed requests: a Recorder for the attempts and
// the node, plus the run around them and the day's spend. Every method must
// be durable when it returns. [LedgerRecorder] implements it.
type RouterRecorder interface {
	Recorder
	// CreateCall records a new one-node run for a request and returns its id.
	CreateCall(c RoutedCall) (runID string, err error)
	// FinishRun sets the run's final status (StatusSucceeded, StatusFailed
	// or StatusBudgetExhausted).
	FinishRun(runID, status string) error
	// SpentSince returns what routed requests created at or after since
	// have spent, in nano-USD.
	SpentSince(since time.Time) (int64, error)
}

// CreateCall records a routed request as a run of one node.
func (r LedgerRecorder) CreateCall(c RoutedCall) (string, error) {
	nr, err := routedNewRun(c)
	if err != nil {
		return "", err
	}
	return r.L.CreateRun(nr)
}

// routedNewRun is the ledger run of a routed request: workflow
// RouterWorkflowPrefix + route, inputs {"route", "task"}, one planned node
// RouterNodeID.
func routedNewRun(c RoutedCall) (ledger.NewRun, error) {
	inputs, err := json.Marshal(struct {
		Route string `json:"route"`
		Task  string `json:"task"`
	}{c.Route, c.Task})
	if err != nil {
		return ledger.NewRun{}, err
	}
	return ledger.NewRun{ID: c.ID, WorkflowName: RouterWorkflowPrefix + c.Route, WorkflowFile: "(router)", Owner: c.Owner, Simulated: c.Simulated,
		Inputs: inputs, PredictedMeanUSD: c.PredictedUSD, BudgetMaxNano: c.BudgetNano,
		Nodes: []ledger.PlannedNode{{ID: RouterNodeID, Task: c.Task, PredictedCostUSD: c.PredictedUSD}}}, nil
}

// FinishRun sets a run's final status.
func (r LedgerRecorder) FinishRun(runID, status string) error {
	return r.L.FinishRun(runID, ledger.RunStatus(status))
}

// SpentBy sums the spend of owner's runs (RoutedCall.Owner, and workflow
// runs recorded with that owner) created at or after since
// (ledger.Ledger.SpentBy); see OwnerSpend.
func (r LedgerRecorder) SpentBy(owner string, since time.Time) (int64, error) {
	return r.L.SpentBy(owner, since)
}

// OwnerSpend is implemented by recorders that can read back what an owner
// (WithOwner) spent: LedgerRecorder, and the asynchronous and synchronous
// recorders around it. A gateway reads a key's day from it after a restart.
type OwnerSpend interface {
	SpentBy(owner string, since time.Time) (int64, error)
}

// SpentSince sums the spend of the router's runs created at or after since
// (ledger.Ledger.SpentSince).
func (r LedgerRecorder) SpentSince(since time.Time) (int64, error) {
	return r.L.SpentSince(RouterWorkflowPrefix, since)
}

var _ RouterRecorder = LedgerRecorder{}

// route is a Route with its rule compiled.
type route struct {
	Route
	validate *OutputRule
	capNano  int64
}

// NewRouter returns a router over the catalog's models, calling providers
// through clients. rec may be nil (nothing is persisted; the daily budget
// then starts at 0 in each process). It checks every route and names the
// route and field of any mistake.
func NewRouter(cat *catalog.Catalog, clients Clients, rec RouterRecorder, opts RouterOptions) (*Router, error) {
	if cat == nil || clients == nil {
		return nil, errors.New("router: a catalog and provider clients are required")
	}
	if opts.DailyBudgetNano < 0 {
		return nil, fmt.Errorf("router: daily budget %d nano-USD is negative; use 0 for none", opts.DailyBudgetNano)
	}
	for k := range opts.Cascades {
		if err := opts.Cascades[k].Check(); err != nil {
			return nil, fmt.Errorf("router: cascades[%d] (%s): %w", k, opts.Cascades[k].ID(), err)
		}
	}
	opts = opts.withDefaults()
	r := &Router{cat: cat, clients: clients, rec: rec, opts: opts, byName: map[string]*route{},
		rng: rand.New(rand.NewPCG(opts.Seed, 17))}
	var err error
	if r.def, err = r.compile(opts.Default, "default route"); err != nil {
		return nil, err
	}
	r.byName[r.def.Name] = r.def
	for i, rt := range opts.Routes {
		c, err := r.compile(rt, fmt.Sprintf("routes[%d]", i))
		if err != nil {
			return nil, err
		}
		if _, dup := r.byName[c.Name]; dup {
			return nil, fmt.Errorf("router: routes[%d]: name %q is used twice; give each route its own name", i, c.Name)
		}
		r.byName[c.Name] = c
		r.order = append(r.order, c)
	}
	return r, nil
}

func (r *Router) compile(rt Route, where string) (*route, error) {
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("router: %s %q: %s: %s", where, rt.Name, field, fmt.Sprintf(format, a...))
	}
	if strings.TrimSpace(rt.Name) == "" {
		return nil, fmt.Errorf("router: %s: name is empty; name every route", where)
	}
	if rt.Task != "" && !r.knownTask(rt.Task) {
		return nil, bad("task", "unknown task kind %q; use one of %s", rt.Task, strings.Join(catalog.TaskKinds, ", "))
	}
	if !(rt.MinQuality >= 0 && rt.MinQuality <= 1) {
		return nil, bad("min_quality", "%v is not between 0 and 1", rt.MinQuality)
	}
	if !(rt.MaxCostUSD >= 0) || math.IsInf(rt.MaxCostUSD, 0) {
		return nil, bad("max_cost_usd", "%v is not a finite amount >= 0; use 0 for no cap", rt.MaxCostUSD)
	}
	for i, g := range rt.Models {
		if _, err := path.Match(g, ""); err != nil {
			return nil, bad(fmt.Sprintf("models[%d]", i), "bad glob %q: %v", g, err)
		}
	}
	c := &route{Route: rt, capNano: int64(math.Round(rt.MaxCostUSD * 1e9))}
	if rt.Validate != "" {
		v, err := CompileOutputRule(rt.Validate)
		if err != nil {
			return nil, bad("validate", "does not compile: %v", err)
		}
		c.validate = v
	}
	return c, nil
}

// knownTask reports whether the task is a standard kind or one the catalog
// scores.
func (r *Router) knownTask(task string) bool {
	if slices.Contains(catalog.TaskKinds, task) {
		return true
	}
	for _, m := range r.cat.Models() {
		if _, ok := m.Quality[task]; ok {
			return true
		}
	}
	return false
}

// RouteCandidate is one rung of a call's ladder.
type RouteCandidate struct {
	Model        string  // catalog id
	Provider     string  // provider name
	Quality      float64 // catalog score for the call's task
	InputTokens  int64   // estimated prompt tokens for this model, framing included
	MaxTokens    int     // output cap sent with the call
	PredictedUSD float64 // expected cost: estimated prompt, expected output
	ReserveNano  int64   // worst case reserved before the call: prompt upper band, MaxTokens
	// Cascade, Signal and Threshold are set on a fitted cascade's stages
	// that may hand on (RouterOptions.Cascades): the answer stands when its
	// confidence (Signal) is at least Threshold, else the next rung runs.
	Cascade   string
	Signal    string
	Threshold float64

	model *catalog.Model
}

// RouteRejection says why a catalog model is not in a call's ladder.
type RouteRejection struct {
	Model  string
	Reason string // short code: models, providers, deprecated, modality, quality, context_window, unpriced, cap, provider_unavailable, provider_kind, json_mode, tools, pinned, tokenizer
	Detail string
}

// RoutePlan is the routing decision for one call.
type RoutePlan struct {
	Route      string
	Task       string
	TaskSource string // "metadata", "route" or "heuristic"
	// PickedBy says how the first rung was chosen: "cost" (the cheapest
	// admitted model), "classifier" or "cascade"; Pick is the classifier's
	// choice ("" without one), admitted or not.
	PickedBy string
	Pick     string
	// Cascade is the fitted cascade whose stages head the ladder
	// (PickedBy "cascade"); "" otherwise.
	Cascade string
	// PredictedUSD is the call's expected cost: the first rung's, or for a
	// cascade its stages' weighted by their measured reach.
	PredictedUSD   float64
	PromptTokens   int   // o200k_base tokens of the system prompt and the conversation as one text
	ExpectedOutput int   // output tokens the ranking assumes
	CapNano        int64 // the route's per-request cap (0 = none)
	Ladder         []RouteCandidate
	Rejected       []RouteRejection
}

// Plan returns the routing decision GenerateContent would take for these
// messages and options, without calling anything.
func (r *Router) Plan(messages []llms.MessageContent, options ...llms.CallOption) (*RoutePlan, error) {
	rc, err := r.prepare(messages, options)
	if err != nil {
		return nil, err
	}
	return rc.plan, nil
}

// A PreparedCall is a call the router has planned but not sent: the
// messages flattened, the task and route decided, the prompt counted and
// the ladder built. [Router.Prepare] makes one; [Router.Execute] sends it,
// so a caller that inspects the plan first (an HTTP gateway reserving a
// key's budget) does not tokenize and rank the prompt twice.
type PreparedCall struct{ rc *routedCall }

// Plan is the routing decision the call will follow. Treat it as read-only.
func (p *PreparedCall) Plan() *RoutePlan { return p.rc.plan }

// Prepare plans a call as GenerateContent would, without calling anything.
func (r *Router) Prepare(messages []llms.MessageContent, options ...llms.CallOption) (*PreparedCall, error) {
	rc, err := r.prepare(messages, options)
	if err != nil {
		return nil, err
	}
	return &PreparedCall{rc: rc}, nil
}

// Execute sends a prepared call: the same as GenerateContent with the
// messages and options given to Prepare. A PreparedCall is used once.
func (r *Router) Execute(ctx context.Context, p *PreparedCall) (*llms.ContentResponse, error) {
	if p == nil || p.rc == nil {
		return nil, errors.New("router: Execute needs a call from Prepare")
	}
	return r.execute(ctx, p.rc)
}

// routedCall is one prepared call.
type routedCall struct {
	plan         *RoutePlan
	route        *route
	system, text string          // text: the conversation as one text
	turns        []provider.Turn // the conversation; nil for one user message (text)
	schema       *answerSchema   // WithJSONSchema's, or nil
	cacheConv    bool            // ask for a cache breakpoint on the last user message
	co           llms.CallOptions
}

func (r *Router) prepare(messages []llms.MessageContent, options []llms.CallOption) (*routedCall, error) {
	var co llms.CallOptions
	for _, o := range options {
		if o != nil {
			o(&co)
		}
	}
	switch {
	case len(co.Functions) > 0:
		return nil, errors.New("router: functions (llms.WithFunctions) are not supported; give them as tools (llms.WithTools)")
	case co.N > 1 || co.CandidateCount > 1:
		return nil, errors.New("router: one choice per call only; leave N and CandidateCount unset")
	case co.MaxTokens < 0:
		return nil, fmt.Errorf("router: max tokens %d is negative", co.MaxTokens)
	}
	system, turns, text, err := flatten(messages)
	if err != nil {
		return nil, err
	}
	schema, err := schemaOf(co.Metadata)
	if err != nil {
		return nil, err
	}
	if schema != nil {
		co.JSONMode = true
	}
	full := system + "\n" + text // as classified
	counted := full              // as counted: with the tools' definitions
	if len(co.Tools) > 0 {
		defs, err := json.Marshal(co.Tools)
		if err != nil {
			return nil, fmt.Errorf("router: the tools cannot be encoded: %w", err)
		}
		counted += "\n" + string(defs)
	}
	task, err := metaString(co.Metadata, MetaTask)
	if err != nil {
		return nil, err
	}
	routeName, err := metaString(co.Metadata, MetaRoute)
	if err != nil {
		return nil, err
	}
	var rt *route
	if routeName != "" {
		var ok bool
		if rt, ok = r.byName[routeName]; !ok {
			return nil, fmt.Errorf("router: metadata %s names route %q, which is not configured; routes: %s", MetaRoute, routeName, r.routeNames())
		}
	}
	source := "metadata"
	switch {
	case task != "":
		if !r.knownTask(task) {
			return nil, fmt.Errorf("router: metadata %s is %q, an unknown task kind; use one of %s", MetaTask, task, strings.Join(catalog.TaskKinds, ", "))
		}
	case rt != nil && rt.Task != "":
		task, source = rt.Task, "route"
	default:
		task, source = ClassifyTask(full), "heuristic"
	}
	if rt == nil {
		rt = r.def
		for _, c := range r.order {
			if c.Task == task {
				rt = c
				break
			}
		}
	}
	cacheConv := !r.opts.NoConversationCache && followUp(turns)
	plan, err := r.rank(rt, task, full, counted, &co, callShape{imgs: imagesOf(turns), cacheWrite: cacheConv,
		probe: provider.Request{Turns: turns, Tools: co.Tools, ToolChoice: co.ToolChoice}})
	if err != nil {
		return nil, err
	}
	plan.TaskSource = source
	return &routedCall{plan: plan, route: rt, system: system, text: text, turns: turns, schema: schema, cacheConv: cacheConv, co: co}, nil
}

func (r *Router) routeNames() string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func metaString(meta map[string]any, key string) (string, error) {
	v, ok := meta[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("router: metadata %s is a %T; give a string", key, v)
	}
	return strings.TrimSpace(s), nil
}

// flatten reads langchaingo messages as a system prompt and a
// conversation: turns, its messages (nil when it is one user message), and
// text, the conversation as one text (that message, or a "[user]" /
// "[assistant]" transcript), as it is classified, counted and checked.
func flatten(messages []llms.MessageContent) (system string, turns []provider.Turn, text string, err error) {
	type msg struct {
		tag, body string // tag: user, assistant or tool
		calls     []llms.ToolCall
		result    *llms.ToolCallResponse // a tool message's, when it names its call
		images    []provider.Image       // a user message's
	}
	var sys []string
	var conv []msg
	for i, m := range messages {
		var b strings.Builder
		var cur msg
		for j, p := range m.Parts {
			switch p := p.(type) {
			case llms.TextContent:
				b.WriteString(p.Text)
			case llms.ToolCall:
				if m.Role != llms.ChatMessageTypeAI || p.FunctionCall == nil {
					return "", nil, "", fmt.Errorf("router: message %d part %d is a tool call outside an assistant message, or without its function", i, j)
				}
				cur.calls = append(cur.calls, p)
			case llms.ToolCallResponse:
				b.WriteString(p.Content)
				if p.ToolCallID != "" {
					r := p
					cur.result = &r
				}
			case llms.ImageURLContent:
				cur.images = append(cur.images, provider.Image{URL: p.URL, Detail: p.Detail})
			case llms.BinaryContent:
				if !strings.HasPrefix(p.MIMEType, "image/") {
					return "", nil, "", fmt.Errorf("router: message %d part %d is %s data; the router sends text, images and tool calls only", i, j, p.MIMEType)
				}
				cur.images = append(cur.images, provider.Image{URL: "data:" + p.MIMEType + ";base64," + base64.StdEncoding.EncodeToString(p.Data)})
			default:
				return "", nil, "", fmt.Errorf("router: message %d part %d is %T; the router sends text, images and tool calls only", i, j, p)
			}
		}
		if len(cur.images) > 0 && (m.Role == llms.ChatMessageTypeAI || m.Role == llms.ChatMessageTypeSystem ||
			m.Role == llms.ChatMessageTypeTool || m.Role == llms.ChatMessageTypeFunction) {
			return "", nil, "", fmt.Errorf("router: message %d: images go in user messages only", i)
		}
		cur.body = b.String()
		switch m.Role {
		case llms.ChatMessageTypeSystem:
			sys = append(sys, cur.body)
			continue
		case llms.ChatMessageTypeAI:
			cur.tag = "assistant"
		case llms.ChatMessageTypeTool, llms.ChatMessageTypeFunction:
			cur.tag = "tool"
		default:
			cur.tag = "user"
		}
		conv = append(conv, cur)
	}
	system = strings.Join(sys, "\n\n")
	switch {
	case len(conv) == 0:
		return "", nil, "", errors.New("router: no user message to send")
	case len(conv) == 1 && conv[0].tag == "user" && len(conv[0].images) == 0:
		text = conv[0].body
	case len(conv) == 1 && conv[0].tag == "user": // one user message with pictures
		text = conv[0].body + strings.Repeat("\n[image]", len(conv[0].images))
		turns = []provider.Turn{{Role: provider.TurnUser, Text: conv[0].body, Images: conv[0].images}}
	default:
		parts := make([]string, len(conv))
		turns = make([]provider.Turn, len(conv))
		for i, m := range conv {
			parts[i] = "[" + m.tag + "]\n" + m.body
			for _, c := range m.calls {
				parts[i] += "\n" + c.FunctionCall.Name + c.FunctionCall.Arguments
			}
			parts[i] += strings.Repeat("\n[image]", len(m.images))
			switch {
			case m.tag == "assistant":
				turns[i] = provider.Turn{Role: provider.TurnAssistant, Text: m.body, ToolCalls: m.calls}
			case m.tag == "tool" && m.result != nil:
				turns[i] = provider.Turn{Role: provider.TurnTool, Text: m.body, ToolCallID: m.result.ToolCallID, ToolName: m.result.Name}
			case m.tag == "tool": // no call to answer: sent as what the user reports
				turns[i] = provider.Turn{Role: provider.TurnUser, Text: parts[i]}
			default:
				turns[i] = provider.Turn{Role: provider.TurnUser, Text: m.body, Images: m.images}
			}
		}
		text = strings.Join(parts, "\n\n")
	}
	if strings.TrimSpace(text) == "" {
		return "", nil, "", errors.New("router: the messages hold no text to send")
	}
	return system, turns, text, nil
}

// rank prices every catalog model for the call and builds its ladder.
// full is the system prompt and the text joined by a newline, as a
// classifier reads them; counted is full with the tools' definitions, as
// the prompt is counted; shape is what else decides which models can take
// the call.
func (r *Router) rank(rt *route, task, full, counted string, co *llms.CallOptions, shape callShape) (*RoutePlan, error) {
	n200, err := tokens.Count(tokens.O200kBase, counted)
	if err != nil {
		return nil, fmt.Errorf("router: counting the prompt: %w", err)
	}
	mean, ok := estimator.DefaultOutputTokens[task]
	if !ok {
		mean = estimator.DefaultOutputTokens[graph.TaskDefault]
	}
	expected := int64(math.Ceil(mean))
	outCap := int64(math.Ceil(4 * mean)) // twice the task's p95 (2 x mean), as the executor reserves
	if co.MaxTokens > 0 {
		outCap = int64(co.MaxTokens)
		expected = min(expected, outCap)
	}
	plan := &RoutePlan{Route: rt.Name, Task: task, PromptTokens: n200, ExpectedOutput: int(expected), CapNano: rt.capNano}
	exact := map[tokens.Encoding]int{tokens.O200kBase: n200}
	var cands []RouteCandidate
	var weak map[string]RouteCandidate // usable models below min_quality: cascade stages only
	for _, m := range r.cat.Models() {
		c, reason, detail := r.admit(rt, m, task, co, counted, shape, exact, n200, expected, outCap)
		if reason != "" {
			plan.Rejected = append(plan.Rejected, RouteRejection{Model: m.ID, Reason: reason, Detail: detail})
			if reason == "quality" && c.model != nil && len(r.opts.Cascades) > 0 {
				if weak == nil {
					weak = map[string]RouteCandidate{}
				}
				weak[m.ID] = c
			}
			continue
		}
		cands = append(cands, c)
	}
	if len(cands) == 0 {
		return nil, noCandidate(plan)
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.PredictedUSD != b.PredictedUSD {
			return a.PredictedUSD < b.PredictedUSD
		}
		if a.Quality != b.Quality {
			return a.Quality > b.Quality
		}
		return a.Model < b.Model
	})
	plan.PickedBy = "cost"
	if rt.Classifier != nil {
		plan.Pick, _ = rt.Classifier.Route(full)
		if k := slices.IndexFunc(cands, func(c RouteCandidate) bool { return c.Model == plan.Pick }); k >= 0 {
			cands[0], cands[k] = cands[k], cands[0]
			plan.PickedBy = "classifier"
		}
	}
	if plan.PickedBy == "cost" && len(co.Tools) == 0 {
		if stages, usd, ok := r.cascadeFor(rt, task, expected, cands, weak); ok {
			plan.PickedBy, plan.Cascade, plan.PredictedUSD = "cascade", stages[0].Cascade, usd
			var rest []RouteCandidate
			for _, c := range cands {
				if !slices.ContainsFunc(stages, func(s RouteCandidate) bool { return s.Model == c.Model }) {
					rest = append(rest, c)
				}
			}
			sortByQuality(rest)
			plan.Ladder = append(stages, rest[:min(len(rest), r.opts.MaxRungs-1)]...)
			return plan, nil
		}
	}
	plan.PredictedUSD = cands[0].PredictedUSD
	rest := slices.Clone(cands[1:])
	sortByQuality(rest)
	plan.Ladder = append([]RouteCandidate{cands[0]}, rest[:min(len(rest), r.opts.MaxRungs-1)]...)
	return plan, nil
}

// sortByQuality orders rungs best first, then cheapest.
func sortByQuality(cs []RouteCandidate) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.Quality != b.Quality {
			return a.Quality > b.Quality
		}
		if a.PredictedUSD != b.PredictedUSD {
			return a.PredictedUSD < b.PredictedUSD
		}
		return a.Model < b.Model
	})
}

// cascadeFor returns the stages of the cheapest fitted cascade for the
// call when it is expected to cost less than the cheapest admitted model
// (cands[0]) and meets the route: its measured quality at least
// min_quality, a signal the router can read, every stage usable (admitted,
// or below min_quality only).
func (r *Router) cascadeFor(rt *route, task string, expected int64, cands []RouteCandidate, weak map[string]RouteCandidate) ([]RouteCandidate, float64, bool) {
	var best []RouteCandidate
	bestUSD := cands[0].PredictedUSD
	for k := range r.opts.Cascades {
		c := &r.opts.Cascades[k]
		switch {
		case c.Task != "" && c.Task != task, c.Quality < rt.MinQuality,
			c.Signal == estimator.SignalValidate && rt.validate == nil:
			continue
		}
		var stages []RouteCandidate
		usd := 0.0
		for i, id := range c.Models {
			s, ok := weak[id]
			if j := slices.IndexFunc(cands, func(x RouteCandidate) bool { return x.Model == id }); j >= 0 {
				s, ok = cands[j], true
			}
			if !ok {
				stages = nil
				break
			}
			s.Cascade = c.ID()
			if i < len(c.Thresholds) {
				s.Signal, s.Threshold = c.Signal, c.Thresholds[i]
			}
			usd += c.Reach[i] * s.PredictedUSD
			if c.Signal == estimator.SignalSelfCheck && i < len(c.Thresholds) {
				// One self-check per answer that may be handed on: the
				// prompt and the expected answer read back, a word out.
				in := s.InputTokens + expected + estimator.SelfCheckOverheadTokens
				usd += c.Reach[i] * catalog.Price(s.model, catalog.Usage{InputTokens: in, OutputTokens: estimator.SelfCheckOutputTokens}).TotalUSD
			}
			stages = append(stages, s)
		}
		if stages != nil && usd < bestUSD {
			best, bestUSD = stages, usd
		}
	}
	return best, bestUSD, best != nil
}

// admit prices model m for the call, or says why it is not a candidate.
func (r *Router) admit(rt *route, m *catalog.Model, task string, co *llms.CallOptions, counted string, shape callShape,
	exact map[tokens.Encoding]int, n200 int, expected, outCap int64) (RouteCandidate, string, string) {
	imgs := shape.imgs
	var none RouteCandidate
	if co.Model != "" && co.Model != m.ID && co.Model != apiName(m) {
		return none, "pinned", "the call asks for model " + co.Model
	}
	if len(rt.Models) > 0 && !slices.ContainsFunc(rt.Models, func(g string) bool { ok, _ := path.Match(g, m.ID); return ok }) {
		return none, "models", "not matched by " + strings.Join(rt.Models, ", ")
	}
	if len(rt.Providers) > 0 && !slices.Contains(rt.Providers, m.Provider) {
		return none, "providers", "provider " + m.Provider + " is not in " + strings.Join(rt.Providers, ", ")
	}
	if m.Deprecated {
		return none, "deprecated", "marked deprecated in the catalog"
	}
	if (len(m.Modalities) > 0 && !m.HasModality("text")) || (len(m.OutputModalities) > 0 && !slices.Contains(m.OutputModalities, "text")) {
		return none, "modality", "does not take and give text"
	}
	if co.JSONMode && !m.JSONMode {
		return none, "json_mode", "the call asks for JSON mode, which the catalog does not list for this model"
	}
	if len(co.Tools) > 0 && !m.Tools {
		return none, "tools", "the call offers tools, and the catalog does not list tool calling for this model"
	}
	var imgTok int64
	if len(imgs) > 0 {
		if !m.HasModality("image") {
			return none, "modality", "the call sends images, and the catalog does not list image input for this model"
		}
		n, err := imageTokens(m, imgs)
		if err != nil {
			return none, "modality", "pricing its images: " + err.Error()
		}
		imgTok = n
	}
	if kinds, ok := r.clients.(providerKinds); ok {
		if k, ok := kinds.KindOf(m.Provider); ok {
			if err := k.Refuses(shape.probe); err != nil {
				return none, "provider_kind", err.Error()
			}
		}
	}
	// Prompt tokens: exact for a published tokenizer, else o200k x ratio
	// with the provider's band.
	var in tokens.TokenCount
	if enc := tokens.Encoding(m.Tokenizer); enc != "" {
		n, ok := exact[enc]
		if !ok {
			var err error
			if n, err = tokens.Count(enc, counted); err != nil {
				return none, "tokenizer", err.Error()
			}
			exact[enc] = n
		}
		in = tokens.TokenCount{Tokens: n, Exact: true}
	} else {
		rule := tokens.RuleForProvider(m.Provider)
		if m.TokenRatio > 0 {
			rule.Ratio = m.TokenRatio
		}
		in = tokens.TokenCount{Tokens: int(math.Ceil(float64(n200)*rule.Ratio - 1e-9)), RelErr: rule.RelErr}
	}
	inTok, inHigh := int64(in.Tokens)+chatFraming+imgTok, int64(in.High())+chatFraming+imgTok
	out := outCap
	if m.MaxOutputTokens > 0 {
		out = min(out, m.MaxOutputTokens)
	}
	exp := min(expected, out)
	if m.ContextWindow > 0 {
		if inTok+exp > m.ContextWindow {
			return none, "context_window", fmt.Sprintf("about %d prompt + %d output tokens exceed its %d-token window", inTok, exp, m.ContextWindow)
		}
		out = max(1, min(out, m.ContextWindow-inHigh))
	}
	q, ok := m.QualityFor(task)
	if ok && inTok > estimator.LongContextTokens {
		if lc, ok := m.QualityFor(graph.TaskLongContext); ok && lc < q {
			q = lc
		}
	}
	// A model below the quality floor is rejected, but priced all the same
	// when it is otherwise usable and cascades are configured: it may still
	// be a cascade's cheap stage.
	var qReason, qDetail string
	switch {
	case !ok && rt.MinQuality > 0:
		qReason, qDetail = "quality", fmt.Sprintf("no quality score for %s or default (min_quality %v)", task, rt.MinQuality)
	case q < rt.MinQuality:
		qReason, qDetail = "quality", fmt.Sprintf("quality %.2f for %s is below min_quality %v", q, task, rt.MinQuality)
	}
	if qReason != "" && len(r.opts.Cascades) == 0 {
		return none, qReason, qDetail
	}
	cost := catalog.Price(m, catalog.Usage{InputTokens: inTok, OutputTokens: exp})
	if !cost.Complete() {
		return none, cmp.Or(qReason, "unpriced"), cmp.Or(qDetail, "unknown price for "+unknownList(cost))
	}
	ru := catalog.Usage{InputTokens: inHigh, OutputTokens: out}
	if cw := m.CacheWritePerMTok; shape.cacheWrite && cw.Known && cw.Value > m.InputPerMTok.Value {
		ru.CacheWriteTokens, ru.InputTokens = ru.InputTokens, 0
	}
	reserve := catalog.Price(m, ru).NanoUSD()
	if rt.capNano > 0 && reserve > rt.capNano {
		return none, cmp.Or(qReason, "cap"), cmp.Or(qDetail, fmt.Sprintf("a call may cost up to $%.6f, above max_cost_usd %v", nanoToUSD(reserve), rt.MaxCostUSD))
	}
	if _, err := r.clients.Client(m.Provider); err != nil {
		return none, cmp.Or(qReason, "provider_unavailable"), cmp.Or(qDetail, err.Error())
	}
	return RouteCandidate{Model: m.ID, Provider: m.Provider, Quality: q, InputTokens: inTok, MaxTokens: int(out),
		PredictedUSD: cost.TotalUSD, ReserveNano: reserve, model: m}, qReason, qDetail
}

// callShape is what, besides the prompt, decides which models can take a
// call: its pictures, and the request a rung would send (conversation,
// tools, tool choice) for provider.Kind.Refuses.
type callShape struct {
	imgs  []imageIn
	probe provider.Request
	// cacheWrite: the call asks for a cache breakpoint, so a model that
	// bills cache writes above its input rate is reserved at that rate.
	cacheWrite bool
}

// followUp reports whether a conversation is a follow-up: two user
// messages or more, so its prefix is likely to be sent again.
func followUp(turns []provider.Turn) bool {
	n := 0
	for _, t := range turns {
		if t.Role == provider.TurnUser {
			n++
		}
	}
	return n >= 2
}

// providerKinds is implemented by Clients that know each provider's kind
// (a *provider.Config): the router then leaves out, when it ranks, the
// models whose provider would refuse the call (provider.Kind.Refuses)
// instead of trying them.
type providerKinds interface {
	KindOf(provider string) (provider.Kind, bool)
}

// noCandidate explains an empty ladder: counts by reason and an example.
func noCandidate(p *RoutePlan) error {
	if len(p.Rejected) == 0 {
		return fmt.Errorf("router: route %q, task %s: the catalog has no models", p.Route, p.Task)
	}
	type agg struct {
		n       int
		example RouteRejection
	}
	by := map[string]*agg{}
	var keys []string
	for _, x := range p.Rejected {
		a := by[x.Reason]
		if a == nil {
			a = &agg{example: x}
			by[x.Reason] = a
			keys = append(keys, x.Reason)
		}
		a.n++
	}
	sort.Slice(keys, func(i, j int) bool {
		return by[keys[i]].n > by[keys[j]].n || (by[keys[i]].n == by[keys[j]].n && keys[i] < keys[j])
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		a := by[k]
		parts[i] = fmt.Sprintf("%d by %s (e.g. %s: %s)", a.n, k, a.example.Model, a.example.Detail)
	}
	return fmt.Errorf("router: route %q, task %s: no catalog model qualifies; rejected %s. Loosen the route (models, providers, min_quality, max_cost_usd) or configure more providers",
		p.Route, p.Task, strings.Join(parts, "; "))
}

// taskRule is one of ClassifyTask's rules: a regexp and literals one of
// which every match of it contains, so that a prompt holding none of them
// is passed over without running the regexp (regexps over alternations of
// words cost about 150 ns a byte; a substring search, a few ns).
type taskRule struct {
	re   *regexp.Regexp
	lits []string
}

func (r taskRule) match(s string) bool {
	for _, l := range r.lits {
		if strings.Contains(s, l) {
			return r.re.MatchString(s)
		}
	}
	return false
}

// ClassifyTask's rules: codeLine on the prompt, the others on the prompt
// in lower case.
var (
	codeLineRule = taskRule{regexp.MustCompile(`(?m)^\s*(def |func |class |import |package |#include|public static|fn |const \w+ = |SELECT .+ FROM )`),
		[]string{"def ", "func ", "class ", "import ", "package ", "#include", "public static", "fn ", "const ", "SELECT "}}
	codeWordsRule = taskRule{regexp.MustCompile(`\b(refactor|stack ?trace|traceback|compile error|unit tests?|write (a|the) (function|program|script|class|method)|regex|regular expression|sql query|segfault|debug this|golang|python|javascript|typescript|rust code)\b`),
		[]string{"refactor", "stack", "traceback", "compile error", "unit test", "function", "program", "script", "class", "method",
			"regex", "regular expression", "sql query", "segfault", "debug this", "golang", "python", "rust code"}}
	classifyRule = taskRule{regexp.MustCompile(`\b(classify|classification|categori[sz]e|label (this|the|each)|which (category|label)|sentiment|is this (spam|positive|negative)|answer (only )?(with )?yes or no)\b`),
		[]string{"classif", "categori", "label this", "label the", "label each", "which category", "which label", "sentiment",
			"is this spam", "is this positive", "is this negative", "yes or no"}}
	summaryRule = taskRule{regexp.MustCompile(`\b(summari[sz]e|summary|tl;?dr|key points)\b`),
		[]string{"summar", "tl;dr", "tldr", "key points"}}
	extractRule = taskRule{regexp.MustCompile(`\b(extract|pull out|list (all|every) (the )?(names|dates|entities|emails))\b`),
		[]string{"extract", "pull out", "list all", "list every"}}
)

// longContextBytes is the prompt size, in bytes, above which ClassifyTask
// says long_context: estimator.LongContextTokens at about 4 bytes a token.
const longContextBytes = 4 * estimator.LongContextTokens

// ClassifyTask guesses a prompt's task kind with plain rules, until a
// trained prompt classifier exists: a prompt over about
// estimator.LongContextTokens tokens is long_context; a code fence, a line
// that starts like code, or coding words give code; "classify", "label",
// "categorize", "sentiment" ... give classification; "summarize", "tl;dr"
// give summarization; "extract" gives extraction; anything else is
// default.
func ClassifyTask(prompt string) string {
	if len(prompt) > longContextBytes {
		return graph.TaskLongContext
	}
	lower := strings.ToLower(prompt)
	switch {
	case strings.Contains(prompt, "```") || codeLineRule.match(prompt) || codeWordsRule.match(lower):
		return graph.TaskCode
	case classifyRule.match(lower):
		return graph.TaskClassification
	case summaryRule.match(lower):
		return graph.TaskSummarization
	case extractRule.match(lower):
		return graph.TaskExtraction
	}
	return graph.TaskDefault
}

// Call implements llms.Model for a single text prompt.
func (r *Router) Call(ctx context.Context, prompt string, options ...llms.CallOption) (string, error) {
	return llms.GenerateFromSinglePrompt(ctx, r, prompt, options...)
}

// GenerateContent implements llms.Model: it routes the call (see Router),
// runs it through the ladder and returns the answer with its cost in
// GenerationInfo.
func (r *Router) GenerateContent(ctx context.Context, messages []llms.MessageContent, options ...llms.CallOption) (*llms.ContentResponse, error) {
	rc, err := r.prepare(messages, options)
	if err != nil {
		return nil, err
	}
	return r.execute(ctx, rc)
}

var _ llms.Model = (*Router)(nil)

// errRouterInvalid is an answer the route's rule or JSON mode rejected.
var errRouterInvalid = errors.New("invalid output")

// execute climbs the call's ladder and records the request.
func (r *Router) execute(ctx context.Context, rc *routedCall) (*llms.ContentResponse, error) {
	daily, err := r.dailyBudget()
	if err != nil {
		return nil, err
	}
	p := rc.plan
	reqBudget := NewBudget(rc.route.capNano, 0)
	var runID string
	if r.rec != nil {
		owner, _ := rc.co.Metadata[MetaOwner].(string)
		if runID, err = r.rec.CreateCall(RoutedCall{Route: p.Route, Task: p.Task, PredictedUSD: p.PredictedUSD, BudgetNano: rc.route.capNano, Owner: owner,
			Simulated: r.opts.Simulated}); err != nil {
			return nil, fmt.Errorf("router: ledger: %w", err)
		}
		if err := r.rec.StartNode(runID, RouterNodeID); err != nil {
			return nil, fmt.Errorf("router: ledger: %w", err)
		}
	}
	nr := &NodeResult{ID: RouterNodeID}
	// A streamed call streams from the rung being tried unless its answer
	// must be checked (or cut at a stop word) before anyone sees it.
	var live, buffered *streamState
	if f := rc.co.StreamingFunc; f != nil {
		ss := &streamState{fn: f, runID: runID}
		ss.start, _ = rc.co.Metadata[MetaStreamStart].(func(StreamStart))
		// A cascade stage's answer is judged first too: it may be set aside.
		if rc.route.validate == nil && !rc.co.JSONMode && len(rc.co.StopWords) == 0 && p.Cascade == "" && len(rc.co.Tools) == 0 {
			live = ss
		} else {
			buffered = ss
		}
	}
	var (
		answer     rungAnswer
		lastErr    error
		tooLongFor int64
		tried      int
		authFailed map[string]bool // providers whose key was rejected
	)
	for _, cand := range p.Ladder {
		m := cand.model
		if authFailed[m.Provider] || (tooLongFor > 0 && m.ContextWindow > 0 && m.ContextWindow <= tooLongFor) {
			continue
		}
		if tried > 0 {
			nr.Escalations++
		}
		tried++
		answer, err = r.try(ctx, rc, cand, nr, reqBudget, daily, runID, live)
		if err == nil {
			nr.Model = m.ID
			break
		}
		lastErr = err
		var capErr *errRequestCap
		var be *ErrBudgetExhausted
		var fe *fatalError
		if errors.As(err, &capErr) {
			continue // a cheaper rung may still fit the request's cap
		}
		if errors.As(err, &be) || errors.As(err, &fe) || errors.Is(err, ErrStreamBroken) || ctx.Err() != nil {
			break
		}
		switch {
		case errors.Is(err, provider.ErrAuth):
			if authFailed == nil {
				authFailed = map[string]bool{}
			}
			authFailed[m.Provider] = true
		case errors.Is(err, provider.ErrContextLength):
			tooLongFor = max(m.ContextWindow, 1)
		}
	}
	status := StatusSucceeded
	nr.Status, nr.Output = NodeSucceeded, answer.text+toolCallsOutput(answer.calls)
	var be *ErrBudgetExhausted
	var fe *fatalError
	switch {
	case nr.Model != "":
		lastErr = nil
	case lastErr == nil:
		lastErr = errors.New("every model of the ladder was skipped after authentication or context-length errors")
		fallthrough
	default:
		nr.Status, nr.Output, status = NodeFailed, "", StatusFailed
		if errors.As(lastErr, &be) {
			status = StatusBudgetExhausted
		}
	}
	if r.rec != nil && !errors.As(lastErr, &fe) {
		if err := r.rec.FinishNode(runID, nr, nr.final, nr.finalSeq); err != nil {
			return nil, fmt.Errorf("router: ledger: %w", err)
		}
		if err := r.rec.FinishRun(runID, status); err != nil {
			return nil, fmt.Errorf("router: ledger: %w", err)
		}
	}
	if lastErr != nil {
		switch {
		case errors.As(lastErr, &be), errors.As(lastErr, &fe):
			return nil, fmt.Errorf("router: route %q: %w", p.Route, lastErr)
		}
		return nil, fmt.Errorf("router: route %q: every model of the ladder failed; last: %w", p.Route, lastErr)
	}
	final := nr.Attempts[len(nr.Attempts)-1]
	u := final.Usage
	prompt := u.PromptTokens()
	completion := u.OutputTokens + u.ReasoningTokens + u.AudioOutputTokens
	info := map[string]any{
		"PromptTokens":     int(prompt),
		"CompletionTokens": int(completion),
		"TotalTokens":      int(prompt + completion),
		"ReasoningTokens":  int(u.ReasoningTokens),
		// Of PromptTokens, those read from and written to the provider's
		// prompt cache (langchaingo's names where it has them).
		"PromptCachedTokens":  int(u.CacheReadTokens),
		"CacheCreationTokens": int(u.CacheWriteTokens + u.CacheWrite1hTokens),
		InfoModel:             nr.Model,
		InfoCostNano:          nr.CostNano,
		InfoCostUSD:           nanoToUSD(nr.CostNano),
		InfoEscalations:       nr.Escalations,
		InfoAttempts:          len(nr.Attempts),
		InfoTask:              p.Task,
		InfoRoute:             p.Route,
	}
	if runID != "" {
		info[InfoRunID] = runID
	}
	if live != nil && !live.started {
		// The client did not stream (a kind without SSE support, or a
		// fake): pass the answer in one piece.
		buffered = live
	}
	if buffered != nil && answer.text != "" {
		buffered.begin(nr.Model, nr.Escalations)
		if err := buffered.fn(ctx, []byte(answer.text)); err != nil {
			return nil, fmt.Errorf("router: streaming function: %w", err)
		}
	}
	if _, asked := rc.co.Metadata[MetaLogProbs]; asked && answer.logprobs != nil {
		info[InfoLogProbs] = answer.logprobs
	}
	choice := &llms.ContentChoice{Content: answer.text, StopReason: answer.finish, GenerationInfo: info, ToolCalls: answer.calls}
	if len(answer.calls) > 0 {
		choice.FuncCall = answer.calls[0].FunctionCall
	}
	return &llms.ContentResponse{Choices: []*llms.ContentChoice{choice}}, nil
}

// toolCallsOutput is the tool calls as the ledger keeps them in a node's
// output, after its text: one JSON line per call.
func toolCallsOutput(calls []llms.ToolCall) string {
	var b strings.Builder
	for _, c := range calls {
		j, _ := json.Marshal(c)
		b.WriteString("\n")
		b.Write(j)
	}
	return b.String()
}

// dailyBudget returns today's budget (nil when there is no daily budget),
// starting a new one, from the recorder's spend, when the UTC day changes.
func (r *Router) dailyBudget() (*Budget, error) {
	if r.opts.DailyBudgetNano <= 0 {
		return nil, nil
	}
	now := r.opts.Now().UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.daily != nil && r.day.Equal(day) {
		return r.daily, nil
	}
	var spent int64
	if r.rec != nil {
		var err error
		if spent, err = r.rec.SpentSince(day); err != nil {
			return nil, fmt.Errorf("router: reading today's spend from the ledger: %w", err)
		}
	}
	r.day, r.daily = day, NewBudget(r.opts.DailyBudgetNano, spent)
	return r.daily, nil
}

// errRequestCap is a call that does not fit in what is left of the
// request's own cap: a cheaper rung further down may still fit.
type errRequestCap struct{ err error }

func (e *errRequestCap) Error() string { return "per-request cap: " + e.err.Error() }
func (e *errRequestCap) Unwrap() error { return e.err }

// reserveBoth holds amount in the request's and the day's budgets.
func reserveBoth(req, daily *Budget, amount int64) (settle func(int64), err error) {
	a, err := req.Reserve(amount)
	if err != nil {
		return nil, &errRequestCap{err}
	}
	if daily == nil {
		return a.Settle, nil
	}
	b, err := daily.Reserve(amount)
	if err != nil {
		a.Settle(0)
		return nil, fmt.Errorf("daily budget: %w", err)
	}
	return func(actual int64) { a.Settle(actual); b.Settle(actual) }, nil
}

// rungAnswer is what a rung answered: its text, the provider's finish
// reason and the tools it called.
type rungAnswer struct {
	text, finish string
	calls        []llms.ToolCall
	logprobs     []provider.TokenLogProb
}

// try calls one rung, retrying transient failures with backoff.
//
// With ss set the call streams: chunks go to ss.fn as they arrive, and a
// failure after the first one ends the request with ErrStreamBroken
// instead of retrying or escalating.
func (r *Router) try(ctx context.Context, rc *routedCall, cand RouteCandidate, nr *NodeResult, req, daily *Budget, runID string, ss *streamState) (rungAnswer, error) {
	m := cand.model
	client, err := r.clients.Client(m.Provider)
	if err != nil {
		return rungAnswer{}, err
	}
	var temp *float64
	if t := rc.co.Temperature; t != 0 {
		temp = &t
	}
	for try := 0; ; try++ {
		settle, err := reserveBoth(req, daily, cand.ReserveNano)
		if err != nil {
			at := Attempt{Node: RouterNodeID, Iteration: 1, Model: m.ID, Provider: m.Provider, Outcome: OutcomeBudget, Reason: err.Error(), Started: time.Now()}
			if rerr := r.record(nr, runID, 0, &at); rerr != nil {
				return rungAnswer{}, rerr
			}
			return rungAnswer{}, err
		}
		start := time.Now()
		at := Attempt{Node: RouterNodeID, Iteration: 1, Model: m.ID, Provider: m.Provider, Started: start}
		var seq int64
		if r.rec != nil {
			if seq, err = r.rec.BeginAttempt(runID, &at, cand.ReserveNano); err != nil {
				settle(0)
				return rungAnswer{}, &fatalError{msg: "ledger: " + err.Error()}
			}
		}
		preq := provider.Request{Model: apiName(m), System: rc.system, Prompt: rc.text, Turns: rc.turns,
			MaxTokens: cand.MaxTokens, JSON: rc.co.JSONMode, Temperature: temp, LogProbs: cand.Signal == estimator.SignalLogprob,
			Tools: rc.co.Tools, ToolChoice: rc.co.ToolChoice, Sampling: samplingOf(&rc.co), CacheLastTurn: rc.cacheConv}
		if top, ok := rc.co.Metadata[MetaLogProbs].(int); ok {
			preq.LogProbs, preq.TopLogProbs = true, top
		}
		if rc.schema != nil {
			preq.JSONSchema = rc.schema.spec
		}
		if ss != nil {
			esc := nr.Escalations
			preq.Stream = true
			preq.OnChunk = func(ctx context.Context, chunk []byte) error {
				ss.begin(m.ID, esc)
				return ss.fn(ctx, chunk)
			}
		}
		resp, callErr := client.Call(ctx, preq)
		if callErr != nil && ss != nil && ss.started {
			callErr = fmt.Errorf("%w: %s: %w", ErrStreamBroken, m.ID, callErr)
		}
		at.Latency = time.Since(start)
		if resp.Latency > 0 {
			at.Latency = resp.Latency
		}
		text := resp.Text
		if callErr == nil {
			text = applyStop(text, rc.co.StopWords)
			at.Outcome, at.Usage, at.UsageReported, at.MayHaveBilled = OutcomeOK, resp.Usage, resp.UsageReported, true
			c := catalog.Price(m, resp.Usage)
			at.CostNano = c.NanoUSD()
			if !resp.UsageReported {
				at.Reason = "provider returned no usage: tokens counted locally, cost estimated"
			}
			if !c.Complete() {
				at.Reason = strings.TrimSpace(at.Reason + " unpriced components: " + unknownList(c))
			}
			if why := rc.check(text, resp.ToolCalls); why != "" {
				at.Outcome, at.Reason, callErr = OutcomeInvalid, why, fmt.Errorf("%w: %s", errRouterInvalid, why)
			} else if cand.Signal != "" {
				// A cascade stage: validate passed (conf 1), or the mean
				// token probability.
				conf := 1.0
				switch cand.Signal {
				case estimator.SignalLogprob:
					conf = meanTokenProb(resp.LogProbs)
				case estimator.SignalSelfCheck:
					settle(at.CostNano) // the answer is paid before its check reserves (idempotent below)
					var cerr error
					if conf, cerr = r.selfCheck(ctx, rc, cand, nr, req, daily, runID, client, text); cerr != nil {
						var fe *fatalError
						if errors.As(cerr, &fe) {
							return rungAnswer{}, cerr
						}
						conf = math.NaN()
						at.Reason = strings.TrimSpace(at.Reason + " self-check failed: " + cerr.Error())
					}
				}
				at.Confidence = confidencePtr(conf)
				if math.IsNaN(conf) || conf < cand.Threshold {
					why := fmt.Sprintf("cascade %s: confidence %.3g below threshold %.3g; escalating", cand.Cascade, conf, cand.Threshold)
					if math.IsNaN(conf) {
						why = fmt.Sprintf("cascade %s: no confidence; escalating", cand.Cascade)
					}
					at.Outcome, at.Reason, callErr = OutcomeInvalid, strings.TrimSpace(at.Reason+" "+why), fmt.Errorf("%w: %s", errRouterInvalid, why)
				}
			}
		} else {
			at.Outcome, at.Reason = classify(callErr)
			at.MayHaveBilled = mayHaveBilled(callErr)
		}
		settle(at.CostNano)
		if callErr == nil {
			r.keep(nr, seq, at)
			return rungAnswer{text: text, finish: resp.FinishReason, calls: resp.ToolCalls, logprobs: resp.LogProbs}, nil
		}
		if err := r.record(nr, runID, seq, &at); err != nil {
			return rungAnswer{}, err
		}
		if errors.Is(callErr, errRouterInvalid) || errors.Is(callErr, ErrStreamBroken) || !provider.Retryable(callErr) || try >= r.opts.MaxRetries || ctx.Err() != nil {
			return rungAnswer{}, callErr
		}
		if err := r.sleep(ctx, try, provider.RetryAfter(callErr)); err != nil {
			return rungAnswer{}, callErr
		}
	}
}

// selfCheck asks cand's model whether its answer is right: one short call,
// reserved against the request's and the day's budgets, paid and recorded
// (purpose self_check). It returns the probability of "yes".
func (r *Router) selfCheck(ctx context.Context, rc *routedCall, cand RouteCandidate, nr *NodeResult, req, daily *Budget, runID string,
	client provider.Client, answer string) (float64, error) {
	m := cand.model
	question := selfCheckQuestion(rc.system, rc.text, answer)
	reserve, maxOut, err := reserveFor(m, question, estimator.SelfCheckOutputTokens, false)
	if err != nil {
		return 0, err
	}
	settle, err := reserveBoth(req, daily, reserve)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	at := Attempt{Node: RouterNodeID, Iteration: 1, Model: m.ID, Provider: m.Provider, Started: start, Purpose: PurposeSelfCheck}
	var seq int64
	if r.rec != nil {
		if seq, err = r.rec.BeginAttempt(runID, &at, reserve); err != nil {
			settle(0)
			return 0, &fatalError{msg: "ledger: " + err.Error()}
		}
	}
	conf, callErr := askSelfCheck(ctx, client, m, question, maxOut, start, &at)
	settle(at.CostNano)
	if err := r.record(nr, runID, seq, &at); err != nil {
		return 0, err
	}
	return conf, callErr
}

// check applies the route's rule and JSON mode to an answer; it returns
// why the answer is rejected, or "". An answer that calls tools is not a
// text answer: it passes.
func (rc *routedCall) check(out string, calls []llms.ToolCall) string {
	if len(calls) > 0 {
		return ""
	}
	if rc.co.JSONMode && !json.Valid([]byte(strings.TrimSpace(out))) {
		return "JSON mode: the answer is not valid JSON"
	}
	if rc.schema != nil {
		if why := rc.schema.mismatch(out); why != "" {
			return why
		}
	}
	if v := rc.route.validate; v != nil {
		ok, err := v.Check(out, 1)
		switch {
		case err != nil:
			return "validate rule failed: " + err.Error()
		case !ok:
			return fmt.Sprintf("validate rule %s is false", v)
		}
	}
	return ""
}

// applyStop cuts the answer at the first stop word.
func applyStop(text string, stops []string) string {
	cut := len(text)
	for _, s := range stops {
		if s == "" {
			continue
		}
		if i := strings.Index(text, s); i >= 0 && i < cut {
			cut = i
		}
	}
	return text[:cut]
}

// keep holds the accepted attempt; it is recorded with the node's result.
func (r *Router) keep(nr *NodeResult, seq int64, a Attempt) {
	nr.Attempts = append(nr.Attempts, a)
	nr.CostNano += a.CostNano
	kept := a
	nr.final, nr.finalSeq = &kept, seq
}

func (r *Router) record(nr *NodeResult, runID string, seq int64, a *Attempt) error {
	nr.Attempts = append(nr.Attempts, *a)
	nr.CostNano += a.CostNano
	if r.rec == nil {
		return nil
	}
	if err := r.rec.RecordAttempt(runID, seq, a); err != nil {
		return &fatalError{msg: "ledger: " + err.Error()}
	}
	return nil
}

// sleep waits before retry try+1: base x 2^try with full jitter, at least
// the provider's Retry-After, at most BackoffMax.
func (r *Router) sleep(ctx context.Context, try int, retryAfter time.Duration) error {
	d := r.opts.BackoffBase << try
	r.mu.Lock()
	d = time.Duration(float64(d) * (0.5 + r.rng.Float64()/2))
	r.mu.Unlock()
	d = min(max(d, retryAfter), r.opts.BackoffMax)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
