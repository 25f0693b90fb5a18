package estimator

import (
	"errors"
	"fmt"
	"path"
	"runtime"
	"sync"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/graph"
)

// DefaultSamples is the number of Monte Carlo runs drawn per estimate.
const DefaultSamples = 2000

// LongContextTokens is the prompt size above which a node's quality is
// capped by the model's long_context score.
const LongContextTokens = 100_000

// DefaultOutputTokens is the mean output per call for a node that gives no
// output_tokens hint, by task kind; p95 is twice the mean.
var DefaultOutputTokens = map[string]float64{
	graph.TaskDefault:        300,
	graph.TaskClassification: 10,
	graph.TaskExtraction:     200,
	graph.TaskSummarization:  300,
	graph.TaskWriting:        600,
	graph.TaskCode:           800,
	graph.TaskReasoning:      700,
	graph.TaskMath:           500,
	graph.TaskVision:         300,
	graph.TaskLongContext:    500,
}

// Fallback latency profile for models whose catalog entry has none.
const (
	DefaultTTFTSeconds           = 1.0
	DefaultOutputTokensPerSecond = 50.0
)

// Option configures an Estimator.
type Option func(*config)

type config struct {
	samples int
	seed    uint64
}

// WithSamples sets the number of Monte Carlo runs (default DefaultSamples).
func WithSamples(n int) Option { return func(c *config) { c.samples = n } }

// WithSeed sets the Monte Carlo seed (default 1). The same seed, workflow and
// catalog give the same estimate.
func WithSeed(seed uint64) Option { return func(c *config) { c.seed = seed } }

// Estimator prices workflows against a catalog. It is safe for concurrent use.
type Estimator struct {
	cat    *catalog.Catalog
	models []*catalog.Model
	lin    []*linearPrices // by model index
	cfg    config
}

// New returns an Estimator over the catalog's models.
func New(cat *catalog.Catalog, opts ...Option) (*Estimator, error) {
	cfg := config{samples: DefaultSamples, seed: 1}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.samples < 1 || cfg.samples > 1_000_000 {
		return nil, fmt.Errorf("estimator: samples must be between 1 and 1000000, got %d", cfg.samples)
	}
	e := &Estimator{cat: cat, models: cat.Models(), cfg: cfg}
	e.lin = make([]*linearPrices, len(e.models))
	for i, m := range e.models {
		e.lin[i] = probePrices(m)
	}
	return e, nil
}

// Catalog returns the estimator's catalog.
func (e *Estimator) Catalog() *catalog.Catalog { return e.cat }

// Estimate is the priced workflow: every node's candidates with their
// numbers, and the Monte Carlo draws that Totals uses.
type Estimate struct {
	Workflow *graph.Workflow
	Samples  int
	Seed     uint64
	Nodes    []NodeEstimate // by node index (graph order, not topological)

	draws []*nodeDraws // by node index
}

// NodeEstimate is one node's numbers, independent of the model, and its
// candidates.
type NodeEstimate struct {
	ID           string
	Task         string
	When         float64 // probability that the node runs
	Calls        Dist    // calls per run of the workflow (0 when the node does not run)
	OutputTokens Dist    // per call: the fitted distribution's mean, p95 and max
	Candidates   []Candidate
}

// Candidate is one node x model, or one node x fitted cascade:
// feasibility and expected numbers.
type Candidate struct {
	// Model is the catalog model; for a cascade, its last (strongest) stage.
	Model *catalog.Model
	// Cascade is set when the candidate is a fitted cascade (AddCascades).
	Cascade       *CascadeOf
	Feasible      bool
	Reasons       []Reason // why it is infeasible; empty when feasible
	InputTokens   Dist     // prompt tokens per call: Mean over calls, P95, Max of the sampled calls
	CachedTokens  float64  // prompt tokens per call billed as cache reads (mean)
	Cost          Cost     // the node's total cost in one run of the workflow
	LatencyS      Dist     // the node's expected latency in one run (Mean)
	Quality       float64  // probability that the node's output is acceptable
	QualitySource string   // which catalog score: "code", "default", "vision", ...
	LatencySource string   // "catalog" or "default"

	linear *linearPrices
	static staticTokens
}

