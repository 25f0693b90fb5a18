package executor

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor/provider"
)

// rung is one step of a node's ladder: a model, and for a cascade stage
// that may hand on, the gate its answer must pass.
type rung struct {
	model string
	gate  *gate
}

// gate is a cascade stage's acceptance test: the answer stands when its
// confidence (signal) is at least threshold; otherwise the next stage runs.
type gate struct {
	cascade   string // the cascade's ID
	signal    string // estimator.SignalLogprob, SignalValidate or SignalSelfCheck
	threshold float64
	pass      float64 // measured share of answers that pass (for the simulator only)
}

// cascadeIndex maps the cascade IDs a run may meet (its plan's, and those
// Options.Cascades offers to re-planning) to their specs.
func cascadeIndex(spec Spec, extra []estimator.Cascade) map[string]*estimator.Cascade {
	idx := map[string]*estimator.Cascade{}
	for k := range extra {
		idx[extra[k].ID()] = &extra[k]
	}
	for _, a := range spec.Plan.Assignments {
		if c := a.Candidate; c != nil && c.Cascade != nil {
			idx[c.Cascade.ID()] = &c.Cascade.Cascade
		}
	}
	return idx
}

// rungs expands a ladder: a cascade ID becomes its stages, every stage but
// the last gated by its threshold; later entries that repeat a model already
// on the ladder are dropped.
func (st *runState) rungs(ladder []string) ([]rung, error) {
	var out []rung
	seen := map[string]bool{}
	for _, id := range ladder {
		if !estimator.IsCascadeID(id) {
			if !seen[id] {
				seen[id] = true
				out = append(out, rung{model: id})
			}
			continue
		}
		c := st.cascades[id]
		if c == nil {
			return nil, fmt.Errorf("the plan names cascade %s, which this run was not given (pass the cascades file the plan was made with)", id)
		}
		for k, m := range c.Models {
			r := rung{model: m}
			if k < len(c.Thresholds) {
				r.gate = &gate{cascade: id, signal: c.Signal, threshold: c.Thresholds[k], pass: 1}
				if c.Reach[k] > 0 {
					r.gate.pass = 1 - c.Reach[k+1]/c.Reach[k]
				}
			}
			seen[m] = true
			out = append(out, r)
		}
	}
	return out, nil
}

// judge measures an accepted answer's confidence for g: exp(mean token
// log-probability), 1 for an answer that passed the validate rule, or a
// self-check call's probability of "yes". It returns the confidence (NaN
// when the provider gave no signal) and a sentence for the ledger.
func (st *runState) judge(ctx context.Context, i int, nr *NodeResult, iteration int, m *catalog.Model, system, prompt string,
	resp provider.Response, g *gate) (float64, string) {
	switch g.signal {
	case estimator.SignalValidate:
		return 1, "passed the validate rule"
	case estimator.SignalLogprob:
		conf := meanTokenProb(resp.LogProbs)
		if math.IsNaN(conf) {
			return conf, "the provider returned no log-probabilities"
		}
		return conf, "mean token probability"
	default:
		conf, err := st.selfCheck(ctx, i, nr, iteration, m, system, prompt, resp.Text, g)
		if err != nil {
			return math.NaN(), "self-check call failed: " + err.Error()
		}
		return conf, "self-check probability of yes"
	}
}

// meanTokenProb is exp of the mean token log-probability; NaN for none.
func meanTokenProb(lps []provider.TokenLogProb) float64 {
	if len(lps) == 0 {
		return math.NaN()
	}
	sum := 0.0
	for _, t := range lps {
		sum += t.LogProb
	}
	return math.Exp(sum / float64(len(lps)))
}

// selfCheckQuestion wraps the task and the answer for a self-check call.
func selfCheckQuestion(system, prompt, answer string) string {
	var b strings.Builder
	if system != "" {
		b.WriteString("Instructions given:\n")
		b.WriteString(system)
		b.WriteString("\n\n")
	}
	b.WriteString("Task:\n")
	b.WriteString(prompt)
	b.WriteString("\n\nProposed answer:\n")
	b.WriteString(answer)
	b.WriteString("\n\nIs the proposed answer correct and complete? Reply with one word: yes or no.")
	return b.String()
}

