package learn

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/costwise/costwise/estimator/catalog"
)

// Observation is one finished provider call.
type Observation struct {
	Task  string    // task kind of the node ("code", "summarization", ...); "" when unknown
	Model string    // catalog model id; observations without one are ignored
	Time  time.Time // when the call ended
	// OK is true when the call's answer was accepted (ended ok and passed
	// the node's validation).
	OK bool
	// Escalated is true when the node moved to another model after this
	// call (it did not end ok and the next call used a different model).
	Escalated    bool
	InputTokens  int64
	OutputTokens int64
	Latency      time.Duration
	CostNano     int64 // what the call cost, nano-USD
	// Feedback is an explicit score of the answer in [0, 1] (nil: none).
	// It replaces OK as a fractional success.
	Feedback *float64
	// Unjudged marks an answer set aside by a cascade's confidence gate:
	// whether it was right is unknown, so it is no evidence of success or
	// failure. Its cost, tokens and latency still count.
	Unjudged bool
}

// success is the observation's contribution to the success count.
func (o *Observation) success() float64 {
	if o.Feedback != nil && !math.IsNaN(*o.Feedback) {
		return math.Max(0, math.Min(1, *o.Feedback))
	}
	if o.OK {
		return 1
	}
	return 0
}

// answered reports whether the call produced an answer, so that its
// output length and latency describe the model rather than a failure.
func (o *Observation) answered() bool { return o.OK || o.OutputTokens > 0 }

// Defaults of Options.
const (
	DefaultHalfLife             = 7 * 24 * time.Hour
	DefaultPriorStrength        = 10.0
	DefaultLatencyPriorStrength = 10.0
	// DefaultTTFTSeconds and DefaultOutputTokensPerSecond stand in for a
	// catalog model's unknown latency profile; they equal the estimator's
	// defaults.
	DefaultTTFTSeconds           = 1.0
	DefaultOutputTokensPerSecond = 50.0
)

// Options tune Fit. The zero value uses the defaults.
type Options struct {
	// HalfLife is the age at which an observation weighs half as much as
	// one made at now; 0 means DefaultHalfLife, a negative value disables
	// decay (every observation weighs 1).
	HalfLife time.Duration
	// Catalog supplies the prior success rate of each (task, model): the
	// model's quality for the task, else its "default" quality. nil, or a
	// model without a score, gives the uniform prior Beta(1, 1).
	Catalog *catalog.Catalog
	// PriorStrength is how many calls the catalog's quality is worth;
	// 0 means DefaultPriorStrength. Negative values are treated as 0+
	// (a prior of 1e-9 calls: observations only).
	PriorStrength float64
	// LatencyPriorStrength is how many calls the catalog's latency profile
	// is worth in Blend; 0 means DefaultLatencyPriorStrength.
	LatencyPriorStrength float64
}

func (o Options) withDefaults() Options {
	if o.HalfLife == 0 {
		o.HalfLife = DefaultHalfLife
	}
	switch {
	case o.PriorStrength == 0:
		o.PriorStrength = DefaultPriorStrength
	case o.PriorStrength < 0 || math.IsNaN(o.PriorStrength):
		o.PriorStrength = 1e-9
	}
	switch {
	case o.LatencyPriorStrength == 0:
		o.LatencyPriorStrength = DefaultLatencyPriorStrength
	case o.LatencyPriorStrength < 0 || math.IsNaN(o.LatencyPriorStrength):
		o.LatencyPriorStrength = 1e-9
	}
	return o
}

// weight is the decay weight of an observation made at t, seen at now.
func (o Options) weight(t, now time.Time) float64 {
	if o.HalfLife < 0 {
		return 1
	}
	age := now.Sub(t)
	if age <= 0 {
		return 1
	}
	return math.Exp2(-float64(age) / float64(o.HalfLife))
}

// Stats are the fitted numbers of one (task, model). Rates and quantiles
// are weighted by decay; Calls counts observations as they are.
type Stats struct {
	Task  string
	Model string
	Calls int // observations
	// Weight is the sum of the observations' decay weights: how many
	// calls made at now the evidence is worth.
	Weight float64
	// JudgedWeight is Weight without the unjudged observations (answers a
	// cascade set aside): the success evidence.
	JudgedWeight float64
	// FeedbackCalls counts observations carrying explicit feedback.
	FeedbackCalls int
	// Successes is the weighted number of successes (feedback fractional).
	Successes float64
	// Observed is Successes / JudgedWeight, the success rate without the
	// prior.
	Observed float64

	// Prior is the catalog's quality for the task (PriorKnown) or 0.5.
	Prior      float64
	PriorKnown bool
	// PriorWeight is the prior's pseudo-count: PriorStrength, or 2 for the
	// uniform prior.
	PriorWeight float64
	// Alpha and Beta are the posterior Beta parameters.
	Alpha, Beta float64
	// Success is the posterior mean: (Alpha) / (Alpha + Beta).
	Success float64
	// SuccessLow and SuccessHigh bound the central 90% credible interval.
	SuccessLow, SuccessHigh float64

	// Answered is how many calls produced an answer (OK, or output
	// tokens reported); the token and latency quantiles are over them.
	Answered          int
	OutputTokensP50   float64
	OutputTokensP95   float64
	InputTokensP50    float64
	LatencyP50        time.Duration
	LatencyP95        time.Duration
	CostPerCallUSD    float64 // weighted mean cost of a call
	CostPerSuccessUSD float64 // weighted cost / weighted successes; +Inf with no success
	// RerouteRate is the weighted share of calls after which the node
	// escalated to another model.
	RerouteRate float64
	First, Last time.Time // times of the oldest and newest observation
}