// Dist summarises a quantity's distribution.
type Dist struct {
	Mean float64
	P50  float64
	P95  float64
	P99  float64
	Max  float64
}

// Cost is a node's or a run's cost in USD.
type Cost struct {
	Dist
	MeanMethod string   // "analytic" or "monte_carlo" (sampled calls straddle a price tier)
	Unknown    []string // price components that the catalog does not state; a candidate with any is infeasible
}

// ReasonCode says why a candidate is infeasible.
type ReasonCode string

// Reason codes of the estimator's feasibility checks.
const (
	ReasonContextWindow ReasonCode = "context_window" // prompt + output exceed the model's context window
	ReasonMaxOutput     ReasonCode = "max_output"     // the node's output exceeds the model's max output
	ReasonModality      ReasonCode = "modality"       // an attachment kind the model does not accept
	ReasonCapability    ReasonCode = "capability"     // tools, json or reasoning required but not supported
	ReasonUnknownPrice  ReasonCode = "unknown_price"  // a price the node needs is not in the catalog
)

// Reason is one cause of infeasibility.
type Reason struct {
	Code   ReasonCode
	Detail string
}

// Estimate prices every node of w against every catalog model that the
// node's models filter admits. w must be valid (graph.Load, Parse or
// Validate).
func (e *Estimator) Estimate(w *graph.Workflow) (*Estimate, error) {
	if len(w.Order()) != len(w.Nodes) {
		return nil, fmt.Errorf("estimator: workflow %q is not validated; call Validate first", w.Name)
	}
	est := &Estimate{Workflow: w, Samples: e.cfg.samples, Seed: e.cfg.seed, Nodes: make([]NodeEstimate, len(w.Nodes))}
	est.draws = drawRuns(w, e.cfg.samples, e.cfg.seed)
	// Nodes are priced independently once the runs are drawn: spread them
	// over the cores, each worker with its own token-count cache and buffer.
	jobs := make(chan int)
	errs := make([]error, len(w.Nodes))
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(w.Nodes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			texts, buf, qc := newTextCounter(), make([]float64, e.cfg.samples), newQuantCache(e.cfg.samples)
			for i := range jobs {
				qc.reset()
				est.Nodes[i], errs[i] = e.estimateNode(w, i, est.draws[i], texts, buf, qc)
			}
		}()
	}
	for _, i := range w.Order() {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return est, nil
}

func (e *Estimator) estimateNode(w *graph.Workflow, i int, d *nodeDraws, texts *textCounter, buf []float64, qc *quantCache) (NodeEstimate, error) {
	n := w.Nodes[i]
	ne := NodeEstimate{ID: n.ID, Task: n.Task, When: n.When, Calls: d.callsDist(), OutputTokens: d.out.summary()}
	for mi, m := range e.models {
		if !admitted(n, m.ID) {
			continue
		}
		st, err := staticFor(w, n, m, texts)
		if err != nil {
			return ne, fmt.Errorf("estimator: node %q, model %s: %w", n.ID, m.ID, err)
		}
		c := Candidate{Model: m, linear: e.lin[mi], static: st}
		fill(&c, n, d, buf, qc)
		ne.Candidates = append(ne.Candidates, c)
	}
	return ne, nil
}

// admitted applies the node's models filter (globs validated by graph).
func admitted(n *graph.Node, id string) bool {
	if len(n.Models) == 0 {
		return true
	}
	for _, g := range n.Models {
		if ok, _ := path.Match(g, id); ok {
			return true
		}
	}
	return false
}

// ID names the candidate: its model's ID, or the cascade's (Cascade.ID).
func (c *Candidate) ID() string {
	if c.Cascade != nil {
		return c.Cascade.ID()
	}
	return c.Model.ID
}

// Candidate returns node i's candidate for id, a model ID or a cascade ID.
func (est *Estimate) Candidate(i int, id string) (*Candidate, bool) {
	for k := range est.Nodes[i].Candidates {
		if est.Nodes[i].Candidates[k].ID() == id {
			return &est.Nodes[i].Candidates[k], true
		}
	}
	return nil, false
}
