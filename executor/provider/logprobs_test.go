package provider

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/executor/provider/providertest"
)

func TestLogProbs(t *testing.T) {
	script := providertest.Script{
		"gpt-x":   {{Text: "Paris!", LogProbs: []float64{-0.1, -0.5}}},
		"checker": {{Text: "yes", LogProbs: []float64{math.Log(0.8)}}},
		"claude":  {{Text: "Paris!"}},
	}
	oai := providertest.NewOpenAIServer(script)
	defer oai.Close()
	ant := providertest.NewAnthropicServer(script)
	defer ant.Close()

	cases := []struct {
		name      string
		kind      Kind
		srv       *providertest.Server
		req       Request
		want      []float64 // token log-probabilities; nil = none
		wantTop   int       // alternatives of the first token
		wantAsked bool      // the request on the wire asked for them
	}{
		{"OpenAI returns them when asked", KindOpenAI, oai, Request{Model: "gpt-x", Prompt: "Capital of France?", LogProbs: true}, []float64{-0.1, -0.5}, 0, true},
		{"with top alternatives", KindOpenAI, oai, Request{Model: "checker", Prompt: "Correct?", LogProbs: true, TopLogProbs: 2}, []float64{math.Log(0.8)}, 2, true},
		{"not asked, not sent", KindOpenAI, oai, Request{Model: "gpt-x", Prompt: "Capital of France?"}, nil, 0, false},
		{"Anthropic has none", KindAnthropic, ant, Request{Model: "claude", Prompt: "Capital of France?", LogProbs: true}, nil, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := newTestClient(t, tc.kind, tc.srv, nil)
			before := len(tc.srv.Calls())
			resp, err := cl.Call(context.Background(), tc.req)
			require.NoError(t, err)
			calls := tc.srv.Calls()
			require.Len(t, calls, before+1)
			call := calls[len(calls)-1]
			assert.Equal(t, tc.wantAsked, call.LogProbs)
			var body map[string]any
			require.NoError(t, json.Unmarshal(call.Body, &body))
			assert.Equal(t, tc.req.Prompt, call.Prompt, "the rewritten body keeps the prompt")
			var got []float64
			for _, tok := range resp.LogProbs {
				got = append(got, tok.LogProb)
			}
			assert.InDeltaSlice(t, tc.want, got, 1e-12)
			if tc.wantTop > 0 {
				require.Len(t, resp.LogProbs[0].Top, tc.wantTop)
				assert.Equal(t, "no", resp.LogProbs[0].Top[1].Token)
				assert.InDelta(t, 0.2, math.Exp(resp.LogProbs[0].Top[1].LogProb), 1e-9)
			}
			assert.True(t, resp.UsageReported, "usage still read by langchaingo")
		})
	}
}

func FuzzParseLogProbs(f *testing.F) {
	f.Add([]byte(`{"choices":[{"logprobs":{"content":[{"token":"a","logprob":-0.1,"top_logprobs":[{"token":"a","logprob":-0.1}]}]}}]}`))
	f.Add([]byte(`{"choices":[{"logprobs":null}]}`))
	f.Add([]byte(`{"choices":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, tok := range parseLogProbs(body) {
			_ = tok.Token
		}
	})
}