// Model is the result of Fit: statistics per (task, model), and the
// per-model latency evidence that Blend uses. It is not modified after Fit
// returns and is safe for concurrent use.
type Model struct {
	// Now is the time the decay weights were computed at.
	Now time.Time
	// Options are the options used, defaults filled in.
	Options Options

	stats []Stats // sorted by task, then model
	index map[key]int
	lat   map[string][]latPoint // model -> answered calls, all tasks
}

type key struct{ task, model string }

type latPoint struct {
	w, tokens, seconds float64
}

// Fit computes the statistics of every (task, model) in obs as seen at
// now. Observations newer than now weigh 1, like those made at now.
func Fit(obs []Observation, now time.Time, opts Options) *Model {
	opts = opts.withDefaults()
	m := &Model{Now: now, Options: opts, index: map[key]int{}, lat: map[string][]latPoint{}}
	groups := map[key][]int{}
	var keys []key
	for i := range obs {
		o := &obs[i]
		if o.Model == "" {
			continue
		}
		k := key{o.Task, o.Model}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.task, b.task), cmp.Compare(a.model, b.model))
	})
	for _, k := range keys {
		idx := groups[k]
		s := m.fitOne(obs, idx, k)
		m.index[k] = len(m.stats)
		m.stats = append(m.stats, s)
	}
	return m
}

func (m *Model) fitOne(obs []Observation, idx []int, k key) Stats {
	opts := m.Options
	s := Stats{Task: k.task, Model: k.model, Calls: len(idx)}
	var cost, rerouted float64
	var toks, lats, ins []weighted
	for _, i := range idx {
		o := &obs[i]
		w := opts.weight(o.Time, m.Now)
		s.Weight += w
		if !o.Unjudged {
			s.JudgedWeight += w
			s.Successes += w * o.success()
		}
		if o.Feedback != nil {
			s.FeedbackCalls++
		}
		cost += w * float64(max(o.CostNano, 0)) / 1e9
		if o.Escalated && !o.Unjudged { // a cascade's escalation is planned, not a re-route
			rerouted += w
		}
		if s.First.IsZero() || o.Time.Before(s.First) {
			s.First = o.Time
		}
		if o.Time.After(s.Last) {
			s.Last = o.Time
		}
		if o.answered() {
			s.Answered++
			toks = append(toks, weighted{float64(max(o.OutputTokens, 0)), w})
			ins = append(ins, weighted{float64(max(o.InputTokens, 0)), w})
			if o.Latency > 0 {
				lats = append(lats, weighted{o.Latency.Seconds(), w})
				m.lat[k.model] = append(m.lat[k.model], latPoint{w, float64(max(o.OutputTokens, 0)), o.Latency.Seconds()})
			}
		}
	}
	if s.JudgedWeight > 0 {
		s.Observed = s.Successes / s.JudgedWeight
	}
	if s.Weight > 0 {
		s.CostPerCallUSD = cost / s.Weight
		s.RerouteRate = rerouted / s.Weight
	}
	s.CostPerSuccessUSD = math.Inf(1)
	if s.Successes > 0 {
		s.CostPerSuccessUSD = cost / s.Successes
	}
	s.Prior, s.PriorKnown = 0.5, false
	s.PriorWeight = 2
	if q, ok := priorQuality(opts.Catalog, k.task, k.model); ok {
		s.Prior, s.PriorKnown, s.PriorWeight = q, true, opts.PriorStrength
	}
	s.Alpha, s.Beta = posterior(s.Prior, s.PriorWeight, s.Successes, s.JudgedWeight)
	s.Success = s.Alpha / (s.Alpha + s.Beta)
	s.SuccessLow = betaQuantile(0.05, s.Alpha, s.Beta)
	s.SuccessHigh = betaQuantile(0.95, s.Alpha, s.Beta)
	s.OutputTokensP50, s.OutputTokensP95 = quantile(toks, 0.5), quantile(toks, 0.95)
	s.InputTokensP50 = quantile(ins, 0.5)
	s.LatencyP50 = seconds(quantile(lats, 0.5))
	s.LatencyP95 = seconds(quantile(lats, 0.95))
	return s
}

// posterior returns Beta(k*q + S, k*(1-q) + (W-S)), with parameters kept
// strictly positive so that quantiles exist.
func posterior(q, k, successes, weight float64) (alpha, beta float64) {
	q = math.Max(0, math.Min(1, q))
	alpha = k*q + successes
	beta = k*(1-q) + math.Max(0, weight-successes)
	return math.Max(alpha, 1e-9), math.Max(beta, 1e-9)
}

// priorQuality is the catalog's score of the model for the task (or its
// "default" score).
func priorQuality(cat *catalog.Catalog, task, model string) (float64, bool) {
	if cat == nil {
		return 0, false
	}
	m, ok := cat.Lookup(model)
	if !ok {
		return 0, false
	}
	if task == "" {
		task = "default"
	}
	q, ok := m.QualityFor(task)
	if !ok || math.IsNaN(q) {
		return 0, false
	}
	return math.Max(0, math.Min(1, q)), true
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

// Stats returns the statistics of every (task, model), sorted by task and
// model.
func (m *Model) Stats() []Stats { return slices.Clone(m.stats) }

// Lookup returns the statistics of one (task, model).
func (m *Model) Lookup(task, model string) (Stats, bool) {
	i, ok := m.index[key{task, model}]
	if !ok {
		return Stats{}, false
	}
	return m.stats[i], true
}
