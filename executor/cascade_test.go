package executor_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/ledger"
	"github.com/costwise/costwise/executor/provider/providertest"
	"github.com/costwise/costwise/planner"
)

// cascadeWorkflow: one node that cheap alone cannot serve (min_quality 0.9)
// and mid can, at more than cheap plus 30% of mid: the fitted cascade
// cheap -> mid is the cheapest plan.
const cascadeWorkflow = `
name = "cascade"

[[node]]
id = "draft"
prompt = "Write one word about tea."
output_tokens = { mean = 20, p95 = 40, max = 50 }
min_quality = 0.9
models = ["openai/*"]
`

func planWithCascade(t *testing.T, cat *catalog.Catalog, c estimator.Cascade) *planner.Result {
	t.Helper()
	plan := planWorkflow(t, cat, cascadeWorkflow, c)
	require.Equal(t, c.ID(), plan.Assignments[0].Candidate.ID(), "the cases below assume the cascade is planned")
	return plan
}

func TestCascadeRunsThroughRealClients(t *testing.T) {
	cat := loadCatalog(t)
	u := &catalog.Usage{InputTokens: 20, OutputTokens: 3}
	check := &catalog.Usage{InputTokens: 60, OutputTokens: 1}
	// A self-check costs about as much as the cheap answer again, so its
	// cascade pays only when it escalates less often.
	cascade := func(signal string, thr float64) estimator.Cascade {
		reach := 0.3
		if signal == estimator.SignalSelfCheck {
			reach = 0.1
		}
		return estimator.Cascade{Models: []string{"openai/cheap", "openai/mid"}, Thresholds: []float64{thr}, Signal: signal,
			Reach: []float64{1, reach}, Quality: 0.93, Rows: 100}
	}
	cases := []struct {
		name      string
		cascade   estimator.Cascade
		cheap     []providertest.Reply
		wantCalls []string // "model purpose outcome", in ledger order
		wantConf  []float64
		wantModel string
		wantEsc   int
		wantAsked bool // the first cheap request asked for logprobs
	}{
		{"confident cheap answer stands", cascade(estimator.SignalLogprob, 0.7),
			[]providertest.Reply{{Text: "tea", Usage: u, LogProbs: []float64{-0.05, -0.05}}},
			[]string{"openai/cheap answer ok"}, []float64{math.Exp(-0.05)}, "openai/cheap", 0, true},
		{"unsure cheap answer escalates", cascade(estimator.SignalLogprob, 0.7),
			[]providertest.Reply{{Text: "tea", Usage: u, LogProbs: []float64{-1, -3}}},
			[]string{"openai/cheap answer invalid", "openai/mid answer ok"}, []float64{math.Exp(-2), math.NaN()}, "openai/mid", 1, true},
		{"no log-probabilities escalates", cascade(estimator.SignalLogprob, 0.7),
			[]providertest.Reply{{Text: "tea", Usage: u}},
			[]string{"openai/cheap answer invalid", "openai/mid answer ok"}, []float64{math.NaN(), math.NaN()}, "openai/mid", 1, true},
		{"self-check yes keeps the answer and is paid for", cascade(estimator.SignalSelfCheck, 0.6),
			[]providertest.Reply{{Text: "tea", Usage: u}, {Text: "yes", Usage: check, LogProbs: []float64{math.Log(0.8)}}},
			[]string{"openai/cheap answer ok", "openai/cheap self_check ok"}, []float64{0.8, 0.8}, "openai/cheap", 0, false},
		{"self-check no escalates", cascade(estimator.SignalSelfCheck, 0.6),
			[]providertest.Reply{{Text: "tea", Usage: u}, {Text: "no", Usage: check, LogProbs: []float64{math.Log(0.9)}}},
			[]string{"openai/cheap answer invalid", "openai/cheap self_check ok", "openai/mid answer ok"},
			[]float64{0.1, 0.1, math.NaN()}, "openai/mid", 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := planWithCascade(t, cat, tc.cascade)
			res, oa, l, id := runOnOpenAI(t, cat, cascadeWorkflow, plan,
				providertest.Script{"cheap": tc.cheap, "mid": {{Text: "matcha", Usage: u}}}, executor.Options{MaxRetries: 1})
			require.Equal(t, executor.StatusSucceeded, res.Status, res.Error)
			d := nodeByID(t, res, "draft")
			assert.Equal(t, tc.wantModel, d.Model)
			assert.Equal(t, tc.wantEsc, d.Escalations)

			rec, err := l.Run(id)
			require.NoError(t, err)
			var got []string
			var conf []float64
			var ledgerSum int64
			for _, a := range rec.Nodes[0].Attempts {
				got = append(got, a.Model+" "+string(a.Purpose)+" "+string(a.Outcome))
				c := math.NaN()
				if a.Confidence != nil {
					c = *a.Confidence
				}
				conf = append(conf, c)
				ledgerSum += a.CostNano
				if a.Outcome == ledger.OutcomeInvalid {
					assert.Contains(t, a.Reason, "cascade:"+tc.cascade.Signal+":openai/cheap@")
				}
			}
			// Ledger order is by seq: the answer began before its self-check.
			assert.Equal(t, tc.wantCalls, got)
			require.Len(t, conf, len(tc.wantConf))
			for k := range conf {
				if math.IsNaN(tc.wantConf[k]) {
					assert.True(t, math.IsNaN(conf[k]), "attempt %d has no confidence", k)
				} else {
					assert.InDelta(t, tc.wantConf[k], conf[k], 1e-9, "attempt %d", k)
				}
			}

			// Every call the server answered is paid, to the nano-dollar.
			var want int64
			for _, c := range oa.Calls() {
				m, ok := cat.Lookup("openai/" + c.Model)
				require.True(t, ok)
				want += catalog.Price(m, *c.Reply.Usage).NanoUSD()
			}
			assert.Equal(t, want, res.CostNano)
			assert.Equal(t, want, ledgerSum)
			assert.Equal(t, want, rec.SpentNano)

			calls := oa.CallsFor("cheap")
			assert.Equal(t, tc.wantAsked, calls[0].LogProbs, "log-probabilities asked only for the logprob signal")
			if tc.cascade.Signal == estimator.SignalSelfCheck {
				require.Len(t, calls, 2)
				assert.True(t, strings.Contains(calls[1].Prompt, "Proposed answer:\ntea"), calls[1].Prompt)
				assert.True(t, calls[1].LogProbs)
				assert.LessOrEqual(t, calls[1].MaxTokens, estimator.SelfCheckOutputTokens)
			}
		})
	}
}

