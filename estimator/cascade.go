package estimator

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/costwise/costwise/estimator/catalog"
)

// Confidence signals a cascade stage can escalate on.
const (
	// SignalLogprob is the answer's mean token probability, exp(mean token
	// log-probability), from providers that return log-probabilities.
	SignalLogprob = "logprob"
	// SignalValidate is the node's validate rule: confidence 1 when the
	// answer passes it, 0 when it does not.
	SignalValidate = "validate"
	// SignalSelfCheck is a second, short call to the same model asking
	// whether its answer is correct: the probability of "yes" when the
	// provider returns log-probabilities, else 1 for yes and 0 for no. Its
	// cost is counted.
	SignalSelfCheck = "self_check"
)

// Self-check call size used for estimates: the question wrapped around the
// prompt and the answer, and a one-word reply.
const (
	SelfCheckOverheadTokens = 60
	SelfCheckOutputTokens   = 5
)

// Cascade is a fitted cascade offered to the planner as one candidate of
// the nodes of its task: a call goes to Models[0]; an answer whose
// confidence (Signal) is below Thresholds[k] escalates to Models[k+1]; the
// last model's answer stands. Its quality and the share of calls that
// reach each stage come from outcome data (the fit's held-out rows), not
// from assuming the stages fail independently.
type Cascade struct {
	Task       string    // nodes of this task may use it; "" = nodes of any task
	Models     []string  // catalog model IDs, cheap -> strong
	Thresholds []float64 // one per model but the last
	Signal     string    // SignalLogprob, SignalValidate or SignalSelfCheck
	Reach      []float64 // share of calls that reach each stage: Reach[0] = 1, non-increasing
	Quality    float64   // mean quality of the cascade's answers on the rows it was measured on
	Rows       int       // rows behind Quality and Reach
	Source     string    // where it was fitted, for explanations
}

// ID names the cascade as plans and ledgers show it:
// "cascade:logprob:a@0.72>b" (the signal, then each model followed by the
// threshold its answers must reach).
func (c *Cascade) ID() string {
	var b strings.Builder
	b.WriteString("cascade:")
	b.WriteString(c.Signal)
	b.WriteByte(':')
	for k, m := range c.Models {
		if k > 0 {
			b.WriteByte('>')
		}
		b.WriteString(m)
		if k < len(c.Thresholds) {
			b.WriteByte('@')
			b.WriteString(strconv.FormatFloat(c.Thresholds[k], 'g', 4, 64))
		}
	}
	return b.String()
}

// IsCascadeID reports whether id names a cascade (Cascade.ID) rather than a
// catalog model.
func IsCascadeID(id string) bool { return strings.HasPrefix(id, "cascade:") }

// Check reports the first problem with c, naming the field.
func (c *Cascade) Check() error {
	switch {
	case len(c.Models) < 2:
		return fmt.Errorf("models: a cascade needs at least two models, got %d", len(c.Models))
	case len(c.Thresholds) != len(c.Models)-1:
		return fmt.Errorf("thresholds: %d models need %d thresholds, got %d", len(c.Models), len(c.Models)-1, len(c.Thresholds))
	case len(c.Reach) != len(c.Models):
		return fmt.Errorf("reach: %d models need %d reach shares (the first is 1), got %d", len(c.Models), len(c.Models), len(c.Reach))
	case c.Signal != SignalLogprob && c.Signal != SignalValidate && c.Signal != SignalSelfCheck:
		return fmt.Errorf("signal: %q is not one of %s, %s, %s", c.Signal, SignalLogprob, SignalValidate, SignalSelfCheck)
	case !(c.Quality > 0 && c.Quality <= 1):
		return fmt.Errorf("quality: %v is outside (0, 1]", c.Quality)
	}
	for k, t := range c.Thresholds {
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return fmt.Errorf("thresholds: threshold %d is not a finite number", k+1)
		}
	}
	for k, r := range c.Reach {
		switch {
		case math.IsNaN(r) || r < 0 || r > 1:
			return fmt.Errorf("reach: share %d is %v, outside [0, 1]", k+1, r)
		case k == 0 && r != 1:
			return fmt.Errorf("reach: the first share is %v; every call reaches the first model, so it must be 1", r)
		case k > 0 && r > c.Reach[k-1]:
			return fmt.Errorf("reach: share %d (%v) exceeds share %d (%v); fewer calls reach each later stage", k+1, r, k, c.Reach[k-1])
		}
	}
	return nil
}

// CascadeOf is the cascade behind a candidate, nil for a single model.
type CascadeOf struct {
	Cascade
	Stages []*Candidate // the single-model candidate of each stage, in order

	checkUSD []float64 // self-check USD per call of each stage
}