// selfCheck asks m whether its answer is right, with its cost reserved,
// paid and recorded like any call (purpose self_check).
func (st *runState) selfCheck(ctx context.Context, i int, nr *NodeResult, iteration int, m *catalog.Model, system, prompt, answer string, g *gate) (float64, error) {
	n := st.spec.Plan.Workflow.Nodes[i]
	client, err := st.x.clients.Client(m.Provider)
	if err != nil {
		return 0, err
	}
	question := selfCheckQuestion(system, prompt, answer)
	reserve, maxOut, err := reserveFor(m, question, estimator.SelfCheckOutputTokens, false)
	if err != nil {
		return 0, err
	}
	res, err := st.budget.Reserve(reserve)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	at := Attempt{Node: n.ID, Iteration: iteration, Model: m.ID, Provider: m.Provider, Started: start, Purpose: PurposeSelfCheck}
	var seq int64
	if st.x.rec != nil {
		if seq, err = st.x.rec.BeginAttempt(st.spec.RunID, &at, reserve); err != nil {
			res.Settle(0)
			return 0, &fatalError{msg: "ledger: " + err.Error()}
		}
	}
	callCtx := ctx
	if st.x.opts.Simulated {
		h := st.simHint(i, m)
		h.gate, h.selfCheck = g, true
		callCtx = withSimHint(ctx, h)
	}
	conf, callErr := askSelfCheck(callCtx, client, m, question, maxOut, start, &at)
	res.Settle(at.CostNano)
	if err := st.record(nr, seq, &at); err != nil {
		return 0, err
	}
	return conf, callErr
}

// askSelfCheck makes a self-check call and fills its attempt: outcome,
// usage, cost and the confidence (the probability of "yes"; NaN when the
// call failed).
func askSelfCheck(ctx context.Context, client provider.Client, m *catalog.Model, question string, maxOut int, start time.Time, at *Attempt) (float64, error) {
	resp, err := client.Call(ctx, provider.Request{Model: apiName(m), Prompt: question, MaxTokens: maxOut, LogProbs: true, TopLogProbs: 5})
	at.Latency = time.Since(start)
	if resp.Latency > 0 {
		at.Latency = resp.Latency
	}
	if err != nil {
		at.Outcome, at.Reason = classify(err)
		at.MayHaveBilled = mayHaveBilled(err)
		return math.NaN(), err
	}
	at.Outcome, at.Usage, at.UsageReported, at.MayHaveBilled = OutcomeOK, resp.Usage, resp.UsageReported, true
	at.CostNano = catalog.Price(m, resp.Usage).NanoUSD()
	conf := yesProbability(resp)
	at.Confidence = confidencePtr(conf)
	at.Reason = fmt.Sprintf("self-check: %q", strings.TrimSpace(resp.Text))
	return conf, nil
}

// yesProbability reads a self-check reply: the probability mass of "yes"
// over "yes" and "no" among the first token's alternatives; else the first
// token's own probability (for "yes", or its complement for "no"); else 1
// for a reply that starts with yes and 0 otherwise.
func yesProbability(resp provider.Response) float64 {
	word := func(s string) string { return strings.ToLower(strings.Trim(s, " \t\n.!\"'")) }
	if len(resp.LogProbs) > 0 {
		first := resp.LogProbs[0]
		var yes, no float64
		for _, a := range first.Top {
			switch word(a.Token) {
			case "yes":
				yes += math.Exp(a.LogProb)
			case "no":
				no += math.Exp(a.LogProb)
			}
		}
		if yes+no > 0 {
			return yes / (yes + no)
		}
		switch word(first.Token) {
		case "yes":
			return math.Exp(first.LogProb)
		case "no":
			return 1 - math.Exp(first.LogProb)
		}
	}
	if strings.HasPrefix(word(resp.Text), "yes") {
		return 1
	}
	return 0
}
