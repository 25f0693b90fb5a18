package provider

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costwise/costwise/executor/provider/providertest"
)

// TestTurnsOnTheWire: a conversation (Request.Turns) reaches each kind's
// service as its messages, in order, with their roles, through the real
// langchaingo clients; a call with Prompt only sends one user message.
func TestTurnsOnTheWire(t *testing.T) {
	turns := []Turn{{TurnUser, "Capital of France?"}, {TurnAssistant, "Paris."}, {TurnUser, "And of Italy?"}}
	want := []providertest.Message{{Role: "user", Text: "Capital of France?"}, {Role: "assistant", Text: "Paris."},
		{Role: "user", Text: "And of Italy?"}}
	for _, k := range wireKinds {
		t.Run(k.name, func(t *testing.T) {
			srv := k.new(providertest.Script{"m-1": {{Text: "Rome."}}})
			defer srv.Close()
			cl := newWireClient(t, k, srv)
			resp, err := cl.Call(context.Background(), Request{Model: "m-1", System: "One word.", Turns: turns,
				Prompt: "[user]\nCapital of France?\n\n[assistant]\nParis.\n\n[user]\nAnd of Italy?", MaxTokens: 16})
			require.NoError(t, err)
			assert.Equal(t, "Rome.", resp.Text)
			_, err = cl.Call(context.Background(), Request{Model: "m-1", Prompt: "Capital of Spain?", MaxTokens: 16})
			require.NoError(t, err)

			calls := srv.Calls()
			require.Len(t, calls, 2)
			assert.Equal(t, "One word.", calls[0].System)
			assert.Equal(t, want, calls[0].Messages)
			assert.Equal(t, []providertest.Message{{Role: "user", Text: "Capital of Spain?"}}, calls[1].Messages)
		})
	}
}

// TestTurnsCountedLocally: without usage on the wire, a conversation's
// input is counted message by message, with OpenAI's chat framing.
func TestTurnsCountedLocally(t *testing.T) {
	one, err := countLocally(Request{Prompt: "Capital of France? Paris. And of Italy?"}, "Rome.")
	require.NoError(t, err)
	three, err := countLocally(Request{Turns: []Turn{{TurnUser, "Capital of France?"}, {TurnAssistant, "Paris."},
		{TurnUser, "And of Italy?"}}}, "Rome.")
	require.NoError(t, err)
	assert.Equal(t, one.OutputTokens, three.OutputTokens)
	assert.Greater(t, three.InputTokens, one.InputTokens, "two more messages, two more frames")
}