// A simulated run of a planned cascade escalates in about the measured
// share of calls (labelled SIMULATED like every simulated answer).
func TestCascadeSimulatedEscalationRate(t *testing.T) {
	cat := loadCatalog(t)
	c := estimator.Cascade{Models: []string{"openai/cheap", "openai/mid"}, Thresholds: []float64{0.7}, Signal: estimator.SignalLogprob,
		Reach: []float64{1, 0.3}, Quality: 0.93}
	plan := planWithCascade(t, cat, c)
	x := executor.New(cat, executor.NewSimulator(cat, 7), nil, executor.Options{Simulated: true, Seed: 3})
	escalated := 0
	const runs = 400
	for range runs {
		res, err := x.Run(context.Background(), executor.Spec{RunID: "sim", Plan: plan})
		require.NoError(t, err)
		d := nodeByID(t, res, "draft")
		if d.Status == executor.NodeSucceeded {
			assert.True(t, strings.HasPrefix(d.Output, executor.SimulatedPrefix))
		} else {
			// The last stage fails by its catalog quality (0.95) in simulation.
			require.Equal(t, 1, d.Escalations, "only an escalated call can fail: %s", res.Error)
		}
		escalated += d.Escalations
	}
	assert.InDelta(t, 0.3, float64(escalated)/runs, 0.07)
}
