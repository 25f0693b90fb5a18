package executor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/estimator/tokens"
	"github.com/costwise/costwise/executor/provider"
)

// SimulatedPrefix starts every simulated output, so that a simulated answer
// can never pass for a real one.
const SimulatedPrefix = "[SIMULATED] "

// errSimulatedInvalid is a simulated answer judged unusable: the simulator
// fails a call with probability 1 - the model's quality for the node's task.
var errSimulatedInvalid = errors.New("SIMULATED: the answer was judged unusable (probability 1 - quality)")

// Simulator is a built-in provider for trying the executor offline. It
// answers from the catalog's profiles: usage from the prompt and the node's
// output estimate, latency from the model's latency profile (reported, not
// slept), failures with probability 1 - quality. Every output it writes
// starts with SimulatedPrefix.
type Simulator struct {
	cat    *catalog.Catalog
	byName map[[2]string]*catalog.Model // provider, upstream name -> model
	mu     sync.Mutex
	rng    *rand.Rand
}

// NewSimulator returns a seeded simulator over the catalog.
func NewSimulator(cat *catalog.Catalog, seed uint64) *Simulator {
	s := &Simulator{cat: cat, byName: map[[2]string]*catalog.Model{}, rng: rand.New(rand.NewPCG(seed, 7))}
	for _, m := range cat.Models() {
		k := [2]string{m.Provider, apiName(m)}
		if _, dup := s.byName[k]; !dup {
			s.byName[k] = m
		}
	}
	return s
}

// Client returns the simulated client of a provider.
func (s *Simulator) Client(name string) (provider.Client, error) {
	return simClient{s: s, provider: name}, nil
}

type simClient struct {
	s        *Simulator
	provider string
}

// simHint carries the node's expectations to the simulator.
type simHint struct {
	outMean, outP95 float64
	quality         float64
	node            string
	// gate, on a cascade stage that may hand on, makes the answer's
	// confidence pass its threshold in the measured share of calls.
	gate      *gate
	selfCheck bool // the call is the gate's self-check
}

type simHintKey struct{}

func withSimHint(ctx context.Context, h simHint) context.Context {
	return context.WithValue(ctx, simHintKey{}, h)
}

func (c simClient) Call(ctx context.Context, req provider.Request) (provider.Response, error) {
	if err := ctx.Err(); err != nil {
		return provider.Response{}, err
	}
	m := c.s.byName[[2]string{c.provider, req.Model}]
	if m == nil {
		return provider.Response{}, fmt.Errorf("SIMULATED provider %s has no model %q", c.provider, req.Model)
	}
	h, _ := ctx.Value(simHintKey{}).(simHint)
	in, err := tokens.Count(tokens.O200kBase, req.System+"\n"+req.Prompt)
	if err != nil {
		return provider.Response{}, err
	}
	c.s.mu.Lock()
	z, u := c.s.rng.NormFloat64(), c.s.rng.Float64()
	c.s.mu.Unlock()
	out := h.outMean
	if h.outP95 > h.outMean && h.outMean > 0 {
		sigma := math.Log(h.outP95/h.outMean) / 1.645
		out = h.outMean * math.Exp(sigma*z-sigma*sigma/2)
	}
	if out <= 0 {
		out = 100
	}
	if req.MaxTokens > 0 {
		out = min(out, float64(req.MaxTokens))
	}
	ttft, tps := m.TTFTSeconds, m.OutputTokensPerSecond
	if ttft <= 0 {
		ttft = 1
	}
	if tps <= 0 {
		tps = 50
	}
	resp := provider.Response{
		Text:          simulatedText(m.ID, h.node, int(math.Round(out))),
		Usage:         catalog.Usage{InputTokens: int64(in), OutputTokens: int64(math.Round(out))},
		UsageReported: true,
		Latency:       time.Duration((ttft + out/tps) * float64(time.Second)),
	}
	if g := h.gate; g != nil {
		return c.s.gated(resp, g, h.selfCheck, req.LogProbs)
	}
	if h.quality > 0 && u > h.quality {
		return resp, errSimulatedInvalid
	}
	return resp, nil
}

// simulatedText is a simulated answer: who answered, for what, and how long
// it was.
func simulatedText(model, node string, out int) string {
	what := "for node " + node
	if node == "" {
		what = "a routed call"
	}
	return fmt.Sprintf("%s%s answering %s (%d output tokens)", SimulatedPrefix, model, what, out)
}

// gated simulates a cascade stage that may hand on: its answer's confidence
// clears the threshold in the share of calls the fit measured (g.pass), and
// answers that clear it are taken as right.
func (s *Simulator) gated(resp provider.Response, g *gate, selfCheck, logprobs bool) (provider.Response, error) {
	s.mu.Lock()
	u, v := s.rng.Float64(), s.rng.Float64()
	s.mu.Unlock()
	conf := g.threshold * v
	if u < g.pass {
		conf = g.threshold + (1-g.threshold)*v
	}
	conf = min(max(conf, 1e-6), 1)
	switch {
	case selfCheck:
		resp.Text, resp.Usage.OutputTokens = "yes", 1
		resp.LogProbs = []provider.TokenLogProb{{Token: "yes", LogProb: math.Log(conf)}}
	case logprobs:
		resp.LogProbs = []provider.TokenLogProb{{Token: resp.Text, LogProb: math.Log(conf)}}
	case u >= g.pass:
		return resp, errSimulatedInvalid // a validate gate: the rule rejects the answer
	}
	return resp, nil
}