// AddCascades offers every cascade as a candidate of each node whose task
// it names (every node when its Task is ""), when each of its models is a
// candidate of that node. The candidate's cost is the stages' costs weighted
// by the share of calls that reach them, plus the self-check calls of
// SignalSelfCheck; its quality is the cascade's measured quality; it is
// feasible when every stage is. It returns how many candidates it added.
// Call it once, before planning.
func (est *Estimate) AddCascades(cs []Cascade) (int, error) {
	var errs []error
	for k := range cs {
		if err := cs[k].Check(); err != nil {
			errs = append(errs, fmt.Errorf("cascade %d (%s): %w", k+1, cs[k].ID(), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	added := 0
	for i := range est.Nodes {
		ne := &est.Nodes[i]
		var extra []Candidate
		for k := range cs {
			c := &cs[k]
			if c.Task != "" && c.Task != ne.Task {
				continue
			}
			if cand, ok := est.cascadeCandidate(i, c); ok {
				extra = append(extra, cand)
			}
		}
		ne.Candidates = append(ne.Candidates, extra...)
		added += len(extra)
	}
	return added, nil
}

// cascadeCandidate composes node i's candidate for c from its stages'
// single-model candidates.
func (est *Estimate) cascadeCandidate(i int, c *Cascade) (Candidate, bool) {
	ne := &est.Nodes[i]
	cc := &CascadeOf{Cascade: *c}
	cc.Models, cc.Thresholds, cc.Reach = append([]string(nil), c.Models...), append([]float64(nil), c.Thresholds...), append([]float64(nil), c.Reach...)
	for _, id := range c.Models {
		s, ok := est.Candidate(i, id)
		if !ok || s.Cascade != nil {
			return Candidate{}, false
		}
		cp := *s
		cc.Stages = append(cc.Stages, &cp)
	}
	last := cc.Stages[len(cc.Stages)-1]
	out := Candidate{
		Model:         last.Model,
		Cascade:       cc,
		Feasible:      true,
		InputTokens:   cc.Stages[0].InputTokens,
		Quality:       c.Quality,
		QualitySource: "cascade fit",
		LatencySource: cc.Stages[0].LatencySource,
	}
	if c.Source != "" {
		out.QualitySource = "cascade fit: " + c.Source
	}
	n := est.Workflow.Nodes[i]
	for k, s := range cc.Stages[:len(cc.Stages)-1] {
		if why := signalUnavailable(c.Signal, n.Validate != "", s.Model); why != "" {
			out.Feasible = false
			out.Reasons = append(out.Reasons, Reason{ReasonCapability, fmt.Sprintf("stage %d (%s): %s", k+1, s.Model.ID, why)})
		}
	}
	d := est.draws[i]
	calls := d.eN
	check := make([]float64, len(cc.Stages))
	cc.checkUSD = check
	for k, s := range cc.Stages {
		if !s.Feasible {
			out.Feasible = false
			for _, r := range s.Reasons {
				out.Reasons = append(out.Reasons, Reason{r.Code, "stage " + s.Model.ID + ": " + r.Detail})
			}
		}
		out.Cost.Unknown = append(out.Cost.Unknown, s.Cost.Unknown...)
		out.Cost.Mean += c.Reach[k] * s.Cost.Mean
		out.LatencyS.Mean += c.Reach[k] * s.LatencyS.Mean
		if s.Cost.MeanMethod == "monte_carlo" {
			out.Cost.MeanMethod = "monte_carlo"
		}
		if c.Signal == SignalSelfCheck && k < len(cc.Stages)-1 {
			check[k] = selfCheckUSD(s.Model, s.InputTokens.Mean+ne.OutputTokens.Mean)
			out.Cost.Mean += c.Reach[k] * ne.When * calls * check[k]
			out.LatencyS.Mean += c.Reach[k] * ne.When * calls * ttftOf(s.Model)
		}
	}
	if out.Cost.MeanMethod == "" {
		out.Cost.MeanMethod = "analytic"
	}
	// Percentiles: in each Monte Carlo run the node's calls reach stage k
	// with probability Reach[k] (drawn once per run, so a loop's calls
	// escalate together: the tail is, if anything, wider than the truth).
	buf := make([]float64, est.Samples)
	for s := range buf {
		buf[s] = est.runCost(&out, i, d, s)
	}
	q := quantiles(buf)
	out.Cost.P50, out.Cost.P95, out.Cost.P99, out.Cost.Max = q.P50, q.P95, q.P99, q.Max
	return out, true
}

// runCost is candidate c's cost at node i in Monte Carlo run s.
func (est *Estimate) runCost(c *Candidate, i int, d *nodeDraws, s int) float64 {
	cc := c.Cascade
	if cc == nil {
		return costSample(c.linear, &c.static, d, s)
	}
	u, total := cascadeUniform(est.Seed, i, s), 0.0
	for k, st := range cc.Stages {
		if u >= cc.Reach[k] {
			break
		}
		total += costSample(st.linear, &st.static, d, s) + float64(d.calls[s])*cc.checkUSD[k]
	}
	return total
}

// signalUnavailable says why a stage that may hand on cannot give the
// signal: the validate signal needs the node's validate rule, and
// log-probabilities are not returned by Anthropic's Messages API nor by the
// Gemini client costwise uses (langchaingo's googleai). "" when it can.
func signalUnavailable(signal string, hasValidate bool, m *catalog.Model) string {
	switch {
	case signal == SignalValidate && !hasValidate:
		return "the validate signal needs the node's validate rule"
	case signal == SignalLogprob && (m.Provider == "anthropic" || m.Provider == "gemini"):
		return "the logprob signal needs token log-probabilities, which " + m.Provider + " calls do not return"
	}
	return ""
}

// selfCheckUSD prices one self-check call whose question holds the prompt
// and the answer (ctx tokens).
func selfCheckUSD(m *catalog.Model, ctx float64) float64 {
	u := catalog.Usage{InputTokens: int64(math.Round(ctx)) + SelfCheckOverheadTokens, OutputTokens: SelfCheckOutputTokens}
	return catalog.Price(m, u).TotalUSD
}

func ttftOf(m *catalog.Model) float64 {
	if m.TTFTSeconds > 0 {
		return m.TTFTSeconds
	}
	return DefaultTTFTSeconds
}

// cascadeUniform is a uniform [0, 1) draw for node i in Monte Carlo run s,
// the same for every cascade and plan (a SplitMix64 hash of seed, node and
// run).
func cascadeUniform(seed uint64, i, s int) float64 {
	x := seed ^ uint64(i+1)*0x9e3779b97f4a7c15 ^ uint64(s+1)*0xbf58476d1ce4e5b9
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}
