package executor_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tmc/langchaingo/llms"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/executor"
	"github.com/costwise/costwise/executor/provider/providertest"
)

// rtCascade is nano (quality 0.60, below the route's floor) then big,
// measured at 0.92 with 30% of calls reaching big: for a route with
// min_quality 0.9 it costs about nano + 0.3 x big, below big alone.
var rtCascade = estimator.Cascade{Models: []string{"openai/nano", "openai/big"}, Thresholds: []float64{0.7},
	Signal: estimator.SignalLogprob, Reach: []float64{1, 0.3}, Quality: 0.92, Rows: 500}

func TestRouterRunsCascade(t *testing.T) {
	ok := func(text string, lps ...float64) providertest.Reply {
		return providertest.Reply{Text: text, Usage: u(40, 4), LogProbs: lps}
	}
	route := executor.Route{Name: "strict", MinQuality: 0.9}
	cases := []struct {
		name     string
		oa       providertest.Script
		stream   bool
		want     string
		wantEsc  int
		wantAtts []string
		wantConf []float64 // NaN: none
	}{
		{"a confident cheap answer stands", providertest.Script{"nano": {ok("hi", -0.05)}, "big": {ok("big hi")}}, false,
			"openai/nano", 0, []string{"openai/nano ok"}, []float64{math.Exp(-0.05)}},
		{"an unsure one is set aside and paid for", providertest.Script{"nano": {ok("hi", -2)}, "big": {ok("big hi")}}, false,
			"openai/big", 1, []string{"openai/nano invalid", "openai/big ok"}, []float64{math.Exp(-2), math.NaN()}},
		{"a self-check says yes: the cheap answer stands, both calls paid", providertest.Script{"nano": {ok("hi"), {Text: "yes", Usage: u(60, 1), LogProbs: []float64{math.Log(0.9)}}}, "big": {ok("big hi")}}, false,
			"openai/nano", 0, []string{"openai/nano ok", "openai/nano ok"}, []float64{0.9, 0.9}},
		{"a self-check says no: escalate", providertest.Script{"nano": {ok("hi"), {Text: "no", Usage: u(60, 1), LogProbs: []float64{math.Log(0.9)}}}, "big": {ok("big hi")}}, false,
			"openai/big", 1, []string{"openai/nano invalid", "openai/nano ok", "openai/big ok"}, []float64{0.1, 0.1, math.NaN()}},
		{"a stream shows only the answer that stood", providertest.Script{"nano": {ok("hi", -2)}, "big": {ok("big hi")}}, true,
			"openai/big", 1, []string{"openai/nano invalid", "openai/big ok"}, []float64{math.Exp(-2), math.NaN()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newRTEnv(t, tc.oa, providertest.Script{})
			c := rtCascade
			selfCheck := strings.HasPrefix(tc.name, "a self-check")
			if selfCheck {
				c.Signal, c.Reach = estimator.SignalSelfCheck, []float64{1, 0.1}
			}
			r := e.router(t, executor.RouterOptions{Routes: []executor.Route{route}, Cascades: []estimator.Cascade{c}, MaxRetries: -1})
			plan, err := r.Plan(human("Say hello."), executor.WithRoute("strict"))
			require.NoError(t, err)
			require.Equal(t, "cascade", plan.PickedBy)
			require.Equal(t, c.ID(), plan.Cascade)
			require.Equal(t, []string{"openai/nano", "openai/big", "anthropic/sonnet"}, ladderIDs(plan)[:3])
			assert.Equal(t, 0.7, plan.Ladder[0].Threshold)
			assert.Empty(t, plan.Ladder[1].Signal, "the last stage always answers")
			if !selfCheck {
				assert.InDelta(t, plan.Ladder[0].PredictedUSD+0.3*plan.Ladder[1].PredictedUSD, plan.PredictedUSD, 1e-15)
			}

			opts := []llms.CallOption{executor.WithRoute("strict")}
			var streamed string
			if tc.stream {
				opts = append(opts, llms.WithStreamingFunc(func(_ context.Context, chunk []byte) error {
					streamed += string(chunk)
					return nil
				}))
			}
			resp, err := r.GenerateContent(context.Background(), human("Say hello."), opts...)
			require.NoError(t, err)
			info := resp.Choices[0].GenerationInfo
			assert.Equal(t, tc.want, info[executor.InfoModel])
			assert.Equal(t, tc.wantEsc, info[executor.InfoEscalations])
			if tc.stream {
				assert.Equal(t, resp.Choices[0].Content, streamed, "the set-aside answer never reached the client")
			}
			// Every call the server answered is paid at its reported usage.
			var want int64
			for _, call := range e.oa.Calls() {
				want += e.price(t, "openai/"+call.Model, *call.Reply.Usage)
			}
			assert.Equal(t, want, info[executor.InfoCostNano])
			assert.Equal(t, !selfCheck, e.oa.CallsFor("nano")[0].LogProbs, "log-probabilities are asked of a logprob stage")
			if selfCheck {
				assert.Contains(t, e.oa.CallsFor("nano")[1].Prompt, "Proposed answer:\nhi")
			}

			rec, err := e.l.Run(info[executor.InfoRunID].(string))
			require.NoError(t, err)
			var got []string
			for k, a := range rec.Nodes[0].Attempts {
				got = append(got, a.Model+" "+string(a.Outcome))
				if math.IsNaN(tc.wantConf[k]) {
					assert.Nil(t, a.Confidence, "attempt %d", k)
				} else {
					require.NotNil(t, a.Confidence, "attempt %d", k)
					assert.InDelta(t, tc.wantConf[k], *a.Confidence, 1e-9)
				}
			}
			assert.Equal(t, tc.wantAtts, got)
			assert.Equal(t, want, rec.SpentNano)
		})
	}
}

func TestRouterCascadeEligibility(t *testing.T) {
	e := newRTEnvOK(t)
	low := rtCascade
	low.Quality = 0.85
	self := rtCascade
	self.Signal = estimator.SignalSelfCheck
	other := rtCascade
	other.Task = "code"
	cases := []struct {
		name string
		c    estimator.Cascade
		want string // PickedBy
	}{
		{"measured quality below the route's floor", low, "cost"},
		{"self_check works too", self, "cascade"},
		{"another task's cascade", other, "cost"},
		{"the cascade that fits", rtCascade, "cascade"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.router(t, executor.RouterOptions{Routes: []executor.Route{{Name: "strict", MinQuality: 0.9}}, Cascades: []estimator.Cascade{tc.c}})
			plan, err := r.Plan(human("Say hello."), executor.WithRoute("strict"))
			require.NoError(t, err)
			assert.Equal(t, tc.want, plan.PickedBy, fmt.Sprint(ladderIDs(plan)))
		})
	}
	_, err := executor.NewRouter(e.cat, e.cfg, nil, executor.RouterOptions{Cascades: []estimator.Cascade{{Models: []string{"openai/nano"}}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cascades[0]")
}
